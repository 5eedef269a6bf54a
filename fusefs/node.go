package fusefs

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/internal/logx"
)

// filesystem is the state shared by every node of one mount.
type filesystem struct {
	// bufs recycles read-ahead and write-behind buffers; raMem and
	// wbMem bound how many of them the mount's handles hold (budget.go).
	bufs         *bufPool
	raMem, wbMem *memBudget
	b            backend.Backend
	caps         backend.Capabilities
	o            Options
	log          *slog.Logger
	// errs bounds the log lines of failed operations (toErrno).
	errs *logx.Every
	root *node
	// dc keeps recent listings to answer lookups (dircache.go).
	dc *dirCache
	// clock says whether the server's clock was seen to agree with
	// ours (dirattr.go).
	clock serverClock
}

// node is a file, directory or symlink. It stores no path: the path is
// recomputed from the go-fuse Inode tree on every operation, so renames
// of a parent directory need no bookkeeping here.
type node struct {
	fs.Inode
	fsys *filesystem

	// last is the most recent FileInfo presented for this node. It
	// answers fstat of a node whose name is gone and that has no file
	// handle to ask (an open directory that was renamed over).
	mu      sync.Mutex
	last    backend.FileInfo
	hasLast bool
	// lastAt is when last was read from the backend.
	lastAt time.Time
	// attrValid says that last may answer a directory's GETATTR
	// (dirattr.go): it accounts for every change through this mount up
	// to change sequence number attrSeq.
	attrValid bool
	attrSeq   uint64
	// win is the local time around the latest unlink or rename of a
	// file in this directory through this mount, at change sequence
	// number winSeq (dirattr.go).
	win    timeWindow
	winSeq uint64
	// kc describes the kernel page cache for keep_cache (keepcache.go).
	kc pageCacheState
	// refusedLogged is set once a refused symlink target has been
	// warned about, so a client retrying readlink cannot flood the log.
	refusedLogged bool

	// w tracks writes in flight through any handle (writebehind.go),
	// made by writes() on first use.
	w     nodeWrites
	wOnce sync.Once

	// wroteEnd is the furthest end of a write through this mount since
	// last was replaced, -1 after a truncate through this mount: with
	// last, what the kernel's size can be (openedWith).
	wroteEnd atomic.Int64

	// changed is the dirCache sequence number of the latest change made
	// through this mount to this node's attributes or, for a directory,
	// its entries (dircache.go).
	changed atomic.Uint64
}

// remember records fi as n's latest attributes.
func (n *node) remember(fi backend.FileInfo) {
	n.rememberAt(fi, time.Now())
}

// rememberAt records fi, read from the backend at at.
func (n *node) rememberAt(fi backend.FileInfo, at time.Time) {
	n.mu.Lock()
	n.setLastLocked(fi, at)
	n.mu.Unlock()
}

// setLastLocked makes fi, read at at, n's attributes: the directory
// attributes kept (attrValid) and the writes counted since the previous
// ones (wroteEnd) no longer apply. n.mu is held.
func (n *node) setLastLocked(fi backend.FileInfo, at time.Time) {
	n.last, n.hasLast, n.lastAt = fi, true, at
	n.attrValid = false
	n.wroteEnd.Store(0)
}

// rememberNewer records fi, read from the backend at at, unless n holds
// attributes read later; it returns the ones n now holds.
func (n *node) rememberNewer(fi backend.FileInfo, at time.Time) backend.FileInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.hasLast && n.lastAt.After(at) && typeBits(n.last.Mode) == typeBits(fi.Mode) {
		return n.last
	}
	n.setLastLocked(fi, at)
	return fi
}

// wroteTo records a write through this mount ending at end.
func (n *node) wroteTo(end int64) {
	for {
		cur := n.wroteEnd.Load()
		if cur < 0 || cur >= end || n.wroteEnd.CompareAndSwap(cur, end) {
			return
		}
	}
}

func (n *node) remembered() (backend.FileInfo, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.last, n.hasLast
}

// bctx turns the per-request context into the one passed to the
// backend. It deliberately drops the kernel's interrupt cancellation:
// the Go runtime (of any Go program using the mount, including these
// tests) delivers SIGURG for preemption, which the kernel turns into
// FUSE interrupts, and honouring them would make ordinary operations
// fail with EINTR at random. Fatal signals still end a blocked caller
// (the kernel stops waiting itself), and a network backend bounds every
// operation with its own timeout.
func bctx(ctx context.Context) context.Context {
	return context.WithoutCancel(ctx)
}

