package sftp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/internal/faultproxy"
	"github.com/sftpfs/sftpfs/internal/sshdtest"
)

// faultSetup starts sshd behind a fault proxy and a backend connected
// through the proxy with short timeouts.
func faultSetup(t *testing.T) (*sshdtest.Server, *faultproxy.Proxy, *Backend, string) {
	t.Helper()
	srv := sshdtest.Start(t, sshdtest.Options{})
	px, err := faultproxy.New(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	dir := t.TempDir()
	cfg := sshdConfig(srv, dir)
	cfg.Port = px.Port()
	// known_hosts names sshd's own port; pin the key line instead.
	cfg.KnownHostsFiles = nil
	cfg.HostKeys = []string{srv.HostKeyLine}
	cfg.OpTimeout = 2 * time.Second
	cfg.ConnectTimeout = 2 * time.Second
	cfg.KeepaliveInterval = 300 * time.Millisecond
	cfg.KeepaliveCountMax = 2
	b := openBackend(t, cfg)
	return srv, px, b, dir
}

func TestFaultDropMidTransfer(t *testing.T) {
	_, px, b, dir := faultSetup(t)
	ctx := context.Background()
	const size, chunk = 4 << 20, 64 << 10
	src := make([]byte, size)
	rand.Read(src)
	if err := os.WriteFile(filepath.Join(dir, "in"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := b.OpenFile(ctx, "in", os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := b.OpenFile(ctx, "out", os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, size)
	for off := 0; off < size; off += chunk {
		if off == size/2 || off == size*3/4 {
			px.DropAll()
		}
		n, err := in.ReadAt(got[off:off+chunk], int64(off))
		if err != nil && !(err == io.EOF && off+n == size) {
			t.Fatalf("ReadAt(%d) after drop: n=%d err=%v", off, n, err)
		}
		if _, err := out.WriteAt(src[off:off+chunk], int64(off)); err != nil {
			t.Fatalf("WriteAt(%d) after drop: %v", off, err)
		}
	}
	if !bytes.Equal(got, src) {
		t.Fatal("data read across reconnects differs from the file")
	}
	if err := out.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	written, err := os.ReadFile(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(written) != sha256.Sum256(src) {
		t.Fatalf("server file differs after reconnects (size %d, want %d)", len(written), size)
	}
	st := b.Status()
	if st.Reconnects < 2 || st.State != backend.StateConnected {
		t.Fatalf("Status = %+v; want >= 2 reconnects and connected", st)
	}
	if px.Stats().Conns < 3 {
		t.Fatalf("proxy saw %d connections; want >= 3", px.Stats().Conns)
	}
}

func TestFaultStallTimesOut(t *testing.T) {
	_, px, b, _ := faultSetup(t)
	ctx := context.Background()
	if _, err := b.Stat(ctx, "."); err != nil {
		t.Fatal(err)
	}
	px.SetStall(true)
	start := time.Now()
	_, err := b.Stat(ctx, ".")
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("Stat through a stalled connection succeeded")
	}
	if elapsed > 2*time.Second+1500*time.Millisecond {
		t.Fatalf("Stat took %v to fail; want about op_timeout (2s)", elapsed)
	}
	t.Logf("stalled Stat failed after %v: %v", elapsed, err)
	if st := b.Status(); st.State != backend.StateReconnecting || st.LastError == "" {
		t.Fatalf("Status while stalled = %+v; want reconnecting with an error", st)
	}
	px.SetStall(false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := b.Stat(ctx, ".")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backend did not recover after the stall ended: %v", err)
		}
	}
}

// TestFaultOutageCostsOneOpTimeout: during a long outage the first calls
// wait at most op_timeout (measured from when the connection was lost)
// for a reconnect; once the outage is older than that, calls fail at once
// instead of each waiting op_timeout again, and the backend still
// recovers when the server is back.
func TestFaultOutageCostsOneOpTimeout(t *testing.T) {
	_, px, b, _ := faultSetup(t)
	ctx := context.Background()
	if _, err := b.Stat(ctx, "."); err != nil {
		t.Fatal(err)
	}
	px.SetStall(true)
	// Keepalives (300ms x 2) notice the stall; no call is in flight.
	deadline := time.Now().Add(3 * time.Second)
	for b.Status().State == backend.StateConnected {
		if time.Now().After(deadline) {
			t.Fatal("keepalives did not detect the stall within 3s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	lost := time.Now()
	start := time.Now()
	if _, err := b.Stat(ctx, "."); err == nil {
		t.Fatal("Stat during the outage succeeded")
	}
	first := time.Since(start)
	// op_timeout is 2s and counts from the loss, not from the call.
	if first > 2*time.Second+500*time.Millisecond {
		t.Fatalf("first Stat in the outage took %v; want at most op_timeout (2s) after the loss", first)
	}
	if time.Since(lost) < 2*time.Second {
		time.Sleep(2*time.Second - time.Since(lost))
	}
	for i := 0; i < 3; i++ {
		start := time.Now()
		_, err := b.Lstat(ctx, "x")
		if err == nil {
			t.Fatal("Lstat during the outage succeeded")
		}
		if d := time.Since(start); d > 300*time.Millisecond {
			t.Fatalf("call %d, %v into an outage older than op_timeout, took %v; want an immediate error", i, time.Since(lost), d)
		}
		t.Logf("call %d failed after %v: %v", i, time.Since(start).Round(time.Millisecond), err)
	}
	px.SetStall(false)
	deadline = time.Now().Add(10 * time.Second)
	for {
		if _, err := b.Stat(ctx, "."); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("backend did not recover after the outage")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestFaultKeepaliveDetectsIdleStall(t *testing.T) {
	_, px, b, _ := faultSetup(t)
	px.SetStall(true)
	defer px.SetStall(false)
	// No calls: only keepalives (300ms, 2 missed) can notice.
	deadline := time.Now().Add(3 * time.Second)
	for b.Status().State == backend.StateConnected {
		if time.Now().After(deadline) {
			t.Fatal("keepalives did not detect a silent server within 3s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := b.Status(); st.LastError == "" {
		t.Fatalf("Status = %+v; want the keepalive error", st)
	}
}

func TestFaultSSHDRestart(t *testing.T) {
	srv := sshdtest.Start(t, sshdtest.Options{})
	dir := t.TempDir()
	cfg := sshdConfig(srv, dir)
	cfg.OpTimeout = 5 * time.Second
	b := openBackend(t, cfg)
	ctx := context.Background()
	f, err := b.OpenFile(ctx, "f", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("before"), 0); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	if _, err := f.WriteAt([]byte("after!"), 6); err != nil {
		t.Fatalf("WriteAt after sshd restart: %v", err)
	}
	if err := b.Mkdir(ctx, "d", 0o755); err != nil {
		t.Fatalf("Mkdir after sshd restart: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "f"))
	if err != nil || string(data) != "beforeafter!" {
		t.Fatalf("file after restart = %q, %v", data, err)
	}
	if st := b.Status(); st.Reconnects < 1 || st.State != backend.StateConnected || st.HostKeyFingerprint != srv.HostKeyFingerprint {
		t.Fatalf("Status = %+v; want a reconnect, connected, fingerprint %s", st, srv.HostKeyFingerprint)
	}
}

func TestCloseDuringReconnect(t *testing.T) {
	_, px, b, _ := faultSetup(t)
	px.SetRefuse(true)
	px.DropAll()
	done := make(chan error, 1)
	go func() {
		_, err := b.Stat(context.Background(), ".")
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	b.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Stat succeeded with the server unreachable")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stat did not return after Close")
	}
	if st := b.Status(); st.State != backend.StateClosed {
		t.Fatalf("State after Close = %q", st.State)
	}
	if _, err := b.Stat(context.Background(), "."); err == nil {
		t.Fatal("Stat after Close succeeded")
	}
}
