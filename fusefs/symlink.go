package fusefs

import (
	"strings"
)

// SymlinkPolicy says how Readlink presents symlink targets that would
// lead out of the mount. The kernel resolves a FUSE mount's symlinks in
// the namespace of the process following them, so an absolute target
// such as /etc/shadow stored on a hostile server reaches the client's own
// /etc, and a relative target with enough ".." climbs out of the mount
// the same way. Targets are always stored verbatim; only what readlink
// shows changes.
type SymlinkPolicy string

// Symlink policies. The zero value behaves like SymlinkContain, so an
// Options built by hand is safe.
const (
	// SymlinkKeep shows every target as the storage holds it. Right
	// where the client's root is the storage's intended root anyway, such
	// as a Docker volume seen from inside its container.
	SymlinkKeep SymlinkPolicy = "keep"
	// SymlinkContain treats the mount root like a container's root: an
	// absolute target, or a relative one climbing above the root, is
	// rewritten into a relative target from the link's directory that
	// stays inside the mount ("/x/y" at a/b/l becomes "../../x/y").
	SymlinkContain SymlinkPolicy = "contain"
	// SymlinkRefuse makes readlink of such a link fail with EACCES.
	SymlinkRefuse SymlinkPolicy = "refuse"
)

// SymlinkPolicies lists the valid policies, in documentation order.
func SymlinkPolicies() []SymlinkPolicy {
	return []SymlinkPolicy{SymlinkKeep, SymlinkContain, SymlinkRefuse}
}

// containTarget returns the target that readlink shows under
// SymlinkContain for a link at linkPath (relative to the mount root, "/"
// separated) whose stored target is target, and whether the stored target
// escapes the mount (is absolute or climbs above the root lexically).
//
// A relative target that stays inside is returned verbatim unless a ".."
// follows an ordinary component ("sub/../x"): the kernel resolves ".."
// after following sub, so if sub is itself a symlink the lexical answer
// is wrong and the walk can leave the mount. Such targets are returned in
// their lexically clean form, which only climbs through the link's own
// (real) parent directories and then descends, so every walk stays
// inside the mount however many contained links it passes through.
func containTarget(linkPath, target string) (string, bool) {
	if target == "" {
		return target, false
	}
	var stack []string
	escapes := strings.HasPrefix(target, "/")
	if !escapes {
		stack = parentDirs(linkPath)
	}
	depth := len(parentDirs(linkPath))
	unclean := false // a ".." after an ordinary component
	sawName := false
	for _, c := range strings.Split(target, "/") {
		switch c {
		case "", ".":
		case "..":
			if sawName {
				unclean = true
			}
			if len(stack) == 0 {
				escapes = true // clamp at the mount root
				continue
			}
			stack = stack[:len(stack)-1]
		default:
			sawName = true
			stack = append(stack, c)
		}
	}
	if !escapes && !unclean {
		return target, false
	}
	// Rebuild from the link's directory: up to the common prefix with
	// the resolved path, then down to it.
	dir := parentDirs(linkPath)
	common := 0
	for common < len(dir) && common < len(stack) && dir[common] == stack[common] {
		common++
	}
	parts := make([]string, 0, depth-common+len(stack)-common)
	for i := common; i < depth; i++ {
		parts = append(parts, "..")
	}
	parts = append(parts, stack[common:]...)
	out := strings.Join(parts, "/")
	if out == "" {
		out = "."
	}
	// Keep a trailing slash (it demands a directory) on a named result;
	// "." and ".." are directories anyway.
	if strings.HasSuffix(target, "/") && len(stack) > common {
		out += "/"
	}
	return out, escapes
}

// parentDirs returns the directory components of linkPath, the path of a
// link relative to the mount root.
func parentDirs(linkPath string) []string {
	segs := strings.Split(linkPath, "/")
	var dirs []string
	for _, s := range segs[:len(segs)-1] {
		if s != "" && s != "." {
			dirs = append(dirs, s)
		}
	}
	return dirs
}
