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
		// failed operation; a socket error from the backend's
		// connection (found by the soak test: readdir failed with
		// ECONNRESET) is not a condition of the file. Both are EIO.
		if e != 0 && !transportErrno(e) {
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

// transportErrno reports errnos that only networking produces; they reach
// here wrapped in a backend's connection failure and mean "I/O error" for
// the file.
func transportErrno(e syscall.Errno) bool {
	switch e {
	case syscall.ECONNRESET, syscall.ECONNABORTED, syscall.ECONNREFUSED, syscall.EPIPE,
		syscall.ENOTCONN, syscall.ETIMEDOUT, syscall.ENETUNREACH, syscall.EHOSTUNREACH,
		syscall.ENETDOWN, syscall.EHOSTDOWN, syscall.ENETRESET:
		return true
	}
	return false
}
