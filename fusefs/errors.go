package fusefs

import (
	"context"
	"errors"
	"log/slog"
	"syscall"
	"time"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/internal/logx"
)

// toErrno is the one place where backend errors become the errno the
// kernel hands to the application (the classification is backend.Errno,
// shared with the metrics). op and name are only used to log errors that
// have no POSIX meaning; they never contain secrets (names are paths
// inside the volume). The logger carries the volume's name. every, if not
// nil, bounds these lines: while the storage is down every operation
// fails, and an application retrying in a loop must not turn into a log
// line per call (the count of lines held back is logged with the next).
func toErrno(log *slog.Logger, every *logx.Every, op, name string, err error) syscall.Errno {
	errno, known := backend.Errno(err)
	if known {
		return errno
	}
	held := 0
	if every != nil {
		var ok bool
		if ok, held = every.Allow(time.Now()); !ok {
			return errno
		}
	}
	msg := "storage operation failed"
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "storage operation timed out"
	}
	if held > 0 {
		log.Warn(msg, "op", op, "path", name, "err", err, "similar_not_logged", held)
	} else {
		log.Warn(msg, "op", op, "path", name, "err", err)
	}
	return errno
}

// errLogEvery bounds the "storage operation failed" lines of one mount.
const errLogEvery = 10 * time.Second
