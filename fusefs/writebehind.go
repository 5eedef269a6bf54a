package fusefs

import (
	"io"
	"sync"
	"syscall"
)

// Write-behind. A write(2) to a network backend that waits for the
// server's acknowledgement costs a round trip per FUSE WRITE (at most
// max_write bytes), so a sequential writer is latency bound. Instead a
// handle keeps up to Options.WriteBehind backend writes in flight: WRITE
// copies the data, starts the backend write and answers at once. The
// handles of a mount together hold at most Options.WriteBehindTotal of
// such copies; beyond it a WRITE waits for one to be free (budget.go).
//
// Errors are never lost: the first failed write makes the handle's error
// sticky; it is returned by the next write, by flush (every close(2)) and
// by fsync, and again by every later one, so an application that checks
// close(2) or fsync(2) always sees it.
//
// Ordering: the ranges in flight belong to the node, not to a handle.
// A write that overlaps one still in flight through any descriptor of
// the file (another fd, another process) waits for it, so the storage
// applies overlapping writes in the order write(2) returned: POSIX says
// the later one wins, and with a per-handle set two descriptors could
// land out of order (a write acknowledged first overwriting one
// acknowledged later). The overlap check and the registration of the
// new range happen under one lock, so no other write can slip between
// them. Non-overlapping writes may reach the storage in any order: the
// result is the same.
//
// Visibility: everything that must see the written data waits for the
// node's writes to finish first: reads, fstat/getattr, setattr
// (truncate), lookups of the name, flush, fsync and release.

// writeBehind is the write-behind state of one file handle. inflight and
// err are guarded by the node's nodeWrites.mu, so that one lock orders
// all writes to the file.
type writeBehind struct {
	slots    chan struct{} // back-pressure: at most depth writes in flight
	inflight int           // this handle's writes in flight
	err      error         // sticky, see above
}

func newWriteBehind(depth int) *writeBehind {
	if depth <= 0 {
		return nil
	}
	return &writeBehind{slots: make(chan struct{}, depth)}
}

// waitWrites waits for h's writes in flight (only its own: a close of
// one descriptor must not wait for another's stream) and returns their
// sticky error.
func (h *fileHandle) waitWrites() error {
	w := h.wb
	if w == nil {
		return nil
	}
	nw := h.node.writes()
	nw.mu.Lock()
	defer nw.mu.Unlock()
	for w.inflight > 0 {
		nw.cond.Wait()
	}
	return w.err
}

// writeAsync starts an asynchronous write of a copy of data at off.
func (h *fileHandle) writeAsync(data []byte, off int64) syscall.Errno {
	w := h.wb
	n := h.node
	end := off + int64(len(data))

	w.slots <- struct{}{}
	n.fsys.wbMem.take()
	var buf []byte
	pooled := len(data) <= readChunk
	if pooled {
		buf = n.fsys.bufs.get()[:len(data)]
	} else {
		buf = make([]byte, len(data))
	}
	copy(buf, data)
	release := func() {
		if pooled {
			n.fsys.bufs.put(buf)
		}
		n.fsys.wbMem.give()
		<-w.slots
	}

	nw := n.writes()
	nw.mu.Lock()
	for w.err == nil && nw.overlapsLocked(off, end) {
		nw.cond.Wait()
	}
	if err := w.err; err != nil {
		nw.mu.Unlock()
		release()
		return h.errno("write", err)
	}
	id := nw.nextID
	nw.nextID++
	nw.ranges[id] = [2]int64{off, end}
	nw.gen++
	w.inflight++
	nw.mu.Unlock()

	f := h.f
	go func() {
		k, err := f.WriteAt(buf, off)
		if err == nil && k < len(buf) {
			err = io.ErrShortWrite
		}
		release()
		n.fsys.changed(change{op: opWrite, node: n})
		nw.mu.Lock()
		delete(nw.ranges, id)
		w.inflight--
		if err != nil && w.err == nil {
			w.err = err
		}
		nw.cond.Broadcast()
		nw.mu.Unlock()
	}()
	return 0
}

// nodeWrites tracks the writes in flight to one node through any of its
// handles, by range, and counts writes ever started, so that cached
// data (the read-ahead) and cached attributes can tell whether they
// predate one.
type nodeWrites struct {
	mu     sync.Mutex
	cond   *sync.Cond
	ranges map[uint64][2]int64 // in flight, by id
	nextID uint64
	gen    uint64
}

// writes returns n's write state, made on first use (most nodes are
// never written).
func (n *node) writes() *nodeWrites {
	n.wOnce.Do(func() {
		n.w.cond = sync.NewCond(&n.w.mu)
		n.w.ranges = map[uint64][2]int64{}
	})
	return &n.w
}

func (nw *nodeWrites) overlapsLocked(off, end int64) bool {
	for _, r := range nw.ranges {
		if off < r[1] && r[0] < end {
			return true
		}
	}
	return false
}

// writeState returns the write generation and whether writes are in
// flight.
func (n *node) writeState() (gen uint64, pending bool) {
	nw := n.writes()
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return nw.gen, len(nw.ranges) > 0
}

// drainWrites waits until no write to n is in flight.
func (n *node) drainWrites() {
	nw := n.writes()
	nw.mu.Lock()
	defer nw.mu.Unlock()
	for len(nw.ranges) > 0 {
		nw.cond.Wait()
	}
}