// path returns the backend path of n. ok is false when n is no longer
// reachable from the root (its last name was unlinked or renamed over):
// whatever now lives at its old path is a different file.
func (n *node) path() (p string, ok bool) {
	root := n.fsys.root.EmbeddedInode()
	var segs []string
	for in := &n.Inode; in != root; {
		name, parent := in.Parent()
		if parent == nil {
			return "", false
		}
		segs = append(segs, name)
		in = parent
	}
	if len(segs) == 0 {
		return ".", true
	}
	for i, j := 0, len(segs)-1; i < j; i, j = i+1, j-1 {
		segs[i], segs[j] = segs[j], segs[i]
	}
	return strings.Join(segs, "/"), true
}

// debugPath is the path for log messages.
func (n *node) debugPath() string {
	if p, ok := n.path(); ok {
		return p
	}
	return "(deleted)"
}

// childPath is the backend path of name inside directory n.
func (n *node) childPath(name string) (string, syscall.Errno) {
	p, ok := n.path()
	if !ok {
		return "", syscall.ENOENT
	}
	if p == "." {
		return name, 0
	}
	return p + "/" + name, 0
}

func (n *node) errno(op, name string, err error) syscall.Errno {
	return toErrno(n.fsys.log, n.fsys.errs, op, name, err)
}

// isRoot reports whether n is the mount's root directory.
func (n *node) isRoot() bool { return n == n.fsys.root }

// newChild returns the inode for name with attributes fi. A known child
// of the same type is reused so that its inode number stays stable while
// the kernel keeps it; otherwise a new inode with an automatic number is
// made.
func (n *node) newChild(ctx context.Context, name string, fi backend.FileInfo, out *fuse.EntryOut, reuse bool) *fs.Inode {
	return n.newChildAt(ctx, name, fi, out, reuse, time.Now())
}

// newChildAt is newChild for attributes read from the backend at at.
func (n *node) newChildAt(ctx context.Context, name string, fi backend.FileInfo, out *fuse.EntryOut, reuse bool, at time.Time) *fs.Inode {
	typ := typeBits(fi.Mode)
	if reuse {
		if ch := n.GetChild(name); ch != nil && ch.StableAttr().Mode == typ {
			if cn, ok := ch.Operations().(*node); ok {
				// A listing snapshot may be older than what an open
				// read since: the newer attributes win.
				fi = cn.rememberNewer(fi, at)
			}
			n.fsys.fillAttr(fi, &out.Attr)
			return ch
		}
	}
	n.fsys.fillAttr(fi, &out.Attr)
	cn := &node{fsys: n.fsys}
	cn.rememberAt(fi, at)
	return n.NewInode(ctx, cn, fs.StableAttr{Mode: typ})
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	p, errno := n.childPath(name)
	if errno != 0 {
		return nil, errno
	}
	if in, errno, ok := n.lookupSnap(ctx, name, out); ok {
		return in, errno
	}
	if wait := n.fsys.dc.miss(n); wait != nil {
		<-wait
		if in, errno, ok := n.lookupSnap(ctx, name, out); ok {
			return in, errno
		}
	}
	return n.lookupBackend(ctx, name, p, out)
}

// lookupSnap answers a lookup from n's listing snapshot (dircache.go);
// ok is false when the snapshot cannot answer it.
func (n *node) lookupSnap(ctx context.Context, name string, out *fuse.EntryOut) (in *fs.Inode, errno syscall.Errno, ok bool) {
	fi, res, age, seq := n.fsys.dc.lookup(n, name)
	switch res {
	case snapAbsent:
		return nil, syscall.ENOENT, true
	case snapFound:
		if !n.trusted(name, seq) {
			return nil, 0, false
		}
	default:
		return nil, 0, false
	}
	in = n.newChildAt(ctx, name, fi, out, true, time.Now().Add(-age))
	// The kernel may keep the answer only for what is left of the
	// timeouts: its age counts.
	o := n.fsys.o
	out.SetEntryTimeout(max(o.EntryTimeout-age, time.Nanosecond))
	out.SetAttrTimeout(max(o.AttrTimeout-age, time.Nanosecond))
	return in, 0, true
}

