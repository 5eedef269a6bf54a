package fusefs

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/sftpfs/sftpfs/backend"
)

// Read-ahead. The kernel sends READs of at most 128 KiB (its readahead
// window for FUSE) and waits for each before it sends many more, so a
// network backend serving them one by one spends most of its time waiting
// for round trips: measured over loopback SSH, 128 KiB reads one at a
// time reach ~95 MB/s, while four 1 MiB reads in flight reach ~245 MB/s
// with less CPU per byte (docs/perf.md). Once a handle is read
// sequentially, readAhead keeps a window of concurrent large backend
// reads ahead of the reader and serves the kernel's READs from them.
// Random reads go straight to the backend and cost nothing extra. The
// chunks ahead of all readers of a mount together are bounded by
// Options.ReadAheadTotal (budget.go): beyond it a reader gets only the
// chunk it waits for.
//
// Consistency: a chunk is used only if no write to the node was made
// (through any handle of this mount) since the chunk was requested, and
// only while the reader stays inside the window, so it is never older
// than what the same reader could have got from a read issued a moment
// earlier. Changes made by other clients of the storage become visible
// at the next chunk, as with the kernel's own page cache.

// raChunk is one backend read of the pipeline.
type raChunk struct {
	off  int64
	buf  []byte
	n    int
	err  error
	done chan struct{}
	// refs counts the pipeline, the fetch and every reader copying out
	// of buf; the last one returns buf to the pool.
	refs atomic.Int32
	pool *bufPool
	// mem is the budget the chunk holds a unit of, if any: chunks read
	// ahead of the reader take one, a chunk a read waits for does not.
	mem *memBudget
}

func (c *raChunk) release() {
	if c.refs.Add(-1) == 0 {
		c.pool.put(c.buf)
		if c.mem != nil {
			c.mem.give()
		}
	}
}

func (c *raChunk) end() int64 { return c.off + int64(len(c.buf)) }

// readAhead is the read pipeline of one file handle.
type readAhead struct {
	f      backend.File
	node   *node
	chunk  int
	window int64
	pool   *bufPool
	mem    *memBudget

	mu     sync.Mutex
	next   int64 // offset just past the last read
	seq    int   // consecutive sequential reads
	gen    uint64
	eof    int64 // offset where a chunk met the end of file, or -1
	chunks []*raChunk
}

func newReadAhead(n *node, f backend.File) *readAhead {
	o := n.fsys.o
	if o.ReadAhead <= 0 {
		return nil
	}
	return &readAhead{
		f: f, node: n, chunk: readChunk, window: int64(o.ReadAhead),
		pool: n.fsys.bufs, mem: n.fsys.raMem, eof: -1,
	}
}

// readChunk is the size of one pipelined backend read: large enough
// that per-request overhead is small, small enough that a window holds
// several of them in flight.
const readChunk = 1 << 20

// dropLocked forgets every chunk; fetches still running finish on their
// own and free their buffers.
func (r *readAhead) dropLocked() {
	for _, c := range r.chunks {
		c.release()
	}
	r.chunks = nil
	r.eof = -1
}

// close releases the pipeline when the handle is released.
func (r *readAhead) close() {
	r.mu.Lock()
	r.dropLocked()
	r.mu.Unlock()
}

func (r *readAhead) covers(off int64) bool {
	return len(r.chunks) > 0 && off >= r.chunks[0].off && off < r.chunks[len(r.chunks)-1].end()
}

// ReadAt reads len(p) bytes at off like io.ReaderAt.
func (r *readAhead) ReadAt(p []byte, off int64) (int, error) {
	res, err := r.read(p, off)
	if !res.inP {
		copyVecs(p, res.vecs)
	}
	res.release()
	return res.n, err
}

// raResult is the answer to one read: n bytes in vecs, which are either
// p itself (inP) or slices of read-ahead chunks that stay allocated to
// this answer until release.
type raResult struct {
	vecs [][]byte
	n    int
	inP  bool
	held []*raChunk
}

func (res *raResult) release() {
	for _, c := range res.held {
		c.release()
	}
	res.held = nil
}

func copyVecs(p []byte, vecs [][]byte) {
	n := 0
	for _, v := range vecs {
		n += copy(p[n:], v)
	}
}

