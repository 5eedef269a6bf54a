package sftp

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/internal/faultproxy"
)

// watchdogSetup is faultSetup with keepalives too slow to matter, so that
// only op_timeout (1s) can notice a stalled server.
func watchdogSetup(t *testing.T) (*faultproxy.Proxy, *Backend) {
	t.Helper()
	srv, px, _, _ := faultSetup(t)
	cfg := sshdConfig(srv, t.TempDir())
	cfg.Port = px.Port()
	cfg.KnownHostsFiles = nil
	cfg.HostKeys = []string{srv.HostKeyLine}
	cfg.OpTimeout = time.Second
	cfg.ConnectTimeout = 2 * time.Second
	cfg.KeepaliveInterval = time.Hour
	b, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return px, b
}

func waitRecovered(t *testing.T, b *Backend) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := b.Stat(context.Background(), "."); err == nil {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("backend did not recover after the stall ended: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestOpTimeoutWatchdog checks the per-connection watchdog that bounds
// every call by op_timeout: calls on the caller's goroutine (contexts
// without cancellation, as the mount passes), calls with a cancellable
// context, and concurrent calls all fail about op_timeout after a stall,
// the connection is replaced, and a long run of quick calls (longer in
// total than op_timeout) is never cut.
func TestOpTimeoutWatchdog(t *testing.T) {
	px, b := watchdogSetup(t)

	// Calls in a row for 2.5 op_timeouts: no spurious timeout.
	for end := time.Now().Add(2500 * time.Millisecond); time.Now().Before(end); {
		if _, err := b.Stat(context.Background(), "."); err != nil {
			t.Fatalf("Stat on a healthy connection: %v", err)
		}
	}
	if st := b.Status(); st.Reconnects != 0 || st.State != backend.StateConnected {
		t.Fatalf("after quick calls: Status = %+v; want connected without reconnects", st)
	}

	cancellable, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
	}{
		{"inline", context.Background()},
		{"cancellable", cancellable},
	} {
		px.SetStall(true)
		start := time.Now()
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = b.Stat(tc.ctx, ".")
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		for i, err := range errs {
			if err == nil {
				t.Fatalf("%s: call %d through a stalled connection succeeded", tc.name, i)
			}
			if !strings.Contains(err.Error(), "op_timeout") {
				t.Errorf("%s: call %d: error %q does not name op_timeout", tc.name, i, err)
			}
		}
		if elapsed < 900*time.Millisecond || elapsed > 2500*time.Millisecond {
			t.Errorf("%s: stalled calls failed after %v; want about op_timeout (1s)", tc.name, elapsed)
		}
		if st := b.Status(); st.State != backend.StateReconnecting || !strings.Contains(st.LastError, "op_timeout") {
			t.Errorf("%s: Status while stalled = %+v; want reconnecting after op_timeout", tc.name, st)
		}
		px.SetStall(false)
		waitRecovered(t, b)
	}

	// A caller whose context ends first leaves at once; the watchdog still
	// replaces the stalled connection.
	px.SetStall(true)
	ctx, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	start := time.Now()
	_, err := b.Stat(ctx, ".")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 700*time.Millisecond {
		t.Errorf("Stat with a 200ms context: %v after %v; want DeadlineExceeded at once", err, time.Since(start))
	}
	deadline := time.Now().Add(3 * time.Second)
	for b.Status().State == backend.StateConnected {
		if time.Now().After(deadline) {
			t.Fatal("the watchdog did not kill the connection of an abandoned stalled call")
		}
		time.Sleep(20 * time.Millisecond)
	}
	px.SetStall(false)
	waitRecovered(t, b)
}

// TestWatchdogNotWokenPerCall: calls made one at a time (as random reads
// and file creations through a mount make them) must not wake the
// watchdog goroutine each: its timer, armed by the first call, covers
// the later ones (a wake-up is a goroutine switch and often a thread
// wake-up per call). A call that stalls after such a run must still fail
// within about op_timeout.
func TestWatchdogNotWokenPerCall(t *testing.T) {
	px, b := watchdogSetup(t)
	ctx := context.Background()
	if _, err := b.Stat(ctx, "."); err != nil {
		t.Fatal(err)
	}
	tr := b.c.current()
	if tr == nil {
		t.Fatal("no live transport after a successful call")
	}
	before := tr.wakes.Load()
	const n = 200
	for range n {
		if _, err := b.Stat(ctx, "."); err != nil {
			t.Fatalf("Stat: %v", err)
		}
	}
	if w := tr.wakes.Load() - before; w > 5 {
		t.Errorf("%d sequential calls woke the watchdog %d times, want at most 5", n, w)
	}
	px.SetStall(true)
	start := time.Now()
	_, err := b.Stat(ctx, ".")
	took := time.Since(start)
	px.SetStall(false)
	if err == nil || took > 3*time.Second {
		t.Errorf("stalled call after a run of quick ones: err %v after %v, want an error within ~1s (op_timeout)", err, took)
	}
	waitRecovered(t, b)
}
