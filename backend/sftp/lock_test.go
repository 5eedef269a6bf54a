package sftp

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	psftp "github.com/pkg/sftp"

	"github.com/sftpfs/sftpfs/internal/faultproxy"
	"github.com/sftpfs/sftpfs/internal/pipesftp"
	"github.com/sftpfs/sftpfs/internal/sshdtest"
)

// stuckFirstStream is an in-process transport whose first listing
// session is a server that never answers (as a server that accepts a
// channel and then hangs); later sessions are served by pkg/sftp.
type stuckFirstStream struct {
	io.Closer
	opens *atomic.Int32
}

func (s stuckFirstStream) OpenSFTPStream() (io.ReadWriteCloser, error) {
	cs, ss := net.Pipe()
	if s.opens.Add(1) == 1 {
		go func() { _, _ = io.Copy(io.Discard, ss) }()
		return cs, nil
	}
	srv, err := psftp.NewServer(ss)
	if err != nil {
		return nil, err
	}
	go func() { _ = srv.Serve(); srv.Close() }()
	return cs, nil
}

// A listing whose session open hangs must not hold up the other listings
// of the mount: they used to queue behind the lock held across the open
// until op_timeout killed the connection.
func TestListingNotBlockedByStuckSessionOpen(t *testing.T) {
	var opens atomic.Int32
	dial := pipesftp.Dialer(func(c io.Closer) io.Closer { return stuckFirstStream{c, &opens} })
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	const opTimeout = 30 * time.Second
	b, err := NewWithDialer(context.Background(), dial, dir, Options{OpTimeout: opTimeout, ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	go func() { _, _ = b.ReadDir(context.Background(), ".") }() // stuck in the session open
	for deadline := time.Now().Add(5 * time.Second); opens.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first listing never opened a session")
		}
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		fis, err := b.ReadDir(context.Background(), ".")
		if err == nil && (len(fis) != 1 || fis[0].Name != "f") {
			t.Errorf("second listing: %v", fis)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("second listing: %v", err)
		}
		t.Logf("second listing done after %v while the first is stuck", time.Since(start).Round(time.Millisecond))
	case <-time.After(6 * time.Second):
		t.Fatalf("second listing still waiting after 6s (op_timeout %v): it queues behind the stuck session open", opTimeout)
	}
}

// Close of a file must not wait for the file's re-open after a reconnect
// when the server is slow to answer it: the lock used to be held across
// that round trip, so Close waited until op_timeout.
func TestFileCloseNotBlockedByStuckReopen(t *testing.T) {
	srv := sshdtest.Start(t, sshdtest.Options{})
	px, err := faultproxy.New(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	cfg := sshdConfig(srv, t.TempDir())
	cfg.Port = px.Port()
	cfg.KnownHostsFiles = nil
	cfg.HostKeys = []string{srv.HostKeyLine}
	const opTimeout = 20 * time.Second
	cfg.OpTimeout = opTimeout
	cfg.ConnectTimeout = 5 * time.Second
	cfg.KeepaliveInterval = time.Hour // only the stall may hold the call
	b := openBackend(t, cfg)
	f, err := b.OpenFile(context.Background(), "x", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("data"), 0); err != nil {
		t.Fatal(err)
	}
	g0 := b.c.current().gen
	px.DropAll()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if t := b.c.current(); t != nil && t.gen > g0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no reconnect within 10s")
		}
	}
	px.SetStall(true)
	defer px.SetStall(false)
	go func() { _, _ = f.ReadAt(make([]byte, 4), 0) }() // re-opens on the new connection: stuck
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- f.Close() }()
	select {
	case err := <-done:
		t.Logf("Close returned %v after %v while the re-open is stuck", err, time.Since(start).Round(time.Millisecond))
	case <-time.After(3 * time.Second):
		t.Fatalf("Close still waiting after 3s (op_timeout %v): it queues behind the stuck re-open", opTimeout)
	}
}
