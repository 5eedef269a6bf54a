package fusefs

import (
	"context"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/sftpfs/sftpfs/backend"
)

// list reads directory n, sorted by name so that a listing read in
// several chunks (and re-read after a seek) is stable.
func (n *node) list(ctx context.Context) ([]backend.FileInfo, syscall.Errno) {
	fis, errno := n.listUnsorted(bctx(ctx))
	if errno != 0 {
		return nil, errno
	}
	sortByName(fis)
	return fis, 0
}

// sortByName puts a listing in name order, in place.
func sortByName(fis []backend.FileInfo) {
	slices.SortFunc(fis, func(a, b backend.FileInfo) int { return strings.Compare(a.Name, b.Name) })
}

// listUnsorted reads directory n in the backend's order. bc is passed
// to the backend as it is: a request's context goes through bctx first,
// a background listing's is the mount's (dirCache.ctx).
func (n *node) listUnsorted(bc context.Context) ([]backend.FileInfo, syscall.Errno) {
	p, ok := n.path()
	if !ok {
		return nil, syscall.ENOENT
	}
	fis, err := n.fsys.b.ReadDir(bc, p)
	if err != nil {
		return nil, n.errno("readdir", p, err)
	}
	return fis, 0
}

// dirEntry converts one listed entry, reusing the inode number of a
// child the kernel already knows so that readdir and stat agree.
func (n *node) dirEntry(fi backend.FileInfo) fuse.DirEntry {
	de := fuse.DirEntry{Name: fi.Name, Mode: typeBits(fi.Mode)}
	if ch := n.GetChild(fi.Name); ch != nil && ch.StableAttr().Mode == de.Mode {
		de.Ino = ch.StableAttr().Ino
	}
	return de
}

// Readdir lists the directory as a stream. The mount itself opens
// directories through OpendirHandle (below), which serves the same
// listing and also answers READDIRPLUS lookups from it.
func (n *node) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	fis, errno := n.list(ctx)
	if errno != 0 {
		return nil, errno
	}
	des := make([]fuse.DirEntry, 0, len(fis))
	for _, fi := range fis {
		des = append(des, n.dirEntry(fi))
	}
	return fs.NewListDirStream(des), 0
}

// OpendirHandle reads the whole listing at opendir time, so that errors
// (ENOTDIR, EACCES) surface from opendir(3) as on a local filesystem.
// The listing also becomes the directory's snapshot (dircache.go).
// A fresh snapshot of the directory, or else a listing read ahead
// (dircache.go), serves instead when there is one.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	dc := n.fsys.dc
	fis, seq, ok := dc.snapshotListing(n)
	if ok {
		sortByName(fis)
	} else {
		var at time.Time
		if fis, seq, at, ok = dc.takePrefetched(n); ok {
			sortByName(fis)
		} else {
			seq, at = dc.begin(), time.Now()
			var errno syscall.Errno
			if fis, errno = n.list(ctx); errno != 0 {
				return nil, 0, errno
			}
		}
		// After sorting: the snapshot points into fis.
		dc.storeAt(n, seq, fis, at)
	}
	dc.readAhead(n, fis)
	return &dirHandle{node: n, entries: fis, seq: seq}, 0, 0
}

// dirHandle is an open directory. Besides "." and ".." it serves the
// listing it read from the backend; positions are indexes into
// [".", "..", entries...] and each entry's Off is the position after it.
//
// It implements fs.FileLookuper: for READDIRPLUS the kernel wants the
// attributes of every entry along with its name, and go-fuse asks the
// handle for them. The listing already carries them (Lstat semantics),
// so `ls -l` on a directory of N files costs one remote ReadDir instead
// of N remote stats.
type dirHandle struct {
	node    *node
	mu      sync.Mutex
	entries []backend.FileInfo
	// seq is the dirCache sequence number at which entries were read.
	seq uint64
	pos int
	// last is the entry most recently returned by Readdirent; go-fuse
	// calls Lookup right after for that very name.
	last int
}

func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	i := d.pos
	var de fuse.DirEntry
	switch {
	case i == 0:
		de = fuse.DirEntry{Name: ".", Mode: syscall.S_IFDIR}
	case i == 1:
		de = fuse.DirEntry{Name: "..", Mode: syscall.S_IFDIR}
	case i-2 < len(d.entries):
		de = d.node.dirEntry(d.entries[i-2])
	default:
		return nil, 0
	}
	d.last = i
	d.pos++
	de.Off = uint64(d.pos)
	return &de, 0
}

// Seekdir moves to a position previously handed out as an Off. Seeking
// to 0 is rewinddir(3), which must show changes made since opendir, so
// the listing is read again.
func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	d.mu.Lock()
	defer d.mu.Unlock()
	if off == 0 {
		seq := d.node.fsys.dc.begin()
		fis, errno := d.node.list(ctx)
		if errno != 0 {
			return errno
		}
		d.node.fsys.dc.store(d.node, seq, fis)
		d.entries, d.seq = fis, seq
	}
	d.pos = int(min(off, uint64(len(d.entries)+2)))
	return 0
}

func (d *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	d.mu.Lock()
	var fi backend.FileInfo
	found := false
	if i := d.last - 2; i >= 0 && i < len(d.entries) && d.entries[i].Name == name {
		fi, found = d.entries[i], true
	} else {
		for _, e := range d.entries {
			if e.Name == name {
				fi, found = e, true
				break
			}
		}
	}
	seq := d.seq
	d.mu.Unlock()
	if found && !d.node.trusted(name, seq) {
		// The listing predates writes (or other attribute changes)
		// made through this mount, or writes are still in flight.
		found = false
	}
	if !found {
		// Not from this listing (should not happen); ask the backend.
		return d.node.Lookup(ctx, name, out)
	}
	return d.node.newChild(ctx, name, fi, out, true), 0
}

func (d *dirHandle) Releasedir(ctx context.Context, flags uint32) {}

// Fsyncdir has nothing to do: namespace changes reach the backend
// synchronously.
func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno { return 0 }
