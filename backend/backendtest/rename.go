package backendtest

import (
	"io/fs"
	"syscall"
	"testing"

	"github.com/sftpfs/sftpfs/backend"
)

func testRenameOverFile(t *testing.T, b backend.Backend) {
	ctx := t.Context()
	writeFile(t, b, "src", []byte("source"))
	writeFile(t, b, "dst", []byte("destination"))
	must(t, "Rename(src, dst)", b.Rename(ctx, "src", "dst", 0))
	wantNotExist(t, b, "src")
	wantContent(t, b, "dst", []byte("source"))
	wantNames(t, b, ".", "dst")
}

func testRenameDirOverEmptyDir(t *testing.T, b backend.Backend) {
	ctx := t.Context()
	must(t, "mkdir src", b.Mkdir(ctx, "src", 0o755))
	writeFile(t, b, "src/f", []byte("in src"))
	must(t, "mkdir dst", b.Mkdir(ctx, "dst", 0o755))
	must(t, "Rename(src, empty dst)", b.Rename(ctx, "src", "dst", 0))
	wantNotExist(t, b, "src")
	wantNames(t, b, "dst", "f")
	wantContent(t, b, "dst/f", []byte("in src"))
}

func testRenameDirOverNonEmptyDir(t *testing.T, b backend.Backend) {
	ctx := t.Context()
	must(t, "mkdir src", b.Mkdir(ctx, "src", 0o755))
	writeFile(t, b, "src/a", []byte("a"))
	must(t, "mkdir dst", b.Mkdir(ctx, "dst", 0o755))
	writeFile(t, b, "dst/b", []byte("b"))
	wantErr(t, "Rename(src, non-empty dst)", b.Rename(ctx, "src", "dst", 0), syscall.ENOTEMPTY)
	wantNames(t, b, "src", "a")
	wantNames(t, b, "dst", "b")
}

func testRenameMixedKinds(t *testing.T, b backend.Backend) {
	ctx := t.Context()
	writeFile(t, b, "file", []byte("file"))
	must(t, "mkdir dir", b.Mkdir(ctx, "dir", 0o755))
	writeFile(t, b, "dir/x", []byte("x"))
	must(t, "mkdir empty", b.Mkdir(ctx, "empty", 0o755))
	// The contract: a file over a directory is EISDIR, a directory over a
	// file ENOTDIR. Either errno is accepted for both, since servers
	// differ in which check they make first.
	wantErr(t, "Rename(file, dir)", b.Rename(ctx, "file", "dir", 0), syscall.EISDIR, syscall.ENOTDIR)
	wantErr(t, "Rename(file, empty dir)", b.Rename(ctx, "file", "empty", 0), syscall.EISDIR, syscall.ENOTDIR)
	wantErr(t, "Rename(dir, file)", b.Rename(ctx, "dir", "file", 0), syscall.ENOTDIR, syscall.EISDIR)
	wantContent(t, b, "file", []byte("file"))
	wantNames(t, b, "dir", "x")
	wantNames(t, b, "empty")
}

func testRenameNoReplace(t *testing.T, b backend.Backend) {
	ctx := t.Context()
	writeFile(t, b, "a", []byte("aaa"))
	writeFile(t, b, "b", []byte("bbb"))
	must(t, "mkdir d", b.Mkdir(ctx, "d", 0o755))
	must(t, "mkdir e", b.Mkdir(ctx, "e", 0o755))
	wantErr(t, "Rename(a, b, NoReplace)", b.Rename(ctx, "a", "b", backend.RenameNoReplace), fs.ErrExist)
	wantErr(t, "Rename(d, e, NoReplace)", b.Rename(ctx, "d", "e", backend.RenameNoReplace), fs.ErrExist)
	wantErr(t, "Rename(a, d, NoReplace)", b.Rename(ctx, "a", "d", backend.RenameNoReplace), fs.ErrExist)
	wantContent(t, b, "a", []byte("aaa"))
	wantContent(t, b, "b", []byte("bbb"))
	wantNames(t, b, ".", "a", "b", "d", "e")
	// Without a destination it is an ordinary rename.
	must(t, "Rename(a, c, NoReplace)", b.Rename(ctx, "a", "c", backend.RenameNoReplace))
	must(t, "Rename(d, f, NoReplace)", b.Rename(ctx, "d", "f", backend.RenameNoReplace))
	wantNames(t, b, ".", "b", "c", "e", "f")
	wantContent(t, b, "c", []byte("aaa"))
}

func testRenameAcrossDirs(t *testing.T, b backend.Backend) {
	ctx := t.Context()
	must(t, "mkdir x", b.Mkdir(ctx, "x", 0o755))
	must(t, "mkdir y", b.Mkdir(ctx, "y", 0o755))
	must(t, "mkdir x/sub", b.Mkdir(ctx, "x/sub", 0o755))
	writeFile(t, b, "x/sub/f", []byte("deep"))
	writeFile(t, b, "x/g", []byte("g"))
	must(t, "Rename(x/g, y/g2)", b.Rename(ctx, "x/g", "y/g2", 0))
	must(t, "Rename(x/sub, y/sub)", b.Rename(ctx, "x/sub", "y/sub", 0))
	wantNames(t, b, "x")
	wantNames(t, b, "y", "g2", "sub")
	wantContent(t, b, "y/g2", []byte("g"))
	wantContent(t, b, "y/sub/f", []byte("deep"))
	// Moving a directory into itself is refused and changes nothing.
	if err := b.Rename(ctx, "y", "y/sub/inner", 0); err == nil {
		t.Errorf("Rename(y, y/sub/inner) succeeded; want an error")
	}
	wantNames(t, b, "y", "g2", "sub")
}
