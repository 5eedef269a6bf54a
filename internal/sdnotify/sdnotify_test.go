package sdnotify

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

func TestReady(t *testing.T) {
	if err := Ready(""); err != nil {
		t.Fatalf("Ready without a socket: %v", err)
	}
	for _, abstract := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "notify")
		name, listen := path, path
		if abstract {
			name, listen = "@sftpfs-test-"+filepath.Base(t.TempDir()), ""
			listen = "\x00" + name[1:]
		}
		l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: listen, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if err := Ready(name); err != nil {
			t.Fatalf("Ready(%q): %v", name, err)
		}
		buf := make([]byte, 64)
		l.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := l.Read(buf)
		if err != nil || string(buf[:n]) != "READY=1" {
			t.Errorf("abstract=%v: got %q, %v; want READY=1", abstract, buf[:n], err)
		}
	}
	if err := Ready(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("Ready to a missing socket succeeded")
	}
}
