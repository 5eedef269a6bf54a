package sftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"syscall"

	psftp "github.com/pkg/sftp"

	"github.com/sftpfs/sftpfs/backend"
)

// SFTP status codes (draft-ietf-secsh-filexfer-13 section 9.1; OpenSSH
// speaks version 3 and sends only 0-8, other servers send more).
const (
	fxEOF                 = 1
	fxNoSuchFile          = 2
	fxPermissionDenied    = 3
	fxFailure             = 4
	fxBadMessage          = 5
	fxNoConnection        = 6
	fxConnectionLost      = 7
	fxOpUnsupported       = 8
	fxInvalidHandle       = 9
	fxNoSuchPath          = 10
	fxFileAlreadyExists   = 11
	fxWriteProtect        = 12
	fxNoMedia             = 13
	fxNoSpaceOnFilesystem = 14
	fxQuotaExceeded       = 15
	fxDirNotEmpty         = 18
	fxNotADirectory       = 19
	fxInvalidFilename     = 20
	fxLinkLoop            = 21
	fxFileIsADirectory    = 24
)

// errnoFor maps an SFTP status code to the errno the contract wants; 0
// means "no specific errno" (a generic failure, to be disambiguated by the
// operation or reported as an I/O error).
func errnoFor(code uint32) syscall.Errno {
	switch code {
	case fxNoSuchFile, fxNoSuchPath:
		return syscall.ENOENT
	case fxPermissionDenied:
		return syscall.EACCES
	case fxOpUnsupported:
		return syscall.ENOTSUP
	case fxFileAlreadyExists:
		return syscall.EEXIST
	case fxWriteProtect, fxNoMedia:
		return syscall.EROFS
	case fxNoSpaceOnFilesystem:
		return syscall.ENOSPC
	case fxQuotaExceeded:
		return syscall.EDQUOT
	case fxDirNotEmpty:
		return syscall.ENOTEMPTY
	case fxNotADirectory:
		return syscall.ENOTDIR
	case fxInvalidFilename:
		return syscall.EINVAL
	case fxLinkLoop:
		return syscall.ELOOP
	case fxFileIsADirectory:
		return syscall.EISDIR
	case fxInvalidHandle:
		return syscall.EBADF
	}
	return 0
}

// classify returns the errno for err, or 0 when err is a generic failure,
// a connection problem or anything else without a precise meaning.
func classify(err error) syscall.Errno {
	var se *psftp.StatusError
	switch {
	case err == nil, isTransportErr(err):
		// A socket's errno (ECONNRESET, EPIPE, ...) says what happened
		// to the connection, not to the file.
		return 0
	case errors.As(err, &se):
		return errnoFor(se.Code)
	}
	if code, ok := wireStatus(err); ok {
		return errnoFor(code)
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
		return syscall.ENOENT
	case errors.Is(err, os.ErrPermission):
		return syscall.EACCES
	case errors.Is(err, os.ErrExist):
		return syscall.EEXIST
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return 0
}

// isGenericFailure reports whether err is SSH_FX_FAILURE, the status
// OpenSSH (protocol version 3) sends for every errno it cannot express;
// callers then find the precise condition with a follow-up Lstat.
func isGenericFailure(err error) bool {
	var se *psftp.StatusError
	if errors.As(err, &se) {
		return se.Code == fxFailure
	}
	code, ok := wireStatus(err)
	return ok && code == fxFailure
}

// pathErr builds the error returned to backend callers: a *fs.PathError
// with the contract's name (not the remote path, which may reveal the
// server layout) whose Err is an Errno when one is known.
func pathErr(op, name string, err error) error {
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == name && pe.Op == op {
		return err
	}
	if errno := classify(err); errno != 0 {
		return &fs.PathError{Op: op, Path: name, Err: errno}
	}
	return &fs.PathError{Op: op, Path: name, Err: ioError{describe(err)}}
}

// isTransportErr reports whether err is a failure of the network below
// SFTP: a connection the backend declared broken, or an error of the
// socket itself (the only source of a syscall.Errno here, since pkg/sftp
// never turns a server status into one).
func isTransportErr(err error) bool {
	var ce *connError
	var oe *net.OpError
	var se *os.SyscallError
	return errors.As(err, &ce) || errors.As(err, &oe) || errors.As(err, &se) || errors.Is(err, net.ErrClosed)
}

// ioError is an I/O failure without a POSIX meaning (a broken connection,
// a timeout, a generic server failure). It keeps err's text and lets
// errors.Is and errors.As reach err's chain (context.DeadlineExceeded,
// *psftp.StatusError, ...), except for a syscall.Errno: the contract
// reserves an Errno in the chain for a condition of the file, and a
// socket's ECONNRESET is not one (the FUSE layer reports this as EIO).
type ioError struct{ err error }

func (e ioError) Error() string { return e.err.Error() }

func (e ioError) Is(target error) bool {
	if _, ok := target.(syscall.Errno); ok {
		return false
	}
	return errors.Is(e.err, target)
}

func (e ioError) As(target any) bool {
	if _, ok := target.(*syscall.Errno); ok {
		return false
	}
	return errors.As(e.err, target)
}

// errnoErr is pathErr with a known errno.
func errnoErr(op, name string, errno syscall.Errno) error {
	if errno == syscall.EINVAL {
		return &fs.PathError{Op: op, Path: name, Err: backend.Invalid("")}
	}
	return &fs.PathError{Op: op, Path: name, Err: errno}
}

// describe turns the leftover (I/O) errors into readable text without
// losing the chain.
func describe(err error) error {
	var se *psftp.StatusError
	switch {
	case errors.As(err, &se), isWireStatus(err):
		return fmt.Errorf("server reported failure: %w", err)
	case errors.Is(err, psftp.ErrSSHFxConnectionLost), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("sftp connection lost: %w", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return err
}

// connError marks an error as a failure of the connection (not of the
// operation), which makes the caller reconnect and maybe retry.
type connError struct{ err error }

func (e *connError) Error() string { return e.err.Error() }
func (e *connError) Unwrap() error { return e.err }

// isConnErr decides whether err (from a call on t) means the connection
// is broken. pkg/sftp reports a dead connection as ErrSSHFxConnectionLost
// or as the transport's own error; server statuses and the io/fs
// sentinels it derives from them are answers, not failures.
func isConnErr(t *transport, err error) bool {
	if err == nil {
		return false
	}
	var ce *connError
	if errors.As(err, &ce) {
		return true
	}
	if errors.Is(err, psftp.ErrSSHFxConnectionLost) || errors.Is(err, psftp.ErrSSHFxNoConnection) {
		return true
	}
	var se *psftp.StatusError
	if errors.As(err, &se) {
		return se.Code == fxConnectionLost || se.Code == fxNoConnection
	}
	if code, ok := wireStatus(err); ok {
		return code == fxConnectionLost || code == fxNoConnection
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if err == io.EOF || errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) ||
		errors.Is(err, os.ErrExist) || errors.Is(err, os.ErrClosed) {
		// io.EOF is also what a write on a closed channel returns; it only
		// means "connection lost" when the transport is dead.
		return err == io.EOF && t.isDead()
	}
	// Transport errors (ECONNRESET, EPIPE, net.ErrClosed, ...), unexpected
	// packets, internal inconsistency: the stream can no longer be
	// trusted. pkg/sftp never turns a server status into an Errno.
	return true
}

// FieldError is one problem Config.Validate found. Field is the setting to
// change, named as in the sftpfs option table (host, port, identity,
// hostkey, max_packet, ...), so a caller can point at the option without
// parsing Msg; Msg says what is wrong and how to fix it, without secrets.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Msg }
