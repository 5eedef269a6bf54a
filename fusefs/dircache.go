package fusefs

import (
	"container/list"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sftpfs/sftpfs/backend"
)

// Listing cache. A LOOKUP the kernel sends for a name it has not cached
// costs a backend round trip (an SFTP LSTAT). Workloads that stat many
// names in one directory (git status lstat's every index entry, `ls`
// followed by stat, a build tool probing for files) pay one round trip
// per name although a single listing carries the names and attributes
// of all of them. So:
//
//   - Every listing this mount reads (opendir, and the speculative one
//     below) is kept as a snapshot of the directory for ttl, which is
//     the smaller of the entry and attribute timeouts: a lookup in that
//     directory answers from it, positively (with the listed attributes)
//     and negatively (ENOENT), without a round trip. The kernel caches
//     such an answer only for the rest of ttl, so a change made by
//     another client of the storage is seen at most ttl after the
//     listing was read, as for names and attributes the kernel caches
//     itself; this mount's own changes are never seen late (below).
//   - An opendir of a directory with a fresh snapshot is served from it
//     (git status lists every directory whose files it has just
//     lstat'ed; snapshotListing), unless an entry's attributes are
//     unknown, in which case it lists afresh.
//   - Speculative listing: when lookups in a directory without a fresh
//     snapshot go to the backend specMisses times within ttl, the
//     directory is listed once in the background; lookups arriving
//     meanwhile wait for it and answer from it. A directory whose size
//     attribute suggests more than snapMaxEntries entries is never
//     listed speculatively, so a lookup or two in a huge directory
//     never costs its whole listing.
//
// Consistency with this mount's own changes (all reported through
// filesystem.changed, change.go). Every local change in a directory
// (create, mkdir, symlink, link, unlink, rmdir, rename in or out)
// updates its snapshot in place once the backend has carried it out (a new entry, a removed one, or an entry marked unknown, which
// sends lookups of that name to the backend), and marks the directory
// changed with a sequence number from seq. A listing is only installed
// when no change to its directory completed after it started (the
// listing may predate the change). A child whose attributes changed
// through this mount (writes, truncate, chmod, utimens) is marked
// changed too; a snapshot entry is not trusted for a child node
// changed after the listing started, nor for one with writes in flight,
// and its entry is marked unknown when the change completes, so that
// also a node the kernel has forgotten meanwhile is looked up afresh.
//
// Listing ahead of a tree walk: find, du, git's untracked-file scan
// and `ls -R` open every directory of a tree, one listing (several round
// trips) after the other. When a directory is opened while its parent
// was listed within ttl (a walk is going on), the listings of its
// subdirectories and of its sibling directories are read ahead, at most
// prefetchParallel at a time and prefetchPerDir per directory, and each
// serves the next opendir of that subdirectory once, if it comes
// within ttl. Such an opendir therefore shows the directory as it was
// at most ttl ago, like a lookup answered from a snapshot; the
// subdirectory's own changes through this mount discard the listing read
// ahead (node.changed), and so does any rename through this mount (the
// path it was read from may now be another directory's). A
// listing not used within ttl is dropped. Speculative listings and those
// read ahead run with the mount's context (dirCache.ctx), which is
// cancelled at unmount; Server.Wait waits for them (dirCache.shutdown).
//
// Memory: only directories of at most snapMaxEntries entries are kept,
// at most snapTotalEntries entries in all snapshots together and at most
// dirStatesMax directories tracked, least recently used dropped first;
// expired snapshots are dropped when a new one is stored (looked for at
// most every ttl/4), so an idle mount holds none for long.
const (
	snapMaxEntries   = 10000
	snapTotalEntries = 50000
	dirStatesMax     = 1024
	// prefetchParallel listings read ahead at once, prefetchPerDir at
	// most started per opened directory (for its subdirectories and for
	// its siblings each), prefetchMax held (done or in flight) in all.
	prefetchParallel = 8
	prefetchPerDir   = 64
	prefetchMax      = 256
	// specMisses backend lookups in one directory within ttl trigger a
	// speculative listing: a second name looked up in the same directory
	// suggests more will follow (git status, a build probing files, a
	// directory being filled). Only 2 was measured (scripts/bench.sh git
	// status, create, small read); other values were not compared.
	specMisses = 2
	// specBytesPerEntry estimates a directory's entries from its size
	// attribute (ext4 and most servers' filesystems use 12-40 bytes of
	// directory data per short name); a directory reporting more than
	// snapMaxEntries*specBytesPerEntry bytes is not listed speculatively.
	specBytesPerEntry = 32
)

