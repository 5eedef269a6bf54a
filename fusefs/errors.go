package fusefs

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"syscall"
)

// toErrno is the one place where backend errors become the errno the
// kernel hands to the application. op and name are only used to log
// errors that have no POSIX meaning; they never contain secrets (names
// are paths inside the volume).
//
// The order matters: a backend that knows the precise POSIX condition
// returns (or wraps) a syscall.Errno, and that must win over the coarse
// io/fs classification, because every Errno also matches some fs
// sentinel (ENOTEMPTY would otherwise be reported as EEXIST).
func toErrno(log *slog.Logger, op, name string, err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno):
		if errno == 0 {
			// A zero Errno wrapped in an error would report success for
			// a failed operation; treat it as an unexplained failure.
			break
		}
		return errno
	case errors.Is(err, fs.ErrNotExist):
		return syscall.ENOENT
	case errors.Is(err, fs.ErrExist):
		return syscall.EEXIST
	case errors.Is(err, fs.ErrPermission):
		return syscall.EACCES
	case errors.Is(err, fs.ErrInvalid):
		return syscall.EINVAL
	case errors.Is(err, errors.ErrUnsupported):
		return syscall.ENOTSUP
	case errors.Is(err, fs.ErrClosed):
		return syscall.EBADF
	case errors.Is(err, context.DeadlineExceeded):
		// The backend gave up waiting for the storage (for SFTP: the
		// server did not answer within the operation timeout). EIO is
		// what applications expect from a failing disk; ETIMEDOUT would
		// surprise programs that never expect it from file operations.
		log.Warn("storage operation timed out", "op", op, "path", name, "err", err)
		return syscall.EIO
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	}
	log.Warn("storage operation failed", "op", op, "path", name, "err", err)
	return syscall.EIO
}
