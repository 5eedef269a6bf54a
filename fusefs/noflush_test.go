package fusefs_test

import (
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
)

// TestReadOnlyCloseSendsNoFlush: close(2) of a descriptor opened for
// reading costs no FUSE request (FOPEN_NOFLUSH), while closing one
// opened for writing still sends FLUSH, the request that carries a
// deferred write error back to close(2). Counted in go-fuse's request
// trace.
func TestReadOnlyCloseSendsNoFlush(t *testing.T) {
	var log logBuffer
	o := testOptions()
	o.Debug = true
	o.Logger = log.logger()
	mnt, back := mountLocal(t, o)
	for _, name := range []string{"r", "w"} {
		if err := os.WriteFile(filepath.Join(back, name), []byte("data\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	flushes := regexp.MustCompile(`rx \d+: FLUSH `)
	count := func() int { return len(flushes.FindAllString(log.String(), -1)) }

	before := count()
	for range 3 {
		if b, err := os.ReadFile(filepath.Join(mnt, "r")); err != nil || string(b) != "data\n" {
			t.Fatalf("read: %q, %v", b, err)
		}
	}
	f, err := os.Open(filepath.Join(mnt, "r"))
	if err != nil {
		t.Fatal(err)
	}
	dup, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Close(dup); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if n := count() - before; n != 0 {
		t.Errorf("%d FLUSH requests for closes of read-only descriptors, want 0", n)
	}

	before = count()
	if err := os.WriteFile(filepath.Join(mnt, "w"), []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rw, err := os.OpenFile(filepath.Join(mnt, "r"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	if n := count() - before; n < 2 {
		t.Errorf("%d FLUSH requests for two closes of writable descriptors, want at least 2", n)
	}
	if b, err := os.ReadFile(filepath.Join(back, "w")); err != nil || string(b) != "new\n" {
		t.Errorf("written file on the backend: %q, %v", b, err)
	}
}
