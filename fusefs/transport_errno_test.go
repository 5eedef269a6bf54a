package fusefs

import (
	"fmt"
	"io/fs"
	"log/slog"
	"syscall"
	"testing"
)

// A backend connection that breaks surfaces socket errnos inside its
// errors; applications must see EIO, not ECONNRESET or EPIPE from read(2).
func TestToErrnoTransportErrnosAreEIO(t *testing.T) {
	lg := slog.New(slog.DiscardHandler)
	for _, e := range []syscall.Errno{syscall.ECONNRESET, syscall.EPIPE, syscall.ETIMEDOUT, syscall.ENOTCONN, syscall.ECONNREFUSED} {
		err := &fs.PathError{Op: "readdir", Path: "d", Err: fmt.Errorf("write tcp 127.0.0.1:1->127.0.0.1:2: %w", e)}
		if got := toErrno(lg, nil, "readdir", "d", err); got != syscall.EIO {
			t.Errorf("toErrno(%v) = %v, want EIO", err, got)
		}
	}
	// File conditions still pass through.
	if got := toErrno(lg, nil, "rmdir", "d", &fs.PathError{Op: "rmdir", Path: "d", Err: syscall.ENOTEMPTY}); got != syscall.ENOTEMPTY {
		t.Errorf("ENOTEMPTY became %v", got)
	}
}