// read answers a read of len(p) bytes at off without copying data that
// the pipeline already holds: the kernel's reply is written straight
// from the chunks (see chunkReply), which saves a copy of every byte
// streamed. p is used only when the read bypasses the pipeline.
func (r *readAhead) read(p []byte, off int64) (raResult, error) {
	direct := func() (raResult, error) {
		n, err := r.f.ReadAt(p, off)
		return raResult{vecs: [][]byte{p[:n]}, n: n, inP: true}, err
	}
	gen, pending := r.node.writeState()
	r.mu.Lock()
	if gen != r.gen {
		r.dropLocked()
		r.gen = gen
	}
	sequential := off == r.next || r.covers(off)
	r.next = off + int64(len(p))
	if !sequential {
		r.seq = 0
		r.dropLocked()
	} else {
		r.seq++
	}
	if r.seq < 2 || pending {
		// Not (yet) a sequential reader, or writes to this file are
		// still in flight: a prefetch now could miss them.
		r.mu.Unlock()
		return direct()
	}
	for len(r.chunks) > 0 && r.chunks[0].end() <= off {
		r.chunks[0].release()
		r.chunks = r.chunks[1:]
	}
	start := off
	if len(r.chunks) > 0 {
		start = r.chunks[len(r.chunks)-1].end()
	}
	for start < off+int64(len(p))+r.window && (r.eof < 0 || start < r.eof) {
		// A chunk this read needs is always fetched; one further
		// ahead only while the mount's read-ahead budget allows.
		var mem *memBudget
		if start >= off+int64(len(p)) {
			if !r.mem.tryTake() {
				break
			}
			mem = r.mem
		}
		r.chunks = append(r.chunks, r.fetch(start, gen, mem))
		start += int64(r.chunk)
	}
	var need []*raChunk
	for _, c := range r.chunks {
		if c.off < off+int64(len(p)) && c.end() > off {
			c.refs.Add(1)
			need = append(need, c)
		}
	}
	r.mu.Unlock()

	if len(need) == 0 { // at or past a known end of file
		return direct()
	}
	// Every chunk in need stays held until the answer is released:
	// its buffer returns to the pool only after the reply was written.
	res := raResult{held: need}
	var err error
	for _, c := range need {
		<-c.done
		if err == nil {
			pos := off + int64(res.n)
			if pos >= c.off && pos < c.off+int64(c.n) {
				end := min(int64(c.n), pos-c.off+int64(len(p)-res.n))
				v := c.buf[pos-c.off : end]
				res.vecs = append(res.vecs, v)
				res.n += len(v)
			}
			if res.n < len(p) && c.err != nil {
				err = c.err
			}
		}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		// Let the next read retry without the pipeline.
		r.mu.Lock()
		r.dropLocked()
		r.seq = 0
		r.mu.Unlock()
		return res, err
	}
	if res.n < len(p) {
		return res, io.EOF
	}
	return res, nil
}

// chunkReply is a FUSE READ reply written by go-fuse (writev) straight
// from read-ahead chunks; go-fuse calls Done once the reply is written,
// which hands the chunks back.
type chunkReply struct{ res raResult }

func (c *chunkReply) Size() int { return c.res.n }

func (c *chunkReply) Done() { c.res.release() }

func (c *chunkReply) Bytes(buf []byte) ([]byte, fuse.Status) {
	buf = buf[:0]
	for _, v := range c.res.vecs {
		buf = append(buf, v...)
	}
	return buf, fuse.OK
}

// Slices makes go-fuse write the reply with writev(2) from the chunks
// (its withSlice interface).
func (c *chunkReply) Slices() ([][]byte, fuse.Status) { return c.res.vecs, fuse.OK }

func (r *readAhead) fetch(off int64, gen uint64, mem *memBudget) *raChunk {
	c := &raChunk{off: off, buf: r.pool.get(), done: make(chan struct{}), pool: r.pool, mem: mem}
	c.refs.Store(2) // the pipeline and the fetch
	go func() {
		c.n, c.err = r.f.ReadAt(c.buf, c.off)
		if c.n < len(c.buf) && errors.Is(c.err, io.EOF) {
			r.mu.Lock()
			if r.gen == gen && (r.eof < 0 || c.off+int64(c.n) < r.eof) {
				r.eof = c.off + int64(c.n)
			}
			r.mu.Unlock()
		}
		close(c.done)
		c.release()
	}()
	return c
}

// bufPool recycles the 1 MiB buffers of read-ahead and write-behind, so
// streaming a large file does not allocate (and garbage-collect) its
// whole size.
type bufPool struct {
	p sync.Pool
}

func newBufPool() *bufPool {
	return &bufPool{p: sync.Pool{New: func() any { b := make([]byte, readChunk); return &b }}}
}

func (bp *bufPool) get() []byte { return (*bp.p.Get().(*[]byte))[:readChunk] }

func (bp *bufPool) put(b []byte) {
	if cap(b) != readChunk {
		return
	}
	b = b[:readChunk]
	bp.p.Put(&b)
}
