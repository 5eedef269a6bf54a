package backendtest

import (
	"io/fs"
	"os"
	"testing"
	"time"

	"github.com/sftpfs/sftpfs/backend"
)

func testSymlink(t *testing.T, b backend.Backend) {
	ctx := t.Context()
	writeFile(t, b, "target", []byte("target content"))
	must(t, "mkdir dir", b.Mkdir(ctx, "dir", 0o755))
	links := map[string]string{
		"rel":         "target",
		"dangling":    "does/not/exist",
		"dots":        "../x/./y/..",
		"dir/up":      "../target",
		"longtarget":  "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z",
		"spaces name": "with spaces and ünïcødé",
	}
	for name, target := range links {
		must(t, "Symlink("+target+", "+name+")", b.Symlink(ctx, target, name))
	}
	for name, target := range links {
		got, err := b.Readlink(ctx, name)
		if err != nil || got != target {
			t.Errorf("Readlink(%q) = %q, %v; want %q stored verbatim", name, got, err, target)
		}
		fi, err := b.Lstat(ctx, name)
		if err != nil || fi.Mode&fs.ModeSymlink == 0 {
			t.Errorf("Lstat(%q) = mode %v, %v; want a symlink", name, fi.Mode, err)
		} else if fi.Size != int64(len(target)) {
			t.Errorf("Lstat(%q).Size = %d; want the target length %d", name, fi.Size, len(target))
		}
	}
	// Stat follows, also in a subdirectory with "..".
	for _, name := range []string{"rel", "dir/up"} {
		fi, err := b.Stat(ctx, name)
		if err != nil || !fi.Mode.IsRegular() || fi.Size != int64(len("target content")) {
			t.Errorf("Stat(%q) = %+v, %v; want the regular target file", name, fi, err)
		}
	}
	wantContent(t, b, "dir/up", []byte("target content"))
	_, err := b.Stat(ctx, "dangling")
	wantErr(t, "Stat(dangling symlink)", err, fs.ErrNotExist)
	_, err = b.Readlink(ctx, "target")
	wantErr(t, "Readlink(regular file)", err, fs.ErrInvalid)
	_, err = b.Readlink(ctx, "dir")
	wantErr(t, "Readlink(directory)", err, fs.ErrInvalid)
	wantErr(t, "Symlink over existing symlink", b.Symlink(ctx, "x", "rel"), fs.ErrExist)
	// ReadDir reports symlinks as symlinks (Lstat semantics).
	infos, err := b.ReadDir(ctx, ".")
	must(t, "readdir .", err)
	for _, fi := range infos {
		if _, isLink := links[fi.Name]; isLink != (fi.Mode&fs.ModeSymlink != 0) {
			t.Errorf("ReadDir entry %q has mode %v", fi.Name, fi.Mode)
		}
	}
	// Remove removes the link, not its target.
	must(t, "Remove(rel)", b.Remove(ctx, "rel"))
	wantNotExist(t, b, "rel")
	wantContent(t, b, "target", []byte("target content"))
	must(t, "Remove(dangling)", b.Remove(ctx, "dangling"))
	// Rename moves the link itself.
	must(t, "Rename(dir/up, moved)", b.Rename(ctx, "dir/up", "moved", 0))
	if got, err := b.Readlink(ctx, "moved"); err != nil || got != "../target" {
		t.Errorf("Readlink(moved) = %q, %v; want the unchanged target \"../target\"", got, err)
	}
}

func testLink(t *testing.T, b backend.Backend) {
	ctx := t.Context()
	writeFile(t, b, "a", []byte("first"))
	must(t, "Link(a, b)", b.Link(ctx, "a", "b"))
	f, err := b.OpenFile(ctx, "b", os.O_RDWR, 0)
	must(t, "open b", err)
	if _, err := f.WriteAt([]byte("FIRST, and more"), 0); err != nil {
		t.Fatal(err)
	}
	must(t, "close b", f.Close())
	wantContent(t, b, "a", []byte("FIRST, and more"))
	fi, err := b.Stat(ctx, "a")
	must(t, "stat a", err)
	if fi.Nlink != 0 && fi.Nlink != 2 {
		t.Errorf("Nlink of a hard-linked file = %d; want 2 (or 0 if unknown)", fi.Nlink)
	}
	fb, err := b.Stat(ctx, "b")
	must(t, "stat b", err)
	if fi.Ino != 0 && fb.Ino != fi.Ino {
		t.Errorf("hard links have inode numbers %d and %d; want equal", fi.Ino, fb.Ino)
	}
	wantErr(t, "Link(a, b) again", b.Link(ctx, "a", "b"), fs.ErrExist)
	must(t, "Remove(a)", b.Remove(ctx, "a"))
	wantContent(t, b, "b", []byte("FIRST, and more"))
	if fb, err := b.Stat(ctx, "b"); err == nil && fb.Nlink != 0 && fb.Nlink != 1 {
		t.Errorf("Nlink after removing one name = %d; want 1", fb.Nlink)
	}
}

