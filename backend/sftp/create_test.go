package sftp

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/internal/sshdtest"
)

// TestCreateModeSSHD checks that files created through real OpenSSH get
// exactly the requested mode whether or not it matches the server's
// default (0666 &^ umask), and that the attributes the handle reports
// right after creating (reused from the LSTAT sent with the create, or its
// FSTAT) are the server's.
func TestCreateModeSSHD(t *testing.T) {
	srv := sshdtest.Start(t, sshdtest.Options{})
	dir := t.TempDir()
	b := openBackend(t, sshdConfig(srv, dir))
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		flag int
		perm fs.FileMode
	}{
		{"m0644", os.O_RDWR | os.O_CREATE, 0o644},
		{"m0600", os.O_RDWR | os.O_CREATE, 0o600},
		{"m0755", os.O_WRONLY | os.O_CREATE | os.O_TRUNC, 0o755},
		{"m0640excl", os.O_RDWR | os.O_CREATE | os.O_EXCL, 0o640},
		{"m0666", os.O_RDWR | os.O_CREATE, 0o666},
		{"m2755", os.O_RDWR | os.O_CREATE, 0o755 | fs.ModeSetgid},
	} {
		f, err := b.OpenFile(ctx, tc.name, tc.flag, tc.perm)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		fi, err := f.Stat()
		if err != nil {
			t.Fatalf("%s: Stat: %v", tc.name, err)
		}
		if got := fi.Mode & backend.PermBits; got != tc.perm || !fi.Mode.IsRegular() {
			t.Errorf("%s: handle Stat mode %v, want regular %v", tc.name, fi.Mode, tc.perm)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(filepath.Join(dir, tc.name))
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode() & backend.PermBits; got != tc.perm {
			t.Errorf("%s: mode on the server %v, want %v", tc.name, st.Mode(), tc.perm)
		}
	}

	// An existing file keeps its mode: perm applies only to new files.
	if err := os.WriteFile(filepath.Join(dir, "old"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "old"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := b.OpenFile(ctx, "old", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := f.Stat(); err != nil || fi.Mode&backend.PermBits != 0o600 {
		t.Errorf("existing file: Stat = %v, %v; want mode 0600", fi.Mode, err)
	}
	f.Close()

	// Attributes kept from the create are not reused once the file was
	// changed: through the handle, or by path through the backend.
	f, err = b.OpenFile(ctx, "changed", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("hello"), 0); err != nil {
		t.Fatal(err)
	}
	if fi, err := f.Stat(); err != nil || fi.Size != 5 {
		t.Errorf("after a write: Stat size %d, %v; want 5", fi.Size, err)
	}
	f.Close()
	f, err = b.OpenFile(ctx, "chmodded", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Chmod(ctx, "chmodded", 0o700); err != nil {
		t.Fatal(err)
	}
	if fi, err := f.Stat(); err != nil || fi.Mode&backend.PermBits != 0o700 {
		t.Errorf("after Chmod by path: Stat mode %v, %v; want 0700", fi.Mode, err)
	}
	f.Close()
}
