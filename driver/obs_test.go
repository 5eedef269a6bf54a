package driver

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/volume"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/ssh"

	"github.com/sftpfs/sftpfs/backend/metered"
	"github.com/sftpfs/sftpfs/backend/sftp"
	"github.com/sftpfs/sftpfs/internal/admin"
	"github.com/sftpfs/sftpfs/internal/logx"
	"github.com/sftpfs/sftpfs/internal/sshdtest"
	"github.com/sftpfs/sftpfs/internal/testenv"
	"github.com/sftpfs/sftpfs/options"
)

// logSink collects the driver's log lines, as dockerd collects the
// plugin's stderr.
type logSink struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *logSink) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }

func (s *logSink) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range strings.Split(s.b.String(), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// obsDriver is a driver with the production mounter, logging like the
// plugin (text lines, a process level of info) into a sink, and with
// metrics on a registry of its own.
func obsDriver(t *testing.T, secrets string, tune func(*options.Config)) (*client, *logSink, *prometheus.Registry, string) {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireFUSE(t)
	sink := &logSink{}
	lv := new(slog.LevelVar)
	log := slog.New(logx.NewHandler(slog.NewTextHandler(sink, &slog.HandlerOptions{Level: slog.LevelDebug}), lv))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("driver log:\n%s", strings.Join(sink.lines(), "\n"))
		}
	})
	reg := prometheus.NewRegistry()
	mt := metered.New(reg)
	m := NewMounter(secrets, mt).(*realMounter)
	m.selfAccess = true
	m.tune = tune
	root := filepath.Join(t.TempDir(), "volumes")
	cleanupMounts(t, root)
	d, err := New(Config{MountRoot: root, Mounter: m, Guard: true, Logger: log, Metrics: mt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Shutdown)
	return serve(t, d), sink, reg, root
}

// replaceHostKey gives the server a new host key, as a reinstalled server
// (or a man in the middle) would present.
// It returns the new key's fingerprint.
func replaceHostKey(t *testing.T, srv *sshdtest.Server) string {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(srv.Dir, "host_key"), pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return ssh.FingerprintSHA256(sp)
}

// untagged returns the lines that do not name a volume. Only the driver's
// own lines about itself may do that.
func untagged(lines []string) []string {
	var out []string
	for _, l := range lines {
		if strings.Contains(l, " volume=") || strings.Contains(l, "volume driver ready") {
			continue
		}
		out = append(out, l)
	}
	return out
}

