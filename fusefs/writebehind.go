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
// copies the data, starts the backend write and answers at once.
//
// Errors are never lost: the first failed write makes the handle's error
// sticky; it is returned by the next write, by flush (every close(2)) and
// by fsync, and again by every later one, so an application that checks
// close(2) or fsync(2) always sees it.
//
// Ordering and visibility: a write that overlaps one still in flight
// waits for all in-flight writes first, so the storage applies
// overlapping writes in the order the application made them. Everything
// that must see the written data waits for the node's writes to finish
// first: reads, fstat/getattr, setattr (truncate), lookups of the name,
// flush, fsync and release.

// writeBehind is the in-flight write state of one file handle.
type writeBehind struct {
	slots  chan struct{}
	mu     sync.Mutex
	cond   *sync.Cond
	ranges map[uint64][2]int64 // in flight, by id
	nextID uint64
	err    error // sticky, see above
}

func newWriteBehind(depth int) *writeBehind {
	if depth <= 0 {
		return nil
	}
	w := &writeBehind{slots: make(chan struct{}, depth), ranges: map[uint64][2]int64{}}
	w.cond = sync.NewCond(&w.mu)
	return w
}

// wait blocks until no write of this handle is in flight and returns the
// sticky error.
func (w *writeBehind) wait() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.ranges) > 0 {
		w.cond.Wait()
	}
	return w.err
}

func (w *writeBehind) overlapsLocked(off, end int64) bool {
	for _, r := range w.ranges {
		if off < r[1] && r[0] < end {
			return true
		}
	}
	return false
}

// write starts an asynchronous write of a copy of data at off.
func (h *fileHandle) writeAsync(data []byte, off int64) syscall.Errno {
	w := h.wb
	n := h.node
	w.mu.Lock()
	for w.err == nil && w.overlapsLocked(off, off+int64(len(data))) {
		w.cond.Wait()
	}
	if err := w.err; err != nil {
		w.mu.Unlock()
		return h.errno("write", err)
	}
	w.mu.Unlock()

	w.slots <- struct{}{} // back-pressure: at most depth writes in flight
	var buf []byte
	pooled := len(data) <= readChunk
	if pooled {
		buf = n.fsys.bufs.get()[:len(data)]
	} else {
		buf = make([]byte, len(data))
	}
	copy(buf, data)

	w.mu.Lock()
	id := w.nextID
	w.nextID++
	w.ranges[id] = [2]int64{off, off + int64(len(data))}
	w.mu.Unlock()
	n.writeStarted()

	f := h.f
	go func() {
		k, err := f.WriteAt(buf, off)
		if err == nil && k < len(buf) {
			err = io.ErrShortWrite
		}
		if pooled {
			n.fsys.bufs.put(buf)
		}
		w.mu.Lock()
		delete(w.ranges, id)
		if err != nil && w.err == nil {
			w.err = err
		}
		w.cond.Broadcast()
		w.mu.Unlock()
		n.writeDone()
		<-w.slots
	}()
	return 0
}

// nodeWrites tracks the writes in flight to one node (through any of its
// handles) and counts writes ever started, so that cached data (the
// read-ahead) and cached attributes can tell whether they predate one.
type nodeWrites struct {
	mu      sync.Mutex
	cond    *sync.Cond
	pending int
	gen     uint64
}

func (n *node) writesLocked() *nodeWrites {
	if n.w.cond == nil {
		n.w.cond = sync.NewCond(&n.w.mu)
	}
	return &n.w
}

func (n *node) writeStarted() {
	n.w.mu.Lock()
	n.writesLocked()
	n.w.pending++
	n.w.gen++
	n.w.mu.Unlock()
}

func (n *node) writeDone() {
	n.markChanged()
	n.w.mu.Lock()
	n.w.pending--
	n.writesLocked().cond.Broadcast()
	n.w.mu.Unlock()
}

// writeState returns the write generation and whether writes are in
// flight.
func (n *node) writeState() (gen uint64, pending bool) {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	return n.w.gen, n.w.pending > 0
}

// drainWrites waits until no write to n is in flight.
func (n *node) drainWrites() {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	for n.w.pending > 0 {
		n.writesLocked().cond.Wait()
	}
}

// bumpWriteGen marks n's data as changed by something other than a
// write (a truncate), invalidating read-ahead chunks.
func (n *node) bumpWriteGen() {
	n.w.mu.Lock()
	n.w.gen++
	n.w.mu.Unlock()
	n.markChanged()
}
