package fusefs

import (
	"io/fs"
	"log/slog"
	"time"
)

// Options control how a backend is presented to the kernel. The zero value
// is not useful; start from DefaultOptions.
type Options struct {
	// UID and GID, when >= 0, present every file as owned by that id
	// instead of the owner the storage reports. Remote numeric ids rarely
	// mean anything on the local machine, so containers running as a
	// non-root user need this to be able to write (see PEERS: vieux #17).
	UID, GID int
	// Umask clears permission bits from every mode the storage reports
	// (and from modes of newly created files).
	Umask fs.FileMode
	// ReadOnly makes every mutating operation fail with EROFS inside the
	// filesystem, whatever the mount flags or the remote permissions say.
	ReadOnly bool
	// NoExec mounts with noexec: programs on the mount cannot be run
	// (mount(8)'s noexec, which fstab's "user" implies).
	NoExec bool
	// AllowOther lets users other than the mounting one access the mount;
	// required for containers. DefaultPermissions then makes the kernel
	// enforce the presented modes.
	AllowOther         bool
	DefaultPermissions bool
	// AttrTimeout, EntryTimeout and NegativeTimeout are the kernel cache
	// lifetimes of attributes, names and missing names.
	AttrTimeout, EntryTimeout, NegativeTimeout time.Duration
	// MaxWrite is the largest write request the kernel sends.
	MaxWrite int
	// MaxReadAhead is how far the kernel reads ahead of a sequential
	// reader; 0 means MaxWrite (the kernel caps it at its own maximum).
	MaxReadAhead int
	// ReadAhead is how many bytes of concurrent backend reads a handle
	// keeps in flight ahead of a sequential reader (readahead.go); 0
	// disables it.
	ReadAhead int
	// WriteBehind is how many backend writes a handle keeps in flight
	// before write(2) waits (writebehind.go); 0 makes every write wait
	// for the storage.
	WriteBehind int
	// ReadAheadTotal and WriteBehindTotal bound the bytes of read-ahead
	// and of write-behind buffers held by all handles of the mount
	// together (budget.go); 0 means no bound across handles.
	ReadAheadTotal, WriteBehindTotal int
	// Symlinks says how readlink shows targets that lead out of the
	// mount (symlink.go). The zero value means SymlinkContain.
	Symlinks SymlinkPolicy
	// FSName and Subtype appear in /proc/mounts ("sftpfs#user@host:/p").
	FSName, Subtype string
	// Debug logs every FUSE request (go-fuse's debug output).
	Debug bool
	// Logger receives warnings and errors; nil discards them.
	Logger *slog.Logger
	// ServeOnly declares that the mounting process never does file I/O
	// on the mount itself (the plugin and `sftpfs mount`). Mount then
	// makes no request to its own mount (mount.go): a process killed
	// while one of its threads waits for an answer from its own FUSE
	// server can never finish exiting. Leave it false when the process
	// reads or writes the mount (tests): go-fuse's mount-time probe is
	// what keeps the Go runtime's poller from sending POLL requests that
	// could deadlock such a process.
	ServeOnly bool
}

// DefaultOptions returns the defaults used by `sftpfs mount` and the
// plugin before user options are applied.
func DefaultOptions() Options {
	return Options{
		UID: -1, GID: -1,
		Umask:              0,
		AttrTimeout:        time.Second,
		EntryTimeout:       time.Second,
		NegativeTimeout:    0,
		MaxWrite:           1 << 20,
		ReadAhead:          4 << 20,
		WriteBehind:        8,
		ReadAheadTotal:     16 << 20,
		WriteBehindTotal:   16 << 20,
		DefaultPermissions: true,
		Symlinks:           SymlinkContain,
		Subtype:            "sftpfs",
	}
}