// A volume whose server changed its host key while mounted: the
// connection goes to "failed" with the reason in `docker volume inspect`,
// a container start on it fails with that reason (both while the old
// mount lives and after it is gone), attempts and log lines stay bounded,
// and every log line names the volume. A transient outage before the
// key change shows the normal reconnect.
func TestFailedVolumeHostKeyChanged(t *testing.T) {
	srv := sshdtest.Start(t, sshdtest.Options{})
	remote := t.TempDir()
	pol := sftp.ReconnectPolicy{MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		FailedRetry: 300 * time.Millisecond, LogEvery: time.Second}
	c, sink, _, _ := obsDriver(t, filepath.Dir(srv.KeyFile), func(cfg *options.Config) { cfg.SFTP.Reconnect = pol })

	opts := map[string]string{"host": srv.Host, "port": strconv.Itoa(srv.Port), "user": srv.User, "path": remote,
		"identity": filepath.Base(srv.KeyFile), "hostkey": srv.HostKeyFingerprint}
	c.mustOK("Create", volume.CreateRequest{Name: "hk", Options: opts}, nil)
	var mr volume.MountResponse
	c.mustOK("Mount", volume.MountRequest{Name: "hk", ID: "a"}, &mr)
	if err := os.WriteFile(filepath.Join(mr.Mountpoint, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}

	// Transient: same key, back after a moment.
	srv.Restart()
	waitVolState(t, c, "hk", "connected", 10*time.Second)
	if _, err := os.ReadFile(filepath.Join(mr.Mountpoint, "f")); err != nil {
		t.Fatalf("read after a restart of the server: %v", err)
	}
	waitFor(t, 10*time.Second, func() bool { return c.get("hk").Status["reconnects"] == float64(1) })

	newKey := replaceHostKey(t, srv)
	st := waitVolState(t, c, "hk", "failed", 10*time.Second)
	reason, _ := st["last_error"].(string)
	if !strings.Contains(reason, "host key") || !strings.Contains(reason, newKey) {
		t.Fatalf("last_error = %q, want the refused host key %s", reason, newKey)
	}
	// A container start gets the reason; the key material is public, but
	// no private key or path of one may show.
	e := c.mustFail("Mount", volume.MountRequest{Name: "hk", ID: "b"}, "failed", "host key", newKey)
	if strings.Contains(e, "PRIVATE") || strings.Contains(e, srv.KeyFile) {
		t.Errorf("mount error leaks key material: %q", e)
	}
	// A failing read in the mount: EIO, without a line per call.
	for range 50 {
		if _, err := os.ReadFile(filepath.Join(mr.Mountpoint, "f")); err == nil {
			t.Fatal("read succeeded on a failed volume")
		}
	}

	// Bounded logging: count the lines over 3s of failed state, in which
	// about ten attempts are made (FailedRetry 300ms, jittered).
	before := len(sink.lines())
	time.Sleep(3 * time.Second)
	during := sink.lines()[before:]
	if len(during) > 4 {
		t.Errorf("%d log lines in 3s of failed state (about 10 attempts), want at most one per LogEvery (1s):\n%s",
			len(during), strings.Join(during, "\n"))
	}
	t.Logf("%d log lines in 3s of failed state", len(during))

	// With the mount gone, a new start fails with the reason too.
	c.mustOK("Unmount", volume.UnmountRequest{Name: "hk", ID: "a"}, nil)
	c.mustFail("Mount", volume.MountRequest{Name: "hk", ID: "c"}, "host key", newKey)
	if st := c.get("hk").Status; !strings.Contains(st["last_error"].(string), newKey) {
		t.Errorf("status after a failed mount: %v", st)
	}
	c.mustOK("Remove", volume.RemoveRequest{Name: "hk"}, nil)

	lines := sink.lines()
	if os.Getenv("OBS_SHOW_LOG") != "" {
		t.Logf("log:\n%s", strings.Join(lines, "\n"))
	}
	if bad := untagged(lines); len(bad) > 0 {
		t.Errorf("%d of %d log lines do not name their volume:\n%s", len(bad), len(lines), strings.Join(bad, "\n"))
	}
	for _, want := range []string{"sftp connection lost", "sftp connection re-established", "volume failed"} {
		if !strings.Contains(strings.Join(lines, "\n"), want) {
			t.Errorf("no %q line in the log", want)
		}
	}
}

func waitFor(t *testing.T, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in time")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitVolState(t *testing.T, c *client, name, want string, d time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		st := c.get(name).Status
		if st["state"] == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("volume %s: status %v, want state %q", name, st, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scrape returns the sample values of the metrics endpoint whose line
// starts with prefix and carries volume="vol", summed.
func scrape(t *testing.T, url, prefix, vol string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `\{[^}]*volume="` + regexp.QuoteMeta(vol) + `"[^}]*\} (\S+)$`)
	sum := 0.0
	for _, l := range strings.Split(string(body), "\n") {
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

// The metrics endpoint, scraped while one of two volumes is read and
// written through its FUSE mount: that volume's counters move, the other
// one's do not.
func TestMetricsPerVolume(t *testing.T) {
	dir := t.TempDir()
	c, sink, reg, _ := obsDriver(t, filepath.Join(dir, "secrets"), nil)
	lv := new(slog.LevelVar)
	ts := httptest.NewServer(admin.Handler(reg, lv, slog.New(slog.DiscardHandler)))
	defer ts.Close()
	url := ts.URL + "/metrics"

	mps := map[string]string{}
	for _, name := range []string{"busy", "idle"} {
		data := filepath.Join(dir, name)
		if err := os.Mkdir(data, 0o755); err != nil {
			t.Fatal(err)
		}
		c.mustOK("Create", volume.CreateRequest{Name: name, Options: map[string]string{"local": data}}, nil)
		var mr volume.MountResponse
		c.mustOK("Mount", volume.MountRequest{Name: name, ID: "x"}, &mr)
		mps[name] = mr.Mountpoint
	}
	idleOps := scrape(t, url, "sftpfs_operations_total", "idle")

	payload := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	for i := range 3 {
		p := filepath.Join(mps["busy"], "f"+strconv.Itoa(i))
		if err := os.WriteFile(p, payload, 0o644); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(p); err != nil || len(b) != len(payload) {
			t.Fatalf("read back %d bytes, %v", len(b), err)
		}
	}
	if _, err := os.Stat(filepath.Join(mps["busy"], "missing")); err == nil {
		t.Fatal("stat of a missing file succeeded")
	}

	if w := scrape(t, url, "sftpfs_written_bytes_total", "busy"); w < 3*float64(len(payload)) {
		t.Errorf("busy: written %v bytes, want >= %d", w, 3*len(payload))
	}
	if r := scrape(t, url, "sftpfs_read_bytes_total", "busy"); r < 3*float64(len(payload)) {
		t.Errorf("busy: read %v bytes, want >= %d", r, 3*len(payload))
	}
	if n := scrape(t, url, `sftpfs_operation_errors_total{errno="ENOENT"`[:len("sftpfs_operation_errors_total")], "busy"); n < 1 {
		t.Errorf("busy: %v errors counted, want the ENOENT of the missing file", n)
	}
	if n := scrape(t, url, "sftpfs_operation_duration_seconds_count", "busy"); n < 6 {
		t.Errorf("busy: %v latency observations", n)
	}
	if n := scrape(t, url, "sftpfs_connection_state", "busy"); n != 1 {
		t.Errorf("busy: connection_state series sum %v, want exactly one state at 1", n)
	}
	if n := scrape(t, url, "sftpfs_mounts_in_use", "busy"); n != 1 {
		t.Errorf("busy: mounts_in_use %v, want 1", n)
	}
	for _, m := range []string{"sftpfs_written_bytes_total", "sftpfs_read_bytes_total", "sftpfs_operation_errors_total"} {
		if v := scrape(t, url, m, "idle"); v != 0 {
			t.Errorf("idle: %s = %v, want 0", m, v)
		}
	}
	if v := scrape(t, url, "sftpfs_operations_total", "idle"); v != idleOps {
		t.Errorf("idle: operations went from %v to %v while only busy was used", idleOps, v)
	}

	for name := range mps {
		c.mustOK("Unmount", volume.UnmountRequest{Name: name, ID: "x"}, nil)
	}
	if n := scrape(t, url, "sftpfs_mounts_in_use", "busy"); n != 0 {
		t.Errorf("busy: mounts_in_use %v after unmount, want 0", n)
	}
	if bad := untagged(sink.lines()); len(bad) > 0 {
		t.Errorf("log lines without volume=:\n%s", strings.Join(bad, "\n"))
	}
}

// The debug volume option raises that volume's level inside the plugin:
// its debug lines are logged while the process stays at info, and the
// other volume's are not.
func TestVolumeDebugOption(t *testing.T) {
	dir := t.TempDir()
	c, sink, _, _ := obsDriver(t, filepath.Join(dir, "secrets"), nil)
	for _, v := range []struct{ name, debug string }{{"dbg", "true"}, {"plain", "false"}} {
		data := filepath.Join(dir, v.name)
		if err := os.Mkdir(data, 0o755); err != nil {
			t.Fatal(err)
		}
		c.mustOK("Create", volume.CreateRequest{Name: v.name, Options: map[string]string{"local": data, "debug": v.debug}}, nil)
		c.mustOK("Mount", volume.MountRequest{Name: v.name, ID: "x"}, nil)
		c.mustOK("Unmount", volume.UnmountRequest{Name: v.name, ID: "x"}, nil)
	}
	var dbg, plain int
	for _, l := range sink.lines() {
		if !strings.Contains(l, "level=DEBUG") {
			continue
		}
		switch {
		case strings.Contains(l, "volume=dbg"):
			dbg++
		case strings.Contains(l, "volume=plain"):
			plain++
		default:
			t.Errorf("debug line of no volume at process level info: %s", l)
		}
	}
	if dbg == 0 || plain != 0 {
		t.Errorf("debug lines: %d of the debug=true volume (want some), %d of the other (want 0)", dbg, plain)
	}
}
