package backend

import (
	"context"
	"io"
	"io/fs"
	"time"
)

// Backend is a tree of files rooted at one directory of some storage.
//
// All methods are safe for concurrent use. See the package documentation
// for the path and error conventions that every method follows.
type Backend interface {
	// Stat returns information about name, following a final symlink.
	// Missing: fs.ErrNotExist.
	Stat(ctx context.Context, name string) (FileInfo, error)

	// Lstat returns information about name without following a final
	// symlink. Missing: fs.ErrNotExist.
	Lstat(ctx context.Context, name string) (FileInfo, error)

	// ReadDir lists the directory name with Lstat semantics for each
	// entry. The result never contains "." or "..", and every entry's Name
	// is a single path element (no "/"); entries a backend cannot
	// represent safely are left out. Order is unspecified. Missing:
	// fs.ErrNotExist; not a directory: syscall.ENOTDIR.
	ReadDir(ctx context.Context, name string) ([]FileInfo, error)

	// OpenFile opens name with os.OpenFile flags (O_RDONLY, O_WRONLY,
	// O_RDWR, O_CREATE, O_EXCL, O_TRUNC; O_APPEND is not supported and
	// must be stripped by the caller, who passes explicit offsets). perm
	// is used only when the file is created. O_CREATE|O_EXCL on an
	// existing name: fs.ErrExist. Missing without O_CREATE:
	// fs.ErrNotExist. A directory: syscall.EISDIR when opened for
	// writing.
	OpenFile(ctx context.Context, name string, flag int, perm fs.FileMode) (File, error)

	// Mkdir creates the directory name with permission bits perm.
	// Exists: fs.ErrExist. Parent missing: fs.ErrNotExist.
	Mkdir(ctx context.Context, name string, perm fs.FileMode) error

	// Remove removes the non-directory name (a file, symlink, ...).
	// Missing: fs.ErrNotExist. A directory: syscall.EISDIR.
	Remove(ctx context.Context, name string) error

	// Rmdir removes the empty directory name. Missing: fs.ErrNotExist.
	// Not empty: syscall.ENOTEMPTY. Not a directory: syscall.ENOTDIR.
	Rmdir(ctx context.Context, name string) error

	// Rename moves oldname to newname. Without RenameNoReplace an
	// existing newname is replaced atomically where the backend can
	// (Capabilities.AtomicRename), with POSIX rules: a file may replace a
	// file, a directory may replace an empty directory (else
	// syscall.ENOTEMPTY); mixing kinds gives syscall.EISDIR or
	// syscall.ENOTDIR. With RenameNoReplace an existing newname gives
	// fs.ErrExist. Missing oldname: fs.ErrNotExist.
	Rename(ctx context.Context, oldname, newname string, flags RenameFlags) error

	// Symlink creates name as a symbolic link whose content is target.
	// target is stored verbatim and never interpreted. Exists:
	// fs.ErrExist.
	Symlink(ctx context.Context, target, name string) error

	// Readlink returns the content of the symbolic link name. Not a
	// symlink: fs.ErrInvalid.
	Readlink(ctx context.Context, name string) (string, error)

	// Link creates newname as a hard link to oldname.
	// errors.ErrUnsupported unless Capabilities.Link. Exists: fs.ErrExist.
	Link(ctx context.Context, oldname, newname string) error

	// Chmod sets the permission bits (fs.ModePerm plus setuid, setgid and
	// sticky) of name, following symlinks.
	Chmod(ctx context.Context, name string, mode fs.FileMode) error

	// Chown sets the numeric owner of name, following symlinks; -1
	// leaves that id unchanged.
	// errors.ErrUnsupported unless Capabilities.Chown.
	Chown(ctx context.Context, name string, uid, gid int) error

	// Chtimes sets the access and modification times of name, following
	// symlinks. A zero
	// time.Time leaves that time unchanged. Backends keep at least
	// second precision.
	Chtimes(ctx context.Context, name string, atime, mtime time.Time) error

	// Truncate sets the size of the regular file name, extending it with
	// zeros or cutting it.
	Truncate(ctx context.Context, name string, size int64) error

	// StatFS reports the capacity of the filesystem holding name.
	// errors.ErrUnsupported unless Capabilities.StatFS.
	StatFS(ctx context.Context, name string) (StatFS, error)

	// Capabilities says which optional operations work. It does not
	// change over the life of the Backend.
	Capabilities() Capabilities

	// Close releases the backend. Files still open become unusable.
	// A second Close returns nil.
	Close() error
}

