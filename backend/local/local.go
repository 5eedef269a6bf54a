package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sftpfs/sftpfs/backend"
)

// Backend is a backend.Backend rooted at one local directory. Create it
// with New; it is safe for concurrent use.
type Backend struct {
	root *os.Root
	// escapes is the error value os.Root uses for "path escapes from
	// parent". os does not export it, so New captures it once by
	// resolving ".." and keeps it here to recognise it by identity
	// instead of by message text.
	escapes error

	mu     sync.Mutex
	closed bool
	files  map[*file]struct{}
}

var _ backend.Backend = (*Backend)(nil)

// New returns a Backend rooted at the existing directory root.
func New(root string) (*Backend, error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("local backend: cannot open root directory %q (it must be an existing, readable directory): %w", root, err)
	}
	b := &Backend{root: r, files: make(map[*file]struct{})}
	if _, err := r.Lstat(".."); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			if _, isErrno := pe.Err.(syscall.Errno); !isErrno {
				b.escapes = pe.Err
			}
		}
	}
	return b, nil
}

// escapeError replaces os.Root's escape error. It wraps EACCES so that the
// FUSE layer reports "permission denied" and errors.Is matches
// fs.ErrPermission.
type escapeError struct{}

func (escapeError) Error() string {
	return "path leaves the backend root (a symlink points outside it; only symlinks that stay inside the root are followed): permission denied"
}
func (escapeError) Unwrap() error { return syscall.EACCES }

// fail builds the *fs.PathError the contract asks for and normalises a few
// errors from the os package.
func (b *Backend) fail(op, name string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	switch {
	case b.escapes != nil && err == b.escapes:
		err = escapeError{}
	case err == syscall.EINVAL:
		err = backend.Invalid("")
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// check validates name and ctx before an operation.
func (b *Backend) check(ctx context.Context, op, name string) error {
	if err := ctx.Err(); err != nil {
		return &fs.PathError{Op: op, Path: name, Err: err}
	}
	if b.isClosed() {
		return &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("local backend is closed: %w", fs.ErrClosed)}
	}
	if !backend.ValidName(name) {
		return &fs.PathError{Op: op, Path: name, Err: backend.Invalid("not a valid relative path (want backend.ValidName form: no leading or trailing slash, no empty, . or .. elements, no NUL)")}
	}
	return nil
}

// inParent opens the parent directory of name through the os.Root and
// calls fn with its descriptor and the final element of name, so that *at
// system calls act on exactly that entry without resolving anything else.
// name must be valid and not ".".
func (b *Backend) inParent(name string, fn func(dirfd int, base string) error) error {
	d, err := b.root.OpenFile(path.Dir(name), os.O_RDONLY|unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	rc, err := d.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) {
		opErr = ignoringEINTR(func() error { return fn(int(fd), path.Base(name)) })
	}); err != nil {
		return err
	}
	return opErr
}

func ignoringEINTR(fn func() error) error {
	for {
		err := fn()
		if err != syscall.EINTR {
			return err
		}
	}
}

// Stat implements backend.Backend.
func (b *Backend) Stat(ctx context.Context, name string) (backend.FileInfo, error) {
	if err := b.check(ctx, "stat", name); err != nil {
		return backend.FileInfo{}, err
	}
	fi, err := b.root.Stat(name)
	if err != nil {
		return backend.FileInfo{}, b.fail("stat", name, err)
	}
	return infoFromOS(path.Base(name), fi), nil
}

// Lstat implements backend.Backend.
func (b *Backend) Lstat(ctx context.Context, name string) (backend.FileInfo, error) {
	if err := b.check(ctx, "lstat", name); err != nil {
		return backend.FileInfo{}, err
	}
	fi, err := b.root.Lstat(name)
	if err != nil {
		return backend.FileInfo{}, b.fail("lstat", name, err)
	}
	return infoFromOS(path.Base(name), fi), nil
}

