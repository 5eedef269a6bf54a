package backendtest

import (
	"io/fs"
	"testing"

	"github.com/sftpfs/sftpfs/backend"
)

// testNonUTF8Names: file names are bytes. A directory and a file whose
// names are not valid UTF-8 (Latin-1 "café", a lone 0xff) can be created,
// listed under exactly those bytes, read, renamed and removed, like any
// other name.
func testNonUTF8Names(t *testing.T, b backend.Backend) {
	ctx := t.Context()
	dir, file, renamed := "d\xff", "d\xff/caf\xe9", "d\xff/\xe9t\xe9"
	must(t, "Mkdir "+dir, b.Mkdir(ctx, dir, 0o755))
	writeFile(t, b, file, []byte("latin-1"))
	wantNames(t, b, ".", dir)
	wantNames(t, b, dir, "caf\xe9")
	fi, err := b.Lstat(ctx, file)
	must(t, "Lstat "+file, err)
	if fi.Size != int64(len("latin-1")) || fi.Mode.Type() != 0 {
		t.Errorf("Lstat %q: size %d mode %v, want a regular file of 7 bytes", file, fi.Size, fi.Mode)
	}
	wantContent(t, b, file, []byte("latin-1"))
	must(t, "Rename", b.Rename(ctx, file, renamed, 0))
	wantNames(t, b, dir, "\xe9t\xe9")
	wantContent(t, b, renamed, []byte("latin-1"))
	must(t, "Remove "+renamed, b.Remove(ctx, renamed))
	must(t, "Rmdir "+dir, b.Rmdir(ctx, dir))
	if _, err := b.Lstat(ctx, dir); err == nil {
		t.Errorf("%q still exists after Rmdir", dir)
	} else {
		wantErr(t, "Lstat after Rmdir", err, fs.ErrNotExist)
	}
}
