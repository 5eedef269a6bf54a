package driver

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sftpfs/sftpfs/internal/mountinfo"
)

// fuseCtlDir is where fusectl is conventionally mounted.
const fuseCtlDir = "/sys/fs/fuse/connections"

// isFUSE reports whether a mount table fstype is a FUSE filesystem.
func isFUSE(fstype string) bool {
	return fstype == "fuse" || fstype == "fuseblk" || strings.HasPrefix(fstype, "fuse.")
}

// fuseConnID turns a mount's "major:minor" device into the name of its
// directory in fusectl, which is the kernel's dev_t (major<<20 | minor;
// FUSE superblocks have anonymous devices, major 0, so usually the minor).
func fuseConnID(dev string) (string, bool) {
	maj, min, ok := strings.Cut(dev, ":")
	if !ok {
		return "", false
	}
	ma, err1 := strconv.ParseUint(maj, 10, 32)
	mi, err2 := strconv.ParseUint(min, 10, 32)
	if err1 != nil || err2 != nil {
		return "", false
	}
	return strconv.FormatUint(ma<<20|mi, 10), true
}

// abortFUSE aborts the FUSE connections of mounts (fusectl's
// <id>/abort), so that every process blocked on them gets ENOTCONN
// instead of waiting forever for a server that is gone or wedged (a
// SIGKILLed plugin whose thread still waits on its own mount keeps its
// connection open). Detaching alone does not release such processes.
// It mounts fusectl if needed: on /sys/fs/fuse/connections, or, when that
// is impossible (a read-only or missing /sys in a container), on a private
// temporary directory. It returns how many connections were aborted.
// root is the directory volumes are mounted under, so that each line
// names the volume (the first path element below root).
func abortFUSE(ms []mountinfo.Mount, root string, log *slog.Logger) int {
	var ids []string
	vol := map[string]string{}
	for _, m := range ms {
		if !isFUSE(m.FSType) {
			continue
		}
		if id, ok := fuseConnID(m.Dev); ok {
			if _, seen := vol[id]; !seen {
				vol[id] = volumeOf(root, m.Mountpoint)
				ids = append(ids, id)
			}
		}
	}
	if len(ids) == 0 {
		return 0
	}
	dir, cleanup, err := fuseCtl()
	if err != nil {
		log.Warn("cannot abort the FUSE connections of stale mounts (processes blocked on them stay blocked until the mounts are gone); "+
			"mount fusectl on /sys/fs/fuse/connections to allow it", "error", err)
		return 0
	}
	defer cleanup()
	n := 0
	for _, id := range ids {
		err := os.WriteFile(filepath.Join(dir, id, "abort"), []byte("1"), 0)
		switch {
		case err == nil:
			n++
			log.Info("aborted the FUSE connection of a stale mount", "volume", vol[id], "connection", id)
		case errors.Is(err, fs.ErrNotExist):
			// Already gone: its server closed /dev/fuse.
		default:
			log.Warn("could not abort a stale FUSE connection", "volume", vol[id], "connection", id, "error", err)
		}
	}
	return n
}

// fuseCtl returns a directory where fusectl is mounted and a function to
// undo what fuseCtl mounted.
func fuseCtl() (string, func(), error) {
	ms, err := mountinfo.Read()
	if err != nil {
		return "", nil, err
	}
	if dir, ok := writableFuseCtl(ms, func(dir string) bool { return unix.Access(dir, unix.W_OK) == nil }); ok {
		return dir, func() {}, nil
	}
	if err := unix.Mount("fusectl", fuseCtlDir, "fusectl", 0, ""); err == nil {
		// Left mounted: it is where operators and tools expect it.
		return fuseCtlDir, func() {}, nil
	}
	tmp, err := os.MkdirTemp("", "sftpfs-fusectl-")
	if err != nil {
		return "", nil, fmt.Errorf("creating a directory to mount fusectl on: %w", err)
	}
	if err := unix.Mount("fusectl", tmp, "fusectl", 0, ""); err != nil {
		os.Remove(tmp)
		return "", nil, fmt.Errorf("mounting fusectl (needs CAP_SYS_ADMIN and a kernel with FUSE): %w", err)
	}
	return tmp, func() {
		_ = unix.Unmount(tmp, unix.MNT_DETACH)
		os.Remove(tmp)
	}, nil
}

// writableFuseCtl returns the first fusectl mount that can be written.
// Inside the plugin the settable mounts' placeholder source
// (/sys/fs/fuse/connections, bound read-only at /secrets and /state)
// is a fusectl mount too, listed before any other: writing abort there
// fails with EROFS, so read-only ones are passed over.
func writableFuseCtl(ms []mountinfo.Mount, writable func(dir string) bool) (string, bool) {
	for _, m := range ms {
		if m.FSType == "fusectl" && writable(m.Mountpoint) {
			return m.Mountpoint, true
		}
	}
	return "", false
}

// volumeOf returns the volume whose mount mp is or is below: the first
// path element of mp below root.
func volumeOf(root, mp string) string {
	rel, err := filepath.Rel(root, mp)
	if err != nil {
		return ""
	}
	first, _, _ := strings.Cut(rel, "/")
	return first
}