// dirCache holds the snapshots of one mount.
type dirCache struct {
	ttl time.Duration
	// seq orders listings against local changes (node.changed).
	seq atomic.Uint64

	mu   sync.Mutex
	dirs map[*node]*dirState
	// swept is when installLocked last looked at every directory for
	// expired snapshots and listings read ahead (sweepLocked).
	swept time.Time
	lru   list.List // of *dirState, most recently used first
	total int       // entries in all snapshots

	// speculative counts speculative listings started (tests).
	speculative atomic.Int64

	// renamed is the sequence number of the latest rename through this
	// mount: listings read ahead before it are not used.
	renamed atomic.Uint64
	// queue holds listings to read ahead, in the order a depth-first
	// walk needs them; workers (at most prefetchParallel) read them.
	// prefetched counts those held in dirState.kids. Under mu.
	queue      []*prefetch
	workers    int
	prefetched int
	// backend is the mount's backend, for the workers.
	b backend.Backend

	// Listings read in the background (speculative ones and those read
	// ahead) belong to the mount: they run with ctx, which shutdown
	// cancels at unmount, and bg counts them, so that the backend is
	// closed only after the last one returned. closed (under mu) stops
	// new ones from starting.
	ctx    context.Context
	stop   context.CancelFunc
	bg     sync.WaitGroup
	closed bool
}

// prefetch is the listing of a subdirectory read ahead.
type prefetch struct {
	done chan struct{}
	seq  uint64
	path string
	// started is set (under dirCache.mu) by whoever reads it: a worker,
	// or the opendir that needs it before a worker got to it.
	started bool
	// Set before done is closed.
	at  time.Time
	fis []backend.FileInfo
	ok  bool
}

// dirState is what the cache knows about one directory.
type dirState struct {
	dir  *node
	elem *list.Element
	snap *dirSnap
	// fetching is closed when the speculative listing in flight ends.
	fetching chan struct{}
	// misses counts backend lookups since lastMiss-ttl.
	misses   int
	lastMiss time.Time
	// kids holds listings of subdirectories read ahead, by name.
	kids map[string]*prefetch
	// replay holds the local changes that completed while the
	// speculative listing was in flight, to apply to it; lost is set
	// when one of unknown outcome happened (drop).
	replay []snapOp
	lost   bool
}

// snapOp is one update (see dirCache.update).
type snapOp struct {
	name  string
	fi    *backend.FileInfo
	known bool
}

// dirSnap is one directory listing. A nil entry is a name whose
// attributes are unknown (changed through this mount after the listing);
// a name not in entries did not exist.
type dirSnap struct {
	at      time.Time
	seq     uint64
	entries map[string]*backend.FileInfo
}

func newDirCache(b backend.Backend, o Options) *dirCache {
	ctx, stop := context.WithCancel(context.Background())
	return &dirCache{
		ttl:  min(o.EntryTimeout, o.AttrTimeout),
		dirs: map[*node]*dirState{},
		b:    b,
		ctx:  ctx,
		stop: stop,
	}
}

// shutdown cancels the listings running in the background and waits
// for them to return; none starts afterwards. The mount calls it once
// the kernel ended the FUSE session and before the backend is closed
// (Server.Wait).
func (dc *dirCache) shutdown() {
	dc.mu.Lock()
	dc.closed = true
	dc.mu.Unlock()
	dc.stop()
	dc.bg.Wait()
}

func (dc *dirCache) enabled() bool { return dc.ttl > 0 }

// begin returns the sequence number of a listing about to be read.
func (dc *dirCache) begin() uint64 { return dc.seq.Add(1) }

// markChanged records that n (a directory's entries or a node's
// attributes) was changed through this mount.
func (n *node) markChanged() (prev, cur uint64) {
	cur = n.fsys.dc.seq.Add(1)
	return n.changed.Swap(cur), cur
}

