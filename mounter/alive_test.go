package mounter

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/backend/local"
	"github.com/sftpfs/sftpfs/internal/testenv"
	"github.com/sftpfs/sftpfs/options"
)

// probeKey marks the contexts of the test's own liveness probes, so the
// gated backend can tell them from requests that come through FUSE.
type probeKey struct{}

// gatedBackend blocks every call that does not carry probeKey while the
// gate is closed (a wedged filesystem, as seen through the mount), and
// blocks the probes too while probesBlocked is set (a dead server).
type gatedBackend struct {
	backend.Backend
	mu            sync.Mutex
	gate          chan struct{} // closed: open
	probesBlocked bool
}

func (g *gatedBackend) wait(ctx context.Context) error {
	g.mu.Lock()
	gate, probe := g.gate, ctx.Value(probeKey{}) != nil
	blocked := !probe || g.probesBlocked
	g.mu.Unlock()
	if !blocked {
		return nil
	}
	select {
	case <-gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gatedBackend) Stat(ctx context.Context, n string) (backend.FileInfo, error) {
	if err := g.wait(ctx); err != nil {
		return backend.FileInfo{}, err
	}
	return g.Backend.Stat(ctx, n)
}

func (g *gatedBackend) Lstat(ctx context.Context, n string) (backend.FileInfo, error) {
	if err := g.wait(ctx); err != nil {
		return backend.FileInfo{}, err
	}
	return g.Backend.Lstat(ctx, n)
}

func (g *gatedBackend) StatFS(ctx context.Context, n string) (backend.StatFS, error) {
	if err := g.wait(ctx); err != nil {
		return backend.StatFS{}, err
	}
	return g.Backend.StatFS(ctx, n)
}

func (g *gatedBackend) close(open bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if open {
		select {
		case <-g.gate:
		default:
			close(g.gate)
		}
		return
	}
	select {
	case <-g.gate:
		g.gate = make(chan struct{})
	default:
	}
}

// mountGated mounts a local directory through a gatedBackend (open).
func mountGated(t *testing.T) (*Mounted, *gatedBackend, string) {
	t.Helper()
	testenv.RequireFUSE(t)
	src, mp := t.TempDir(), t.TempDir()
	cfg, err := options.Parse(map[string]string{"local": src}, options.Env{Scope: options.ScopeCLI})
	if err != nil {
		t.Fatal(err)
	}
	lb, err := local.New(src)
	if err != nil {
		t.Fatal(err)
	}
	g := &gatedBackend{Backend: lb, gate: make(chan struct{})}
	close(g.gate)
	m, err := mountBackend(cfg, g, mp, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.close(true)
		if err := m.Unmount(); err != nil {
			t.Errorf("cleanup unmount: %v", err)
		}
		if mounted(t, mp) {
			t.Errorf("%s still mounted", mp)
			_ = unix.Unmount(mp, unix.MNT_DETACH)
		}
	})
	return m, g, mp
}

func probe(t *testing.T, m *Mounted) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), probeKey{}, true), 2*time.Second)
	defer cancel()
	start := time.Now()
	err := m.Alive(ctx)
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("Alive took %v with a 2s deadline", d)
	}
	return err
}

// TestAliveDoesNotUseTheMount wedges every request that comes through the
// FUSE mount (a stuck filesystem) while the storage still answers: Alive
// must still succeed, which it can only do if it never makes a system
// call on its own mountpoint. The old statfs-based probe timed out here,
// and in a SIGKILLed plugin such a call left the process a zombie.
func TestAliveDoesNotUseTheMount(t *testing.T) {
	m, g, mp := mountGated(t)
	if err := probe(t, m); err != nil {
		t.Fatalf("Alive on a healthy mount: %v", err)
	}
	g.close(false)
	// Prove the mount is wedged for real: a statfs through it blocks (in
	// a goroutine; the gate is opened in cleanup, which releases it).
	res := make(chan error, 1)
	go func() { var st unix.Statfs_t; res <- unix.Statfs(mp, &st) }()
	select {
	case err := <-res:
		t.Fatalf("statfs through the wedged mount returned (%v); the gate does not work", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := probe(t, m); err != nil {
		t.Errorf("Alive while only the mount path is wedged: %v", err)
	}
	g.close(true)
	if err := <-res; err != nil {
		t.Errorf("statfs after opening the gate: %v", err)
	}
}

// TestAliveStorageDead: the storage stops answering; Alive must fail
// within its deadline, saying so.
func TestAliveStorageDead(t *testing.T) {
	m, g, _ := mountGated(t)
	g.mu.Lock()
	g.probesBlocked = true
	g.mu.Unlock()
	g.close(false)
	err := probe(t, m)
	if err == nil || !strings.Contains(err.Error(), "storage does not answer") {
		t.Errorf("Alive with dead storage: %v", err)
	}
}

// TestAliveDetachedWhileBusy: someone detaches the mount (umount -l)
// while a file is open, so the FUSE server keeps running and the storage
// answers, but nothing reaches the filesystem through the mountpoint any
// more: the mount table check must notice.
func TestAliveDetachedWhileBusy(t *testing.T) {
	m, _, mp := mountGated(t)
	f, err := os.Create(filepath.Join(mp, "busy"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.Done():
		t.Fatal("session ended while a file was still open")
	default:
	}
	err = probe(t, m)
	if err == nil || !strings.Contains(err.Error(), "no longer mounted") {
		t.Errorf("Alive after a lazy detach: %v", err)
	}
	f.Close()
	select {
	case <-m.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("session did not end after the last file was closed")
	}
}
