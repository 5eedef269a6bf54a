package local

import (
	"io/fs"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sftpfs/sftpfs/backend"
)

// infoFromOS converts what os.Root.Stat and os.File.Stat return. On Linux
// Sys is always a *syscall.Stat_t; the fallback only keeps the portable
// fields.
func infoFromOS(name string, fi fs.FileInfo) backend.FileInfo {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return backend.FileInfo{Name: name, Size: fi.Size(), Mode: fi.Mode(), ModTime: fi.ModTime()}
	}
	return backend.FileInfo{
		Name:    name,
		Size:    st.Size,
		Mode:    fi.Mode(),
		ModTime: time.Unix(st.Mtim.Unix()),
		ATime:   time.Unix(st.Atim.Unix()),
		UID:     st.Uid,
		GID:     st.Gid,
		Nlink:   uint32(st.Nlink),
		Ino:     st.Ino,
	}
}

// infoFromUnix converts an fstatat result.
func infoFromUnix(name string, st *unix.Stat_t) backend.FileInfo {
	return backend.FileInfo{
		Name:    name,
		Size:    st.Size,
		Mode:    modeFromUnix(st.Mode),
		ModTime: time.Unix(st.Mtim.Unix()),
		ATime:   time.Unix(st.Atim.Unix()),
		UID:     st.Uid,
		GID:     st.Gid,
		Nlink:   uint32(st.Nlink),
		Ino:     st.Ino,
	}
}

// modeFromUnix maps st_mode to fs.FileMode the way package os does.
func modeFromUnix(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	}
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}
