package fusefs

import (
	"sync/atomic"
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
//     was a creation that brought them forward (or an unlink or rename
//     of a file that did, below) or a change of a child's attributes (a
//     write, truncate, chmod or utimens of a file in it, which leaves the
//     directory as it was); node.changed is compared exactly, so any
//     other unlink or rename, a mkdir, rmdir, chmod or utimens of the
//     directory or a failed operation in between, even a concurrent
//     one, sends the next GETATTR to the backend.
// SETATTR's reply never comes from them (its change is recorded only
// after it). A CREATE that opened a file another client had created
// since this mount's listing did not change the directory; its mtime is
// then shown up to that file's mtime too new, within the same bound.
// A directory's size is left as last read: servers report block counts
// (ext4) or entry-based sizes (tmpfs) that no client can predict, and no
// tool can rely on a directory's size.
//
// Unlinks and renames of files. The kernel drops the directory's
// attributes at every UNLINK and RENAME too, so `rm` of many files cost
// an LSTAT of the directory per file on top of its REMOVE (sshfs, which
// asks for no permission check, sends the REMOVE alone), and a rename
// one on top of its RENAME. The new mtime is the server's clock at the
// request, which no SFTP reply carries; but the mount knows its own clock
// just before the request and just after the reply (timeWindow). When
// both fall in the same whole second (SFTP v3's resolution) and the
// server's clock was recently seen to agree with ours to the second
// (serverClock), that second is the directory's mtime, and the
// remembered attributes are carried across the change under the
// conditions above (for a rename, both directories'). The clock is
// checked by the GETATTRs that still reach the server: a directory's
// mtime read right after an unlink or rename through this mount, with no
// other change through it in between, must fall in that request's
// window. A server whose clock is off by a second or more, one that
// leaves a directory's mtime alone at an unlink, or a directory that
// another client changed meanwhile fails the check, and the next unlinks
// and renames go back to the server's LSTAT until a check passes.
// What is left: a clock off by less than a second may show a mtime one
// second off, for no longer than the listing lifetime. rmdir and the
// rename of a directory are never carried: they also change link
// counts.

// rememberDirAttr records fi, read from the backend by a GETATTR that
// started when n's change sequence number was seq.
func (n *node) rememberDirAttr(fi backend.FileInfo, seq uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.last, n.hasLast, n.lastAt = fi, true, time.Now()
	n.attrValid = n.isDir() && n.fsys.dc.enabled() && n.changed.Load() == seq
	n.attrSeq = seq
	if n.attrValid && seq != 0 && n.winSeq == seq {
		// Nothing changed the directory through this mount since
		// that unlink or rename: the server's mtime tells whether
		// our clocks agree.
		n.fsys.clock.check(fi.ModTime, n.win)
	}
}

// entriesChangedAt records that an unlink or a rename of a file made in
// the local time window w moved n's change sequence number to cur, and
// returns the directory's new mtime when it is known (see above): then
// its remembered attributes may be carried across the change
// (change.go).
func (n *node) entriesChangedAt(cur uint64, w timeWindow) (time.Time, bool) {
	if w.from.IsZero() || cur == 0 {
		return time.Time{}, false
	}
	n.mu.Lock()
	n.win, n.winSeq = w, cur
	n.mu.Unlock()
	if sec, ok := w.second(); ok && n.fsys.clock.agrees(w.to) {
		return time.Unix(sec, 0), true
	}
	return time.Time{}, false
}

// timeWindow is an interval of the local clock around one request.
type timeWindow struct{ from, to time.Time }

// second returns the whole second (Unix time) the window lies in, if it
// lies in one.
func (w timeWindow) second() (int64, bool) {
	return w.from.Unix(), !w.from.IsZero() && w.from.Unix() == w.to.Unix()
}

// serverClock remembers when the server's clock was last seen to agree
// with ours to the second. Agreement is trusted for clockTrust: clocks
// drift by far less than a second in that time.
type serverClock struct {
	agreedAt atomic.Int64 // UnixNano of the last agreeing check; 0: none, or the last check failed
}

const clockTrust = time.Minute

// check compares mtime, the server's time for a change made in the
// local window w, with w.
func (c *serverClock) check(mtime time.Time, w timeWindow) {
	if s := mtime.Unix(); s >= w.from.Unix() && s <= w.to.Unix() {
		c.agreedAt.Store(time.Now().UnixNano())
	} else {
		c.agreedAt.Store(0)
	}
}

// agrees reports whether a check agreed less than clockTrust before now.
func (c *serverClock) agrees(now time.Time) bool {
	at := c.agreedAt.Load()
	return at != 0 && now.Sub(time.Unix(0, at)) < clockTrust
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
