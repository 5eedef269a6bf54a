package fusefs_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sftpfs/sftpfs/internal/testenv"
)

// coherenceOps are the operations through the mount whose effect every
// cache must show at once (change.go): each runs on a mount whose caches
// were just filled (listing snapshot of the directories, their
// attributes, the entries' attributes and negative lookups, the page
// cache of the file read twice, a reader's read-ahead), and then a
// reader must see through the mount what the storage holds.
var coherenceOps = []struct {
	name string
	// data says the op changes d/f's data, which the reader that has d/f
	// open since before the op must see.
	data bool
	do   func(t *testing.T, mnt string)
}{
	{"Create", false, func(t *testing.T, mnt string) { writeFile(t, filepath.Join(mnt, "d", "new"), "new") }},
	{"CreateTruncExisting", true, func(t *testing.T, mnt string) { writeFile(t, filepath.Join(mnt, "d", "f"), "replaced") }},
	{"Mkdir", false, func(t *testing.T, mnt string) { must(t, os.Mkdir(filepath.Join(mnt, "d", "sub"), 0o755)) }},
	{"Symlink", false, func(t *testing.T, mnt string) { must(t, os.Symlink("f", filepath.Join(mnt, "d", "ln"))) }},
	{"Link", false, func(t *testing.T, mnt string) {
		must(t, os.Link(filepath.Join(mnt, "d", "f"), filepath.Join(mnt, "d", "hard")))
	}},
	{"Unlink", false, func(t *testing.T, mnt string) { must(t, os.Remove(filepath.Join(mnt, "d", "f"))) }},
	{"Rmdir", false, func(t *testing.T, mnt string) { must(t, os.Remove(filepath.Join(mnt, "d", "empty"))) }},
	{"Rename", false, func(t *testing.T, mnt string) {
		must(t, os.Rename(filepath.Join(mnt, "d", "f"), filepath.Join(mnt, "d", "g")))
	}},
	{"RenameOver", false, func(t *testing.T, mnt string) {
		must(t, os.Rename(filepath.Join(mnt, "d", "f"), filepath.Join(mnt, "d", "other")))
	}},
	{"RenameAcross", false, func(t *testing.T, mnt string) {
		must(t, os.Rename(filepath.Join(mnt, "d", "f"), filepath.Join(mnt, "e", "f")))
	}},
	{"RenameDir", false, func(t *testing.T, mnt string) {
		must(t, os.Rename(filepath.Join(mnt, "d", "empty"), filepath.Join(mnt, "e", "moved")))
	}},
	{"Chmod", false, func(t *testing.T, mnt string) { must(t, os.Chmod(filepath.Join(mnt, "d", "f"), 0o600)) }},
	{"Chown", false, func(t *testing.T, mnt string) { must(t, os.Chown(filepath.Join(mnt, "d", "f"), 1234, 5678)) }},
	{"Utimens", false, func(t *testing.T, mnt string) {
		tm := time.Date(2011, 1, 1, 0, 0, 0, 0, time.UTC)
		must(t, os.Chtimes(filepath.Join(mnt, "d", "f"), tm, tm))
	}},
	// The same on a file nobody holds open, whose node the kernel
	// forgets, so that a lookup of it reaches the listing snapshot.
	{"ChmodUnheld", false, func(t *testing.T, mnt string) { must(t, os.Chmod(filepath.Join(mnt, "d", "other"), 0o600)) }},
	{"UtimensUnheld", false, func(t *testing.T, mnt string) {
		tm := time.Date(2011, 1, 1, 0, 0, 0, 0, time.UTC)
		must(t, os.Chtimes(filepath.Join(mnt, "d", "other"), tm, tm))
	}},
	{"TruncateUnheld", false, func(t *testing.T, mnt string) { must(t, os.Truncate(filepath.Join(mnt, "d", "other"), 2)) }},
	{"WriteUnheld", false, func(t *testing.T, mnt string) {
		f, err := os.OpenFile(filepath.Join(mnt, "d", "other"), os.O_WRONLY|os.O_APPEND, 0)
		must(t, err)
		_, err = f.Write([]byte(" and more"))
		must(t, err)
		must(t, f.Close())
	}},
	{"ChmodDir", false, func(t *testing.T, mnt string) { must(t, os.Chmod(filepath.Join(mnt, "d"), 0o700)) }},
	{"Truncate", true, func(t *testing.T, mnt string) { must(t, os.Truncate(filepath.Join(mnt, "d", "f"), 3)) }},
	{"Ftruncate", true, func(t *testing.T, mnt string) {
		f, err := os.OpenFile(filepath.Join(mnt, "d", "f"), os.O_RDWR, 0)
		must(t, err)
		must(t, f.Truncate(coherenceSize+5000))
		must(t, f.Close())
	}},
	{"Write", true, func(t *testing.T, mnt string) {
		f, err := os.OpenFile(filepath.Join(mnt, "d", "f"), os.O_RDWR, 0)
		must(t, err)
		// Inside the part the reader read, and beyond its end.
		_, err = f.WriteAt([]byte("written!"), 100)
		must(t, err)
		_, err = f.WriteAt([]byte("appended"), coherenceSize)
		must(t, err)
		must(t, f.Close())
	}},
}