// stateLocked returns dir's state, creating it (and evicting the least
// recently used one beyond dirStatesMax) if needed.
func (dc *dirCache) stateLocked(dir *node) *dirState {
	if st := dc.dirs[dir]; st != nil {
		dc.lru.MoveToFront(st.elem)
		return st
	}
	st := &dirState{dir: dir}
	st.elem = dc.lru.PushFront(st)
	dc.dirs[dir] = st
	for dc.lru.Len() > dirStatesMax {
		dc.evictLocked(dc.lru.Back().Value.(*dirState))
	}
	return st
}

// evictLocked forgets st. A listing still in flight for it finishes
// unharmed: it stores into a fresh state.
func (dc *dirCache) evictLocked(st *dirState) {
	dc.dropSnapLocked(st)
	dc.dropKidsLocked(st)
	dc.lru.Remove(st.elem)
	delete(dc.dirs, st.dir)
}

func (dc *dirCache) dropSnapLocked(st *dirState) {
	if st.snap != nil {
		dc.total -= len(st.snap.entries)
		st.snap = nil
	}
}

// freshLocked returns st's snapshot if it is still within ttl.
func (dc *dirCache) freshLocked(st *dirState, now time.Time) *dirSnap {
	if st.snap == nil {
		return nil
	}
	if now.Sub(st.snap.at) >= dc.ttl {
		dc.dropSnapLocked(st)
		return nil
	}
	return st.snap
}

// store installs fis, read by a listing that started at seq, as dir's
// snapshot, unless a local change to dir completed since then.
func (dc *dirCache) store(dir *node, seq uint64, fis []backend.FileInfo) {
	dc.storeAt(dir, seq, fis, time.Now())
}

// storeAt is store for a listing read at at.
func (dc *dirCache) storeAt(dir *node, seq uint64, fis []backend.FileInfo, at time.Time) {
	if !dc.enabled() || len(fis) > snapMaxEntries {
		return
	}
	entries := entryMap(fis)
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if dir.changed.Load() > seq {
		return
	}
	dc.installLocked(dc.stateLocked(dir), seq, entries, at)
}

func entryMap(fis []backend.FileInfo) map[string]*backend.FileInfo {
	entries := make(map[string]*backend.FileInfo, len(fis))
	for i := range fis {
		entries[fis[i].Name] = &fis[i]
	}
	return entries
}

// installLocked makes entries, read by a listing that started at seq
// at time at, st's snapshot unless it has a newer one, and enforces the
// memory bounds.
func (dc *dirCache) installLocked(st *dirState, seq uint64, entries map[string]*backend.FileInfo, at time.Time) {
	now := time.Now()
	if st.snap != nil && st.snap.seq > seq {
		return
	}
	dc.dropSnapLocked(st)
	st.snap = &dirSnap{at: at, seq: seq, entries: entries}
	st.misses = 0
	dc.total += len(entries)
	dc.sweepLocked(st, now)
}

// sweepLocked enforces the memory bounds after st got a snapshot: the
// least recently used snapshots go while there are more than
// snapTotalEntries entries, and, at most every ttl/4, a pass over every
// directory drops expired snapshots and listings read ahead. A pass at
// every install made a tree walk of N directories cost N*N steps (a
// snapshot is installed per directory): 10% of the mount's CPU in a
// find over 221 directories.
func (dc *dirCache) sweepLocked(st *dirState, now time.Time) {
	full := now.Sub(dc.swept) >= dc.ttl/4
	if full {
		dc.swept = now
	}
	// Expired snapshots go first, then the least recently used.
	for e := dc.lru.Back(); e != nil && dc.total > 0; {
		if !full && dc.total <= snapTotalEntries {
			return
		}
		prev := e.Prev()
		o := e.Value.(*dirState)
		if o != st {
			if o.snap != nil && ((full && now.Sub(o.snap.at) >= dc.ttl) || dc.total > snapTotalEntries) {
				dc.dropSnapLocked(o)
			}
		}
		if full {
			for name, pf := range o.kids {
				select {
				case <-pf.done:
					if now.Sub(pf.at) >= dc.ttl {
						delete(o.kids, name)
						dc.prefetched--
					}
				default:
				}
			}
		}
		e = prev
	}
}

// snapResult is what a snapshot says about a name.
type snapResult int

const (
	snapUnknown snapResult = iota // no fresh snapshot, or the entry is unknown
	snapAbsent                    // the name did not exist
	snapFound                     // the name existed with the returned attributes
)

