package fusefs

import (
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/sftpfs/sftpfs/backend"
)

// Keeping the page cache across opens. Without FOPEN_KEEP_CACHE the
// kernel drops a file's cached pages on every open, so reading a file
// again after reopening it costs its whole transfer again. Open keeps
// them (keepCache) when the file is provably the one they were read
// from:
//
//   - the previous open recorded the file's size and mtime (pageCacheState)
//     and they are the same now, as read from the storage by this open
//     (Open's close-to-open stat);
//   - nothing was written or truncated through this mount since (the
//     node's write generation is unchanged, no write is in flight);
//   - the recorded mtime was at least mtimeSettle older than the moment
//     the attributes were read. SFTP v3 carries mtimes in whole seconds,
//     so a change within the same second as the previous one would not
//     change the mtime; once a file's mtime is settled, any later change
//     gives it a different one.
//
// What remains: a change by another client that keeps both size and
// mtime (a writer that restores the mtime, as rsync -t or tar do, with
// the same size), or a storage clock running more than mtimeSettle
// behind this machine's, can leave the old data visible until the
// kernel drops the pages. go-fuse negotiates FUSE_AUTO_INVAL_DATA, so
// the kernel also drops them itself whenever a lookup or getattr shows
// a changed mtime or size.
const mtimeSettle = 2 * time.Second

// pageCacheState is what the page cache of a node may hold: the data
// of the file with size and mtime as of the last open, before write
// generation gen. Guarded by node.mu.
type pageCacheState struct {
	valid bool
	size  int64
	mtime time.Time
	gen   uint64
}

// keepCache decides an open: it returns FOPEN_KEEP_CACHE when the
// cached pages show the file as cur describes it (see above), and
// records cur for the next open. ok says whether cur is known at all;
// truncating tells that this open truncates the file.
func (n *node) keepCache(cur backend.FileInfo, ok, truncating bool) uint32 {
	gen, pending := n.writeState()
	n.mu.Lock()
	defer n.mu.Unlock()
	old := n.kc
	n.kc = pageCacheState{}
	if !ok || pending || truncating {
		return 0
	}
	settled := !cur.ModTime.IsZero() && n.lastAt.Sub(cur.ModTime) >= mtimeSettle
	if settled {
		n.kc = pageCacheState{valid: true, size: cur.Size, mtime: cur.ModTime, gen: gen}
	}
	if settled && old.valid && old.gen == gen && old.size == cur.Size && old.mtime.Equal(cur.ModTime) {
		return fuse.FOPEN_KEEP_CACHE
	}
	return 0
}
