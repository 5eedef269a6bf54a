package backend

import "strings"

// ValidName reports whether name is a name of the contract (see Paths in
// the package documentation): "." for the root, or slash-separated
// elements that are neither empty, "." nor "..", with no leading or
// trailing slash and no NUL byte.
//
// Unlike io/fs.ValidPath it accepts names that are not valid UTF-8: file
// names on POSIX systems and SFTP servers are bytes, and a file named in
// Latin-1 must stay usable (sshfs serves it too), not be listed and then
// fail every operation with EINVAL.
func ValidName(name string) bool {
	if name == "." {
		return true
	}
	if name == "" || strings.IndexByte(name, 0) >= 0 {
		return false
	}
	for {
		elem, rest, more := strings.Cut(name, "/")
		if elem == "" || elem == "." || elem == ".." {
			return false
		}
		if !more {
			return true
		}
		name = rest
	}
}
