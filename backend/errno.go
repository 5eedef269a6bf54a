package backend

import (
	"context"
	"errors"
	"io/fs"
	"syscall"
)

// Errno maps an error of a Backend or File to the errno an application
// should see; known is false when err has no POSIX meaning (it maps to
// EIO then, and callers log it). It is the one classification, shared by
// the FUSE layer (which answers the kernel with it) and the metrics (which
// count errors by it).
//
// The order matters: a backend that knows the precise POSIX condition
// returns (or wraps) a syscall.Errno, and that must win over the coarse
// io/fs classification, because every Errno also matches some fs
// sentinel (ENOTEMPTY would otherwise be reported as EEXIST).
func Errno(err error) (errno syscall.Errno, known bool) {
	if err == nil {
		return 0, true
	}
	var e syscall.Errno
	switch {
	case errors.As(err, &e):
		// A zero Errno wrapped in an error would report success for a
		// failed operation: EIO. Socket errnos never get here: a
		// backend keeps them out of its errors (package doc), so no
		// list of network errnos is needed.
		if e != 0 {
			return e, true
		}
	case errors.Is(err, fs.ErrNotExist):
		return syscall.ENOENT, true
	case errors.Is(err, fs.ErrExist):
		return syscall.EEXIST, true
	case errors.Is(err, fs.ErrPermission):
		return syscall.EACCES, true
	case errors.Is(err, fs.ErrInvalid):
		return syscall.EINVAL, true
	case errors.Is(err, errors.ErrUnsupported):
		return syscall.ENOTSUP, true
	case errors.Is(err, fs.ErrClosed):
		return syscall.EBADF, true
	case errors.Is(err, context.Canceled):
		return syscall.EINTR, true
	}
	// context.DeadlineExceeded included: the backend gave up waiting for
	// the storage. EIO is what applications expect from a failing disk;
	// ETIMEDOUT would surprise programs that never expect it from file
	// operations.
	return syscall.EIO, false
}
