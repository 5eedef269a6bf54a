package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sftpfs/sftpfs/internal/testenv"
)

// `sftpfs mount -o metrics=ADDR`: the endpoint counts the mount's writes
// and reads under volume=MOUNTPOINT and changes the log level on PUT; a
// bad address is a usage error before anything is mounted.
func TestMountMetrics(t *testing.T) {
	testenv.RequireFUSE(t)
	bin := buildBinary(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	src, mp := t.TempDir(), t.TempDir()
	p := startMount(t, bin, mp, "-o", "metrics="+addr, "local:"+src)
	data := strings.Repeat("x", 100000)
	if err := os.WriteFile(filepath.Join(mp, "f"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(mp, "f")); err != nil || len(b) != len(data) {
		t.Fatalf("read back %d bytes, %v", len(b), err)
	}
	get := func(path string) string {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	m := get("/metrics")
	for _, want := range []string{`sftpfs_written_bytes_total{volume="` + mp + `"} 100000`, `sftpfs_operations_total{op="write",volume="` + mp + `"}`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/loglevel", strings.NewReader("debug\n"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT /loglevel: %v %v", resp, err)
	}
	resp.Body.Close()
	if lv := strings.TrimSpace(get("/loglevel")); lv != "debug" {
		t.Errorf("level %q after PUT debug", lv)
	}
	p.stop(t, syscall.SIGTERM)
	if !strings.Contains(p.stderr.String(), "log level changed") {
		t.Errorf("the level change was not logged:\n%s", p.stderr)
	}

	out, err := exec.Command(bin, "mount", "-o", "metrics=nonsense", "local:"+src, t.TempDir()).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "metrics") {
		t.Errorf("bad metrics address: %v %s, want exit 2 naming the option", err, out)
	}
}
