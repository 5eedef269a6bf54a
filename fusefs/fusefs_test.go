package fusefs_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sftpfs/sftpfs/backend/local"
	"github.com/sftpfs/sftpfs/fusefs"
)

// syscallSuite is every plain-syscall scenario; each runs on a fresh
// mount. TestSyscalls runs it normally and TestSyscallsGOMAXPROCS1 runs
// it again with a single P, where a FUSE server that blocks the calling
// thread would deadlock.
var syscallSuite = []struct {
	name string
	fn   func(t *testing.T, s storage)
}{
	{"CreateWriteRead", testCreateWriteRead},
	{"Append", testAppend},
	{"SizeFollowsWrites", testSizeFollowsWrites},
	{"Truncate", testTruncate},
	{"Rename", testRename},
	{"RenameFlags", testRenameFlags},
	{"LinkSymlink", testLinkSymlink},
	{"Dirs", testDirs},
	{"ChmodUtimens", testChmodUtimens},
	{"Statfs", testStatfs},
	{"Xattr", testXattr},
	{"Errors", testErrors},
}

func TestSyscalls(t *testing.T) {
	runSyscallSuite(t, localStorage, nil)
}

func TestSyscallsGOMAXPROCS1(t *testing.T) {
	requireMount(t)
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	runSyscallSuite(t, localStorage, nil)
}

// runSyscallSuite runs every scenario over storage s, except those in
// skip (name -> why it cannot pass there).
func runSyscallSuite(t *testing.T, s storage, skip map[string]string) {
	for _, tc := range syscallSuite {
		t.Run(tc.name, func(t *testing.T) {
			if why, ok := skip[tc.name]; ok {
				t.Skip(why)
			}
			tc.fn(t, s)
		})
	}
}

