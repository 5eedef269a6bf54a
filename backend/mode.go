package backend

import "io/fs"

// ModeFromUnix converts a POSIX st_mode (type bits S_IFMT and permission
// bits including setuid, setgid and sticky) to an fs.FileMode the way
// package os does. A value without type bits gives a regular file's mode,
// so it also converts bare permission bits. SFTP carries st_mode on the
// wire, the local backend gets it from fstatat and the FUSE layer from the
// kernel; all three use this one conversion.
func ModeFromUnix(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & 0o170000 { // S_IFMT
	case 0o040000: // S_IFDIR
		mode |= fs.ModeDir
	case 0o120000: // S_IFLNK
		mode |= fs.ModeSymlink
	case 0o060000: // S_IFBLK
		mode |= fs.ModeDevice
	case 0o020000: // S_IFCHR
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case 0o010000: // S_IFIFO
		mode |= fs.ModeNamedPipe
	case 0o140000: // S_IFSOCK
		mode |= fs.ModeSocket
	}
	if m&0o4000 != 0 { // S_ISUID
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 { // S_ISGID
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 { // S_ISVTX
		mode |= fs.ModeSticky
	}
	return mode
}

// PermToUnix converts the permission part of m (permission bits plus
// setuid, setgid and sticky) to st_mode's numeric form: the inverse of
// ModeFromUnix for the low 12 bits, used for SFTP attributes and for the
// FUSE attributes given to the kernel.
func PermToUnix(m fs.FileMode) uint32 {
	p := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		p |= 0o4000 // S_ISUID
	}
	if m&fs.ModeSetgid != 0 {
		p |= 0o2000 // S_ISGID
	}
	if m&fs.ModeSticky != 0 {
		p |= 0o1000 // S_ISVTX
	}
	return p
}

// PermBits are the bits of an fs.FileMode that Chmod sets and that perm
// arguments carry: the permission bits plus setuid, setgid and sticky.
const PermBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky
