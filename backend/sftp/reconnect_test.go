package sftp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	psftp "github.com/pkg/sftp"

	"github.com/sftpfs/sftpfs/backend"
)

func TestBackoffBounds(t *testing.T) {
	const lo, hi = 100 * time.Millisecond, 30 * time.Second
	for attempt := range 40 {
		env := min(lo<<min(attempt, 30), hi)
		for _, r := range []float64{0, 0.25, 0.5, 0.999999} {
			d := backoff(attempt, lo, hi, r)
			if d < env/2 || d > env {
				t.Fatalf("backoff(%d, r=%v) = %v, want in [%v, %v]", attempt, r, d, env/2, env)
			}
		}
	}
	// Jitter spreads volumes that lost one server together.
	if a, b := backoff(10, lo, hi, 0), backoff(10, lo, hi, 0.99); b-a < hi/4 {
		t.Errorf("jitter range at the cap is only %v", b-a)
	}
	if d := backoff(1000, lo, hi, 0.999999); d > hi {
		t.Errorf("backoff never exceeds the cap: got %v", d)
	}
}

func TestPermanentErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&HostKeyError{Problem: HostKeyMismatch, Host: "h:22"}, true},
		{fmt.Errorf("dial: %w", &HostKeyError{Problem: HostKeyRevoked}), true},
		{&HostKeyError{Problem: HostKeyUnknown}, true},
		{&AuthError{msg: "authentication as user \"u\" failed"}, true},
		{&rootGoneError{root: "/data"}, true},
		{errors.New("connecting to h:22: connection refused"), false},
		{context.DeadlineExceeded, false},
	} {
		if got := permanent(tc.err); got != tc.want {
			t.Errorf("permanent(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// switchDialer serves dials from an in-process server, or fails them with
// the error set.
type switchDialer struct {
	mu    sync.Mutex
	err   error
	dials atomic.Int64
}

func (s *switchDialer) set(err error) { s.mu.Lock(); s.err = err; s.mu.Unlock() }

func (s *switchDialer) dial(ctx context.Context) (*psftp.Client, io.Closer, error) {
	s.dials.Add(1)
	s.mu.Lock()
	err := s.err
	s.mu.Unlock()
	if err != nil {
		return nil, nil, err
	}
	return pipeDialer()(ctx)
}

// lockedBuf collects log output from several goroutines.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSpace(l.b.String()), "\n")
}

func waitState(t *testing.T, b *Backend, want backend.State) backend.Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := b.Status()
		if st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %q, want %q (last error %q)", st.State, want, st.LastError)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReconnectFailedState: a permanent refusal (host key mismatch) puts
// the connection in StateFailed with the reason, calls fail at once with
// it, attempts slow down to FailedRetry, the log stays bounded, and fixing
// the cause brings the connection back.
func TestReconnectFailedState(t *testing.T) {
	sd := &switchDialer{}
	var logs lockedBuf
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	root := t.TempDir()
	b, err := NewWithDialer(context.Background(), sd.dial, root, Options{
		OpTimeout: 2 * time.Second, ConnectTimeout: time.Second, Logger: log,
		Reconnect: ReconnectPolicy{MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
			FailedRetry: 100 * time.Millisecond, LogEvery: 300 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	// A transient outage first: reconnecting, not failed.
	sd.set(errors.New("connecting to h:22: connection refused"))
	b.c.kill(b.c.current(), errors.New("test: cut"))
	waitState(t, b, backend.StateReconnecting)

	hk := &HostKeyError{Problem: HostKeyMismatch, Host: "h:22", KeyType: "ssh-ed25519", Fingerprint: "SHA256:new", Want: []string{"pin: ssh-ed25519 SHA256:old"}}
	sd.set(hk)
	st := waitState(t, b, backend.StateFailed)
	if !strings.Contains(st.LastError, "HOST KEY MISMATCH") {
		t.Errorf("LastError = %q, want the host key reason", st.LastError)
	}
	start := time.Now()
	_, err = b.Stat(context.Background(), ".")
	var fe *FailedError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "HOST KEY MISMATCH") {
		t.Fatalf("Stat while failed: %v, want a FailedError with the reason", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("a call on a failed connection took %v; it must fail at once", d)
	}

	// Attempts while failed: one per FailedRetry (jittered 50..100ms),
	// not per backoff (5..20ms).
	n0 := sd.dials.Load()
	time.Sleep(time.Second)
	if n := sd.dials.Load() - n0; n < 3 || n > 21 {
		t.Errorf("%d dials in 1s while failed, want about 10-20 (FailedRetry 100ms)", n)
	}
	if st := b.Status(); st.State != backend.StateFailed {
		t.Errorf("state %q after more refusals", st.State)
	}

	sd.set(nil)
	waitState(t, b, backend.StateConnected)
	if _, err := b.Stat(context.Background(), "."); err != nil {
		t.Fatalf("Stat after recovery: %v", err)
	}

	// About 1.3s of outage with dials every 5-100ms: lines only on state
	// changes and at most one per LogEvery (300ms) in between.
	lines := logs.lines()
	var failed int
	for _, l := range lines {
		if strings.Contains(l, "volume failed") {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("%d 'volume failed' lines, want 1 (one per state change)", failed)
	}
	t.Logf("%d log lines for %d dials", len(lines), sd.dials.Load())
	if dials := sd.dials.Load(); len(lines) > 16 || int64(len(lines)) >= dials {
		t.Errorf("%d log lines for %d dials; want a bounded number:\n%s", len(lines), dials, strings.Join(lines, "\n"))
	}
}

// A root directory removed on the server while the connection is down:
// the reconnect finds it gone and the connection fails with that reason
// instead of answering ENOENT for everything; recreating it heals.
func TestReconnectRootGone(t *testing.T) {
	sd := &switchDialer{}
	root := filepath.Join(t.TempDir(), "vol")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := NewWithDialer(context.Background(), sd.dial, root, Options{
		OpTimeout: 2 * time.Second, ConnectTimeout: time.Second,
		Reconnect: ReconnectPolicy{MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
			FailedRetry: 50 * time.Millisecond, LogEvery: time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := os.Remove(root); err != nil {
		t.Fatal(err)
	}
	b.c.kill(b.c.current(), errors.New("test: cut"))
	st := waitState(t, b, backend.StateFailed)
	if !strings.Contains(st.LastError, "no longer exists") || !strings.Contains(st.LastError, root) {
		t.Errorf("LastError = %q, want the vanished directory", st.LastError)
	}
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	waitState(t, b, backend.StateConnected)
}
