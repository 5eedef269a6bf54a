// Package local implements backend.Backend on a directory of the local
// filesystem.
//
// # Containment
//
// A Backend is built on os.Root, so no operation can reach a file outside
// the root directory, whatever the name or any symlink on the way says:
// every path is resolved one element at a time relative to an open
// directory descriptor with O_NOFOLLOW, and symlinks are followed by the
// resolver itself only while they stay inside the root. A symlink that
// points outside the root (absolute, or with enough ".." elements) makes
// the operation fail with an error matching fs.ErrPermission and
// syscall.EACCES; it is never followed. Because resolution is relative to
// descriptors and not re-checked paths, swapping a directory for a
// symlink while an operation runs cannot redirect it outside the root
// either.
//
// Operations that os.Root does not offer with the exact semantics of the
// backend contract (Remove that refuses directories, Rmdir that refuses
// files, Rename with RenameNoReplace, ReadDir with per-entry lstat,
// StatFS) open the parent directory through the os.Root and then issue the
// *at system call on that descriptor with a single, validated path
// element, so they inherit the same guarantee.
//
// Names are checked with backend.ValidName before anything is resolved;
// other names fail with fs.ErrInvalid.
//
// # Permissions
//
// Files and directories are created with the process umask applied, as
// os.OpenFile and os.Mkdir do. Chmod, Chown and Chtimes follow a final
// symlink (like SFTP SETSTAT); os.Root documents that on Unix these three
// may act on a symlink itself if a regular file is swapped for a symlink
// while they run, but they still cannot act outside the root.
package local
