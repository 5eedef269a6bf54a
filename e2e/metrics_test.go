package e2e

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The plugin with SFTPFS_METRICS_ADDR set, through the docker CLI: its
// endpoint on the host's loopback shows a container's reads and writes on
// one volume and nothing on another, the callers and the connection
// state, and PUT /loglevel changes the level without disabling the
// plugin.
func TestPluginMetrics(t *testing.T) {
	h := setup(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	h.must("plugin", "disable", "-f", plugin)
	h.must("plugin", "set", plugin, "SFTPFS_METRICS_ADDR="+addr)
	h.must("plugin", "enable", plugin)
	base := "http://" + addr

	for _, d := range []string{"busy", "idle"} {
		if err := os.Mkdir(filepath.Join(h.remote, d), 0o777); err != nil {
			t.Fatal(err)
		}
	}
	busy, idle := h.name("mbusy"), h.name("midle")
	h.create(busy, h.sshOpts(h.remote+"/busy")...)
	h.create(idle, h.sshOpts(h.remote+"/idle")...)
	// A container that writes and reads 8 MiB, then stays (so the volume
	// is in use while we scrape); another one keeps idle mounted, on a
	// path the image has nothing at (the image's /data/seed.txt would be
	// copied up into an empty volume: 15 bytes written).
	cname := "e2e-metrics-" + h.suffix
	h.must("run", "-d", "--name", cname, "-v", busy+":/data", image, "sh", "-c",
		"dd if=/dev/zero of=/data/blob bs=1M count=8 && sync && cat /data/blob > /dev/null && echo done > /data/ok && sleep 300")
	t.Cleanup(func() { h.run("rm", "-f", cname) })
	iname := "e2e-metrics-idle-" + h.suffix
	h.must("run", "-d", "--name", iname, "-v", idle+":/idle", image, "sleep", "300")
	t.Cleanup(func() { h.run("rm", "-f", iname) })

	deadline := time.Now().Add(60 * time.Second)
	for promSum(t, base, "sftpfs_written_bytes_total", busy) < 8<<20 || promSum(t, base, "sftpfs_read_bytes_total", busy) < 8<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("busy: written %v, read %v after 60s; want 8 MiB each (container log: %s)",
				promSum(t, base, "sftpfs_written_bytes_total", busy), promSum(t, base, "sftpfs_read_bytes_total", busy),
				h.must("logs", cname))
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, c := range []struct {
		metric, vol string
		want        float64
	}{
		{"sftpfs_mounts_in_use", busy, 1},
		{"sftpfs_mounts_in_use", idle, 1},
		{`sftpfs_connection_state`, busy, 1}, // exactly one state is 1
		{"sftpfs_written_bytes_total", idle, 0},
		{"sftpfs_read_bytes_total", idle, 0},
	} {
		if got := promSum(t, base, c.metric, c.vol); got != c.want {
			t.Errorf("%s{volume=%s} = %v, want %v", c.metric, c.vol, got, c.want)
		}
	}
	if !strings.Contains(scrapeText(t, base+"/metrics"), `sftpfs_connection_state{state="connected",volume="`+busy+`"} 1`) {
		t.Errorf("busy is not shown connected")
	}
	if n := promSum(t, base, "sftpfs_operation_duration_seconds_count", busy); n < 10 {
		t.Errorf("busy: %v latency observations", n)
	}

	// Log level at run time, no disable.
	req, _ := http.NewRequest(http.MethodPut, base+"/loglevel", strings.NewReader("debug"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT /loglevel: %v %v", resp, err)
	}
	resp.Body.Close()
	if lv := strings.TrimSpace(scrapeText(t, base+"/loglevel")); lv != "debug" {
		t.Errorf("GET /loglevel = %q after PUT debug", lv)
	}
	req, _ = http.NewRequest(http.MethodPut, base+"/loglevel", strings.NewReader("loud"))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("PUT /loglevel loud: %v %v, want 400", resp, err)
	} else {
		resp.Body.Close()
	}

	h.must("rm", "-f", cname)
	if got := promSum(t, base, "sftpfs_mounts_in_use", busy); got != 0 {
		t.Errorf("mounts_in_use{volume=%s} = %v after the container was removed", busy, got)
	}
}

func scrapeText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// promSum adds the samples of metric (name up to its labels) that carry
// volume="vol".
func promSum(t *testing.T, base, metric, vol string) float64 {
	t.Helper()
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(metric) + `\{[^}]*volume="` + regexp.QuoteMeta(vol) + `"[^}]*\} (\S+)$`)
	sum := 0.0
	for _, l := range strings.Split(scrapeText(t, base+"/metrics"), "\n") {
		if m := re.FindStringSubmatch(l); m != nil {
			v, err := strconv.ParseFloat(m[1], 64)
			if err != nil {
				t.Fatalf("bad sample %q", l)
			}
			sum += v
		}
	}
	return sum
}
