package fusefs

import (
	"time"

	"github.com/sftpfs/sftpfs/backend"
)

// Changes through this mount. Every operation that changes the storage
// reports what it did with one call, filesystem.changed, once the backend
// has answered; this file is the only place that decides which caches a
// change affects. Before it, each operation kept the caches coherent with
// its own mix of calls (44 of them), and one that every namespace
// operation lacked (dir's own entry in its parent, below) showed a
// renamed-from directory's old mtime.
//
// The caches (docs in doc.go, "Cache coherence"):
//
//   - listing snapshots and listings read ahead (dircache.go): an entry
//     is set, removed or marked unknown; a directory whose change failed
//     half-way is forgotten; a rename makes every listing read ahead by
//     path before it unusable;
//   - a directory's remembered attributes (dirattr.go): carried across a
//     creation of a regular file and an unlink or rename of a file whose
//     server time is known (only the mtime moves), invalidated by every
//     other change of the directory's entries;
//   - a node's change sequence number (node.changed): a snapshot entry
//     read before it is not trusted for that node;
//   - a node's write generation (writebehind.go): read-ahead chunks and
//     the page cache kept across opens (keepcache.go) of an older
//     generation are not used.
//
// What each operation does (- = untouched):
//
//	op          entry in dir           dir attrs   node seq  write gen
//	            (and dir's own entry in its parent: unknown, for every
//	            namespace op that succeeded or failed half-way)
//	opCreate    set to fi (unknown*)   carried     new node  new node
//	opMkdir     set to fi (unknown*)   invalid     -         -
//	opSymlink   set to fi (unknown*)   invalid     -         -
//	opLink      set to fi (unknown*)   invalid     target**  -
//	opRemove    removed                invalid**** -         -
//	opRename    removed; set in to***  invalid**** -         -
//	opAttr      node's entry unknown   carried     node      -
//	opTruncate  node's entry unknown   carried     node      node
//	opWrite     - (opWritten does it)  -           node      (at start)
//	opWritten   node's entry unknown   carried     node      -
//
//	*   unknown when fi could not be read after the operation succeeded
//	**  its entry under its other name becomes unknown (link count)
//	*** with the source's snapshot attributes when known, else unknown
//	**** carried after an unlink or a rename of a file whose time is
//	     known (dirattr.go)
//
// A failed namespace operation (failed set) may still have been carried
// out in part (a timeout after the server acted), so it forgets the
// listing snapshots of the directories involved instead. opWrite is on
// the write hot path: two atomic operations, no lock; the entry in the parent's snapshot
// is marked unknown once, when the handle is released (opWritten), and
// until then trusted() refuses snapshot entries of a node with newer
// changes or writes in flight. The write generation itself moves when a
// write starts (writeAsync), because read-ahead must not fetch around a
// write in flight.
type changeOp uint8

const (
	opCreate changeOp = iota + 1
	opMkdir
	opSymlink
	opLink
	opRemove
	opRename
	opAttr
	opTruncate
	opWrite
	opWritten
)

func (op changeOp) String() string {
	switch op {
	case opCreate:
		return "create"
	case opMkdir:
		return "mkdir"
	case opSymlink:
		return "symlink"
	case opLink:
		return "link"
	case opRemove:
		return "remove"
	case opRename:
		return "rename"
	case opAttr:
		return "setattr"
	case opTruncate:
		return "truncate"
	case opWrite:
		return "write"
	case opWritten:
		return "written"
	}
	return "changeOp(?)"
}

// change describes one completed operation through this mount.
type change struct {
	op changeOp
	// dir and name are the entry the operation created, removed or
	// renamed (namespace operations).
	dir  *node
	name string
	// to and toName are a rename's destination.
	to     *node
	toName string
	// node is the node whose attributes or data changed: the target of
	// opLink, the new file of opCreate, the subject of opAttr,
	// opTruncate, opWrite and opWritten.
	node *node
	// fi is the entry's attributes after the operation (for opRename the
	// source's, carried to the new name); nil when not known.
	fi *backend.FileInfo
	// failed says the backend reported an error: the operation may have
	// been carried out in part.
	failed bool
	// at is the local time around the request of an unlink (opRemove
	// of a non-directory) or a rename of a non-directory; zero
	// otherwise.
	at timeWindow
}

