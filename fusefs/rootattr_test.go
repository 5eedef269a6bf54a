package fusefs_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/backend/local"
)

// unreachableBackend fails every stat with a connection error while down
// is set, as an SFTP backend does while its server is unreachable: an
// error without an errno (the contract keeps socket errnos out).
type unreachableBackend struct {
	backend.Backend
	down atomic.Bool
}

func (u *unreachableBackend) fail(name string) error {
	return &fs.PathError{Op: "stat", Path: name, Err: errors.New("not connected to the server (reconnecting; last error: connection reset by peer)")}
}

func (u *unreachableBackend) Stat(ctx context.Context, name string) (backend.FileInfo, error) {
	if u.down.Load() {
		return backend.FileInfo{}, u.fail(name)
	}
	return u.Backend.Stat(ctx, name)
}

func (u *unreachableBackend) Lstat(ctx context.Context, name string) (backend.FileInfo, error) {
	if u.down.Load() {
		return backend.FileInfo{}, u.fail(name)
	}
	return u.Backend.Lstat(ctx, name)
}

// TestRootAttrWhileStorageUnreachable: while the storage does not answer,
// a stat of the mount's root (what a container runtime does before every
// container start) answers with the root's last attributes instead of
// EIO; everything below the root still fails with EIO, and the root is
// served from the storage again once it answers.
func TestRootAttrWhileStorageUnreachable(t *testing.T) {
	requireMount(t)
	back := t.TempDir()
	if err := os.Mkdir(filepath.Join(back, "sub"), 0o750); err != nil {
		t.Fatal(err)
	}
	lb, err := local.New(back)
	if err != nil {
		t.Fatal(err)
	}
	u := &unreachableBackend{Backend: lb}
	o := testOptions()
	o.AttrTimeout, o.EntryTimeout = 0, 0 // every stat reaches the filesystem
	mnt := mountBackend(t, u, o)
	before, err := os.Stat(mnt)
	if err != nil {
		t.Fatal(err)
	}

	u.down.Store(true)
	during, err := os.Stat(mnt)
	if err != nil {
		t.Fatalf("stat of the mount root while the storage is unreachable: %v", err)
	}
	if during.Mode() != before.Mode() {
		t.Errorf("root mode %v while unreachable, %v before", during.Mode(), before.Mode())
	}
	_, err = os.Stat(filepath.Join(mnt, "sub"))
	wantErrno(t, "stat below the root while unreachable", err, syscall.EIO)

	u.down.Store(false)
	if err := os.Chmod(back, 0o711); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(mnt)
	if err != nil || after.Mode().Perm() != 0o711 {
		t.Fatalf("root after the storage is back: %v, %v; want the storage's mode 0711", after.Mode(), err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "sub")); err != nil {
		t.Errorf("stat below the root after the storage is back: %v", err)
	}
}
