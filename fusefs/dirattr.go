package fusefs

import (
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/sftpfs/sftpfs/backend"
)

// Directory attributes after this mount's own creations.
//
// The kernel drops a directory's cached attributes whenever an entry is
// created in it, and with default_permissions it needs them again for
// the permission check of the next creation in that directory. Filling
// a directory therefore cost one GETATTR, and so one backend stat, per
// file (1,000 x 4 KiB through `os.WriteFile`: LSTAT of the directory,
// OPEN, FSTAT, WRITE, CLOSE per file; scripts/bench.sh -only create).
//
// A creation changes only the directory's mtime and ctime (and its size,
// which means nothing portable for a directory); the server sets them to
// the time it created the entry, which is the new file's mtime that
// Create reads with FSTAT anyway. So after a creation through this mount
// the directory's remembered attributes are brought forward to that
// mtime and may answer its GETATTR, under these conditions:
//   - they were read from the backend by a GETATTR (not taken from a
//     listing or lookup, whose age against local changes is not known
//     here) less than the listing lifetime (dirCache.ttl, at most
//     attr_timeout) ago; the kernel gets only the rest of attr_timeout,
//     so another client's change shows no later than without this;
//   - every change through this mount to the directory since that read
//     was a creation that brought them forward or a change of a child's
//     attributes (a write, truncate, chmod or utimens of a file in it,
//     which leaves the directory as it was); node.changed is compared
//     exactly, so an unlink, rename, mkdir, chmod or utimens of the
//     directory or a failed creation in between, even a concurrent one,
//     sends the next GETATTR to the backend.
// SETATTR's reply never comes from them (its change is recorded only
// after it). A CREATE that opened a file another client had created
// since this mount's listing did not change the directory; its mtime is
// then shown up to that file's mtime too new, within the same bound.
// A directory's size is left as last read: servers report block counts
// (ext4) or entry-based sizes (tmpfs) that no client can predict, and no
// tool can rely on a directory's size.

// rememberDirAttr records fi, read from the backend by a GETATTR that
// started when n's change sequence number was seq.
func (n *node) rememberDirAttr(fi backend.FileInfo, seq uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.last, n.hasLast, n.lastAt = fi, true, time.Now()
	n.attrValid = n.isDir() && n.fsys.dc.enabled() && n.changed.Load() == seq
	n.attrSeq = seq
}

// dirAttrCarry carries n's remembered attributes across a change through
// this mount that moved n's change sequence number from prev to cur and
// that left them as they were, except that the directory's mtime is now
// at least mtime (zero: unchanged). Any other change since they were
// read makes them invalid.
func (n *node) dirAttrCarry(prev, cur uint64, mtime time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.attrValid || cur == 0 || n.attrSeq != prev {
		n.attrValid = false
		return
	}
	if mtime.After(n.last.ModTime) {
		n.last.ModTime = mtime
	}
	n.attrSeq = cur
}

// dirAttrFromCache answers a directory's GETATTR from its remembered
// attributes when they are still valid (see above).
func (n *node) dirAttrFromCache(out *fuse.AttrOut) bool {
	n.mu.Lock()
	fi, ok := n.last, n.attrValid && n.hasLast && n.attrSeq == n.changed.Load()
	age := time.Since(n.lastAt)
	n.mu.Unlock()
	if !ok || age >= n.fsys.dc.ttl {
		return false
	}
	n.fsys.fillAttr(fi, &out.Attr)
	out.SetTimeout(max(n.fsys.o.AttrTimeout-age, time.Nanosecond))
	return true
}

func (n *node) isDir() bool { return n.StableAttr().Mode == syscall.S_IFDIR }
