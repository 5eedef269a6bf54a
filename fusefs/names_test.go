package fusefs_test

import (
	"os"
	"path/filepath"
	"testing"
)

// TestNonUTF8NamesThroughMount: a file whose name is not valid UTF-8
// (Latin-1 "café") is created, listed, read, renamed and removed through
// the mount under exactly its bytes, as on any POSIX filesystem. Before,
// such names were listed but every operation on them failed with EINVAL.
func TestNonUTF8NamesThroughMount(t *testing.T) {
	mnt, back := mountLocal(t, testOptions())
	dir := filepath.Join(mnt, "d\xff")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("mkdir %q: %v", dir, err)
	}
	name := filepath.Join(dir, "caf\xe9")
	writeFile(t, name, "latin-1")
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 || ents[0].Name() != "caf\xe9" {
		t.Fatalf("listing of %q: %v, %v; want exactly \"caf\\xe9\"", dir, ents, err)
	}
	if got := readFile(t, name); got != "latin-1" {
		t.Errorf("read %q through the mount: %q", name, got)
	}
	if b, err := os.ReadFile(filepath.Join(back, "d\xff", "caf\xe9")); err != nil || string(b) != "latin-1" {
		t.Errorf("backing file under the same bytes: %q, %v", b, err)
	}
	renamed := filepath.Join(dir, "\xe9t\xe9")
	if err := os.Rename(name, renamed); err != nil {
		t.Fatalf("rename: %v", err)
	}
	if got := readFile(t, renamed); got != "latin-1" {
		t.Errorf("read after rename: %q", got)
	}
	if err := os.Remove(renamed); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatalf("rmdir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(back, "d\xff")); !os.IsNotExist(err) {
		t.Errorf("backing directory after rmdir: %v", err)
	}
}
