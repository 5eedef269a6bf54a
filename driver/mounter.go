package driver

import (
	"context"
	"log/slog"

	"github.com/sftpfs/sftpfs/backend"
)

// Mounter turns volume options into live mounts. The driver owns volume
// bookkeeping (names, reference counts, state, the guard mount); a Mounter
// owns everything about options, connections and FUSE. The production
// implementation is NewMounter; tests substitute a fake.
type Mounter interface {
	// Validate parses and checks opts without any network I/O and
	// describes the volume. Its error is shown to the user verbatim by
	// `docker volume create`, so it must name the option at fault, say how
	// to fix it, and contain no secret. log carries the volume's name
	// (volume=NAME), as in the other methods.
	Validate(opts map[string]string, log *slog.Logger) (Info, error)
	// Check connects and authenticates with opts (bounded by ctx), then
	// disconnects, so a volume that can never work fails at create time.
	Check(ctx context.Context, opts map[string]string, log *slog.Logger) (Info, error)
	// Canonical normalizes opts (aliases resolved, names normalized) so
	// that two creates of one name can be compared.
	Canonical(opts map[string]string) (map[string]string, error)
	// Mount connects and mounts the volume's filesystem on mountpoint.
	// Every event of the mount is logged to log; name labels its metrics.
	Mount(ctx context.Context, name string, opts map[string]string, mountpoint string, log *slog.Logger) (Mount, error)
}

// Info describes a volume for status output. None of it is secret.
type Info struct {
	Backend string // "sftp" or "local"
	Remote  string // user@host:port/path, or the local directory
	HostKey string // SHA256 fingerprint of the server's host key, if known
}

// Mount is one live mount made by a Mounter.
type Mount interface {
	// Unmount tears the mount down and releases its connection.
	Unmount() error
	// Alive checks, bounded by ctx, that the mount still answers.
	Alive(ctx context.Context) error
	// Status reports the connection state without blocking or I/O.
	Status() MountStatus
	// Done is closed when the filesystem server has stopped, whatever the
	// reason.
	Done() <-chan struct{}
}

// MountStatus is the live state of a Mount.
type MountStatus struct {
	State      backend.State // backend.StateConnected, ...
	Reconnects int64
	LastError  string
	HostKey    string
	// RejectedNames counts listing entries the server sent with names
	// that are not a single path element (dropped and logged).
	RejectedNames int64
}