func testCreateWriteRead(t *testing.T, s storage) {
	mnt, back := s.mount(t, testOptions())
	p := filepath.Join(mnt, "f.txt")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("hello, world")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := f.ReadAt(buf, 7); err != nil || string(buf) != "world" {
		t.Fatalf("ReadAt = %q, %v; want world", buf, err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got := readFile(t, filepath.Join(back, "f.txt")); got != "hello, world" {
		t.Errorf("backing file = %q", got)
	}
	fi, err := os.Stat(filepath.Join(back, "f.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("backing mode = %v, want 0640", fi.Mode())
	}
	// Large write and read back across several FUSE requests.
	big := bytes.Repeat([]byte("0123456789abcdef"), 300_000)
	if err := os.WriteFile(filepath.Join(mnt, "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "big")); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("big file round trip: %d bytes, %v", len(got), err)
	}
	// A read past the end is a short read, not an error.
	f, err = os.Open(filepath.Join(mnt, "f.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := f.ReadAt(make([]byte, 100), 7)
	if n != 5 || err != io.EOF {
		t.Errorf("ReadAt past EOF = %d, %v; want 5, EOF", n, err)
	}
}

func testAppend(t *testing.T, s storage) {
	mnt, back := s.mount(t, testOptions())
	p := filepath.Join(mnt, "log")
	writeFile(t, p, "abc")
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(fd, []byte("def")); err != nil {
		t.Fatal(err)
	}
	// Even after seeking to the start, O_APPEND writes land at the end.
	if _, err := unix.Seek(fd, 0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(fd, []byte("ghi")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Close(fd); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got := readFile(t, filepath.Join(back, "log")); got != "abcdefghi" {
		t.Errorf("after O_APPEND writes: %q, want abcdefghi", got)
	}
}

func testSizeFollowsWrites(t *testing.T, s storage) {
	mnt, _ := s.mount(t, testOptions())
	p := filepath.Join(mnt, "grow")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := 1; i <= 3; i++ {
		if _, err := f.Write(make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		fi, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != int64(1000*i) {
			t.Errorf("fstat after %d writes: size %d", i, fi.Size())
		}
		fi, err = os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != int64(1000*i) {
			t.Errorf("stat after %d writes: size %d", i, fi.Size())
		}
	}
}

func testTruncate(t *testing.T, s storage) {
	mnt, back := s.mount(t, testOptions())
	p := filepath.Join(mnt, "t")
	writeFile(t, p, "0123456789")
	if err := os.Truncate(p, 4); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(back, "t")); got != "0123" {
		t.Errorf("after truncate(4): %q", got)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(8); err != nil {
		t.Fatalf("ftruncate: %v", err)
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != 8 {
		t.Errorf("fstat after ftruncate(8): %v, %v", fi, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(back, "t")); got != "0123\x00\x00\x00\x00" {
		t.Errorf("after ftruncate(8): %q", got)
	}
	// O_TRUNC on open.
	f, err = os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(back, "t")); err != nil || fi.Size() != 0 {
		t.Errorf("after O_TRUNC: %v, %v", fi, err)
	}
}

func testRename(t *testing.T, s storage) {
	mnt, back := s.mount(t, testOptions())
	writeFile(t, filepath.Join(mnt, "a"), "A")
	writeFile(t, filepath.Join(mnt, "b"), "B")
	var before unix.Stat_t
	if err := unix.Lstat(filepath.Join(mnt, "a"), &before); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(mnt, "a"), filepath.Join(mnt, "b")); err != nil {
		t.Fatalf("rename over existing: %v", err)
	}
	if got := readFile(t, filepath.Join(back, "b")); got != "A" {
		t.Errorf("b = %q after rename a->b", got)
	}
	if _, err := os.Lstat(filepath.Join(mnt, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a still visible: %v", err)
	}
	var after unix.Stat_t
	if err := unix.Lstat(filepath.Join(mnt, "b"), &after); err != nil {
		t.Fatal(err)
	}
	if after.Ino != before.Ino {
		t.Errorf("inode changed across rename: %d -> %d", before.Ino, after.Ino)
	}
	// Renaming a directory moves what is inside it.
	if err := os.MkdirAll(filepath.Join(mnt, "d1", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(mnt, "d1", "sub", "f"), "deep")
	if err := os.Rename(filepath.Join(mnt, "d1"), filepath.Join(mnt, "d2")); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(mnt, "d2", "sub", "f")); got != "deep" {
		t.Errorf("d2/sub/f = %q", got)
	}
	writeFile(t, filepath.Join(mnt, "d2", "sub", "g"), "new")
	if got := readFile(t, filepath.Join(back, "d2", "sub", "g")); got != "new" {
		t.Errorf("file created in renamed dir landed wrong: %q", got)
	}
}

func testRenameFlags(t *testing.T, s storage) {
	mnt, back := s.mount(t, testOptions())
	writeFile(t, filepath.Join(mnt, "x"), "X")
	writeFile(t, filepath.Join(mnt, "y"), "Y")
	err := unix.Renameat2(unix.AT_FDCWD, filepath.Join(mnt, "x"), unix.AT_FDCWD, filepath.Join(mnt, "y"), unix.RENAME_NOREPLACE)
	wantErrno(t, "RENAME_NOREPLACE onto existing", err, syscall.EEXIST)
	if got := readFile(t, filepath.Join(back, "y")); got != "Y" {
		t.Errorf("y was replaced despite RENAME_NOREPLACE: %q", got)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, filepath.Join(mnt, "x"), unix.AT_FDCWD, filepath.Join(mnt, "z"), unix.RENAME_NOREPLACE); err != nil {
		t.Errorf("RENAME_NOREPLACE onto free name: %v", err)
	}
	err = unix.Renameat2(unix.AT_FDCWD, filepath.Join(mnt, "y"), unix.AT_FDCWD, filepath.Join(mnt, "z"), unix.RENAME_EXCHANGE)
	wantErrno(t, "RENAME_EXCHANGE", err, syscall.ENOTSUP)
	if got := readFile(t, filepath.Join(back, "z")); got != "X" {
		t.Errorf("z = %q after refused exchange", got)
	}
}

func testLinkSymlink(t *testing.T, s storage) {
	mnt, back := s.mount(t, testOptions())
	writeFile(t, filepath.Join(mnt, "target"), "T")
	if err := os.Link(filepath.Join(mnt, "target"), filepath.Join(mnt, "hard")); err != nil {
		t.Fatalf("link: %v", err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(mnt, "hard"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Nlink != 2 && !s.lacks("nlink") {
		t.Errorf("nlink = %d, want 2", st.Nlink)
	}
	var bst unix.Stat_t
	if err := unix.Lstat(filepath.Join(back, "hard"), &bst); err != nil {
		t.Fatalf("hard link missing in backing dir: %v", err)
	}
	var tst unix.Stat_t
	if err := unix.Lstat(filepath.Join(back, "target"), &tst); err != nil || tst.Ino != bst.Ino {
		t.Errorf("backing link is not a hard link: %v", err)
	}

	if err := os.Symlink("target", filepath.Join(mnt, "soft")); err != nil {
		t.Fatalf("symlink: %v", err)
	}
	if got, err := os.Readlink(filepath.Join(mnt, "soft")); err != nil || got != "target" {
		t.Errorf("readlink = %q, %v", got, err)
	}
	fi, err := os.Lstat(filepath.Join(mnt, "soft"))
	if err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("lstat of symlink: %v, %v", fi, err)
	}
	if got := readFile(t, filepath.Join(mnt, "soft")); got != "T" {
		t.Errorf("read through symlink = %q", got)
	}
	// The target is stored verbatim, even when it points nowhere.
	if err := os.Symlink("../../outside/x", filepath.Join(mnt, "dangling")); err != nil {
		t.Fatal(err)
	}
	if got, err := os.Readlink(filepath.Join(back, "dangling")); err != nil || got != "../../outside/x" {
		t.Errorf("backing readlink = %q, %v", got, err)
	}
	_, err = os.Readlink(filepath.Join(mnt, "target"))
	wantErrno(t, "readlink of a regular file", err, syscall.EINVAL)
}

func testDirs(t *testing.T, s storage) {
	mnt, back := s.mount(t, testOptions())
	d := filepath.Join(mnt, "dir")
	if err := os.Mkdir(d, 0o750); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(back, "dir")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o750 {
		t.Errorf("backing dir: %v, %v", fi, err)
	}
	wantErrno(t, "mkdir existing", os.Mkdir(d, 0o755), syscall.EEXIST)
	names := []string{"a", "b", "c"}
	for _, n := range names {
		writeFile(t, filepath.Join(d, n), n)
	}
	if err := os.Mkdir(filepath.Join(d, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(d)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
		if e.Name() == "sub" && !e.IsDir() {
			t.Errorf("sub listed as non-directory")
		}
	}
	if want := []string{"a", "b", "c", "sub"}; !slices.Equal(got, want) {
		t.Errorf("readdir = %v, want %v", got, want)
	}
	wantErrno(t, "rmdir non-empty", syscall.Rmdir(d), syscall.ENOTEMPTY)
	wantErrno(t, "rmdir of a file", syscall.Rmdir(filepath.Join(d, "a")), syscall.ENOTDIR)
	wantErrno(t, "unlink of a directory", syscall.Unlink(filepath.Join(d, "sub")), syscall.EISDIR)
	for _, n := range names {
		if err := os.Remove(filepath.Join(d, n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(d, "sub")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(d); err != nil {
		t.Fatalf("rmdir empty: %v", err)
	}
	if _, err := os.Stat(filepath.Join(back, "dir")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dir still in backing store: %v", err)
	}
	// Changes made behind the mount's back show up once caches expire.
	if err := os.WriteFile(filepath.Join(back, "outside"), []byte("o"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(mnt, "outside")); got != "o" {
		t.Errorf("file created in backing dir reads %q", got)
	}
}

func testChmodUtimens(t *testing.T, s storage) {
	mnt, back := s.mount(t, testOptions())
	p := filepath.Join(mnt, "f")
	writeFile(t, p, "x")
	if err := os.Chmod(p, 0o600|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(back, "f"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSetgid == 0 {
		t.Errorf("backing mode after chmod = %v", fi.Mode())
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mount mode after chmod = %v, %v", fi, err)
	}

	mtime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	atime := time.Date(2002, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := os.Chtimes(p, atime, mtime); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mtim.Sec != mtime.Unix() || (st.Atim.Sec != atime.Unix() && !s.lacks("atime")) {
		t.Errorf("times = a%d m%d, want a%d m%d", st.Atim.Sec, st.Mtim.Sec, atime.Unix(), mtime.Unix())
	}
	// UTIME_OMIT leaves mtime alone; UTIME_NOW sets atime to now.
	ts := []unix.Timespec{{Nsec: unix.UTIME_NOW}, {Nsec: unix.UTIME_OMIT}}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(filepath.Join(back, "f"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mtim.Sec != mtime.Unix() {
		t.Errorf("UTIME_OMIT changed mtime to %d", st.Mtim.Sec)
	}
	if d := time.Since(time.Unix(st.Atim.Sec, 0)); d < -time.Minute || d > time.Minute {
		t.Errorf("UTIME_NOW set atime %v away from now", d)
	}
}

func testStatfs(t *testing.T, s storage) {
	mnt, back := s.mount(t, testOptions())
	var m, b unix.Statfs_t
	if err := unix.Statfs(mnt, &m); err != nil {
		t.Fatal(err)
	}
	if err := unix.Statfs(back, &b); err != nil {
		t.Fatal(err)
	}
	if m.Bsize != b.Bsize || m.Blocks != b.Blocks {
		t.Errorf("statfs through mount: bsize %d blocks %d; backing: bsize %d blocks %d", m.Bsize, m.Blocks, b.Bsize, b.Blocks)
	}
	if m.Namelen == 0 {
		t.Errorf("statfs namelen 0")
	}
}

func testXattr(t *testing.T, s storage) {
	mnt, _ := s.mount(t, testOptions())
	p := filepath.Join(mnt, "f")
	writeFile(t, p, "x")
	for range 2 { // the second round is answered by the kernel alone
		_, err := unix.Getxattr(p, "user.foo", make([]byte, 64))
		wantErrno(t, "getxattr", err, syscall.ENOTSUP)
		_, err = unix.Listxattr(p, make([]byte, 64))
		wantErrno(t, "listxattr", err, syscall.ENOTSUP)
		wantErrno(t, "setxattr", unix.Setxattr(p, "user.foo", []byte("v"), 0), syscall.ENOTSUP)
	}
	// Writes still work after the kernel stopped asking about xattrs.
	writeFile(t, p, "y")
}

func testErrors(t *testing.T, s storage) {
	mnt, _ := s.mount(t, testOptions())
	_, err := os.Open(filepath.Join(mnt, "missing"))
	wantErrno(t, "open missing", err, syscall.ENOENT)
	_, err = os.Stat(filepath.Join(mnt, "missing", "deeper"))
	wantErrno(t, "stat below missing", err, syscall.ENOENT)
	writeFile(t, filepath.Join(mnt, "file"), "x")
	_, err = os.OpenFile(filepath.Join(mnt, "file"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	wantErrno(t, "O_EXCL on existing", err, syscall.EEXIST)
	_, err = os.Stat(filepath.Join(mnt, "file", "x"))
	wantErrno(t, "stat below a file", err, syscall.ENOTDIR)
	_, err = os.ReadDir(filepath.Join(mnt, "file"))
	wantErrno(t, "readdir of a file", err, syscall.ENOTDIR)
	wantErrno(t, "rename missing", os.Rename(filepath.Join(mnt, "nope"), filepath.Join(mnt, "nope2")), syscall.ENOENT)
}

// TestWriteErrorsSurface checks that errors the storage reports reach
// the application from write(2), fsync(2) and close(2), and that an
// error without a POSIX meaning becomes EIO and is logged.
func TestWriteErrorsSurface(t *testing.T) {
	requireMount(t)
	back := t.TempDir()
	lb, err := local.New(back)
	if err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	o := testOptions()
	o.Logger = logs.logger()
	mnt := mountBackend(t, faultBackend{lb}, o)

	f, err := os.Create(filepath.Join(mnt, "fault-enospc"))
	if err != nil {
		t.Fatal(err)
	}
	// With write-behind the write itself may succeed; the error must
	// then come from a later write and from close(2), never be lost.
	if _, err = f.Write([]byte("data")); err == nil {
		time.Sleep(50 * time.Millisecond) // let the write fail in the background
		_, err = f.Write([]byte("more"))
		wantErrno(t, "second write to full storage", err, syscall.ENOSPC)
		wantErrno(t, "close after failed write-behind", f.Close(), syscall.ENOSPC)
	} else {
		wantErrno(t, "write to full storage", err, syscall.ENOSPC)
		_ = f.Close()
	}

	f, err = os.Create(filepath.Join(mnt, "fault-sync-fsync"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, "fsync with lost connection", f.Sync(), syscall.EIO)
	_ = f.Close()

	f, err = os.Create(filepath.Join(mnt, "fault-sync-close"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, "close with lost connection", f.Close(), syscall.EIO)

	// A file that was only read does not sync on close.
	f, err = os.Open(filepath.Join(mnt, "fault-sync-close"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("close of read-only handle: %v", err)
	}

	if !strings.Contains(logs.String(), errConnLost.Error()) {
		t.Errorf("unexplained storage error was not logged; log:\n%s", logs.String())
	}
}

// TestOwnerMapping: with UID/GID set every file shows the mapped owner,
// and chown is accepted without changing the storage.
func TestOwnerMapping(t *testing.T) {
	o := testOptions()
	o.UID, o.GID = 1234, 5678
	mnt, back := mountLocal(t, o)
	p := filepath.Join(mnt, "f")
	writeFile(t, p, "x")
	for _, name := range []string{mnt, p} {
		var st unix.Stat_t
		if err := unix.Stat(name, &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != 1234 || st.Gid != 5678 {
			t.Errorf("%s owner = %d:%d, want 1234:5678", name, st.Uid, st.Gid)
		}
	}
	if err := os.Chown(p, 42, 43); err != nil {
		t.Errorf("chown with mapping on must succeed (Docker copy-up), got %v", err)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(back, "f"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != uint32(os.Geteuid()) || st.Gid != uint32(os.Getegid()) {
		t.Errorf("chown with mapping reached the storage: owner %d:%d", st.Uid, st.Gid)
	}
}

// TestChownPassThrough: without mapping, chown changes the storage.
func TestChownPassThrough(t *testing.T) {
	mnt, back := mountLocal(t, testOptions())
	p := filepath.Join(mnt, "f")
	writeFile(t, p, "x")
	if err := os.Chown(p, 4321, 8765); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(back, "f"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 4321 || st.Gid != 8765 {
		t.Errorf("backing owner = %d:%d, want 4321:8765", st.Uid, st.Gid)
	}
	if err := unix.Stat(p, &st); err != nil || st.Uid != 4321 {
		t.Errorf("mount owner = %d, %v", st.Uid, err)
	}
}

// TestUmask: the umask clears bits from presented and created modes.
func TestUmask(t *testing.T) {
	o := testOptions()
	o.Umask = 0o027
	requireMount(t)
	back := t.TempDir()
	if err := os.WriteFile(filepath.Join(back, "open"), nil, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(back, "open"), 0o777); err != nil {
		t.Fatal(err)
	}
	b, err := local.New(back)
	if err != nil {
		t.Fatal(err)
	}
	mnt := mountBackend(t, b, o)
	if fi, err := os.Stat(filepath.Join(mnt, "open")); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("0777 file presented as %v, %v; want 0750", fi.Mode(), err)
	}
	f, err := os.OpenFile(filepath.Join(mnt, "new"), os.O_CREATE|os.O_WRONLY, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if fi, err := os.Stat(filepath.Join(back, "new")); err != nil || fi.Mode().Perm()&0o027 != 0 {
		t.Errorf("created file has mode %v in storage, %v; umask 027 not applied", fi.Mode(), err)
	}
	if err := os.Mkdir(filepath.Join(mnt, "d"), 0o777); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(back, "d")); err != nil || fi.Mode().Perm()&0o027 != 0 {
		t.Errorf("created dir has mode %v in storage, %v", fi.Mode(), err)
	}
}

// TestReadOnly: every mutating operation fails with EROFS, reads work.
func TestReadOnly(t *testing.T) {
	requireMount(t)
	back := t.TempDir()
	if err := os.WriteFile(filepath.Join(back, "f"), []byte("content"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(back, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := local.New(back)
	if err != nil {
		t.Fatal(err)
	}
	o := testOptions()
	o.ReadOnly = true
	mnt := mountBackend(t, b, o)
	p := func(n string) string { return filepath.Join(mnt, n) }

	if got := readFile(t, p("f")); got != "content" {
		t.Errorf("read on read-only mount = %q", got)
	}
	_, err = os.OpenFile(p("f"), os.O_WRONLY, 0)
	wantErrno(t, "open for writing", err, syscall.EROFS)
	_, err = os.OpenFile(p("new"), os.O_CREATE|os.O_WRONLY, 0o644)
	wantErrno(t, "create", err, syscall.EROFS)
	wantErrno(t, "mkdir", os.Mkdir(p("nd"), 0o755), syscall.EROFS)
	wantErrno(t, "rmdir", syscall.Rmdir(p("d")), syscall.EROFS)
	wantErrno(t, "unlink", syscall.Unlink(p("f")), syscall.EROFS)
	wantErrno(t, "rename", os.Rename(p("f"), p("g")), syscall.EROFS)
	wantErrno(t, "symlink", os.Symlink("f", p("s")), syscall.EROFS)
	wantErrno(t, "link", os.Link(p("f"), p("h")), syscall.EROFS)
	wantErrno(t, "chmod", os.Chmod(p("f"), 0o600), syscall.EROFS)
	wantErrno(t, "chown", os.Chown(p("f"), 1, 1), syscall.EROFS)
	wantErrno(t, "truncate", os.Truncate(p("f"), 0), syscall.EROFS)
	wantErrno(t, "utimes", os.Chtimes(p("f"), time.Now(), time.Now()), syscall.EROFS)
	if got := readFile(t, filepath.Join(back, "f")); got != "content" {
		t.Errorf("storage changed on read-only mount: %q", got)
	}
}

// TestReaddirPlusUsesListing: `ls -l` of a directory (list, then lstat
// every entry) must not stat each entry remotely: the attributes come
// with the listing.
func TestReaddirPlusUsesListing(t *testing.T) {
	requireMount(t)
	back := t.TempDir()
	const n = 60
	for i := range n {
		if err := os.WriteFile(filepath.Join(back, fmt.Sprintf("file%03d", i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lb, err := local.New(back)
	if err != nil {
		t.Fatal(err)
	}
	cb := &countingBackend{Backend: lb}
	o := testOptions()
	o.AttrTimeout, o.EntryTimeout = 10*time.Second, 10*time.Second
	mnt := mountBackend(t, cb, o)
	before := cb.lstats.Load()
	ents, err := os.ReadDir(mnt)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != n {
		t.Fatalf("listed %d entries, want %d", len(ents), n)
	}
	for _, e := range ents {
		if _, err := os.Lstat(filepath.Join(mnt, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	if extra := cb.lstats.Load() - before; extra > n/10 {
		t.Errorf("lstat of %d listed entries made %d remote stats (listing included); READDIRPLUS should have supplied them", n, extra)
	}
}

// TestDeletedOpenFile: an unlinked file stays usable through its open
// descriptor, and path operations never hit a new file of the same name.
func TestDeletedOpenFile(t *testing.T) {
	mnt, back := mountLocal(t, testOptions())
	p := filepath.Join(mnt, "f")
	writeFile(t, p, "old")
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, "new file")
	if _, err := f.WriteAt([]byte("OLD"), 0); err != nil {
		t.Fatalf("write to unlinked file: %v", err)
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatalf("fstat of unlinked file: %v", err)
	}
	if fi.Size() != 3 {
		t.Errorf("fstat of unlinked file: size %d, want 3", fi.Size())
	}
	if err := f.Truncate(1); err != nil {
		t.Fatalf("ftruncate of unlinked file: %v", err)
	}
	if got := readFile(t, filepath.Join(back, "f")); got != "new file" {
		t.Errorf("new file at the old name was touched: %q", got)
	}
}

// ExampleMount shows how to serve a backend at a mountpoint.
func ExampleMount() {
	b, err := local.New("/srv/data")
	if err != nil {
		panic(err)
	}
	o := fusefs.DefaultOptions()
	o.AllowOther = true
	o.UID, o.GID = 1000, 1000
	server, err := fusefs.Mount("/mnt/data", b, o)
	if err != nil {
		panic(err)
	}
	// Serve until someone runs `umount /mnt/data` (or server.Unmount()).
	server.Wait()
	_ = b.Close()
}

func TestMountErrors(t *testing.T) {
	if _, err := fusefs.Mount(t.TempDir(), nil, testOptions()); err == nil {
		t.Error("Mount without a backend succeeded")
	}
	requireMount(t)
	b, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	missing := filepath.Join(t.TempDir(), "does-not-exist")
	_, err = fusefs.Mount(missing, b, testOptions())
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Mount on a missing directory: %v; want an error naming %s", err, missing)
	}
}

// TestLeftoverMountDetection proves that TestMain's check for mounts left
// behind actually sees a live test mount.
func TestLeftoverMountDetection(t *testing.T) {
	mnt, _ := mountLocal(t, testOptions())
	found := false
	for _, line := range leftoverMounts() {
		if strings.Contains(line, " "+mnt+" ") {
			found = true
		}
	}
	if !found {
		t.Errorf("live mount %s not found by leftoverMounts: %q", mnt, leftoverMounts())
	}
}