// lookupBackend asks the backend for name (at path p) in n.
func (n *node) lookupBackend(ctx context.Context, name, p string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if ch := n.GetChild(name); ch != nil {
		if cn, ok := ch.Operations().(*node); ok {
			cn.drainWrites() // the size must include them
		}
	}
	fi, err := n.fsys.b.Lstat(bctx(ctx), p)
	if err != nil {
		return nil, n.errno("lookup", p, err)
	}
	return n.newChild(ctx, name, fi, out, true), 0
}

// statPath stats n by path; the root follows a symlink so that a volume
// rooted at a symlinked directory still shows as a directory.
func (n *node) statPath(ctx context.Context) (backend.FileInfo, syscall.Errno) {
	p, ok := n.path()
	if !ok {
		return backend.FileInfo{}, syscall.ENOENT
	}
	var fi backend.FileInfo
	var err error
	if n.isRoot() {
		fi, err = n.fsys.b.Stat(bctx(ctx), p)
	} else {
		fi, err = n.fsys.b.Lstat(bctx(ctx), p)
	}
	if err != nil {
		return fi, n.errno("stat", p, err)
	}
	return fi, 0
}

// Getattr prefers an open handle: it sees writes made through it, and it
// still works after the file's name is gone (fstat of an unlinked file).
// go-fuse passes the node's first open handle when the kernel sends none.
func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return n.getattr(ctx, f, out, true)
}

// getattr is Getattr; cached says whether a directory's kept attributes
// may answer (dirattr.go): not for Setattr's reply, whose change to the
// directory is only recorded after it (node.changed).
func (n *node) getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut, cached bool) syscall.Errno {
	n.drainWrites()
	_, reachable := n.path()
	if h, ok := f.(*fileHandle); ok {
		if fi, errno := h.stat(); errno == 0 {
			n.remember(fi)
			n.fsys.fillAttr(fi, &out.Attr)
			if !reachable {
				// The backend may not know link counts (SFTP does not);
				// a file without a name has none left.
				out.Nlink = 0
			}
			return 0
		}
	}
	if !reachable {
		if fi, ok := n.remembered(); ok {
			n.fsys.fillAttr(fi, &out.Attr)
			out.Nlink = 0
			return 0
		}
		return syscall.ENOENT
	}
	if cached && n.dirAttrFromCache(out) {
		return 0
	}
	seq := n.changed.Load()
	fi, errno := n.statPath(ctx)
	if errno == syscall.EIO && n.isRoot() {
		// The storage does not answer (or fails) and this is the
		// mount's root, whose attributes practically never change:
		// answer with the last ones seen, uncached. A container
		// runtime stats a volume's root before every container start,
		// and an EIO there aborts the start during any network blip,
		// although the container's own file operations would fail or
		// succeed on their own account anyway.
		if last, ok := n.remembered(); ok {
			n.fsys.fillAttr(last, &out.Attr)
			out.SetTimeout(0)
			return 0
		}
	}
	if errno != 0 {
		return errno
	}
	n.rememberDirAttr(fi, seq)
	n.fsys.fillAttr(fi, &out.Attr)
	return 0
}