// coherenceSize is d/f's size before the op: more than one read-ahead
// chunks' worth, so that a sequential reader has some in flight.
const coherenceSize = 1<<20 + 64<<10

// coherenceNames are the names an op may create or remove; each is
// looked up (mostly negatively) before the op.
var coherenceNames = []string{"f", "g", "new", "sub", "ln", "hard", "other", "empty", "moved"}

// TestCoherenceAfterOwnChanges runs every op of coherenceOps over every
// storage.
func TestCoherenceAfterOwnChanges(t *testing.T) {
	requireMount(t)
	for _, s := range append([]storage{localStorage}, sftpStorages(t)...) {
		t.Run(s.name, func(t *testing.T) {
			for _, op := range coherenceOps {
				t.Run(op.name, func(t *testing.T) { testCoherence(t, s, op.do, op.data) })
			}
		})
	}
}

func testCoherence(t *testing.T, s storage, do func(*testing.T, string), data bool) {
	o := testOptions()
	// Longer than the defaults, so that every cache still holds what the
	// priming put in it when the reader looks, also under -race.
	o.AttrTimeout, o.EntryTimeout = 5*time.Second, 5*time.Second
	mnt, back := s.mount(t, o)
	// The storage, written behind the mount's back: old mtimes, so that
	// any change of one shows even at SFTP's one-second resolution.
	content := bytes.Repeat([]byte("0123456789abcdef"), coherenceSize/16)
	must(t, os.MkdirAll(filepath.Join(back, "d", "empty"), 0o755))
	must(t, os.Mkdir(filepath.Join(back, "e"), 0o755))
	must(t, os.WriteFile(filepath.Join(back, "d", "f"), content, 0o644))
	must(t, os.WriteFile(filepath.Join(back, "d", "other"), []byte("other"), 0o644))
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, p := range []string{"d/f", "d/other", "d/empty", "d", "e"} {
		must(t, os.Chtimes(filepath.Join(back, p), old, old))
	}

	// Fill every cache through the mount.
	for _, dir := range []string{"d", "e"} {
		if _, err := os.ReadDir(filepath.Join(mnt, dir)); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(mnt, dir)); err != nil {
			t.Fatal(err)
		}
		for _, n := range coherenceNames {
			_, _ = os.Lstat(filepath.Join(mnt, dir, n))
		}
	}
	for range 2 { // the second open may keep the page cache
		if got, err := os.ReadFile(filepath.Join(mnt, "d", "f")); err != nil || !bytes.Equal(got, content) {
			t.Fatalf("priming read of d/f: %d bytes, %v", len(got), err)
		}
	}
	// A sequential reader: its read-ahead holds chunks ahead of it.
	reader, err := os.Open(filepath.Join(mnt, "d", "f"))
	must(t, err)
	defer reader.Close()
	buf := make([]byte, 64<<10)
	for off := int64(0); off < 4*int64(len(buf)); off += int64(len(buf)) {
		_, err := reader.ReadAt(buf, off)
		must(t, err)
	}

	do(t, mnt)

	// First as a reader finds it, with the kernel's own caches in front
	// of the mount's; then with the kernel's names and attributes
	// forgotten, so that every lookup reaches the mount's listing
	// snapshots, as it does whenever the kernel drops a cached name.
	// Listing the directories comes last: it replaces their snapshots.
	for pass := range 2 {
		if pass == 1 {
			dropKernelNames(t)
		}
		for _, dir := range []string{"d", "e"} {
			checkEntriesCoherent(t, mnt, back, dir, pass == 0)
		}
	}
	for _, dir := range []string{"d", "e"} {
		checkListingCoherent(t, mnt, back, dir)
	}
	if data {
		want, err := os.ReadFile(filepath.Join(back, "d", "f"))
		must(t, err)
		got := make([]byte, len(want)+100)
		n, _ := reader.ReadAt(got, 0)
		if !bytes.Equal(got[:n], want) {
			t.Errorf("reader open since before the change reads %d bytes, differing from the storage's %d (first difference at %d)", n, len(want), firstDiff(got[:n], want))
		}
	}
}

