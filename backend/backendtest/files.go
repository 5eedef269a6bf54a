package backendtest

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"sync"
	"syscall"
	"testing"

	"github.com/sftpfs/sftpfs/backend"
)

func testDirs(t *testing.T, b backend.Backend) {
	ctx := t.Context()
	wantNames(t, b, ".")
	must(t, "mkdir a", b.Mkdir(ctx, "a", 0o755))
	must(t, "mkdir a/b", b.Mkdir(ctx, "a/b", 0o755))
	must(t, "mkdir a/b/c", b.Mkdir(ctx, "a/b/c", 0o755))
	writeFile(t, b, "a/file", []byte("12345"))
	infos, err := b.ReadDir(ctx, ".")
	must(t, "readdir .", err)
	if len(infos) != 1 || infos[0].Name != "a" || !infos[0].IsDir() {
		t.Errorf("ReadDir(.) = %+v; want one directory a", infos)
	}
	infos, err = b.ReadDir(ctx, "a")
	must(t, "readdir a", err)
	for _, fi := range infos {
		switch fi.Name {
		case "b":
			if !fi.IsDir() {
				t.Errorf("a/b listed with mode %v; want a directory", fi.Mode)
			}
		case "file":
			if !fi.Mode.IsRegular() || fi.Size != 5 {
				t.Errorf("a/file listed with mode %v size %d; want a regular file of 5 bytes", fi.Mode, fi.Size)
			}
		default:
			t.Errorf("ReadDir(a) has unexpected entry %q", fi.Name)
		}
	}
	if len(infos) != 2 {
		t.Errorf("ReadDir(a) has %d entries; want 2", len(infos))
	}
	fi, err := b.Stat(ctx, "a/b/c")
	if err != nil || !fi.IsDir() || fi.Name != "c" {
		t.Errorf("Stat(a/b/c) = %+v, %v; want directory named c", fi, err)
	}
	fi, err = b.Stat(ctx, ".")
	if err != nil || !fi.IsDir() {
		t.Errorf("Stat(.) = %+v, %v; want a directory", fi, err)
	}
	wantErr(t, "Rmdir(a) with children", b.Rmdir(ctx, "a"), syscall.ENOTEMPTY)
	must(t, "rmdir a/b/c", b.Rmdir(ctx, "a/b/c"))
	must(t, "rmdir a/b", b.Rmdir(ctx, "a/b"))
	must(t, "remove a/file", b.Remove(ctx, "a/file"))
	wantNames(t, b, "a")
	must(t, "rmdir a", b.Rmdir(ctx, "a"))
	wantNames(t, b, ".")
	wantNotExist(t, b, "a")
}

