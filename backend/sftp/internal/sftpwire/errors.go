package sftpwire

import (
	"errors"
	"fmt"
	"io/fs"
)

// SFTP status codes used here (draft-ietf-secsh-filexfer-02 section 7).
const (
	codeOK               = 0
	codeEOF              = 1
	codeNoSuchFile       = 2
	codePermissionDenied = 3
	codeFailure          = 4
)

// StatusError is an SSH_FXP_STATUS reply other than OK (or EOF, which a
// read turns into io.EOF).
type StatusError struct {
	Code uint32
	Msg  string
}

func (e *StatusError) Error() string {
	if e.Msg == "" {
		return fmt.Sprintf("sftp: status %d", e.Code)
	}
	return fmt.Sprintf("sftp: %q (status %d)", e.Msg, e.Code)
}

// Is lets errors.Is(err, fs.ErrNotExist) and fs.ErrPermission work as
// they do for pkg/sftp's errors.
func (e *StatusError) Is(target error) bool {
	switch target {
	case fs.ErrNotExist:
		return e.Code == codeNoSuchFile
	case fs.ErrPermission:
		return e.Code == codePermissionDenied
	}
	return false
}

// ErrConnLost is wrapped by every error of a call that failed because
// the stream broke or the client was closed.
var ErrConnLost = errors.New("sftp connection lost")

// connLost builds the error for a broken stream. The cause is kept as
// text only: a socket's errno (ECONNRESET) or io.EOF must not be mistaken
// for an answer about the file.
func connLost(cause error) error {
	if cause == nil {
		return ErrConnLost
	}
	return fmt.Errorf("%w: %s", ErrConnLost, cause.Error())
}

// ProtocolError is a reply that breaks the protocol; the client treats
// the stream as broken after it.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "sftp protocol error: " + e.Msg }