// checkListingCoherent compares the listing of dir through the mount
// with the storage's.
func checkListingCoherent(t *testing.T, mnt, back, dir string) {
	t.Helper()
	mdir, bdir := filepath.Join(mnt, dir), filepath.Join(back, dir)
	ments, err := os.ReadDir(mdir)
	if err != nil {
		t.Errorf("readdir %s: %v", dir, err)
		return
	}
	bents, err := os.ReadDir(bdir)
	must(t, err)
	var mnames, bnames []string
	for _, e := range ments {
		mnames = append(mnames, e.Name())
	}
	for _, e := range bents {
		bnames = append(bnames, e.Name())
	}
	if !slices.Equal(mnames, bnames) {
		t.Errorf("readdir %s through the mount = %v, storage has %v", dir, mnames, bnames)
	}
}

// checkEntriesCoherent compares what the mount shows of directory dir
// (its attributes, every entry's attributes and, with data, every
// regular file's data) with the storage.
func checkEntriesCoherent(t *testing.T, mnt, back, dir string, data bool) {
	t.Helper()
	compareStat(t, dir, filepath.Join(mnt, dir), filepath.Join(back, dir))
	for _, n := range coherenceNames {
		rel := filepath.Join(dir, n)
		compareStat(t, rel, filepath.Join(mnt, rel), filepath.Join(back, rel))
		bfi, err := os.Lstat(filepath.Join(back, rel))
		if err != nil || !bfi.Mode().IsRegular() || !data {
			continue
		}
		got, gerr := os.ReadFile(filepath.Join(mnt, rel))
		want, werr := os.ReadFile(filepath.Join(back, rel))
		must(t, werr)
		if gerr != nil || !bytes.Equal(got, want) {
			t.Errorf("read %s through the mount: %d bytes (%v), storage has %d bytes (first difference at %d)", rel, len(got), gerr, len(want), firstDiff(got, want))
		}
	}
}

// compareStat compares lstat of m (through the mount) and b (the
// storage): existence, type, permissions, owner, size (not of
// directories: SFTP servers report what they like) and mtime in whole
// seconds (SFTP v3's resolution).
func compareStat(t *testing.T, what, m, b string) {
	t.Helper()
	var ms, bs unix.Stat_t
	merr := unix.Lstat(m, &ms)
	berr := unix.Lstat(b, &bs)
	if errors.Is(berr, unix.ENOENT) {
		if !errors.Is(merr, unix.ENOENT) {
			t.Errorf("%s: gone from the storage, but lstat through the mount = %v", what, merr)
		}
		return
	}
	must(t, berr)
	if merr != nil {
		t.Errorf("%s: exists in the storage, but lstat through the mount = %v", what, merr)
		return
	}
	mfi := fmt.Sprintf("mode %o uid %d gid %d mtime %d", ms.Mode, ms.Uid, ms.Gid, ms.Mtim.Sec)
	bfi := fmt.Sprintf("mode %o uid %d gid %d mtime %d", bs.Mode, bs.Uid, bs.Gid, bs.Mtim.Sec)
	if bs.Mode&unix.S_IFMT != unix.S_IFDIR {
		mfi += fmt.Sprintf(" size %d", ms.Size)
		bfi += fmt.Sprintf(" size %d", bs.Size)
	}
	if mfi != bfi {
		t.Errorf("%s through the mount: %s; storage: %s", what, mfi, bfi)
	}
}

