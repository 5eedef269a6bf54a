package fusefs_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/hanwen/go-fuse/v2/splice"
)

// TestReadRepliesWithoutSplice: READ replies carry data that is already
// in memory, so they must go to the kernel with one writev(2). go-fuse
// attempts splice(2) for some kinds of read results, which for in-memory
// data writes the header into a pipe, gives up and drains it again: two
// wasted system calls per READ (2.8% of the mount's CPU in a profile of
// 4 KiB random reads). Such an attempt takes a pipe pair from go-fuse's
// pool, which creates pairs on first use, so no pair may ever exist.
func TestReadRepliesWithoutSplice(t *testing.T) {
	mnt, back := mountLocal(t, testOptions())
	small := bytes.Repeat([]byte("0123456789abcdef"), 256)   // 4 KiB
	big := bytes.Repeat([]byte("fedcba9876543210"), 64*1024) // 1 MiB: read-ahead
	for name, data := range map[string][]byte{"small": small, "big": big} {
		if err := os.WriteFile(filepath.Join(back, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(mnt, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%s: read %d bytes through the mount, not the %d written", name, len(got), len(data))
		}
	}
	f, err := os.Open(filepath.Join(mnt, "big"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for _, off := range []int64{512 << 10, 4096, 900 << 10} {
		if _, err := f.ReadAt(buf, off); err != nil || !bytes.Equal(buf, big[off:off+4096]) {
			t.Fatalf("pread at %d: %v or wrong data", off, err)
		}
	}
	if n := splice.Total(); n != 0 {
		t.Errorf("go-fuse created %d splice pipe pairs for READ replies, want none (replies must go straight to writev)", n)
	}
}