// lookup answers name in dir from a fresh snapshot. It returns the
// snapshot's age and sequence number along with a found entry.
func (dc *dirCache) lookup(dir *node, name string) (fi backend.FileInfo, res snapResult, age time.Duration, seq uint64) {
	if !dc.enabled() {
		return fi, snapUnknown, 0, 0
	}
	now := time.Now()
	dc.mu.Lock()
	defer dc.mu.Unlock()
	st := dc.dirs[dir]
	if st == nil {
		return fi, snapUnknown, 0, 0
	}
	s := dc.freshLocked(st, now)
	if s == nil {
		return fi, snapUnknown, 0, 0
	}
	dc.lru.MoveToFront(st.elem)
	e, ok := s.entries[name]
	switch {
	case !ok:
		return fi, snapAbsent, now.Sub(s.at), s.seq
	case e == nil:
		return fi, snapUnknown, 0, 0
	}
	return *e, snapFound, now.Sub(s.at), s.seq
}

// miss records a lookup in dir that the snapshot could not answer. It
// returns a channel to wait on when a listing of dir is in flight (the
// caller then asks the snapshot again), and starts a speculative
// listing when this is the specMisses-th miss within ttl.
func (dc *dirCache) miss(dir *node) <-chan struct{} {
	if !dc.enabled() {
		return nil
	}
	now := time.Now()
	dc.mu.Lock()
	defer dc.mu.Unlock()
	st := dc.stateLocked(dir)
	if st.fetching != nil {
		return st.fetching
	}
	if dc.closed {
		return nil
	}
	if dc.freshLocked(st, now) != nil {
		// Fresh, but this entry is unknown: one stat answers it.
		return nil
	}
	if now.Sub(st.lastMiss) >= dc.ttl {
		st.misses = 0
	}
	st.misses++
	st.lastMiss = now
	if st.misses < specMisses {
		return nil
	}
	if fi, ok := dir.remembered(); ok && fi.Size > snapMaxEntries*specBytesPerEntry {
		return nil
	}
	st.misses = 0
	done := make(chan struct{})
	st.fetching = done
	dc.speculative.Add(1)
	seq := dc.begin()
	dc.bg.Add(1)
	go func() {
		defer dc.bg.Done()
		at := time.Now()
		fis, errno := dir.listUnsorted(dc.ctx)
		dc.mu.Lock()
		ops, lost := st.replay, st.lost
		st.replay, st.lost, st.fetching = nil, false, nil
		// Local changes made meanwhile (a directory being filled
		// through this mount) are applied rather than making the
		// listing useless; a state evicted meanwhile missed some.
		if errno == 0 && !lost && dc.dirs[dir] == st && len(fis) <= snapMaxEntries {
			entries := entryMap(fis)
			for _, op := range ops {
				applyOp(entries, op)
			}
			dc.installLocked(st, seq, entries, at)
		}
		dc.mu.Unlock()
		close(done)
	}()
	// This lookup does not wait: its own stat runs alongside the listing.
	return nil
}

// update changes dir's snapshot after a local change that completed:
// fi != nil sets name's entry, fi == nil with known removes it (the name
// is gone), fi == nil without known marks it unknown. dir is marked
// changed either way, so that no listing that started earlier is
// installed. It returns dir's change sequence numbers before and after
// (both 0 when the cache is off), for dirAttrCreated.
func (dc *dirCache) update(dir *node, name string, fi *backend.FileInfo, known bool) (prev, cur uint64) {
	if !dc.enabled() {
		return 0, 0
	}
	dc.mu.Lock()
	defer dc.mu.Unlock()
	prev, cur = dir.markChanged()
	st := dc.dirs[dir]
	if st == nil {
		return prev, cur
	}
	if pf, ok := st.kids[name]; ok {
		pf.started = true // a worker skips it
		delete(st.kids, name)
		dc.prefetched--
	}
	op := snapOp{name: name, known: known}
	if fi != nil {
		c := *fi
		c.Name = name
		op.fi = &c
	}
	if st.fetching != nil {
		st.replay = append(st.replay, op)
	}
	if st.snap == nil {
		return prev, cur
	}
	_, had := st.snap.entries[name]
	applyOp(st.snap.entries, op)
	if _, has := st.snap.entries[name]; has && !had {
		dc.total++
	} else if !has && had {
		dc.total--
	}
	return prev, cur
}