// ReadDir implements backend.Backend.
func (b *Backend) ReadDir(ctx context.Context, name string) ([]backend.FileInfo, error) {
	if err := b.check(ctx, "readdir", name); err != nil {
		return nil, err
	}
	d, err := b.root.OpenFile(name, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, b.fail("readdir", name, err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, b.fail("readdir", name, err)
	}
	rc, err := d.SyscallConn()
	if err != nil {
		return nil, b.fail("readdir", name, err)
	}
	out := make([]backend.FileInfo, 0, len(names))
	var statErr error
	if err := rc.Control(func(fd uintptr) {
		for _, n := range names {
			if err := ctx.Err(); err != nil {
				statErr = err
				return
			}
			if n == "" || n == "." || n == ".." || containsSlash(n) {
				continue
			}
			var st unix.Stat_t
			err := ignoringEINTR(func() error {
				return unix.Fstatat(int(fd), n, &st, unix.AT_SYMLINK_NOFOLLOW)
			})
			if err == unix.ENOENT {
				// Removed between listing and lstat: it is gone now.
				continue
			}
			if err != nil {
				statErr = err
				return
			}
			out = append(out, infoFromUnix(n, &st))
		}
	}); err != nil {
		return nil, b.fail("readdir", name, err)
	}
	if statErr != nil {
		return nil, b.fail("readdir", name, statErr)
	}
	return out, nil
}

func containsSlash(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return true
		}
	}
	return false
}

// OpenFile implements backend.Backend.
func (b *Backend) OpenFile(ctx context.Context, name string, flag int, perm fs.FileMode) (backend.File, error) {
	if err := b.check(ctx, "open", name); err != nil {
		return nil, err
	}
	if flag&os.O_APPEND != 0 {
		return nil, &fs.PathError{Op: "open", Path: name, Err: backend.Invalid("O_APPEND is not supported; the caller must strip it and write at explicit offsets")}
	}
	f, err := b.root.OpenFile(name, flag, perm&backend.PermBits)
	if err != nil {
		return nil, b.fail("open", name, err)
	}
	lf := &file{b: b, f: f, name: name}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("local backend is closed: %w", fs.ErrClosed)}
	}
	b.files[lf] = struct{}{}
	b.mu.Unlock()
	return lf, nil
}

// Mkdir implements backend.Backend.
func (b *Backend) Mkdir(ctx context.Context, name string, perm fs.FileMode) error {
	if err := b.check(ctx, "mkdir", name); err != nil {
		return err
	}
	if err := b.root.Mkdir(name, perm&fs.ModePerm); err != nil {
		return b.fail("mkdir", name, err)
	}
	// os.Root.Mkdir only accepts the nine permission bits; apply the
	// special bits afterwards so that Mkdir honours the whole perm.
	if special := perm & (fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky); special != 0 {
		fi, err := b.root.Lstat(name)
		if err != nil {
			return b.fail("mkdir", name, err)
		}
		if err := b.root.Chmod(name, fi.Mode().Perm()|special); err != nil {
			return b.fail("mkdir", name, err)
		}
	}
	return nil
}

// Remove implements backend.Backend.
func (b *Backend) Remove(ctx context.Context, name string) error {
	if err := b.check(ctx, "remove", name); err != nil {
		return err
	}
	if name == "." {
		return &fs.PathError{Op: "remove", Path: name, Err: syscall.EISDIR}
	}
	// unlinkat without AT_REMOVEDIR refuses directories with EISDIR, which
	// os.Root.Remove would instead remove if empty.
	err := b.inParent(name, func(dirfd int, base string) error {
		return unix.Unlinkat(dirfd, base, 0)
	})
	if err != nil {
		return b.fail("remove", name, err)
	}
	return nil
}

// Rmdir implements backend.Backend.
func (b *Backend) Rmdir(ctx context.Context, name string) error {
	if err := b.check(ctx, "rmdir", name); err != nil {
		return err
	}
	if name == "." {
		return &fs.PathError{Op: "rmdir", Path: name, Err: syscall.EBUSY}
	}
	err := b.inParent(name, func(dirfd int, base string) error {
		err := unix.Unlinkat(dirfd, base, unix.AT_REMOVEDIR)
		if err == unix.EEXIST {
			// POSIX allows EEXIST for a non-empty directory; the contract
			// says ENOTEMPTY.
			err = unix.ENOTEMPTY
		}
		return err
	})
	if err != nil {
		return b.fail("rmdir", name, err)
	}
	return nil
}

