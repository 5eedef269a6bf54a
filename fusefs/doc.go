// Package fusefs presents a backend.Backend to the kernel as a FUSE
// filesystem, using go-fuse's fs package. It talks only to the
// backend.Backend interface and never to a concrete backend; it owns
// every kernel-facing policy (error numbers, owners, modes, read-only).
//
// # Path-based nodes
//
// Each file, directory or symlink the kernel knows is a node embedding
// fs.Inode. Nodes store no path: the backend path is recomputed from the
// go-fuse Inode tree on every operation (node.path), so a rename of a
// directory needs no bookkeeping in its descendants. A node whose last
// name is gone (unlinked, or renamed over) is unreachable from the root;
// path operations on it fail with ENOENT instead of touching whatever now
// lives at its old path, while operations through an open handle keep
// working (read, write, fstat of an unlinked file).
//
// # Inode numbers
//
// go-fuse hands out inode numbers (StableAttr.Ino == 0). The backend's
// FileInfo.Ino is ignored: SFTP has none, and a local directory may reuse
// a number after a delete, which would make go-fuse resurrect a stale
// node for an unrelated file. A lookup of a name whose node the kernel
// still holds reuses that node, so a number is stable per path for as
// long as the kernel caches it. A hard link made through the mount
// shares its target's node and number; links discovered later may show
// different numbers, which POSIX tools tolerate.
//
// # Attributes and READDIRPLUS
//
// Getattr prefers an open file handle (go-fuse supplies one when the
// node has any), so sizes reflect writes made through it. Directory
// handles implement fs.FileLookuper: the attributes the backend returned
// with the listing answer the kernel's READDIRPLUS, so `ls -l` costs one
// ReadDir rather than a stat per entry.
//
// # Cache coherence
//
// The caches between a reader and the storage, what ends each entry, and
// how long another client's change can stay hidden (defaults: attr_timeout
// and entry_timeout 1 s, negative_timeout 0):
//
//   - The kernel's names and attributes: kept EntryTimeout and
//     AttrTimeout; missing names NegativeTimeout (0: not kept). The
//     kernel updates them itself from the replies to this mount's own
//     operations.
//   - Listing snapshots (dircache.go): every listing read is kept for
//     ttl = min(EntryTimeout, AttrTimeout) and answers lookups in its
//     directory, positive and negative, without a round trip; several
//     lookups missing in a directory without one make it listed once in
//     the background (speculative listing). The kernel is only given the
//     rest of ttl for an answer from a snapshot. Memory bounds are in
//     dircache.go.
//   - Listings read ahead of a tree walk (dircache.go): a subdirectory's
//     listing read when its parent is opened during a walk serves the
//     next opendir of it once, within ttl.
//   - A directory's attributes (dirattr.go): for ttl after a GETATTR,
//     carried across this mount's own creations of files in it, so that
//     filling a directory does not stat it once per file, and across its
//     unlinks when the server's clock was seen to agree with ours to
//     the second within the last minute (the new mtime is then the
//     unlink's second), so that emptying one does not either.
//   - The page cache kept across opens (keepcache.go): only while the
//     file's size and mtime, read by this open, are those of the
//     previous open and its mtime had settled (2 s; SFTP mtimes have
//     whole seconds). The kernel also drops pages when a lookup or
//     getattr shows another mtime or size (FUSE_AUTO_INVAL_DATA).
//   - Read-ahead chunks (readahead.go): per open file, dropped when the
//     file's write generation moves.
//
// Another client's change therefore shows at most ttl (names,
// attributes, listings) late, like in the kernel's own caches; data at
// the next open (close-to-open: every open reads the file's attributes
// from the storage, and invalidates the kernel's when they changed, so
// that its reads go to the new size; an O_APPEND open also sets the
// kernel's size, node.go growKernelSize), except for a change that keeps
// size and mtime (keepcache.go). This mount's own changes show at once: every operation
// that changes the storage reports it with one call, filesystem.changed
// (change.go, with a table of what each operation does to each cache),
// and reads, stats and lookups of a file first wait for its writes in
// flight (writebehind.go). TestCoherenceAfterOwnChanges checks every
// operation against every cache over the local backend, pkg/sftp's
// server and OpenSSH.
//
// Background listings (speculative and read ahead) belong to the mount:
// Server.Wait and Server.Unmount cancel them and wait for them, so the
// backend can be closed afterwards.
//
// # Files
//
// A fileHandle wraps a backend.File; operations racing with Release get
// EBADF and never use a closed file. O_APPEND is stripped at open: the
// kernel sends the end-of-file offset, from the size it holds, with
// every append write. Flush
// (close(2)) waits for the handle's writes in flight and, unless the
// backend reports every write error from WriteAt itself
// (Capabilities.WritesAcked), syncs a handle that was written to,
// because it is the last place a deferred write error can reach the
// application. Opens that cannot write ask the kernel not to send FLUSH
// at all (FOPEN_NOFLUSH): for them it would be a round trip through the
// kernel with nothing to do, one of four on every small file read.
//
// Sequential readers are served from a window of concurrent large backend
// reads (readahead.go), and writes are pipelined (writebehind.go) with
// sticky errors surfaced at the next write, flush and fsync; both exist
// because a network backend is bound by round trips otherwise. Their
// consistency rules are in those files and in docs/perf.md. Their
// buffers are bounded per mount as well as per handle (budget.go,
// Options.ReadAheadTotal and WriteBehindTotal), so that a mount's memory
// does not grow with the number of files streamed at once: read-ahead
// beyond the bound is skipped, write-behind waits.
//
// Open keeps the kernel's page cache (FOPEN_KEEP_CACHE) when the file's
// size and mtime are those of the previous open, the mtime had settled
// (SFTP mtimes have whole seconds) and nothing was written through the
// mount since (keepcache.go).
//
// # Errors
//
// toErrno is the only translation from backend errors to errno: a
// syscall.Errno anywhere in the chain wins, then the io/fs sentinels
// (ENOENT, EEXIST, EACCES, EINVAL), errors.ErrUnsupported (ENOTSUP),
// timeouts (EIO, logged); anything else is logged and reported as EIO.
// Backend calls do not inherit the kernel's interrupt cancellation (see
// bctx).
//
// # Owners, modes, read-only
//
// With Options.UID/GID >= 0 every file is presented as owned by those
// ids, and chown succeeds without effect (Docker chowns a new volume's
// content when it copies image data in, and a failure there would abort
// the container's start). Without mapping, chown goes to the backend.
// Options.Umask clears bits from presented modes and from the modes of
// new files. Options.ReadOnly mounts with "ro" and additionally makes
// every mutating operation fail with EROFS inside the filesystem.
//
// Extended attributes are not supported: the first request answers
// ENOSYS, which the kernel remembers for the mount, so later requests
// fail with EOPNOTSUPP without a round trip.
package fusefs
