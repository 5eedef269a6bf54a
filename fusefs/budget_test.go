package fusefs_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sftpfs/sftpfs/backend/local"
	"github.com/sftpfs/sftpfs/fusefs"
)

// TestBufferBudgetManyStreams: many files streamed at once through one
// mount hold at most ReadAheadTotal of read-ahead and WriteBehindTotal of
// write-behind buffers together, every byte arrives, and every writer
// finishes (write-behind waits for the budget, it never gives up). The
// same streams without the bounds hold more than the bounds, which is
// what makes this test able to fail.
func TestBufferBudgetManyStreams(t *testing.T) {
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
			o := testOptions()
			o.ReadAheadTotal, o.WriteBehindTotal = 0, 0
			if bounded {
				o.ReadAheadTotal, o.WriteBehindTotal = bound, bound
			}
			srv, mnt := mountBackendServer(t, slowBackend{lb, 3 * time.Millisecond, 3 * time.Millisecond}, o)
			data := make([][]byte, streams)
			for i := range data {
				data[i] = randomBytes(size, uint64(100+i))
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
			_, raPeak, wbHeld, wbPeak := srv.BufferStats()
			t.Logf("%d streams: read-ahead buffers at most %d at once, write-behind %d", streams, raPeak, wbPeak)
			if wbHeld != 0 {
				t.Errorf("%d write-behind units still held after every file was closed", wbHeld)
			}
			// Read-ahead units are given back at the kernel's
			// asynchronous RELEASE, so they may still be held here.
			units := bound / fusefs.BufferSize
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
