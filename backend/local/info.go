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
		Mode:    backend.ModeFromUnix(st.Mode),
		ModTime: time.Unix(st.Mtim.Unix()),
		ATime:   time.Unix(st.Atim.Unix()),
		UID:     st.Uid,
		GID:     st.Gid,
		Nlink:   uint32(st.Nlink),
		Ino:     st.Ino,
	}
}