func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	fsys := n.fsys
	if fsys.o.ReadOnly {
		return syscall.EROFS
	}
	h, _ := f.(*fileHandle)
	n.drainWrites()
	// Whatever of the below is carried out (even when a later part
	// fails) changes attributes a listing snapshot may hold.
	op := opAttr
	defer func() { fsys.changed(change{op: op, node: n}) }()
	p, reachable := n.path()
	needPath := func() syscall.Errno {
		if !reachable {
			return syscall.ENOENT
		}
		return 0
	}
	bc := bctx(ctx)

	if m, ok := in.GetMode(); ok {
		if errno := needPath(); errno != 0 {
			return errno
		}
		if err := fsys.b.Chmod(bc, p, goPerm(m)); err != nil {
			return n.errno("chmod", p, err)
		}
	}

	isLink := n.StableAttr().Mode == syscall.S_IFLNK
	uid, uok := in.GetUID()
	gid, gok := in.GetGID()
	if (uok || gok) && !fsys.mapsOwner() && !isLink {
		if errno := needPath(); errno != 0 {
			return errno
		}
		u, g := -1, -1
		if uok {
			u = int(uid)
		}
		if gok {
			g = int(gid)
		}
		if err := fsys.b.Chown(bc, p, u, g); err != nil {
			return n.errno("chown", p, err)
		}
	}
	// With owner mapping on, chown succeeds without doing anything: every
	// file is presented as owned by the mapped ids anyway, and Docker
	// chowns a new volume's content to the image's owner when it copies
	// it up; failing that would abort the container's start.
	// lchown of a symlink is ignored too: the backend contract's Chown
	// follows the link (SFTP SETSTAT does), so passing it on would chown
	// the target, or fail with ENOENT on a dangling link and make
	// `cp -a` and `tar x` as root fail.

	if sz, ok := in.GetSize(); ok {
		op = opTruncate
		if h != nil {
			if errno := h.truncate(int64(sz)); errno != 0 {
				return errno
			}
		} else {
			if errno := needPath(); errno != 0 {
				return errno
			}
			if err := fsys.b.Truncate(bc, p, int64(sz)); err != nil {
				return n.errno("truncate", p, err)
			}
		}
	}

	// UTIME_OMIT arrives as an absent attribute and UTIME_NOW as the
	// current time (go-fuse resolves FATTR_*TIME_NOW); a zero time.Time
	// tells the backend to leave that time alone.
	mt, mok := in.GetMTime()
	at, aok := in.GetATime()
	if mok || aok {
		if errno := needPath(); errno != 0 {
			return errno
		}
		if !mok {
			mt = time.Time{}
		}
		if !aok {
			at = time.Time{}
		}
		if isLink {
			// The backend can only set times through a symlink (the
			// contract's Chtimes follows it, and pkg/sftp has no
			// lsetstat call even where the server offers it), which
			// would change the target. Link times matter to nobody, and
			// tools that restore them (tar, Docker's copy-up) must not
			// fail, so the request is accepted and ignored.
		} else if err := fsys.b.Chtimes(bc, p, at, mt); err != nil {
			return n.errno("utimens", p, err)
		}
	}

	return n.getattr(ctx, f, out, false)
}

// backendFlags keeps only the open flags the backend contract knows.
// O_APPEND is dropped on purpose: the kernel computes the end-of-file
// offset of every O_APPEND write itself and sends it explicitly.
func backendFlags(flags uint32) int {
	fl := int(flags)
	return fl&(os.O_RDONLY|os.O_WRONLY|os.O_RDWR) | fl&(os.O_CREATE|os.O_EXCL|os.O_TRUNC)
}

func writes(flags uint32) bool {
	return int(flags)&(os.O_WRONLY|os.O_RDWR) != 0 || int(flags)&os.O_TRUNC != 0
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if n.fsys.o.ReadOnly && writes(flags) {
		return nil, 0, syscall.EROFS
	}
	p, ok := n.path()
	if !ok {
		return nil, 0, syscall.ENOENT
	}
	truncating := int(flags)&os.O_TRUNC != 0
	f, err := n.fsys.b.OpenFile(bctx(ctx), p, backendFlags(flags), 0)
	if err != nil {
		return nil, 0, n.errno("open", p, err)
	}
	var cur backend.FileInfo
	fresh := false
	if truncating {
		n.fsys.changed(change{op: opTruncate, node: n})
	} else if fi, err := f.Stat(); err == nil {
		// Close-to-open: what another client wrote and closed before
		// this open must be read. The attributes this mount and the
		// kernel hold may predate that close (a stat or a listing
		// within the timeouts), and the kernel reads only up to the
		// size it holds, so every open that keeps the data learns the
		// file's attributes as of now. The SFTP backend reads them
		// along with the OPEN (no round trip of its own).
		cur, fresh = fi, true
		if behind := n.openedWith(cur); behind && int(flags)&os.O_APPEND != 0 {
			if errno := n.growKernelSize(ctx, f, p, flags, cur.Size); errno != 0 {
				_ = f.Close()
				return nil, 0, errno
			}
		}
	}
	return newFileHandle(n, f), n.keepCache(cur, fresh, truncating) | noFlush(flags), 0
}

// noFlush returns FOPEN_NOFLUSH for an open that cannot write: the
// kernel then skips the FLUSH request at every close(2) of it. Flush
// has nothing to do for such a handle (nothing to wait for, nothing to
// report), so the request would be a FUSE round trip that only delays
// close(2): one of four synchronous requests when a small file is read
// (LOOKUP, OPEN, READ, FLUSH). The kernel ignores the flag when the
// writeback cache is on (this mount never enables it) and before Linux
// 5.16, which then simply keeps sending FLUSH. POSIX locks need no FLUSH
// either: they are the kernel's own, as this filesystem implements no
// lock operations.
func noFlush(flags uint32) uint32 {
	if writes(flags) {
		return 0
	}
	return fuse.FOPEN_NOFLUSH
}