// applyOp applies a local change to a listing's entries.
func applyOp(entries map[string]*backend.FileInfo, op snapOp) {
	switch {
	case op.fi != nil:
		entries[op.name] = op.fi
	case op.known:
		delete(entries, op.name)
	default:
		entries[op.name] = nil
	}
}

// entry returns dir's snapshot entry for name, if it has one that is
// known (used to carry attributes across a rename).
func (dc *dirCache) entry(dir *node, name string) (backend.FileInfo, bool) {
	fi, res, _, _ := dc.lookup(dir, name)
	return fi, res == snapFound
}

// drop forgets dir's snapshot (after a local change whose outcome is
// not known, such as a failed rename).
func (dc *dirCache) drop(dir *node) {
	if !dc.enabled() {
		return
	}
	dc.mu.Lock()
	defer dc.mu.Unlock()
	dir.markChanged()
	if st := dc.dirs[dir]; st != nil {
		if st.fetching != nil {
			st.lost = true
		}
		dc.dropSnapLocked(st)
		dc.dropKidsLocked(st)
	}
}

// dropKidsLocked forgets st's listings read ahead; queued ones are not
// read.
func (dc *dirCache) dropKidsLocked(st *dirState) {
	for _, pf := range st.kids {
		pf.started = true
	}
	dc.prefetched -= len(st.kids)
	st.kids = nil
}

// parentOf returns n's parent directory node and n's name in it.
func parentOf(n *node) (*node, string) {
	name, parent := n.Parent()
	if parent == nil {
		return nil, ""
	}
	pn, _ := parent.Operations().(*node)
	return pn, name
}

// snapshotListing returns dir's fresh snapshot as a listing, for an
// opendir: git status lists every directory whose files it has just
// lstat'ed (which listed it speculatively), and `ls` after `ls -d *`
// or a tab completion does the same; each such listing is several round
// trips for names and attributes the mount read well within ttl. The
// listing shows the directory as it was at most ttl ago, with this
// mount's own changes applied, like a lookup answered from the snapshot.
// It is not used when an entry is unknown (its attributes changed
// through this mount after the listing): the opendir then lists afresh.
// seq is the snapshot's, so that the handle's lookups do not trust an
// entry for a child changed since (dirHandle.Lookup).
func (dc *dirCache) snapshotListing(dir *node) (fis []backend.FileInfo, seq uint64, ok bool) {
	if !dc.enabled() {
		return nil, 0, false
	}
	dc.mu.Lock()
	defer dc.mu.Unlock()
	st := dc.dirs[dir]
	if st == nil {
		return nil, 0, false
	}
	s := dc.freshLocked(st, time.Now())
	if s == nil {
		return nil, 0, false
	}
	fis = make([]backend.FileInfo, 0, len(s.entries))
	for _, e := range s.entries {
		if e == nil {
			return nil, 0, false
		}
		fis = append(fis, *e)
	}
	dc.lru.MoveToFront(st.elem)
	return fis, s.seq, true
}

// takePrefetched returns the listing of dir read ahead, if there is one
// that may still be used, waiting for it if it is in flight.
func (dc *dirCache) takePrefetched(dir *node) (fis []backend.FileInfo, seq uint64, at time.Time, ok bool) {
	if !dc.enabled() {
		return nil, 0, at, false
	}
	pn, name := parentOf(dir)
	if pn == nil {
		return nil, 0, at, false
	}
	dc.mu.Lock()
	st := dc.dirs[pn]
	var pf *prefetch
	if st != nil {
		pf = st.kids[name]
	}
	run := false
	if pf != nil {
		delete(st.kids, name)
		dc.prefetched--
		// Not started yet: read it now rather than wait in line.
		run = !pf.started
		pf.started = true
	}
	dc.mu.Unlock()
	if pf == nil {
		return nil, 0, at, false
	}
	if run {
		dc.read(pf)
	}
	<-pf.done
	if !pf.ok || time.Since(pf.at) >= dc.ttl || dir.changed.Load() > pf.seq || dc.renamed.Load() > pf.seq {
		return nil, 0, at, false
	}
	return pf.fis, pf.seq, pf.at, true
}