// dropKernelNames makes the kernel forget every name and inode it
// caches and nobody uses (all filesystems; drop_caches mode 2).
func dropKernelNames(t *testing.T) {
	t.Helper()
	err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0)
	testenv.Require(t, "a writable /proc/sys/vm/drop_caches (root, /proc/sys not read-only)", err == nil)
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestCloseToOpen: a file another client wrote and closed reads as the
// storage holds it at the next open, although this mount (and the
// kernel) saw its attributes within the timeouts, from a stat or from a
// listing. Found in the field as a Swarm task on one node that listed a
// file while another node's task had just created it empty, and then
// read it as empty.
func TestCloseToOpen(t *testing.T) {
	requireMount(t)
	for _, s := range append([]storage{localStorage}, sftpStorages(t)...) {
		t.Run(s.name, func(t *testing.T) {
			o := testOptions()
			// Far longer than the test: nothing may expire on its own.
			o.AttrTimeout, o.EntryTimeout = time.Minute, time.Minute
			mnt, back := s.mount(t, o)
			old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
			for _, n := range []string{"stat", "list", "same", "shrink", "log", "rwlog"} {
				must(t, os.WriteFile(filepath.Join(back, n), []byte(map[string]string{"same": "aaaa", "shrink": "a long first text", "log": "one\n", "rwlog": "one\n"}[n]), 0o644))
				must(t, os.Chtimes(filepath.Join(back, n), old, old))
			}
			// This mount learns the attributes: by stat, by a listing,
			// and by reading the files (twice, so that their pages may
			// be kept across opens).
			for _, n := range []string{"stat", "same", "shrink"} {
				if _, err := os.Stat(filepath.Join(mnt, n)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := os.ReadDir(mnt); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				readFile(t, filepath.Join(mnt, "same"))
				readFile(t, filepath.Join(mnt, "shrink"))
			}

			// Another client writes and closes.
			newer := old.Add(time.Hour)
			for n, content := range map[string]string{"stat": "written after the stat", "list": "written after the listing", "same": "bbbb", "shrink": "short"} {
				must(t, os.WriteFile(filepath.Join(back, n), []byte(content), 0o644))
				must(t, os.Chtimes(filepath.Join(back, n), newer, newer))
				if got := readFile(t, filepath.Join(mnt, n)); got != content {
					t.Errorf("%s: the next open reads %q, want %q (what the other client wrote and closed)", n, got, content)
				}
				if st, err := os.Stat(filepath.Join(mnt, n)); err != nil || st.Size() != int64(len(content)) {
					t.Errorf("%s: stat after reading it: %v %v, want size %d", n, st, err, len(content))
				}
			}
			// An append after another client's append and close goes
			// after it, not over it: through a write-only descriptor
			// and through a read-write one.
			for n, flag := range map[string]int{"log": os.O_WRONLY, "rwlog": os.O_RDWR} {
				if _, err := os.Stat(filepath.Join(mnt, n)); err != nil {
					t.Fatal(err)
				}
				f, err := os.OpenFile(filepath.Join(back, n), os.O_WRONLY|os.O_APPEND, 0)
				must(t, err)
				_, err = f.WriteString("two\n")
				must(t, err)
				must(t, f.Close())
				f, err = os.OpenFile(filepath.Join(mnt, n), flag|os.O_APPEND, 0)
				must(t, err)
				_, err = f.WriteString("three\n")
				must(t, err)
				must(t, f.Close())
				if got, err := os.ReadFile(filepath.Join(back, n)); err != nil || string(got) != "one\ntwo\nthree\n" {
					t.Errorf("%s: append through the mount after another client's: the storage holds %q, %v; want %q", n, got, err, "one\ntwo\nthree\n")
				}
				if got := readFile(t, filepath.Join(mnt, n)); got != "one\ntwo\nthree\n" {
					t.Errorf("%s: read through the mount after the appends: %q", n, got)
				}
			}

		})
	}
}