// openedWith records fi, read by Open, as n's attributes. When they
// differ from the ones the kernel was last given, the kernel's copy is
// invalidated, so that its next read asks for the size (a GETATTR)
// instead of ending at the old one. Not while this mount's own writes
// are in flight: then the kernel's size is ahead of the storage's.
// behind reports that the kernel's size may be smaller than fi's.
func (n *node) openedWith(fi backend.FileInfo) (behind bool) {
	if _, pending := n.writeState(); pending {
		return false
	}
	n.mu.Lock()
	old, had := n.last, n.hasLast
	we := n.wroteEnd.Load()
	n.setLastLocked(fi, time.Now())
	n.mu.Unlock()
	if !had || old.Size != fi.Size || !old.ModTime.Equal(fi.ModTime) || old.Mode != fi.Mode {
		// A negative offset invalidates the attributes only; the
		// pages are keepCache's business. Safe inside Open: the kernel
		// holds no lock this needs.
		n.NotifyContent(-1, 0)
	}
	return !had || we < 0 || max(old.Size, we) < fi.Size
}

// growKernelSize makes the kernel's size of n the storage's, size,
// before an O_APPEND open returns. The kernel places every O_APPEND
// write at the size it holds and, without the writeback cache, never
// asks for a fresh one first: after another client appended and closed,
// a stale size would put this client's append over the other's data.
// FUSE has no message that sets a size, but storing data into the
// kernel's cache extends it (NOTIFY_STORE), so the file's true last
// byte is stored there. The byte is read through the new handle when it
// can read, else through a short-lived read-only one (three round trips,
// only when another client grew the file since this mount looked).
func (n *node) growKernelSize(ctx context.Context, f backend.File, p string, flags uint32, size int64) syscall.Errno {
	if size <= 0 {
		return 0
	}
	last := make([]byte, 1)
	var got int
	var err error
	if int(flags)&(os.O_WRONLY|os.O_RDWR) == os.O_RDWR {
		got, err = f.ReadAt(last, size-1)
	} else {
		var rf backend.File
		if rf, err = n.fsys.b.OpenFile(bctx(ctx), p, os.O_RDONLY, 0); err == nil {
			got, err = rf.ReadAt(last, size-1)
			_ = rf.Close()
		}
	}
	if got == 1 {
		if errno := n.WriteCache(size-1, last); errno != 0 {
			n.fsys.log.Warn("cannot tell the kernel a file's new size before an append", "path", p, "errno", errno)
			return syscall.EIO
		}
		return 0
	}
	if err != nil && !errors.Is(err, io.EOF) {
		// A file this user may append to but not read (mode -w-), or
		// a failing storage: the append proceeds as it would have
		// before, at the kernel's size, which may be stale.
		n.fsys.log.Warn("cannot read a file's last byte to tell the kernel its size grown by another client; an append may land at the old size", "path", p, "err", err)
	}
	// Or shorter than the stat said: changed again meanwhile, the
	// kernel's attributes are invalid already and nothing better can be
	// done.
	return 0
}

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	fsys := n.fsys
	if fsys.o.ReadOnly {
		return nil, nil, 0, syscall.EROFS
	}
	p, errno := n.childPath(name)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	perm := goPerm(mode &^ backend.PermToUnix(fsys.o.Umask))
	f, err := fsys.b.OpenFile(bctx(ctx), p, backendFlags(flags)|os.O_CREATE, perm)
	if err != nil {
		fsys.changed(change{op: opCreate, dir: n, name: name, failed: true})
		return nil, nil, 0, n.errno("create", p, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		fsys.changed(change{op: opCreate, dir: n, name: name})
		return nil, nil, 0, n.errno("create", p, err)
	}
	// Without O_EXCL the name may already exist (the kernel's negative
	// entry was stale); its node, if the kernel still holds one, is the
	// same file and must stay the same inode.
	ch := n.newChild(ctx, name, fi, out, true)
	cn := ch.Operations().(*node)
	fsys.changed(change{op: opCreate, dir: n, name: name, node: cn, fi: &fi})
	return ch, newFileHandle(cn, f), 0, 0
}

