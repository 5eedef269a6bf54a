package fusefs_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/backend/local"
	"github.com/sftpfs/sftpfs/fusefs"
)

// hangingListBackend makes listings of paths containing "slow" hang until
// their context is cancelled (or slowListMax passes), and records any
// listing still running when the backend is closed.
type hangingListBackend struct {
	backend.Backend
	started   chan string // a slow listing began (path)
	inflight  atomic.Int64
	cancelled atomic.Int64 // slow listings that ended by cancellation
	closed    atomic.Bool
	// atClose is the number of listings running when Close was called.
	atClose atomic.Int64
}

const slowListMax = 5 * time.Second

func (b *hangingListBackend) ReadDir(ctx context.Context, name string) ([]backend.FileInfo, error) {
	if b.closed.Load() {
		b.atClose.Add(1) // started after Close: as bad as running across it
	}
	if !strings.Contains(name, "slow") {
		return b.Backend.ReadDir(ctx, name)
	}
	b.inflight.Add(1)
	defer b.inflight.Add(-1)
	select {
	case b.started <- name:
	default:
	}
	select {
	case <-ctx.Done():
		b.cancelled.Add(1)
		return nil, ctx.Err()
	case <-time.After(slowListMax):
		return b.Backend.ReadDir(ctx, name)
	}
}

func (b *hangingListBackend) Close() error {
	b.closed.Store(true)
	b.atClose.Add(b.inflight.Load())
	return b.Backend.Close()
}

// TestUnmountEndsBackgroundListings: listings the mount reads on its own
// (a speculative listing after lookups of missing names, a listing read
// ahead of a tree walk) are cancelled at unmount, and Server.Wait
// returns only once they have, so the backend is never used after it
// was closed. Before they were owned by the mount, they ran on
// context.Background and a slow one was still reading when the caller
// closed the backend.
func TestUnmountEndsBackgroundListings(t *testing.T) {
	requireMount(t)
	for _, tc := range []struct {
		name    string
		trigger func(t *testing.T, mnt string)
	}{
		{"Speculative", func(t *testing.T, mnt string) {
			// Two lookups missing in one directory list it in the
			// background (dircache.go, specMisses).
			for _, n := range []string{"x1", "x2"} {
				if _, err := os.Lstat(filepath.Join(mnt, "slowdir", n)); !os.IsNotExist(err) {
					t.Fatalf("lstat slowdir/%s: %v, want ENOENT", n, err)
				}
			}
		}},
		{"ReadAhead", func(t *testing.T, mnt string) {
			// Opening a directory whose parent was just listed reads
			// its siblings ahead.
			for _, d := range []string{mnt, filepath.Join(mnt, "a")} {
				if _, err := os.ReadDir(d); err != nil {
					t.Fatal(err)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			back := t.TempDir()
			for _, d := range []string{"a", "slowdir"} {
				if err := os.Mkdir(filepath.Join(back, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			lb, err := local.New(back)
			if err != nil {
				t.Fatal(err)
			}
			b := &hangingListBackend{Backend: lb, started: make(chan string, 1)}
			mnt := t.TempDir()
			srv, err := fusefs.Mount(mnt, b, testOptions())
			if err != nil {
				t.Fatal(err)
			}
			tc.trigger(t, mnt)
			select {
			case <-b.started:
			case <-time.After(5 * time.Second):
				_ = srv.Unmount()
				t.Fatal("no background listing of slowdir started")
			}
			start := time.Now()
			if err := srv.Unmount(); err != nil {
				t.Fatalf("unmount: %v", err)
			}
			srv.Wait()
			took := time.Since(start)
			_ = b.Close()
			if n := b.atClose.Load(); n != 0 {
				t.Errorf("%d background listings still used the backend when it was closed", n)
			}
			if b.cancelled.Load() == 0 {
				t.Errorf("the background listing was not cancelled at unmount")
			}
			if took >= slowListMax {
				t.Errorf("unmount took %v: it waited out the listing instead of cancelling it", took)
			}
		})
	}
}
