package fusefs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/backend/local"
	"github.com/sftpfs/sftpfs/internal/testenv"
)

func TestMemBudget(t *testing.T) {
	b := newMemBudget(2*readChunk + readChunk/2) // two units: a part buffer is no unit
	for i := range 2 {
		if !b.tryTake() {
			t.Fatalf("tryTake %d of 2 failed below the limit", i+1)
		}
	}
	if b.tryTake() {
		t.Fatal("tryTake took a third unit of two")
	}
	took := make(chan struct{})
	go func() { b.take(); close(took) }()
	select {
	case <-took:
		t.Fatal("take did not wait for a free unit")
	case <-time.After(50 * time.Millisecond):
	}
	b.give()
	select {
	case <-took:
	case <-time.After(5 * time.Second):
		t.Fatal("take still waits after a unit was given back")
	}
	if held, peak := b.stats(); held != 2 || peak != 2 {
		t.Errorf("held %d peak %d, want 2 and 2", held, peak)
	}
	u := newMemBudget(0)
	for range 100 {
		if !u.tryTake() {
			t.Fatal("an unbounded budget refused a unit")
		}
	}
	if b := newMemBudget(1); b.limit != 1 {
		t.Errorf("a budget below one buffer has %d units, want 1", b.limit)
	}
}

// delayBackend makes every file read and write take a while, as over a
// network, so that many read-ahead chunks and write-behind writes are in
// flight at once.
type delayBackend struct {
	backend.Backend
	d time.Duration
}

func (b delayBackend) OpenFile(ctx context.Context, name string, flag int, perm fs.FileMode) (backend.File, error) {
	f, err := b.Backend.OpenFile(ctx, name, flag, perm)
	if err != nil {
		return nil, err
	}
	return delayFile{f, b.d}, nil
}

type delayFile struct {
	backend.File
	d time.Duration
}

func (f delayFile) ReadAt(p []byte, off int64) (int, error) {
	time.Sleep(f.d)
	return f.File.ReadAt(p, off)
}

func (f delayFile) WriteAt(p []byte, off int64) (int, error) {
	time.Sleep(f.d)
	return f.File.WriteAt(p, off)
}

// TestBufferBudgetManyStreams: many files streamed at once through one
// mount hold at most ReadAheadTotal of read-ahead and WriteBehindTotal of
// write-behind buffers together, every byte arrives, and every writer
// finishes (write-behind waits for the budget, it never gives up). The
// same streams without the bounds hold more than the bounds, which is
// what makes this test able to fail.
func TestBufferBudgetManyStreams(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireFUSE(t)
	const (
		streams = 8
		size    = 4<<20 + 4321
		bound   = 2 << 20
	)
	for _, bounded := range []bool{true, false} {
		t.Run(fmt.Sprintf("bounded=%v", bounded), func(t *testing.T) {
			back := t.TempDir()
			lb, err := local.New(back)
			if err != nil {
				t.Fatal(err)
			}
			o := DefaultOptions()
			o.FSName = "sftpfs-test-budget"
			o.ReadAheadTotal, o.WriteBehindTotal = 0, 0
			if bounded {
				o.ReadAheadTotal, o.WriteBehindTotal = bound, bound
			}
			mnt := t.TempDir()
			srv, err := Mount(mnt, delayBackend{lb, 3 * time.Millisecond}, o)
			if err != nil {
				t.Fatalf("Mount: %v", err)
			}
			defer func() {
				for range 50 {
					if err = srv.Unmount(); err == nil {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				if err != nil {
					t.Errorf("unmount: %v", err)
					_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
				}
				srv.Wait()
				_ = lb.Close()
			}()
			data := make([][]byte, streams)
			for i := range data {
				data[i] = make([]byte, size)
				r := rand.NewChaCha8([32]byte{byte(i), 7})
				_, _ = r.Read(data[i])
				// Files to read are put on the storage directly, so
				// that no page cache of the mount holds them.
				if err := os.WriteFile(filepath.Join(back, fmt.Sprintf("r%d", i)), data[i], 0o644); err != nil {
					t.Fatal(err)
				}
			}
			each := func(f func(i int) error) {
				t.Helper()
				errs := make([]error, streams)
				var wg sync.WaitGroup
				for i := range streams {
					wg.Go(func() { errs[i] = f(i) })
				}
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Errorf("stream %d: %v", i, err)
					}
				}
			}
			each(func(i int) error {
				f, err := os.Create(filepath.Join(mnt, fmt.Sprintf("w%d", i)))
				if err != nil {
					return err
				}
				for off := 0; off < size; off += 1 << 20 {
					if _, err := f.Write(data[i][off:min(off+1<<20, size)]); err != nil {
						f.Close()
						return err
					}
				}
				return f.Close()
			})
			each(func(i int) error {
				f, err := os.Open(filepath.Join(mnt, fmt.Sprintf("r%d", i)))
				if err != nil {
					return err
				}
				defer f.Close()
				got, err := io.ReadAll(f)
				if err != nil {
					return err
				}
				if !bytes.Equal(got, data[i]) {
					return fmt.Errorf("read %d bytes through the mount that differ from the file's %d", len(got), size)
				}
				return nil
			})
			for i := range streams {
				got, err := os.ReadFile(filepath.Join(back, fmt.Sprintf("w%d", i)))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, data[i]) {
					t.Errorf("file %d written through the mount: %d bytes on the storage that differ from the %d written", i, len(got), size)
				}
			}
			raHeld, raPeak := srv.fsys.raMem.stats()
			wbHeld, wbPeak := srv.fsys.wbMem.stats()
			t.Logf("%d streams: read-ahead buffers at most %d at once, write-behind %d", streams, raPeak, wbPeak)
			if wbHeld != 0 {
				t.Errorf("%d write-behind units still held after every file was closed", wbHeld)
			}
			_ = raHeld // released when the kernel's asynchronous RELEASE arrives
			units := bound / readChunk
			if bounded {
				if raPeak > units || wbPeak > units {
					t.Errorf("read-ahead held up to %d and write-behind up to %d buffers, want at most %d each", raPeak, wbPeak, units)
				}
				if raPeak == 0 || wbPeak == 0 {
					t.Errorf("read-ahead held up to %d and write-behind up to %d buffers: the streams never used them", raPeak, wbPeak)
				}
			} else if raPeak <= units || wbPeak <= units {
				t.Errorf("without bounds read-ahead held up to %d and write-behind up to %d buffers: the workload does not reach %d, so the bounded run proves nothing", raPeak, wbPeak, units)
			}
		})
	}
}
