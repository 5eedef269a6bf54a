package fusefs

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/sftpfs/sftpfs/backend"
)

// fileHandle is one open(2) of a regular file. go-fuse already waits for
// running operations on a handle before it calls Release, but the handle
// does not rely on that: every operation holds mu for reading and checks
// released, and Release takes mu for writing, so an operation that races
// with Release gets EBADF and never touches a closed backend.File.
type fileHandle struct {
	node *node
	mu   sync.RWMutex
	f    backend.File
	// released is set once by Release under mu.Lock.
	released bool
	// dirty is set by writes and cleared by a successful Flush/Fsync, so
	// that close(2) of a file that was only read costs no round trip.
	dirtyMu sync.Mutex
	dirty   bool
	// wrote is set once anything was written or truncated through the
	// handle; Release then marks the node's listing entries unknown.
	wrote atomic.Bool
	// ra is the read-ahead pipeline and wb the write-behind state
	// (readahead.go, writebehind.go); nil when disabled.
	ra *readAhead
	wb *writeBehind
}

func newFileHandle(n *node, f backend.File) *fileHandle {
	h := &fileHandle{node: n, f: f, ra: newReadAhead(n, f)}
	if !n.fsys.o.ReadOnly {
		h.wb = newWriteBehind(n.fsys.o.WriteBehind)
	}
	return h
}

// with runs fn with the backend file unless the handle was released.
func (h *fileHandle) with(fn func(f backend.File) syscall.Errno) syscall.Errno {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.released {
		return syscall.EBADF
	}
	return fn(h.f)
}

func (h *fileHandle) errno(op string, err error) syscall.Errno {
	return toErrno(h.node.fsys.log, h.node.fsys.errs, op, h.node.debugPath(), err)
}

func (h *fileHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	var n int
	var reply *chunkReply
	errno := h.with(func(f backend.File) syscall.Errno {
		h.node.drainWrites()
		var err error
		if h.ra != nil {
			var res raResult
			res, err = h.ra.read(dest, off)
			n = res.n
			if err != nil && !errors.Is(err, io.EOF) {
				res.release()
			} else if !res.inP {
				reply = &chunkReply{res}
			}
		} else {
			n, err = f.ReadAt(dest, off)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return h.errno("read", err)
		}
		return 0
	})
	if errno != 0 {
		return nil, errno
	}
	if reply != nil {
		return reply, 0
	}
	// Not ReadResultData: go-fuse tries splice(2) for that kind, which
	// for data already in memory writes the reply header into a pipe,
	// gives up and drains the pipe again before the writev(2) it needs
	// anyway: two wasted system calls per READ. A vector result goes
	// straight to writev(2).
	return fuse.ReadResultVector([][]byte{dest[:n]}), 0
}

func (h *fileHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if h.node.fsys.o.ReadOnly {
		return 0, syscall.EROFS
	}
	var n int
	h.node.wroteTo(off + int64(len(data)))
	errno := h.with(func(f backend.File) syscall.Errno {
		h.setDirty(true)
		h.wrote.Store(true)
		if h.wb != nil {
			if errno := h.writeAsync(data, off); errno != 0 {
				return errno
			}
			n = len(data)
			return 0
		}
		var err error
		n, err = f.WriteAt(data, off)
		h.node.fsys.changed(change{op: opWrite, node: h.node})
		if err != nil {
			return h.errno("write", err)
		}
		return 0
	})
	return uint32(n), errno
}

func (h *fileHandle) setDirty(v bool) {
	h.dirtyMu.Lock()
	h.dirty = v
	h.dirtyMu.Unlock()
}

func (h *fileHandle) takeDirty() bool {
	h.dirtyMu.Lock()
	defer h.dirtyMu.Unlock()
	d := h.dirty
	h.dirty = false
	return d
}

// Flush runs on every close(2) of a descriptor (and of each dup). It is
// the last point where a write error can still reach the application,
// since the kernel ignores what Release returns. A backend may defer
// write errors until Sync or Close, so a handle that was written to is
// synced here; handles that were only read cost nothing.
func (h *fileHandle) Flush(ctx context.Context) syscall.Errno {
	return h.with(func(f backend.File) syscall.Errno {
		if err := h.waitWrites(); err != nil {
			return h.errno("flush", err)
		}
		if !h.takeDirty() {
			return 0
		}
		if h.node.fsys.caps.WritesAcked {
			// Every write was acknowledged: the data is on the
			// storage and visible to its other clients. Durability
			// is fsync(2)'s job; a Sync here would cost a round
			// trip per closed file (docs/perf.md).
			return 0
		}
		if err := f.Sync(); err != nil {
			return h.errno("flush", err)
		}
		return 0
	})
}

func (h *fileHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return h.with(func(f backend.File) syscall.Errno {
		if err := h.waitWrites(); err != nil {
			return h.errno("fsync", err)
		}
		h.takeDirty()
		if err := f.Sync(); err != nil {
			return h.errno("fsync", err)
		}
		return 0
	})
}

// Release closes the backend file. The kernel ignores the result, so a
// close error is only logged (Flush already reported pending errors).
func (h *fileHandle) Release(ctx context.Context) syscall.Errno {
	// Writes in flight use h.f without holding h.mu; they must end
	// before it is closed. Their error was reported by Flush.
	_ = h.waitWrites()
	if h.wrote.Load() {
		h.node.fsys.changed(change{op: opWritten, node: h.node})
	}
	if h.ra != nil {
		h.ra.close()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return syscall.EBADF
	}
	h.released = true
	if err := h.f.Close(); err != nil {
		return h.errno("close", err)
	}
	return 0
}

func (h *fileHandle) stat() (backend.FileInfo, syscall.Errno) {
	var fi backend.FileInfo
	errno := h.with(func(f backend.File) syscall.Errno {
		h.node.drainWrites()
		var err error
		fi, err = f.Stat()
		if err != nil {
			return h.errno("fstat", err)
		}
		return 0
	})
	return fi, errno
}

// truncate is ftruncate(2); Setattr reports the change (opTruncate).
func (h *fileHandle) truncate(size int64) syscall.Errno {
	return h.with(func(f backend.File) syscall.Errno {
		h.setDirty(true)
		h.wrote.Store(true)
		if err := h.waitWrites(); err != nil {
			return h.errno("ftruncate", err)
		}
		h.node.drainWrites()
		if err := f.Truncate(size); err != nil {
			return h.errno("ftruncate", err)
		}
		return 0
	})
}
