// Package backend defines the storage contract that every sftpfs backend
// implements and that the FUSE layer (package fusefs) consumes.
//
// The contract is deliberately small, path based and shaped like package
// os, so that a backend is a thin translation onto its protocol (SFTP, a
// local directory) and the FUSE layer owns all kernel-facing policy.
//
// # Paths
//
// Every name passed to a Backend is a slash-separated path relative to the
// backend's root, in the form accepted by ValidName (io/fs.ValidPath, but
// names need not be UTF-8 and may not contain NUL): "." is the root, there
// is no leading slash, no trailing slash and no empty, "." or ".." element.
// A backend rejects any other name with an error matching fs.ErrInvalid and
// never resolves it, so a caller can never reach outside the root by name.
//
// # Errors
//
// Errors are *fs.PathError values (or wrap one) whose Err classifies the
// failure so that errors.Is works against the io/fs sentinels:
//
//   - fs.ErrNotExist: the name (or a parent directory) does not exist.
//   - fs.ErrExist: the name exists and the operation needed it not to.
//   - fs.ErrPermission: the server or OS refused access.
//   - fs.ErrInvalid: the name or an argument is malformed.
//   - errors.ErrUnsupported: the backend cannot do this at all (see
//     Capabilities).
//
// Where a more precise POSIX condition is known, the error also matches the
// syscall.Errno for it (syscall.ENOTEMPTY, syscall.ENOTDIR, syscall.EISDIR,
// syscall.ENOSPC, ...). syscall.Errno values already satisfy errors.Is
// against the fs sentinels, so backends may simply return an Errno. An
// Errno in an error's chain always describes the file, never the
// transport: a network backend must not let its socket's errno
// (ECONNRESET, EPIPE, ETIMEDOUT, ...) be matched by errors.Is or
// errors.As. Any other error is an I/O failure; the FUSE layer reports it
// as EIO.
//
// # Contexts
//
// Methods on Backend take a context; a backend must return promptly (with
// an error wrapping ctx.Err()) once it is done. File methods have the
// io.ReaderAt/io.WriterAt shape and no context: a network backend bounds
// each of them with its own operation timeout instead.
package backend
