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
func abortFUSE(ms []mountinfo.Mount, log *slog.Logger) int {
	var ids []string
	seen := map[string]bool{}
	for _, m := range ms {
		if !isFUSE(m.FSType) {
			continue
		}
		if id, ok := fuseConnID(m.Dev); ok && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
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
			log.Info("aborted the FUSE connection of a stale mount", "connection", id)
		case errors.Is(err, fs.ErrNotExist):
			// Already gone: its server closed /dev/fuse.
		default:
			log.Warn("could not abort a stale FUSE connection", "connection", id, "error", err)
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
	for _, m := range ms {
		if m.FSType == "fusectl" {
			return m.Mountpoint, func() {}, nil
		}
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
