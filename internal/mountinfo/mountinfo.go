package mountinfo

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Mount is one line of the mount table.
type Mount struct {
	// Mountpoint is the path where the filesystem is mounted, unescaped.
	Mountpoint string
	// FSType is the filesystem type ("fuse.sftpfs", "tmpfs", ...).
	FSType string
	// Source is the mount source ("sftpfs#user@host:/p" for our mounts).
	Source string
	// Dev is the device as "major:minor"; for FUSE, the minor names the
	// connection in /sys/fs/fuse/connections.
	Dev string
}

// Read returns the mount table of the calling process's mount namespace,
// in the order the kernel lists it: parents before children, stacked
// mounts in stacking order.
func Read() ([]Mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	defer f.Close()
	ms, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	return ms, nil
}

// Parse reads mountinfo lines from r. Lines too short to hold a
// mountpoint are skipped.
func Parse(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		m := Mount{Mountpoint: Unescape(fields[4]), Dev: fields[2]}
		for i := 5; i < len(fields); i++ {
			if fields[i] == "-" {
				if i+1 < len(fields) {
					m.FSType = fields[i+1]
				}
				if i+2 < len(fields) {
					m.Source = Unescape(fields[i+2])
				}
				break
			}
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// Points returns just the mountpoints of Read, in the same order.
func Points() ([]string, error) {
	ms, err := Read()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Mountpoint
	}
	return out, nil
}

// IsMounted reports whether dir is a mountpoint. An unreadable mount
// table counts as not mounted.
func IsMounted(dir string) bool {
	ps, _ := Points()
	for _, p := range ps {
		if p == dir {
			return true
		}
	}
	return false
}

// Under lists the mountpoints at or below dir, deepest first, which is
// the order they must be unmounted in.
func Under(dir string) []string {
	ps, _ := Points()
	var out []string
	for _, p := range ps {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// Unescape undoes the kernel's octal escaping of space, tab, newline and
// backslash in mountinfo paths ("\040" for a space).
func Unescape(s string) string {
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
