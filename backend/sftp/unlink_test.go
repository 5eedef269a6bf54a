package sftp

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"syscall"
	"testing"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/internal/testenv"
)

// TestUnlinkOpenSSH: Unlink (backend.Unlinker, Remove without its LSTAT)
// removes a file and a symlink against OpenSSH's sftp-server, reports a
// missing name as fs.ErrNotExist, refuses the root, and leaves a
// directory with content in place.
func TestUnlinkOpenSSH(t *testing.T) {
	_, err := os.Stat(sftpServerPath)
	testenv.Require(t, sftpServerPath+" (Debian package openssh-sftp-server)", err == nil)
	raw := newDialerBackend(t, execDialer(t))
	if _, ok := raw.(backend.Unlinker); !ok {
		t.Fatal("the SFTP backend does not implement backend.Unlinker")
	}
	for name, b := range map[string]backend.Backend{"sftp": raw} {
		ctx := context.Background()
		f, err := b.OpenFile(ctx, name+"-f", os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		_ = f.Close()
		if err := b.Symlink(ctx, "nowhere", name+"-l"); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{name + "-f", name + "-l"} {
			if err := backend.Unlink(ctx, b, n); err != nil {
				t.Errorf("%s: Unlink(%s): %v", name, n, err)
			}
			if _, err := b.Lstat(ctx, n); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s: %s still there after Unlink (%v)", name, n, err)
			}
		}
		if err := backend.Unlink(ctx, b, name+"-missing"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: Unlink of a missing name: %v, want fs.ErrNotExist", name, err)
		}
		if err := backend.Unlink(ctx, b, "."); !errors.Is(err, syscall.EISDIR) {
			t.Errorf("%s: Unlink(.): %v, want EISDIR", name, err)
		}
		if err := b.Mkdir(ctx, name+"-d", 0o755); err != nil {
			t.Fatal(err)
		}
		if f, err = b.OpenFile(ctx, name+"-d/keep", os.O_CREATE|os.O_WRONLY, 0o644); err != nil {
			t.Fatal(err)
		}
		_ = f.Close()
		if err := backend.Unlink(ctx, b, name+"-d"); err == nil {
			t.Errorf("%s: Unlink of a directory with content succeeded", name)
		}
		if _, err := b.Lstat(ctx, name+"-d/keep"); err != nil {
			t.Errorf("%s: file in the directory gone after Unlink of the directory: %v", name, err)
		}
	}
}
