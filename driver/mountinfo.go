package driver

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// mountPoints returns the mount points listed in /proc/self/mountinfo, in
// the order the kernel lists them (parents before children, stacked mounts
// in stacking order).
func mountPoints() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// Format: id parent major:minor root mountpoint options ...
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		out = append(out, unescapeMountinfo(fields[4]))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	return out, nil
}

// unescapeMountinfo undoes the kernel's octal escaping of space, tab,
// newline and backslash in mountinfo paths ("\040" for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountCount reports how many mounts are stacked exactly on path.
func mountCount(path string) (int, error) {
	mps, err := mountPoints()
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
	mps, err := mountPoints()
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
