package local

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRenameNoReplaceFallback exercises the emulation used when the
// filesystem lacks RENAME_NOREPLACE (ext4 and tmpfs have it, so the
// conformance suite never reaches this path).
func TestRenameNoReplaceFallback(t *testing.T) {
	dir := t.TempDir()
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func(name string) string {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	write("a", "aaa")
	write("b", "bbb")
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "e"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := renameNoReplaceFallback(fd, "a", fd, "b"); err != unix.EEXIST {
		t.Errorf("file onto file = %v; want EEXIST", err)
	}
	if err := renameNoReplaceFallback(fd, "d", fd, "e"); err != unix.EEXIST {
		t.Errorf("dir onto dir = %v; want EEXIST", err)
	}
	if err := renameNoReplaceFallback(fd, "a", fd, "d"); err != unix.EEXIST {
		t.Errorf("file onto dir = %v; want EEXIST", err)
	}
	if got := read("a") + read("b"); got != "aaabbb" {
		t.Errorf("contents changed: %q", got)
	}
	if err := renameNoReplaceFallback(fd, "a", fd, "c"); err != nil {
		t.Fatalf("file to new name: %v", err)
	}
	if err := renameNoReplaceFallback(fd, "d", fd, "f"); err != nil {
		t.Fatalf("dir to new name: %v", err)
	}
	if err := renameNoReplaceFallback(fd, "missing", fd, "x"); err != unix.ENOENT {
		t.Errorf("missing source = %v; want ENOENT", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := "[b c e f]"; fmt.Sprint(names) != want {
		t.Errorf("directory = %v; want %s", names, want)
	}
	if read("c") != "aaa" {
		t.Errorf("c = %q; want aaa", read("c"))
	}
}