func testReadWriteAt(t *testing.T, b backend.Backend) {
	ctx := t.Context()
	seed := seedFor(t)
	rng := rand.New(rand.NewPCG(seed, seed))
	f, err := b.OpenFile(ctx, "f", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	must(t, "create f", err)
	defer f.Close()
	var model []byte
	const maxOff = 256 << 10
	for i := 0; i < 40; i++ {
		off := rng.IntN(maxOff)
		data := make([]byte, 1+rng.IntN(8<<10))
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		n, err := f.WriteAt(data, int64(off))
		if err != nil || n != len(data) {
			t.Fatalf("WriteAt(%d bytes at %d) = %d, %v", len(data), off, n, err)
		}
		if end := off + len(data); end > len(model) {
			model = append(model, make([]byte, end-len(model))...)
		}
		copy(model[off:], data)
	}
	fi, err := f.Stat()
	must(t, "stat f", err)
	if fi.Size != int64(len(model)) {
		t.Fatalf("size after writes = %d; want %d", fi.Size, len(model))
	}
	for i := 0; i < 40; i++ {
		off := rng.IntN(len(model))
		buf := make([]byte, 1+rng.IntN(16<<10))
		n, err := f.ReadAt(buf, int64(off))
		want := model[off:min(off+len(buf), len(model))]
		if n != len(want) || !bytes.Equal(buf[:n], want) {
			t.Fatalf("ReadAt(%d bytes at %d) = %d bytes (want %d), content equal=%v", len(buf), off, n, len(want), bytes.Equal(buf[:n], want))
		}
		if n < len(buf) && err != io.EOF {
			t.Fatalf("short ReadAt at end of file returned %v; want io.EOF", err)
		}
		if n == len(buf) && err != nil && err != io.EOF {
			t.Fatalf("full ReadAt returned %v", err)
		}
	}
	// A write far past the end leaves a hole of zeros.
	holeAt := int64(len(model)) + 100000
	if _, err := f.WriteAt([]byte("tail"), holeAt); err != nil {
		t.Fatal(err)
	}
	model = append(model, make([]byte, int(holeAt)-len(model))...)
	model = append(model, "tail"...)
	must(t, "close f", f.Close())
	wantContent(t, b, "f", model)
}

func testReadPastEOF(t *testing.T, b backend.Backend) {
	writeFile(t, b, "f", []byte("0123456789"))
	f, err := b.OpenFile(t.Context(), "f", os.O_RDONLY, 0)
	must(t, "open f", err)
	defer f.Close()
	buf := make([]byte, 5)
	for _, off := range []int64{10, 20, 1 << 30} {
		n, err := f.ReadAt(buf, off)
		if n != 0 || err != io.EOF {
			t.Errorf("ReadAt(5 bytes at %d) of a 10-byte file = %d, %v; want 0, io.EOF", off, n, err)
		}
	}
	buf = make([]byte, 10)
	n, err := f.ReadAt(buf, 5)
	if n != 5 || err != io.EOF || string(buf[:n]) != "56789" {
		t.Errorf("ReadAt(10 bytes at 5) = %d %q, %v; want 5 \"56789\", io.EOF", n, buf[:n], err)
	}
	n, err = f.ReadAt(buf, 0)
	if n != 10 || (err != nil && err != io.EOF) || string(buf) != "0123456789" {
		t.Errorf("ReadAt(10 bytes at 0) = %d %q, %v; want the whole file", n, buf[:n], err)
	}
}

func testTruncate(t *testing.T, b backend.Backend) {
	ctx := t.Context()
	writeFile(t, b, "f", []byte("0123456789"))
	f, err := b.OpenFile(ctx, "f", os.O_RDWR, 0)
	must(t, "open f", err)
	must(t, "File.Truncate(100)", f.Truncate(100))
	fi, err := f.Stat()
	if err != nil || fi.Size != 100 {
		t.Errorf("size after File.Truncate(100) = %d, %v", fi.Size, err)
	}
	must(t, "File.Truncate(4)", f.Truncate(4))
	must(t, "close f", f.Close())
	wantContent(t, b, "f", []byte("0123"))
	// Growing again must give zeros, not the old bytes.
	must(t, "Truncate(f, 8)", b.Truncate(ctx, "f", 8))
	wantContent(t, b, "f", []byte("0123\x00\x00\x00\x00"))
	must(t, "Truncate(f, 2)", b.Truncate(ctx, "f", 2))
	fi, err = b.Stat(ctx, "f")
	if err != nil || fi.Size != 2 {
		t.Errorf("Stat size after Truncate(f, 2) = %d, %v", fi.Size, err)
	}
	wantContent(t, b, "f", []byte("01"))
	must(t, "Truncate(f, 0)", b.Truncate(ctx, "f", 0))
	wantContent(t, b, "f", nil)
}

func testOpenFlags(t *testing.T, b backend.Backend) {
	ctx := t.Context()
	writeFile(t, b, "f", []byte("original"))

	// O_CREATE without O_EXCL on an existing file keeps the content.
	f, err := b.OpenFile(ctx, "f", os.O_RDWR|os.O_CREATE, 0o600)
	must(t, "open f O_CREATE", err)
	must(t, "close", f.Close())
	wantContent(t, b, "f", []byte("original"))

	// O_TRUNC truncates.
	f, err = b.OpenFile(ctx, "f", os.O_WRONLY|os.O_TRUNC, 0)
	must(t, "open f O_TRUNC", err)
	must(t, "close", f.Close())
	wantContent(t, b, "f", nil)

	writeFile(t, b, "f", []byte("data"))
	// Read-only handles refuse writes.
	f, err = b.OpenFile(ctx, "f", os.O_RDONLY, 0)
	must(t, "open f O_RDONLY", err)
	if n, err := f.WriteAt([]byte("x"), 0); err == nil {
		t.Errorf("WriteAt on an O_RDONLY file = %d, nil; want an error", n)
	}
	f.Close()
	// Write-only handles refuse reads.
	f, err = b.OpenFile(ctx, "f", os.O_WRONLY, 0)
	must(t, "open f O_WRONLY", err)
	if n, err := f.ReadAt(make([]byte, 4), 0); err == nil {
		t.Errorf("ReadAt on an O_WRONLY file = %d, nil; want an error", n)
	}
	f.Close()
	wantContent(t, b, "f", []byte("data"))

	// O_CREATE|O_EXCL creates a new, empty file.
	f, err = b.OpenFile(ctx, "new", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	must(t, "create new", err)
	fi, err := f.Stat()
	if err != nil || fi.Size != 0 || !fi.Mode.IsRegular() {
		t.Errorf("new file stat = %+v, %v; want empty regular file", fi, err)
	}
	must(t, "close", f.Close())
}

func testFileStatAndSync(t *testing.T, b backend.Backend) {
	f, err := b.OpenFile(t.Context(), "f", os.O_RDWR|os.O_CREATE, 0o644)
	must(t, "create f", err)
	defer f.Close()
	if _, err := f.WriteAt([]byte("hello"), 0); err != nil {
		t.Fatal(err)
	}
	must(t, "Sync", f.Sync())
	fi, err := f.Stat()
	if err != nil || fi.Size != 5 || fi.Name != "f" || !fi.Mode.IsRegular() {
		t.Errorf("File.Stat = %+v, %v; want regular file f of 5 bytes", fi, err)
	}
	// Another handle sees the data after Sync.
	wantContent(t, b, "f", []byte("hello"))
}

func testConcurrentWritesOneFile(t *testing.T, b backend.Backend) {
	f, err := b.OpenFile(t.Context(), "f", os.O_RDWR|os.O_CREATE, 0o644)
	must(t, "create f", err)
	defer f.Close()
	want := concurrentWrites(t, func(int) (backend.File, func()) { return f, func() {} })
	must(t, "close", f.Close())
	wantContent(t, b, "f", want)
}

func testConcurrentWritesSeparateFiles(t *testing.T, b backend.Backend) {
	writeFile(t, b, "f", nil)
	want := concurrentWrites(t, func(w int) (backend.File, func()) {
		f, err := b.OpenFile(t.Context(), "f", os.O_RDWR, 0)
		if err != nil {
			t.Errorf("writer %d: open: %v", w, err)
			return nil, func() {}
		}
		return f, func() {
			if err := f.Close(); err != nil {
				t.Errorf("writer %d: close: %v", w, err)
			}
		}
	})
	wantContent(t, b, "f", want)
}

// concurrentWrites has 8 goroutines write disjoint 64 KiB ranges in 4 KiB
// pieces (in an interleaved order) and returns the expected content.
func concurrentWrites(t *testing.T, open func(w int) (backend.File, func())) []byte {
	const writers, span, piece = 8, 64 << 10, 4 << 10
	want := make([]byte, writers*span)
	for i := range want {
		want[i] = byte(i/piece) ^ byte(i)
	}
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, done := open(w)
			defer done()
			if f == nil {
				return
			}
			// Write the pieces back to front so that writers overlap in
			// time and extend the file out of order.
			for p := span/piece - 1; p >= 0; p-- {
				off := w*span + p*piece
				if n, err := f.WriteAt(want[off:off+piece], int64(off)); err != nil || n != piece {
					t.Errorf("writer %d: WriteAt(%d) = %d, %v", w, off, n, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return want
}

func testCloseFile(t *testing.T, b backend.Backend) {
	f, err := b.OpenFile(t.Context(), "f", os.O_RDWR|os.O_CREATE, 0o644)
	must(t, "create f", err)
	if _, err := f.WriteAt([]byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	must(t, "first Close", f.Close())
	wantErr(t, "second Close", f.Close(), fs.ErrClosed)
	wantContent(t, b, "f", []byte("x"))
}

func testCloseBackend(t *testing.T, b backend.Backend) {
	f, err := b.OpenFile(t.Context(), "f", os.O_RDWR|os.O_CREATE, 0o644)
	must(t, "create f", err)
	must(t, "first Backend.Close", b.Close())
	if err := b.Close(); err != nil {
		t.Errorf("second Backend.Close = %v; want nil", err)
	}
	if _, err := f.WriteAt([]byte("x"), 0); err == nil {
		t.Errorf("WriteAt on a File of a closed backend succeeded; want an error")
	}
	f.Close()
	if _, err := b.Stat(t.Context(), "f"); err == nil {
		t.Errorf("Stat on a closed backend succeeded; want an error")
	}
}

// contentFor is the content of entry i of the large-directory case, so
// that names and sizes can be checked exactly.
func contentFor(i int) []byte {
	return bytes.Repeat([]byte{byte('a' + i%26)}, i%7)
}

func testReadDirLarge(t *testing.T, b backend.Backend) {
	ctx := t.Context()
	const n = 5001
	must(t, "mkdir big", b.Mkdir(ctx, "big", 0o755))
	jobs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				err := createNumbered(b, t, i)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	must(t, "creating the entries", firstErr)
	infos, err := b.ReadDir(ctx, "big")
	must(t, "readdir big", err)
	if len(infos) != n {
		t.Fatalf("ReadDir returned %d entries; want %d", len(infos), n)
	}
	seen := make(map[string]bool, n)
	for _, fi := range infos {
		var i int
		if _, err := fmt.Sscanf(fi.Name, "entry-%05d", &i); err != nil || fmt.Sprintf("entry-%05d", i) != fi.Name {
			t.Fatalf("unexpected entry %q", fi.Name)
		}
		if seen[fi.Name] {
			t.Fatalf("entry %q listed twice", fi.Name)
		}
		seen[fi.Name] = true
		if fi.Size != int64(len(contentFor(i))) || !fi.Mode.IsRegular() {
			t.Fatalf("entry %q: size %d mode %v; want regular file of %d bytes", fi.Name, fi.Size, fi.Mode, len(contentFor(i)))
		}
	}
}

func createNumbered(b backend.Backend, t *testing.T, i int) error {
	name := fmt.Sprintf("big/entry-%05d", i)
	f, err := b.OpenFile(t.Context(), name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if data := contentFor(i); len(data) > 0 {
		if _, err := f.WriteAt(data, 0); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