// readAhead starts reading the listings of dir's subdirectories and
// sibling directories after dir was opened with listing fis, if dir's
// parent was listed within ttl.
func (dc *dirCache) readAhead(dir *node, fis []backend.FileInfo) {
	if !dc.enabled() {
		return
	}
	pn, name := parentOf(dir)
	if pn == nil {
		return
	}
	dirPath, ok := dir.path()
	if !ok {
		return
	}
	parentPath, ok := pn.path()
	if !ok {
		return
	}
	now := time.Now()
	dc.mu.Lock()
	defer dc.mu.Unlock()
	pst := dc.dirs[pn]
	if pst == nil || dc.closed {
		return
	}
	psnap := dc.freshLocked(pst, now)
	if psnap == nil {
		return
	}
	st := dc.stateLocked(dir)
	// Subdirectories first, then siblings, each in name order: the
	// order in which a depth-first walk of sorted listings opens them.
	var subs, sibs []string
	for i := range fis {
		if fis[i].IsDir() {
			subs = append(subs, fis[i].Name)
		}
	}
	for sib, fi := range psnap.entries {
		if fi != nil && fi.IsDir() && sib != name {
			sibs = append(sibs, sib)
		}
	}
	slices.Sort(subs)
	slices.Sort(sibs)
	dc.prefetchAllLocked(st, subs, dirPath)
	dc.prefetchAllLocked(pst, sibs, parentPath)
	for dc.workers < prefetchParallel && len(dc.queue) > 0 {
		dc.workers++
		dc.bg.Add(1)
		go dc.work()
	}
}

// prefetchAllLocked queues at most prefetchPerDir of names.
func (dc *dirCache) prefetchAllLocked(st *dirState, names []string, dirPath string) {
	started := 0
	for _, name := range names {
		if started == prefetchPerDir {
			return
		}
		if dc.prefetchLocked(st, name, dirPath) {
			started++
		}
	}
}

// work reads queued listings until the queue is empty.
func (dc *dirCache) work() {
	defer dc.bg.Done()
	for {
		dc.mu.Lock()
		var pf *prefetch
		for len(dc.queue) > 0 && pf == nil {
			pf = dc.queue[0]
			dc.queue[0] = nil
			dc.queue = dc.queue[1:]
			if pf.started {
				pf = nil // taken by its opendir
			}
		}
		if pf == nil {
			dc.workers--
			dc.mu.Unlock()
			return
		}
		pf.started = true
		dc.mu.Unlock()
		dc.read(pf)
	}
}

// read reads pf's listing, unless the mount is going away.
func (dc *dirCache) read(pf *prefetch) {
	pf.at = time.Now()
	if dc.ctx.Err() == nil {
		fis, err := dc.b.ReadDir(dc.ctx, pf.path)
		pf.fis, pf.ok = fis, err == nil
	}
	close(pf.done)
}

// prefetchLocked starts reading the listing of subdirectory name of the
// directory st (at path dirPath) unless it is read already.
func (dc *dirCache) prefetchLocked(st *dirState, name, dirPath string) bool {
	if _, ok := st.kids[name]; ok || dc.prefetched >= prefetchMax {
		return false
	}
	if cst := dc.childStateLocked(st.dir, name); cst != nil && (cst.snap != nil || cst.fetching != nil) {
		return false
	}
	p := name
	if dirPath != "." {
		p = dirPath + "/" + name
	}
	pf := &prefetch{done: make(chan struct{}), seq: dc.begin(), path: p}
	if st.kids == nil {
		st.kids = map[string]*prefetch{}
	}
	st.kids[name] = pf
	dc.prefetched++
	dc.queue = append(dc.queue, pf)
	return true
}

// childStateLocked returns the state of dir's child name if the kernel
// knows that child.
func (dc *dirCache) childStateLocked(dir *node, name string) *dirState {
	ch := dir.GetChild(name)
	if ch == nil {
		return nil
	}
	cn, ok := ch.Operations().(*node)
	if !ok {
		return nil
	}
	return dc.dirs[cn]
}

// trusted reports whether a snapshot entry read at seq may answer a
// lookup of name in n: not if the child's attributes changed through
// this mount since (or are changing now).
func (n *node) trusted(name string, seq uint64) bool {
	ch := n.GetChild(name)
	if ch == nil {
		return true
	}
	cn, ok := ch.Operations().(*node)
	if !ok {
		return true
	}
	if _, pending := cn.writeState(); pending {
		return false
	}
	return cn.changed.Load() < seq
}
