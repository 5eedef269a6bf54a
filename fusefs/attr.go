package fusefs

import (
	"io/fs"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/sftpfs/sftpfs/backend"
)

// typeBits returns the S_IFMT bits for a Go file mode. Types the kernel
// could not use anyway (irregular files) are presented as regular files.
func typeBits(m fs.FileMode) uint32 {
	switch {
	case m&fs.ModeDir != 0:
		return syscall.S_IFDIR
	case m&fs.ModeSymlink != 0:
		return syscall.S_IFLNK
	case m&fs.ModeNamedPipe != 0:
		return syscall.S_IFIFO
	case m&fs.ModeSocket != 0:
		return syscall.S_IFSOCK
	case m&fs.ModeDevice != 0 && m&fs.ModeCharDevice != 0:
		return syscall.S_IFCHR
	case m&fs.ModeDevice != 0:
		return syscall.S_IFBLK
	}
	return syscall.S_IFREG
}

// goPerm is the inverse of backend.PermToUnix for the low 12 bits of m.
func goPerm(m uint32) fs.FileMode { return backend.ModeFromUnix(m & 0o7777) }

// fillAttr presents a backend FileInfo to the kernel, applying the
// owner mapping and the umask. Ino is left to go-fuse, which owns inode
// numbers (see doc.go).
func (fsys *filesystem) fillAttr(fi backend.FileInfo, a *fuse.Attr) {
	a.Mode = typeBits(fi.Mode) | backend.PermToUnix(fi.Mode)&^backend.PermToUnix(fsys.o.Umask)
	a.Size = uint64(max(fi.Size, 0))
	a.Blocks = 0 // go-fuse derives blocks from Size
	mt := fi.ModTime
	if mt.IsZero() {
		// A zero time.Time is year 1, which does not fit the kernel's
		// unsigned seconds; the epoch is the conventional "unknown".
		mt = time.Unix(0, 0)
	}
	at := fi.ATime
	if at.IsZero() {
		at = mt
	}
	a.SetTimes(&at, &mt, &mt)
	a.Nlink = fi.Nlink
	if a.Nlink == 0 {
		a.Nlink = 1
	}
	a.Uid, a.Gid = fi.UID, fi.GID
	if fsys.o.UID >= 0 {
		a.Uid = uint32(fsys.o.UID)
	}
	if fsys.o.GID >= 0 {
		a.Gid = uint32(fsys.o.GID)
	}
}
