package fusefs_test

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/backend/local"
)

// slowBackend delays every file read and write like a network round
// trip, so that read-ahead chunks and write-behind writes are really in
// flight while the tests look at the file.
type slowBackend struct {
	backend.Backend
	delay, writeDelay time.Duration
}

func (s slowBackend) OpenFile(ctx context.Context, name string, flag int, perm fs.FileMode) (backend.File, error) {
	f, err := s.Backend.OpenFile(ctx, name, flag, perm)
	if err != nil {
		return nil, err
	}
	return slowFile{f, s.delay, s.writeDelay}, nil
}

type slowFile struct {
	backend.File
	delay, writeDelay time.Duration
}

func (f slowFile) ReadAt(p []byte, off int64) (int, error) {
	time.Sleep(f.delay)
	return f.File.ReadAt(p, off)
}

func (f slowFile) WriteAt(p []byte, off int64) (int, error) {
	time.Sleep(f.writeDelay)
	return f.File.WriteAt(p, off)
}

func mountSlow(t *testing.T, delay, writeDelay time.Duration) (mnt, back string) {
	t.Helper()
	requireMount(t)
	back = t.TempDir()
	lb, err := local.New(back)
	if err != nil {
		t.Fatal(err)
	}
	return mountBackend(t, slowBackend{lb, delay, writeDelay}, testOptions()), back
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed)})
	_, _ = r.Read(b)
	return b
}