// created finishes Mkdir and Symlink: it stats the new entry so the
// kernel gets its real attributes (the storage may apply its own umask).
func (n *node) created(ctx context.Context, op changeOp, name, p string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	fi, err := n.fsys.b.Lstat(bctx(ctx), p)
	if err != nil {
		n.fsys.changed(change{op: op, dir: n, name: name})
		return nil, n.errno(op.String(), p, err)
	}
	n.fsys.changed(change{op: op, dir: n, name: name, fi: &fi})
	return n.newChild(ctx, name, fi, out, false), 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if n.fsys.o.ReadOnly {
		return nil, syscall.EROFS
	}
	p, errno := n.childPath(name)
	if errno != 0 {
		return nil, errno
	}
	perm := goPerm(mode &^ backend.PermToUnix(n.fsys.o.Umask))
	if err := n.fsys.b.Mkdir(bctx(ctx), p, perm); err != nil {
		n.fsys.changed(change{op: opMkdir, dir: n, name: name, failed: true})
		return nil, n.errno("mkdir", p, err)
	}
	return n.created(ctx, opMkdir, name, p, out)
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	if n.fsys.o.ReadOnly {
		return syscall.EROFS
	}
	p, errno := n.childPath(name)
	if errno != 0 {
		return errno
	}
	return n.removed(name, n.errno("rmdir", p, n.fsys.b.Rmdir(bctx(ctx), p)), timeWindow{})
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	if n.fsys.o.ReadOnly {
		return syscall.EROFS
	}
	p, errno := n.childPath(name)
	if errno != 0 {
		return errno
	}
	// The kernel sends UNLINK only for a name it knows as a
	// non-directory, so the backend need not check (backend.Unlinker).
	// The times around the request bound when the server changed the
	// directory's mtime (dirattr.go).
	w := timeWindow{from: time.Now()}
	err := backend.Unlink(bctx(ctx), n.fsys.b, p)
	w.to = time.Now()
	return n.removed(name, n.errno("unlink", p, err), w)
}

// removed reports unlink or rmdir of name, which returned errno; w is
// the local time around an unlink's request (zero for rmdir, which also
// changes the directory's link count).
func (n *node) removed(name string, errno syscall.Errno, w timeWindow) syscall.Errno {
	n.fsys.changed(change{op: opRemove, dir: n, name: name, failed: errno != 0, at: w})
	return errno
}

// Linux renameat2 flags (include/uapi/linux/fs.h).
const (
	renameNoReplace = 1 << 0
	renameExchange  = 1 << 1
)

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if n.fsys.o.ReadOnly {
		return syscall.EROFS
	}
	if flags&renameExchange != 0 {
		// No storage protocol we speak can swap two names atomically.
		return syscall.ENOTSUP
	}
	if flags&^renameNoReplace != 0 {
		return syscall.EINVAL
	}
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	from, errno := n.childPath(name)
	if errno != 0 {
		return errno
	}
	to, errno := np.childPath(newName)
	if errno != 0 {
		return errno
	}
	var rf backend.RenameFlags
	if flags&renameNoReplace != 0 {
		rf |= backend.RenameNoReplace
	}
	c := change{op: opRename, dir: n, name: name, to: np, toName: newName}
	if moved, known := n.fsys.dc.entry(n, name); known {
		c.fi = &moved
	}
	// The window bounds when the server changed the directories'
	// mtimes; a directory moved between directories also changes
	// their link counts, so it gets none (dirattr.go).
	var w timeWindow
	if child := n.GetChild(name); child != nil && child.StableAttr().Mode != syscall.S_IFDIR {
		w.from = time.Now()
	}
	err := n.fsys.b.Rename(bctx(ctx), from, to, rf)
	if !w.from.IsZero() {
		w.to = time.Now()
	}
	c.at = w
	errno = n.errno("rename", from, err)
	c.failed = errno != 0
	n.fsys.changed(c)
	return errno
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if n.fsys.o.ReadOnly {
		return nil, syscall.EROFS
	}
	if !n.fsys.caps.Symlink {
		return nil, syscall.ENOTSUP
	}
	p, errno := n.childPath(name)
	if errno != 0 {
		return nil, errno
	}
	if err := n.fsys.b.Symlink(bctx(ctx), target, p); err != nil {
		n.fsys.changed(change{op: opSymlink, dir: n, name: name, failed: true})
		return nil, n.errno("symlink", p, err)
	}
	return n.created(ctx, opSymlink, name, p, out)
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	p, ok := n.path()
	if !ok {
		return nil, syscall.ENOENT
	}
	t, err := n.fsys.b.Readlink(bctx(ctx), p)
	if err != nil {
		return nil, n.errno("readlink", p, err)
	}
	policy := n.fsys.o.Symlinks
	if policy == SymlinkKeep {
		return []byte(t), 0
	}
	shown, escapes := containTarget(p, t)
	if escapes && policy == SymlinkRefuse {
		n.mu.Lock()
		first := !n.refusedLogged
		n.refusedLogged = true
		n.mu.Unlock()
		if first {
			n.fsys.log.Warn("refusing symlink whose target leads out of the mount (option symlinks=refuse; use symlinks=contain to show it rewritten)", "path", p)
		}
		n.fsys.log.Debug("refused symlink target", "path", p, "target", t)
		return nil, syscall.EACCES
	}
	return []byte(shown), 0
}

