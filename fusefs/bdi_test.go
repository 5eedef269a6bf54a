package fusefs_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// TestKernelReadsLarge: a sequential reader of a fresh mount gets READ
// requests larger than the kernel's default 128 KiB read-ahead, because
// the mount raised its device's read_ahead_kb to MaxReadAhead (bdi.go).
// Without that the kernel never sends more than 128 KiB per READ,
// whatever max_readahead the server asked for at INIT.
func TestKernelReadsLarge(t *testing.T) {
	var log logBuffer
	o := testOptions()
	o.Debug = true // go-fuse's request trace: "READ n2 {Fh 1 [0 +131072) ...}"
	o.Logger = log.logger()
	mnt, back := mountLocal(t, o)
	data := bytes.Repeat([]byte("0123456789abcdef"), 16<<20/16)
	if err := os.WriteFile(filepath.Join(back, "big"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(mnt, "big"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	f.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes (%v), want the %d written", len(got), err, len(data))
	}
	largest := 0
	for _, m := range regexp.MustCompile(`READ n\d+ \{Fh \d+ \[\d+ \+(\d+)\)`).FindAllStringSubmatch(log.String(), -1) {
		if n, _ := strconv.Atoi(m[1]); n > largest {
			largest = n
		}
	}
	if largest == 0 {
		t.Fatalf("no READ request in the trace; trace format changed? (%d bytes of log)", len(log.String()))
	}
	if want := 512 << 10; largest < want {
		t.Errorf("largest READ the kernel sent: %d bytes, want at least %d (read_ahead_kb not raised?)", largest, want)
	}
}