// Rename implements backend.Backend.
func (b *Backend) Rename(ctx context.Context, oldname, newname string, flags backend.RenameFlags) error {
	if err := b.check(ctx, "rename", oldname); err != nil {
		return err
	}
	if err := b.check(ctx, "rename", newname); err != nil {
		return err
	}
	if flags&^backend.RenameNoReplace != 0 {
		return &fs.PathError{Op: "rename", Path: oldname, Err: backend.Invalid(fmt.Sprintf("unknown rename flags %#x", uint32(flags)))}
	}
	if oldname == "." || newname == "." {
		return &fs.PathError{Op: "rename", Path: oldname, Err: syscall.EBUSY}
	}
	noReplace := flags&backend.RenameNoReplace != 0
	err := b.inParent(oldname, func(oldfd int, oldbase string) error {
		return b.inParent(newname, func(newfd int, newbase string) error {
			if !noReplace {
				err := unix.Renameat(oldfd, oldbase, newfd, newbase)
				if err == unix.EEXIST {
					err = unix.ENOTEMPTY
				}
				return err
			}
			err := unix.Renameat2(oldfd, oldbase, newfd, newbase, unix.RENAME_NOREPLACE)
			if err == unix.EINVAL || err == unix.ENOSYS {
				// The filesystem (or kernel) lacks RENAME_NOREPLACE.
				return renameNoReplaceFallback(oldfd, oldbase, newfd, newbase)
			}
			return err
		})
	})
	if err != nil {
		return b.fail("rename", oldname, err)
	}
	return nil
}

// renameNoReplaceFallback emulates RENAME_NOREPLACE. A non-directory is
// hard-linked to the new name (which fails atomically if it exists) and
// then unlinked from the old one, so there is no race. A directory cannot
// be hard-linked: it is checked with lstat and then renamed, which leaves
// a small window in which a concurrently created destination would be
// replaced (only if it is an empty directory, since rename(2) refuses to
// put a directory over anything else).
func renameNoReplaceFallback(oldfd int, oldbase string, newfd int, newbase string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(oldfd, oldbase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if err := unix.Linkat(oldfd, oldbase, newfd, newbase, 0); err != nil {
			return err
		}
		return unix.Unlinkat(oldfd, oldbase, 0)
	}
	var nst unix.Stat_t
	switch err := unix.Fstatat(newfd, newbase, &nst, unix.AT_SYMLINK_NOFOLLOW); err {
	case nil:
		return unix.EEXIST
	case unix.ENOENT:
	default:
		return err
	}
	return unix.Renameat(oldfd, oldbase, newfd, newbase)
}

// Symlink implements backend.Backend.
func (b *Backend) Symlink(ctx context.Context, target, name string) error {
	if err := b.check(ctx, "symlink", name); err != nil {
		return err
	}
	if err := b.root.Symlink(target, name); err != nil {
		return b.fail("symlink", name, err)
	}
	return nil
}

// Readlink implements backend.Backend.
func (b *Backend) Readlink(ctx context.Context, name string) (string, error) {
	if err := b.check(ctx, "readlink", name); err != nil {
		return "", err
	}
	t, err := b.root.Readlink(name)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) && pe.Err == syscall.EINVAL {
			return "", &fs.PathError{Op: "readlink", Path: name, Err: backend.Invalid("not a symlink")}
		}
		return "", b.fail("readlink", name, err)
	}
	return t, nil
}

// Link implements backend.Backend.
func (b *Backend) Link(ctx context.Context, oldname, newname string) error {
	if err := b.check(ctx, "link", oldname); err != nil {
		return err
	}
	if err := b.check(ctx, "link", newname); err != nil {
		return err
	}
	if err := b.root.Link(oldname, newname); err != nil {
		return b.fail("link", newname, err)
	}
	return nil
}

// Chmod implements backend.Backend.
func (b *Backend) Chmod(ctx context.Context, name string, mode fs.FileMode) error {
	if err := b.check(ctx, "chmod", name); err != nil {
		return err
	}
	if err := b.root.Chmod(name, mode&backend.PermBits); err != nil {
		return b.fail("chmod", name, err)
	}
	return nil
}

// Chown implements backend.Backend. Like SFTP SETSTAT it follows a final
// symlink.
func (b *Backend) Chown(ctx context.Context, name string, uid, gid int) error {
	if err := b.check(ctx, "chown", name); err != nil {
		return err
	}
	if err := b.root.Chown(name, uid, gid); err != nil {
		return b.fail("chown", name, err)
	}
	return nil
}

// Chtimes implements backend.Backend. A zero time is passed to
// utimensat as UTIME_OMIT by os.Root, so it is left unchanged.
func (b *Backend) Chtimes(ctx context.Context, name string, atime, mtime time.Time) error {
	if err := b.check(ctx, "chtimes", name); err != nil {
		return err
	}
	if atime.IsZero() && mtime.IsZero() {
		// Nothing to change, but still report a missing name.
		if _, err := b.root.Stat(name); err != nil {
			return b.fail("chtimes", name, err)
		}
		return nil
	}
	if err := b.root.Chtimes(name, atime, mtime); err != nil {
		return b.fail("chtimes", name, err)
	}
	return nil
}

