package fusefs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/sftpfs/sftpfs/backend/local"
)

func TestToErrno(t *testing.T) {
	pe := func(err error) error { return &fs.PathError{Op: "op", Path: "p", Err: err} }
	for _, tc := range []struct {
		err    error
		want   syscall.Errno
		logged bool
	}{
		{nil, 0, false},
		{pe(syscall.ENOTEMPTY), syscall.ENOTEMPTY, false}, // not EEXIST, although ENOTEMPTY matches fs.ErrExist
		{pe(syscall.ENOSPC), syscall.ENOSPC, false},
		{fmt.Errorf("wrapped: %w", pe(syscall.EISDIR)), syscall.EISDIR, false},
		{pe(fs.ErrNotExist), syscall.ENOENT, false},
		{pe(fs.ErrExist), syscall.EEXIST, false},
		{pe(fs.ErrPermission), syscall.EACCES, false},
		{pe(fs.ErrInvalid), syscall.EINVAL, false},
		{pe(errors.ErrUnsupported), syscall.ENOTSUP, false},
		{pe(fs.ErrClosed), syscall.EBADF, false},
		{fmt.Errorf("stat: %w", context.DeadlineExceeded), syscall.EIO, true},
		{context.Canceled, syscall.EINTR, false},
		{errors.New("sftp: server said something odd"), syscall.EIO, true},
	} {
		var buf bytes.Buffer
		lg := slog.New(slog.NewTextHandler(&buf, nil))
		if got := toErrno(lg, nil, "op", "dir/file", tc.err); got != tc.want {
			t.Errorf("toErrno(%v) = %v, want %v", tc.err, got, tc.want)
		}
		if logged := buf.Len() > 0; logged != tc.logged {
			t.Errorf("toErrno(%v) logged=%v, want %v (log %q)", tc.err, logged, tc.logged, buf.String())
		}
		if tc.logged && !strings.Contains(buf.String(), "dir/file") {
			t.Errorf("log for %v does not name the path: %q", tc.err, buf.String())
		}
	}
}

// TestReadOnlyInsideFilesystem checks the filesystem's own EROFS, which
// a mounted test cannot see because the "ro" mount flag makes the
// kernel refuse first. The checks come before any path or backend use,
// so an unmounted tree is enough.
func TestReadOnlyInsideFilesystem(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/f", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	o := DefaultOptions()
	o.ReadOnly = true
	root := NewRoot(b, o).(*node)
	ctx := context.Background()
	var out fuse.EntryOut
	checks := map[string]syscall.Errno{}
	_, _, _, checks["create"] = root.Create(ctx, "n", uint32(os.O_WRONLY|os.O_CREATE), 0o644, &out)
	_, checks["mkdir"] = root.Mkdir(ctx, "d", 0o755, &out)
	checks["rmdir"] = root.Rmdir(ctx, "d")
	checks["unlink"] = root.Unlink(ctx, "f")
	checks["rename"] = root.Rename(ctx, "f", root, "g", 0)
	_, checks["symlink"] = root.Symlink(ctx, "f", "s", &out)
	_, checks["link"] = root.Link(ctx, root, "h", &out)
	checks["setattr"] = root.Setattr(ctx, nil, &fuse.SetAttrIn{SetAttrInCommon: fuse.SetAttrInCommon{Valid: fuse.FATTR_MODE, Mode: 0o600}}, &fuse.AttrOut{})
	_, _, checks["open-write"] = root.Open(ctx, uint32(os.O_RDWR))
	_, _, checks["open-trunc"] = root.Open(ctx, uint32(os.O_RDONLY|os.O_TRUNC))
	h := &fileHandle{node: root}
	_, checks["write"] = h.Write(ctx, []byte("x"), 0)
	for op, errno := range checks {
		if errno != syscall.EROFS {
			t.Errorf("%s on read-only filesystem: %v, want EROFS", op, errno)
		}
	}
	if got, _ := os.ReadFile(dir + "/f"); string(got) != "x" {
		t.Errorf("storage changed: %q", got)
	}
}

// TestHandleAfterRelease: operations on a released handle answer EBADF
// and never reach the closed backend file.
func TestHandleAfterRelease(t *testing.T) {
	dir := t.TempDir()
	b, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	fsys := newFilesystem(b, DefaultOptions())
	f, err := b.OpenFile(context.Background(), "f", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	h := newFileHandle(fsys.root, f)
	ctx := context.Background()
	if _, errno := h.Write(ctx, []byte("abc"), 0); errno != 0 {
		t.Fatalf("write: %v", errno)
	}
	if errno := h.Release(ctx); errno != 0 {
		t.Fatalf("release: %v", errno)
	}
	if _, errno := h.Read(ctx, make([]byte, 3), 0); errno != syscall.EBADF {
		t.Errorf("read after release: %v", errno)
	}
	if _, errno := h.Write(ctx, []byte("x"), 0); errno != syscall.EBADF {
		t.Errorf("write after release: %v", errno)
	}
	for name, fn := range map[string]func() syscall.Errno{
		"flush":   func() syscall.Errno { return h.Flush(ctx) },
		"fsync":   func() syscall.Errno { return h.Fsync(ctx, 0) },
		"release": func() syscall.Errno { return h.Release(ctx) },
		"trunc":   func() syscall.Errno { return h.truncate(0) },
		"stat":    func() syscall.Errno { _, e := h.stat(); return e },
	} {
		if errno := fn(); errno != syscall.EBADF {
			t.Errorf("%s after release: %v, want EBADF", name, errno)
		}
	}
}

// TestHandleReleaseRace runs reads and writes concurrently with Release
// (under -race): each must either succeed or get EBADF.
func TestHandleReleaseRace(t *testing.T) {
	dir := t.TempDir()
	b, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	fsys := newFilesystem(b, DefaultOptions())
	ctx := context.Background()
	for range 20 {
		f, err := b.OpenFile(ctx, "f", os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		h := newFileHandle(fsys.root, f)
		done := make(chan syscall.Errno, 8)
		for i := range 8 {
			go func() {
				var errno syscall.Errno
				if i%2 == 0 {
					_, errno = h.Write(ctx, []byte("data"), int64(i))
				} else {
					_, errno = h.Read(ctx, make([]byte, 4), 0)
				}
				done <- errno
			}()
		}
		h.Release(ctx)
		for range 8 {
			if errno := <-done; errno != 0 && errno != syscall.EBADF {
				t.Fatalf("op racing with release: %v, want success or EBADF", errno)
			}
		}
	}
}
