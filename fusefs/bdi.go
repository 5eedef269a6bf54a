package fusefs

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sftpfs/sftpfs/internal/mountinfo"
)

// The kernel never reads ahead further than the read-ahead size of the
// mount's backing device (read_ahead_kb, 128 KiB for every new FUSE
// mount): the max_readahead a server asks for at INIT is only ever
// lowered to it. So a sequential reader gets 128 KiB READs however large
// MaxReadAhead and MaxWrite are, and every 128 KiB costs a FUSE request,
// two copies through /dev/fuse's request path and a pass through the
// read-ahead pipeline. Raising read_ahead_kb of this mount's device to
// the read-ahead the mount asked for lets the kernel send READs up to
// MaxWrite (max_pages) instead: the same data in 8x fewer requests. It
// needs root and a writable /sys (sftpfs mount as root, the fstab
// helper); elsewhere (a plugin whose /sys is read-only, a user mount)
// the mount keeps the kernel's default, which is only slower.

// bdiReadAheadPath is the sysfs file of the device dev ("major:minor").
func bdiReadAheadPath(dev string) string {
	return filepath.Join("/sys/class/bdi", dev, "read_ahead_kb")
}

// raiseReadAhead sets the read-ahead of the FUSE mount at mountpoint to
// bytes. It finds the device in the mount table, not with stat(2): a
// stat would be a request to this process's own mount, which a
// serve-only mount must never make (see Options.ServeOnly).
func raiseReadAhead(mountpoint string, bytes int, log *slog.Logger) {
	dev, err := mountDev(mountpoint)
	if err == nil {
		err = os.WriteFile(bdiReadAheadPath(dev), []byte(strconv.Itoa(bytes/1024)), 0)
	}
	if err != nil {
		log.Debug("kernel read-ahead left at its default (sequential reads arrive in 128 KiB requests)", "err", err)
	}
}

// mountDev returns the device ("major:minor") of the topmost FUSE mount
// at mountpoint.
func mountDev(mountpoint string) (string, error) {
	abs, err := filepath.Abs(mountpoint)
	if err != nil {
		return "", err
	}
	ms, err := mountinfo.Read()
	if err != nil {
		return "", err
	}
	dev := ""
	for _, m := range ms {
		if m.Mountpoint == abs && (m.FSType == "fuse" || strings.HasPrefix(m.FSType, "fuse.")) {
			dev = m.Dev // later lines are mounted on top of earlier ones
		}
	}
	if dev == "" {
		return "", errors.New("no FUSE mount at " + abs + " in the mount table")
	}
	return dev, nil
}
