package fusefs_test

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/backend/local"
	"github.com/sftpfs/sftpfs/fusefs"
	"github.com/sftpfs/sftpfs/internal/mountinfo"
)

// gatedBackend holds every stat until gate is closed, like a server that
// stalls (or a process that is being killed) right after mount(2).
type gatedBackend struct {
	backend.Backend
	gate  chan struct{}
	stats chan struct{}
}

func (g *gatedBackend) wait() {
	select {
	case g.stats <- struct{}{}:
	default:
	}
	<-g.gate
}

func (g *gatedBackend) Stat(ctx context.Context, name string) (backend.FileInfo, error) {
	g.wait()
	return g.Backend.Stat(ctx, name)
}

func (g *gatedBackend) Lstat(ctx context.Context, name string) (backend.FileInfo, error) {
	g.wait()
	return g.Backend.Lstat(ctx, name)
}

// mountGated starts fusefs.Mount of a gated local backend in the
// background. The returned channel yields Mount's error once it returns.
// Cleanup opens the gate, waits for Mount and unmounts.
func mountGated(t *testing.T, serveOnly bool) (mnt string, g *gatedBackend, done <-chan error) {
	t.Helper()
	requireMount(t)
	b, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	g = &gatedBackend{Backend: b, gate: make(chan struct{}), stats: make(chan struct{}, 1)}
	mnt = t.TempDir()
	o := testOptions()
	o.ServeOnly = serveOnly
	res := make(chan error, 1)
	srvc := make(chan *fusefs.Server, 1)
	go func() {
		srv, err := fusefs.Mount(mnt, g, o)
		srvc <- srv
		res <- err
	}()
	t.Cleanup(func() {
		select {
		case <-g.gate:
		default:
			close(g.gate)
		}
		select {
		case srv := <-srvc:
			if srv == nil {
				return
			}
			if err := srv.Unmount(); err != nil {
				t.Errorf("unmount %s: %v", mnt, err)
				_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
			}
			srv.Wait()
		case <-time.After(10 * time.Second):
			t.Errorf("Mount of %s did not return within 10s of the storage answering", mnt)
			_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})
	return mnt, g, res
}

// TestServeOnlyMountMakesNoRequest: a serve-only mount (the plugin,
// `sftpfs mount`) returns from Mount without making a request to its own
// mount, even while the storage does not answer a stat of the root. A
// process that waited on its own mount there could not finish exiting
// when killed (the kernel waits for an answer only the dying process could
// give) and would hold the FUSE connection, and every user of it, until
// someone aborted it. The mount answers others once the storage does.
func TestServeOnlyMountMakesNoRequest(t *testing.T) {
	mnt, g, done := mountGated(t, true)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Mount: %v", err)
		}
	case <-g.stats:
		t.Fatal("a serve-only Mount asked the storage for attributes: it made a request to its own mount")
	case <-time.After(10 * time.Second):
		t.Fatal("a serve-only Mount did not return within 10s while the storage stalled")
	}
	if !mounted(t, mnt) {
		t.Fatalf("Mount returned but %s is not in the mount table", mnt)
	}
	select {
	case <-g.stats:
		t.Fatal("the storage was asked for attributes although nobody used the mount")
	case <-time.After(300 * time.Millisecond):
	}
	close(g.gate)
	// Served for others (no file descriptor is opened in this process,
	// which a serve-only process never does).
	if st, err := os.Stat(mnt); err != nil || !st.IsDir() {
		t.Fatalf("stat of the mounted root: %v, %v", st, err)
	}
}

// TestDefaultMountProbesItself is the control for the test above: a
// mount whose process does I/O on it keeps go-fuse's mount-time probe,
// which is a request to the mount (it waits for the root's attributes).
// If this ever stops holding, ServeOnly no longer changes anything.
func TestDefaultMountProbesItself(t *testing.T) {
	_, g, done := mountGated(t, false)
	select {
	case <-g.stats:
	case err := <-done:
		t.Fatalf("a default Mount returned (%v) without asking for the root's attributes: go-fuse's probe changed", err)
	case <-time.After(10 * time.Second):
		t.Fatal("a default Mount neither returned nor asked the storage within 10s")
	}
	select {
	case err := <-done:
		t.Fatalf("a default Mount returned (%v) while its probe's request was unanswered", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(g.gate)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Mount: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a default Mount did not return within 10s after the storage answered")
	}
}

// mounted reports whether mp is a mount point, from the mount table (not
// through the mount).
func mounted(t *testing.T, mp string) bool {
	t.Helper()
	ms, err := mountinfo.Read()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Mountpoint == mp {
			return true
		}
	}
	return false
}