// Link returns the target's own inode for the new name, so both names
// show the same inode number for as long as the kernel remembers them.
func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if n.fsys.o.ReadOnly {
		return nil, syscall.EROFS
	}
	if !n.fsys.caps.Link {
		return nil, syscall.ENOTSUP
	}
	tn, ok := target.(*node)
	if !ok {
		return nil, syscall.EXDEV
	}
	from, ok := tn.path()
	if !ok {
		return nil, syscall.ENOENT
	}
	p, errno := n.childPath(name)
	if errno != 0 {
		return nil, errno
	}
	if err := n.fsys.b.Link(bctx(ctx), from, p); err != nil {
		n.fsys.changed(change{op: opLink, dir: n, name: name, failed: true})
		return nil, n.errno("link", p, err)
	}
	c := change{op: opLink, dir: n, name: name, node: tn}
	fi, err := n.fsys.b.Lstat(bctx(ctx), p)
	if err == nil {
		c.fi = &fi
	}
	// The target's link count changed under its other name too.
	n.fsys.changed(c)
	if err != nil {
		return nil, n.errno("link", p, err)
	}
	n.fsys.fillAttr(fi, &out.Attr)
	return tn.EmbeddedInode(), 0
}

// Fallback capacity reported when the storage cannot tell (no statvfs):
// 1 PiB in 4 KiB blocks, all free. Zero would make programs that check
// free space before writing (package managers, installers) refuse to.
const (
	fallbackBlockSize = 4096
	fallbackBlocks    = 1 << 38
	fallbackFiles     = 1 << 30
	fallbackNameMax   = 255
)

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	if !n.fsys.caps.StatFS {
		out.Bsize, out.Frsize = fallbackBlockSize, fallbackBlockSize
		out.Blocks, out.Bfree, out.Bavail = fallbackBlocks, fallbackBlocks, fallbackBlocks
		out.Files, out.Ffree = fallbackFiles, fallbackFiles
		out.NameLen = fallbackNameMax
		return 0
	}
	p, ok := n.path()
	if !ok {
		p = "."
	}
	st, err := n.fsys.b.StatFS(bctx(ctx), p)
	if err != nil {
		return n.errno("statfs", p, err)
	}
	out.Bsize = uint32(st.BlockSize)
	out.Frsize = uint32(st.BlockSize)
	out.Blocks, out.Bfree, out.Bavail = st.Blocks, st.BlocksFree, st.BlocksAvail
	out.Files, out.Ffree = st.Files, st.FilesFree
	out.NameLen = uint32(st.NameMax)
	if out.NameLen == 0 {
		out.NameLen = fallbackNameMax
	}
	return 0
}

// Extended attributes are not part of the backend contract. ENOSYS makes
// the kernel remember that for the whole mount and answer EOPNOTSUPP
// itself from then on, so `ls -l`, `cp -a` and, importantly, the
// security.capability check the kernel does before every write cost no
// round trip.
func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return 0, syscall.ENOSYS
}

func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return 0, syscall.ENOSYS
}

func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return syscall.ENOSYS
}

func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return syscall.ENOSYS
}

// Fsync on a node is reached for directories (fsyncdir); file handles
// implement their own Fsync. The backend has nothing to sync for a
// directory: every namespace change is already sent synchronously.
func (n *node) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	if h, ok := f.(*fileHandle); ok {
		return h.Fsync(ctx, flags)
	}
	return 0
}