// changed updates every cache affected by c (see the table above).
func (fsys *filesystem) changed(c change) {
	dc := fsys.dc
	switch c.op {
	case opCreate, opMkdir, opSymlink, opLink:
		if c.failed {
			dc.drop(c.dir)
			c.dir.dirEntryChanged()
			return
		}
		if c.op == opLink {
			c.node.attrsChanged()
		}
		prev, cur := dc.update(c.dir, c.name, c.fi, c.fi != nil)
		if c.op == opCreate && c.fi != nil {
			c.dir.dirAttrCarry(prev, cur, c.fi.ModTime)
		}
		c.dir.dirEntryChanged()
		if c.node != nil && c.fi != nil {
			c.node.remember(*c.fi)
		}
		if c.op == opCreate && c.node != nil {
			// Pages cached for a file that had this name before are
			// not this file's (keepcache.go).
			c.node.bumpWriteGen()
		}
	case opRemove:
		if c.failed {
			dc.drop(c.dir)
			c.dir.dirEntryChanged()
			return
		}
		prev, cur := dc.update(c.dir, c.name, nil, true)
		if mtime, ok := c.dir.entriesChangedAt(cur, c.at); ok {
			c.dir.dirAttrCarry(prev, cur, mtime)
		}
		c.dir.dirEntryChanged()
	case opRename:
		if c.failed {
			dc.drop(c.dir)
			dc.drop(c.to)
		} else {
			// With c.dir == c.to the second update moves the same
			// sequence number on from the first's.
			prev, cur := dc.update(c.dir, c.name, nil, true)
			if mtime, ok := c.dir.entriesChangedAt(cur, c.at); ok {
				c.dir.dirAttrCarry(prev, cur, mtime)
			}
			prev, cur = dc.update(c.to, c.toName, c.fi, c.fi != nil)
			if mtime, ok := c.to.entriesChangedAt(cur, c.at); ok {
				c.to.dirAttrCarry(prev, cur, mtime)
			}
		}
		c.dir.dirEntryChanged()
		c.to.dirEntryChanged()
		// Listings read ahead by path before now may be another
		// directory's. The number is taken after the backend answered,
		// so that a listing that started during the rename counts too.
		dc.renamed.Store(dc.begin())
	case opAttr, opWritten:
		c.node.attrsChanged()
	case opTruncate:
		c.node.bumpWriteGen()
		c.node.attrsChanged()
		c.node.wroteEnd.Store(-1)
	case opWrite:
		c.node.markChanged()
	default:
		panic("fusefs: unknown change " + c.op.String())
	}
}

// attrsChanged marks n changed and its entry in its parent's snapshot
// unknown after its attributes changed through this mount. The parent
// directory itself is as it was, so its attributes are carried.
func (n *node) attrsChanged() {
	n.markChanged()
	pn, name := parentOf(n)
	if pn == nil {
		return
	}
	prev, cur := n.fsys.dc.update(pn, name, nil, false)
	pn.dirAttrCarry(prev, cur, time.Time{})
}

// dirEntryChanged marks directory n's own entry in its parent's snapshot
// unknown after its entries changed: its mtime (and link count) moved.
// n's change number already moved with the change itself, which keeps
// the entry from being trusted only while the kernel holds n's node; a
// directory the kernel forgot since is looked up by name, and the
// snapshot must not answer with the old attributes then.
func (n *node) dirEntryChanged() {
	pn, name := parentOf(n)
	if pn == nil {
		return
	}
	prev, cur := n.fsys.dc.update(pn, name, nil, false)
	pn.dirAttrCarry(prev, cur, time.Time{})
}

// bumpWriteGen marks n's data as changed by something other than a
// write (a truncate, a new file under a name), invalidating read-ahead
// chunks and kept pages.
func (n *node) bumpWriteGen() {
	nw := n.writes()
	nw.mu.Lock()
	nw.gen++
	nw.mu.Unlock()
	n.markChanged()
}
