package backend

import (
	"io/fs"
	"syscall"
)

// Invalid returns the error for a malformed name or argument: it matches
// both fs.ErrInvalid (which the contract promises) and syscall.EINVAL
// (which the FUSE layer hands to the kernel); a bare syscall.EINVAL does
// not match fs.ErrInvalid. msg says what was wrong and may be empty.
func Invalid(msg string) error { return invalidError{msg} }

type invalidError struct{ msg string }

func (e invalidError) Error() string {
	if e.msg == "" {
		return "invalid argument"
	}
	return e.msg + ": invalid argument"
}

func (e invalidError) Unwrap() []error { return []error{syscall.EINVAL, fs.ErrInvalid} }