// TestReadAheadContent reads a file larger than the read-ahead window
// sequentially with several buffer sizes, with a seek back in the middle,
// and at random offsets, and compares every byte.
func TestReadAheadContent(t *testing.T) {
	mnt, back := mountSlow(t, 2*time.Millisecond, 2*time.Millisecond)
	want := randomBytes(9<<20+12345, 1) // not a multiple of the chunk size
	if err := os.WriteFile(filepath.Join(back, "big"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, bs := range []int{4096, 128 << 10, 1 << 20, 3<<20 + 7} {
		f, err := os.Open(filepath.Join(mnt, "big"))
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		buf := make([]byte, bs)
		for {
			n, err := f.Read(buf)
			got.Write(buf[:n])
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("read with %d-byte buffer: %v", bs, err)
			}
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("sequential read with %d-byte buffer: content differs (%d bytes, want %d)", bs, got.Len(), len(want))
		}
		// Back to the middle of the file, then random offsets.
		p := make([]byte, 70000)
		for _, off := range []int64{5 << 20, 17, int64(len(want)) - 1000, 8<<20 + 1} {
			n, err := f.ReadAt(p, off)
			if err != nil && err != io.EOF {
				t.Fatalf("pread at %d: %v", off, err)
			}
			if !bytes.Equal(p[:n], want[off:min(int(off)+len(p), len(want))]) {
				t.Fatalf("pread at %d: content differs", off)
			}
		}
		f.Close()
	}
}

// TestReadAheadSeesWrites: a sequential reader must see data written
// through another descriptor after the write returned, even though its
// read-ahead fetched that range before.
func TestReadAheadSeesWrites(t *testing.T) {
	mnt, back := mountSlow(t, 30*time.Millisecond, 0)
	data := randomBytes(4<<20, 2)
	if err := os.WriteFile(filepath.Join(back, "f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	// O_DIRECT-like behaviour is not needed: the kernel page cache is
	// dropped for this file by writes through the mount.
	r, err := os.Open(filepath.Join(mnt, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 128<<10)
	for i := 0; i < 3; i++ { // become sequential; the window is now ahead
		if _, err := io.ReadFull(r, buf); err != nil {
			t.Fatal(err)
		}
	}
	w, err := os.OpenFile(filepath.Join(mnt, "f"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	patch := bytes.Repeat([]byte("W"), 256<<10)
	if _, err := w.WriteAt(patch, 1<<20); err != nil {
		t.Fatal(err)
	}
	// Read the patched range sequentially through the reader: its
	// window covered it before the write.
	got := make([]byte, len(patch))
	if _, err := r.ReadAt(got, 1<<20); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, patch) {
		t.Fatal("reader saw data older than a completed write")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestWriteBehindContent writes sequentially, overlapping and
// out of order, checks size and content through the mount before close
// (the writes may still be in flight) and on the storage after close.
func TestWriteBehindContent(t *testing.T) {
	// Writes take long enough that the checks below run while some are
	// still in flight.
	mnt, back := mountSlow(t, 0, 50*time.Millisecond)
	name := filepath.Join(mnt, "out")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	want := randomBytes(6<<20+333, 3)
	for off := 0; off < len(want); off += 1 << 20 {
		if _, err := f.Write(want[off:min(off+1<<20, len(want))]); err != nil {
			t.Fatal(err)
		}
	}
	// Overlapping rewrites in quick succession: the last must win.
	for i, c := range []byte("ABCDEFGH") {
		p := bytes.Repeat([]byte{c}, 100000)
		off := int64(2<<20 + i*1000)
		if _, err := f.WriteAt(p, off); err != nil {
			t.Fatal(err)
		}
		copy(want[off:], p)
	}
	// The last rewrite is still in flight: read its range through
	// another descriptor first, with O_DIRECT so that the kernel's page
	// cache (which holds the written pages) cannot answer for us.
	r, err := os.OpenFile(name, os.O_RDONLY|syscall.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	last := make([]byte, 100000)
	if _, err := r.ReadAt(last, 2<<20+7000); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if !bytes.Equal(last, bytes.Repeat([]byte("H"), len(last))) {
		t.Error("a read right after write(2) returned did not see the write")
	}
	st, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != int64(len(want)) {
		t.Errorf("size before close: %d, want %d", st.Size(), len(want))
	}
	got, err := os.ReadFile(name) // another descriptor, before close
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("content read through the mount before close differs")
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	got, err = os.ReadFile(filepath.Join(back, "out"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("content on the storage after close differs")
	}
}

// TestParallelReadersWriters runs readers and writers on different files
// at once under the race detector.
func TestParallelReadersWriters(t *testing.T) {
	mnt, back := mountSlow(t, 2*time.Millisecond, 2*time.Millisecond)
	src := randomBytes(3<<20, 4)
	if err := os.WriteFile(filepath.Join(back, "src"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 4; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			got, err := os.ReadFile(filepath.Join(mnt, "src"))
			if err == nil && !bytes.Equal(got, src) {
				err = io.ErrUnexpectedEOF
			}
			if err != nil {
				errs <- err
			}
		}()
		go func() {
			defer wg.Done()
			name := filepath.Join(mnt, "dst"+string(rune('0'+i)))
			if err := os.WriteFile(name, src, 0o644); err != nil {
				errs <- err
				return
			}
			got, err := os.ReadFile(name)
			if err == nil && !bytes.Equal(got, src) {
				err = io.ErrShortWrite
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// syncCounter counts File.Sync calls and claims WritesAcked.
type syncCounter struct {
	backend.Backend
	syncs *atomic.Int32
}

func (s syncCounter) Capabilities() backend.Capabilities {
	c := s.Backend.Capabilities()
	c.WritesAcked = true
	return c
}

func (s syncCounter) OpenFile(ctx context.Context, name string, flag int, perm fs.FileMode) (backend.File, error) {
	f, err := s.Backend.OpenFile(ctx, name, flag, perm)
	if err != nil {
		return nil, err
	}
	return syncCountFile{f, s.syncs}, nil
}

type syncCountFile struct {
	backend.File
	syncs *atomic.Int32
}

func (f syncCountFile) Sync() error {
	f.syncs.Add(1)
	return f.File.Sync()
}

// TestCloseWithoutSyncWhenWritesAcked: with a backend whose writes are
// acknowledged, close(2) of a written file does not call Sync (a round
// trip per file over SFTP), the data is on the storage after close, and
// fsync(2) still calls Sync.
func TestCloseWithoutSyncWhenWritesAcked(t *testing.T) {
	requireMount(t)
	back := t.TempDir()
	lb, err := local.New(back)
	if err != nil {
		t.Fatal(err)
	}
	var syncs atomic.Int32
	mnt := mountBackend(t, syncCounter{lb, &syncs}, testOptions())
	if err := os.WriteFile(filepath.Join(mnt, "a"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n := syncs.Load(); n != 0 {
		t.Errorf("close of a written file called Sync %d times, want 0", n)
	}
	if got, err := os.ReadFile(filepath.Join(back, "a")); err != nil || string(got) != "data" {
		t.Errorf("storage after close: %q, %v", got, err)
	}
	f, err := os.OpenFile(filepath.Join(mnt, "a"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("more")); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := syncs.Load(); n != 1 {
		t.Errorf("fsync called Sync %d times in total, want 1", n)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
