package driver

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sftpfs/sftpfs/internal/mountinfo"
)

// mountCount reports how many mounts are stacked exactly on path.
func mountCount(path string) (int, error) {
	mps, err := mountinfo.Points()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, mp := range mps {
		if mp == path {
			n++
		}
	}
	return n, nil
}

// mountsBelow returns the distinct mount points strictly below root,
// deepest first, so they can be detached without "busy" errors from
// mounts nested inside them.
func mountsBelow(root string) ([]string, error) {
	mps, err := mountinfo.Points()
	if err != nil {
		return nil, err
	}
	prefix := filepath.Clean(root) + "/"
	seen := map[string]bool{}
	var out []string
	for _, mp := range mps {
		if strings.HasPrefix(mp, prefix) && !seen[mp] {
			seen[mp] = true
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return strings.Count(out[i], "/") > strings.Count(out[j], "/")
	})
	return out, nil
}

// detachAll lazily unmounts every mount stacked on path (MNT_DETACH never
// blocks on a dead FUSE server), at most limit times.
func detachAll(path string, limit int) error {
	for range limit {
		n, err := mountCount(path)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("detaching the mount on %s: %w", path, err)
		}
	}
	n, err := mountCount(path)
	if err == nil && n > 0 {
		err = fmt.Errorf("%d mounts remain on %s after %d detach attempts", n, path, limit)
	}
	return err
}