// Truncate implements backend.Backend.
func (b *Backend) Truncate(ctx context.Context, name string, size int64) error {
	if err := b.check(ctx, "truncate", name); err != nil {
		return err
	}
	if size < 0 {
		return &fs.PathError{Op: "truncate", Path: name, Err: backend.Invalid("negative size")}
	}
	f, err := b.root.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return b.fail("truncate", name, err)
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return b.fail("truncate", name, err)
	}
	return nil
}

// StatFS implements backend.Backend.
func (b *Backend) StatFS(ctx context.Context, name string) (backend.StatFS, error) {
	if err := b.check(ctx, "statfs", name); err != nil {
		return backend.StatFS{}, err
	}
	f, err := b.root.OpenFile(name, os.O_RDONLY|unix.O_PATH, 0)
	if err != nil {
		return backend.StatFS{}, b.fail("statfs", name, err)
	}
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return backend.StatFS{}, b.fail("statfs", name, err)
	}
	var st unix.Statfs_t
	var sErr error
	if err := rc.Control(func(fd uintptr) {
		sErr = ignoringEINTR(func() error { return unix.Fstatfs(int(fd), &st) })
	}); err != nil {
		return backend.StatFS{}, b.fail("statfs", name, err)
	}
	if sErr != nil {
		return backend.StatFS{}, b.fail("statfs", name, sErr)
	}
	return backend.StatFS{
		BlockSize:   uint64(st.Bsize),
		Blocks:      st.Blocks,
		BlocksFree:  st.Bfree,
		BlocksAvail: st.Bavail,
		Files:       st.Files,
		FilesFree:   st.Ffree,
		NameMax:     uint64(st.Namelen),
	}, nil
}

// Capabilities implements backend.Backend. Every optional operation works
// locally except setting attributes on a symlink itself.
func (b *Backend) Capabilities() backend.Capabilities {
	return backend.Capabilities{
		Link:         true,
		Symlink:      true,
		Chown:        true,
		AtomicRename: true,
		StatFS:       true,
		Fsync:        true,
	}
}

// Close implements backend.Backend. It closes every file still open, so
// that they become unusable as the contract says, and then the root.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	files := b.files
	b.files = nil
	b.mu.Unlock()
	for f := range files {
		f.f.Close()
	}
	return b.root.Close()
}

func (b *Backend) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

func (b *Backend) forget(f *file) {
	b.mu.Lock()
	delete(b.files, f)
	b.mu.Unlock()
}

// file is a backend.File over an *os.File. *os.File already gives
// pread/pwrite semantics and returns os.ErrClosed (== fs.ErrClosed) on a
// second Close, so the wrapper only converts errors and attributes.
type file struct {
	b    *Backend
	f    *os.File
	name string
}

func (f *file) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.f.ReadAt(p, off)
	if err != nil && err != io.EOF {
		return n, f.b.fail("read", f.name, err)
	}
	return n, err
}

func (f *file) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.f.WriteAt(p, off)
	if err != nil {
		return n, f.b.fail("write", f.name, err)
	}
	return n, nil
}

func (f *file) Truncate(size int64) error {
	if size < 0 {
		return &fs.PathError{Op: "truncate", Path: f.name, Err: backend.Invalid("negative size")}
	}
	if err := f.f.Truncate(size); err != nil {
		return f.b.fail("truncate", f.name, err)
	}
	return nil
}

func (f *file) Sync() error {
	if err := f.f.Sync(); err != nil {
		return f.b.fail("sync", f.name, err)
	}
	return nil
}

func (f *file) Stat() (backend.FileInfo, error) {
	fi, err := f.f.Stat()
	if err != nil {
		return backend.FileInfo{}, f.b.fail("stat", f.name, err)
	}
	return infoFromOS(path.Base(f.name), fi), nil
}

func (f *file) Close() error {
	err := f.f.Close()
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) && errors.Is(pe.Err, os.ErrClosed) {
			return &fs.PathError{Op: "close", Path: f.name, Err: fs.ErrClosed}
		}
		return f.b.fail("close", f.name, err)
	}
	f.b.forget(f)
	return nil
}