func testChown(t *testing.T, b backend.Backend) {
	ctx := t.Context()
	writeFile(t, b, "f", nil)
	before, err := b.Stat(ctx, "f")
	must(t, "stat f", err)
	must(t, "Chown(f, -1, -1)", b.Chown(ctx, "f", -1, -1))
	// Setting the current owner is allowed for everyone.
	must(t, "Chown(f, own uid, own gid)", b.Chown(ctx, "f", int(before.UID), int(before.GID)))
	must(t, "Chown(f, -1, own gid)", b.Chown(ctx, "f", -1, int(before.GID)))
	after, err := b.Stat(ctx, "f")
	must(t, "stat f", err)
	if after.UID != before.UID || after.GID != before.GID {
		t.Errorf("owner changed from %d:%d to %d:%d", before.UID, before.GID, after.UID, after.GID)
	}
}

func testStatFS(t *testing.T, b backend.Backend) {
	ctx := t.Context()
	for _, name := range []string{".", "d"} {
		if name == "d" {
			must(t, "mkdir d", b.Mkdir(ctx, "d", 0o755))
		}
		st, err := b.StatFS(ctx, name)
		must(t, "StatFS("+name+")", err)
		if st.Blocks == 0 || st.BlockSize == 0 {
			t.Errorf("StatFS(%q) = %+v; want Blocks > 0 and BlockSize > 0", name, st)
		}
		if st.BlocksFree > st.Blocks || st.BlocksAvail > st.Blocks {
			t.Errorf("StatFS(%q) = %+v; free blocks exceed total", name, st)
		}
	}
}

func testChmod(t *testing.T, b backend.Backend) {
	ctx := t.Context()
	// Created files and directories get at most the requested bits (a
	// umask may clear some), and keep the owner's.
	f, err := b.OpenFile(ctx, "f", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	must(t, "create f", err)
	must(t, "close f", f.Close())
	fi, err := b.Stat(ctx, "f")
	must(t, "stat f", err)
	if fi.Mode.Perm()&^0o600 != 0 || fi.Mode.Perm()&0o600 != 0o600 {
		t.Errorf("file created with perm 0600 has %v", fi.Mode.Perm())
	}
	must(t, "mkdir d", b.Mkdir(ctx, "d", 0o700))
	fi, err = b.Stat(ctx, "d")
	must(t, "stat d", err)
	if fi.Mode.Perm() != 0o700 || !fi.IsDir() {
		t.Errorf("directory created with perm 0700 has mode %v", fi.Mode)
	}
	for _, name := range []string{"f", "d"} {
		for _, perm := range []fs.FileMode{0o640, 0o755, 0o600, 0o704} {
			must(t, "Chmod", b.Chmod(ctx, name, perm))
			fi, err := b.Stat(ctx, name)
			must(t, "stat "+name, err)
			if fi.Mode.Perm() != perm {
				t.Errorf("after Chmod(%s, %v) Stat says %v", name, perm, fi.Mode.Perm())
			}
			if (name == "d") != fi.IsDir() {
				t.Errorf("Chmod changed the type of %s to %v", name, fi.Mode)
			}
		}
	}
	// File.Stat agrees with Backend.Stat.
	f, err = b.OpenFile(ctx, "f", os.O_RDONLY, 0)
	must(t, "open f", err)
	defer f.Close()
	ffi, err := f.Stat()
	if err != nil || ffi.Mode.Perm() != 0o704 {
		t.Errorf("File.Stat mode = %v, %v; want 0704", ffi.Mode.Perm(), err)
	}
}

func testChtimes(t *testing.T, b backend.Backend) {
	ctx := t.Context()
	writeFile(t, b, "f", []byte("x"))
	atime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	mtime := time.Date(2010, 11, 12, 13, 14, 15, 0, time.UTC)
	must(t, "Chtimes(f)", b.Chtimes(ctx, "f", atime, mtime))
	fi, err := b.Stat(ctx, "f")
	must(t, "stat f", err)
	if !fi.ModTime.Equal(mtime) {
		t.Errorf("mtime after Chtimes = %v; want %v", fi.ModTime, mtime)
	}
	if !fi.ATime.IsZero() && !fi.ATime.Equal(atime) {
		t.Errorf("atime after Chtimes = %v; want %v (or zero if unreported)", fi.ATime, atime)
	}
	// A zero mtime leaves the mtime alone.
	must(t, "Chtimes(f, atime, zero)", b.Chtimes(ctx, "f", atime.Add(time.Hour), time.Time{}))
	fi, err = b.Stat(ctx, "f")
	must(t, "stat f", err)
	if !fi.ModTime.Equal(mtime) {
		t.Errorf("mtime after Chtimes with zero mtime = %v; want unchanged %v", fi.ModTime, mtime)
	}
	must(t, "Chtimes(f, zero, zero)", b.Chtimes(ctx, "f", time.Time{}, time.Time{}))
	fi, err = b.Stat(ctx, "f")
	must(t, "stat f", err)
	if !fi.ModTime.Equal(mtime) {
		t.Errorf("mtime after Chtimes with zero times = %v; want unchanged %v", fi.ModTime, mtime)
	}
	// Directories too.
	must(t, "mkdir d", b.Mkdir(ctx, "d", 0o755))
	must(t, "Chtimes(d)", b.Chtimes(ctx, "d", atime, mtime))
	fi, err = b.Stat(ctx, "d")
	if err != nil || !fi.ModTime.Equal(mtime) {
		t.Errorf("directory mtime after Chtimes = %v, %v; want %v", fi.ModTime, err, mtime)
	}
}
