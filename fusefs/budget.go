package fusefs

import "sync"

// Mount-wide bounds on data buffers. Read-ahead (Options.ReadAhead) and
// write-behind (Options.WriteBehind) are sized per handle, so without a
// bound across handles a mount's memory grows with the number of files
// streamed at once: 16 processes reading 64 MiB each through one mount
// peaked at 198-226 MiB RSS, 16 writing at 181 MiB. A plugin serving
// many containers from one volume must not grow like that, and more
// buffers bought nothing: with these bounds the same runs peaked at
// 103-109 and 59 MiB and were as fast or faster, writes 1.15-1.4x with
// a quarter to a third less CPU per byte (docs/perf.md, session 10).
// Four streams keep their whole windows within the default 16 MiB.
//
// The two bounds are separate because they fail differently:
//
//   - Read-ahead only tries (tryTake). A handle whose reader stops with
//     the file open keeps its chunks, and nothing else may wait for
//     them; without a unit a sequential reader is served by the chunk it
//     needs right now (never bounded: a read must always progress) and
//     the kernel's own read-ahead, as without read-ahead.
//   - Write-behind waits (take): write(2) blocks until a unit is free,
//     as it does on the handle's own depth. Every unit held is a backend
//     write in flight, which ends (done, failed, or cut by op_timeout),
//     so the wait always ends.
//
// A unit is one buffer of the pool (readChunk bytes), whatever part of
// it a write uses, since that is what the buffer costs.
type memBudget struct {
	mu   sync.Mutex
	cond sync.Cond
	// limit is the number of units; 0 means no bound.
	limit int
	held  int
	// peak is the most units ever held at once (tests).
	peak int
}

func newMemBudget(bytes int) *memBudget {
	b := &memBudget{}
	if bytes > 0 {
		b.limit = max(1, bytes/readChunk)
	}
	b.cond.L = &b.mu
	return b
}

func (b *memBudget) takeLocked() {
	b.held++
	b.peak = max(b.peak, b.held)
}

// tryTake takes a unit if one is free.
func (b *memBudget) tryTake() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.limit > 0 && b.held >= b.limit {
		return false
	}
	b.takeLocked()
	return true
}

// take waits for a free unit and takes it.
func (b *memBudget) take() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.limit > 0 && b.held >= b.limit {
		b.cond.Wait()
	}
	b.takeLocked()
}

// give returns a unit.
func (b *memBudget) give() {
	b.mu.Lock()
	b.held--
	b.mu.Unlock()
	b.cond.Signal()
}

// stats returns the units held now and at most so far.
func (b *memBudget) stats() (held, peak int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held, b.peak
}
