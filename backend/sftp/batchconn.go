package sftp

import (
	"net"
	"sync"
)

// maxPendingWrite bounds the bytes a batchConn accepted but has not yet
// written; a writer beyond it waits (back-pressure from a slow network).
const maxPendingWrite = 512 << 10

// idleBuffer is the largest write buffer kept while the connection is
// idle.
const idleBuffer = 64 << 10

// batchConn sits between the TCP connection and x/crypto/ssh. The SSH
// transport writes every packet with its own write(2) (with AES-GCM a
// 32 KiB channel packet even takes two: x/crypto/ssh's 4 KiB bufio.Writer
// splits it) while holding its write lock. batchConn accepts a write into
// a buffer and returns; one flusher goroutine writes whatever has
// accumulated with a single write(2). When idle that is one write per
// packet, as before, one goroutine hand-off later; under load the SSH
// layer encrypts the next packets while the previous ones are in the
// kernel, and they go out together. Measured (notes/PSSH.md): 40% fewer
// write(2) calls and 14% less client CPU per GiB written, no change for
// single round trips. A write error is reported by the next Write (the
// SSH connection is dead by then anyway).
//
// A larger read buffer under x/crypto/ssh's 4 KiB one was measured too
// and brought nothing measurable, so reads go straight through.
type batchConn struct {
	net.Conn

	mu      sync.Mutex
	more    sync.Cond // pending got data, or err was set
	room    sync.Cond // pending was taken, or err was set
	pending []byte
	err     error
}

func newBatchConn(c net.Conn) *batchConn {
	b := &batchConn{Conn: c}
	b.more.L = &b.mu
	b.room.L = &b.mu
	go b.flush()
	return b
}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	for b.err == nil && len(b.pending) > 0 && len(b.pending)+len(p) > maxPendingWrite {
		b.room.Wait()
	}
	if b.err != nil {
		err := b.err
		b.mu.Unlock()
		return 0, err
	}
	b.pending = append(b.pending, p...)
	b.mu.Unlock()
	b.more.Signal()
	return len(p), nil
}

// flush writes pending data until the connection fails or is closed.
func (b *batchConn) flush() {
	var buf []byte
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		for b.err == nil && len(b.pending) == 0 {
			// An idle connection keeps no burst-sized buffers (a
			// driver may hold many idle mounts).
			if cap(buf) > idleBuffer {
				buf = nil
			}
			if cap(b.pending) > idleBuffer {
				b.pending = nil
			}
			b.more.Wait()
		}
		if b.err != nil {
			return
		}
		buf, b.pending = b.pending, buf[:0]
		b.room.Broadcast()
		b.mu.Unlock()
		_, err := b.Conn.Write(buf)
		b.mu.Lock()
		if err != nil && b.err == nil {
			b.err = err
			b.room.Broadcast()
		}
	}
}

// Close closes the connection; data not yet written is dropped and
// blocked writers return net.ErrClosed.
func (b *batchConn) Close() error {
	b.mu.Lock()
	if b.err == nil {
		b.err = net.ErrClosed
	}
	b.mu.Unlock()
	b.more.Broadcast()
	b.room.Broadcast()
	return b.Conn.Close()
}