// File is an open file of a Backend. Reads and writes carry explicit
// offsets, so a File has no seek position and is safe for concurrent use.
type File interface {
	// ReadAt follows io.ReaderAt: a short read at end of file returns
	// io.EOF.
	io.ReaderAt
	// WriteAt follows io.WriterAt. Writing past the end of file extends
	// it, leaving a hole of zeros.
	io.WriterAt
	// Truncate sets the file's size.
	Truncate(size int64) error
	// Sync makes data written so far durable on the storage where the
	// backend can (Capabilities.Fsync); otherwise it at least makes it
	// visible to other clients. A write error not yet reported is
	// reported here.
	Sync() error
	// Stat returns the file's current attributes.
	Stat() (FileInfo, error)
	// Close releases the file, reporting any write error not yet
	// reported. A second Close returns an error matching fs.ErrClosed and
	// has no other effect.
	Close() error
}

// FileInfo describes one file. It is a plain value so that backends can
// fill it from protocol attributes without allocating an interface.
type FileInfo struct {
	// Name is the final path element ("." for the root).
	Name string
	// Size in bytes; for a symlink, the length of its target.
	Size int64
	// Mode holds the type bits (fs.ModeDir, fs.ModeSymlink, ...) and the
	// permission bits including setuid, setgid and sticky.
	Mode fs.FileMode
	// ModTime and ATime are the modification and access times; ATime is
	// zero when the backend does not report it.
	ModTime time.Time
	ATime   time.Time
	// UID and GID are the numeric owner as the storage reports it.
	UID, GID uint32
	// Nlink is the hard-link count, 0 when unknown.
	Nlink uint32
	// Ino is a stable inode number when the storage has one, else 0. The
	// FUSE layer only uses it as a hint.
	Ino uint64
}

// IsDir reports whether the entry is a directory.
func (fi FileInfo) IsDir() bool { return fi.Mode.IsDir() }

// StatFS is filesystem capacity in units of BlockSize.
type StatFS struct {
	BlockSize   uint64
	Blocks      uint64
	BlocksFree  uint64
	BlocksAvail uint64
	Files       uint64
	FilesFree   uint64
	NameMax     uint64
}

// RenameFlags modify Rename.
type RenameFlags uint32

const (
	// RenameNoReplace fails with fs.ErrExist instead of replacing an
	// existing destination (renameat2 RENAME_NOREPLACE).
	RenameNoReplace RenameFlags = 1 << iota
)

// Capabilities lists the optional features of a backend, so that the FUSE
// layer can answer ENOTSUP early and so users can see what the server
// lacks (for SFTP, these follow the server's protocol extensions).
type Capabilities struct {
	// Link: hard links (SFTP: hardlink@openssh.com).
	Link bool
	// Symlink: symbolic links.
	Symlink bool
	// Chown: numeric owner changes.
	Chown bool
	// AtomicRename: Rename replaces an existing destination atomically
	// (SFTP: posix-rename@openssh.com). Without it the backend emulates
	// replacement with a remove followed by a rename.
	AtomicRename bool
	// StatFS: StatFS works (SFTP: statvfs@openssh.com).
	StatFS bool
	// Fsync: File.Sync reaches stable storage (SFTP: fsync@openssh.com).
	Fsync bool
	// Lsetstat: the storage could set attributes of a symlink itself
	// (SFTP: lsetstat@openssh.com). Reported for diagnostics only: no
	// contract method sets link attributes yet (pkg/sftp's client has no
	// lsetstat call), so the FUSE layer ignores chown and utimens on
	// symlinks.
	Lsetstat bool
	// WritesAcked: File.WriteAt returns only after the storage accepted
	// the data and reports every write error itself, never deferring one
	// to Sync or Close (SFTP: every write waits for the server's status
	// reply). The FUSE layer then needs no Sync at close(2) to surface
	// errors; fsync(2) still calls Sync for durability. Not a missing
	// feature when false, so Missing does not list it.
	WritesAcked bool
}

// Missing returns the names of the capabilities that are false, for logs
// and status output.
func (c Capabilities) Missing() []string {
	var m []string
	for _, f := range []struct {
		ok   bool
		name string
	}{
		{c.Link, "link"}, {c.Symlink, "symlink"}, {c.Chown, "chown"},
		{c.AtomicRename, "atomic-rename"}, {c.StatFS, "statfs"},
		{c.Fsync, "fsync"}, {c.Lsetstat, "lsetstat"},
	} {
		if !f.ok {
			m = append(m, f.name)
		}
	}
	return m
}
