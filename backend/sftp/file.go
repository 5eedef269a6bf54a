package sftp

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/sftpfs/sftpfs/backend"
)

// File is an open remote file. It survives reconnects: the handle belongs
// to one transport, and on a newer transport the file is re-opened by path
// with the original flags minus O_CREATE, O_EXCL and O_TRUNC before the
// (idempotent, explicit-offset) call is retried. If the file was renamed
// or removed meanwhile, the re-open fails and so does the call.
type File struct {
	b      *Backend
	name   string
	path   string
	reopen int // flags for re-opening
	// c is the connection the pool placed the file on (pool.go), slot
	// its index there.
	c    *conn
	slot int

	mu     sync.Mutex
	t      *transport
	h      fileHandle
	closed bool
	// fresh holds the attributes read with the open (the FSTAT or
	// LSTAT answer from creation, see fixMode; the LSTAT sent with a
	// plain open, see openHandle) until the first Stat, WriteAt or
	// Truncate, and at most freshFor.
	fresh    os.FileInfo
	freshGen uint64    // b.mutations when fresh was fetched
	freshAt  time.Time // when fresh was fetched
}

// freshFor bounds how long attributes read with the open may answer a
// Stat: the mount asks right after the open; anything later is another
// question, for the server.
const freshFor = time.Second

var _ backend.File = (*File)(nil)

// OpenFile opens name. O_CREATE without O_EXCL first tries an exclusive
// create so that perm is applied only to files this call created.
func (b *Backend) OpenFile(ctx context.Context, name string, flag int, perm fs.FileMode) (backend.File, error) {
	p, err := b.abs("open", name)
	if err != nil {
		return nil, err
	}
	if flag&os.O_APPEND != 0 {
		return nil, errnoErr("open", name, syscall.EINVAL)
	}
	const known = os.O_RDONLY | os.O_WRONLY | os.O_RDWR | os.O_CREATE | os.O_EXCL | os.O_TRUNC
	flag &= known // O_CLOEXEC, O_NOFOLLOW, ... mean nothing remotely
	f := &File{b: b, name: name, path: p, reopen: flag &^ (os.O_CREATE | os.O_EXCL | os.O_TRUNC)}
	f.c, f.slot = b.pool.acquire(ctx)
	placed := true // until Close or a failure gives the place back
	defer func() {
		if placed {
			b.pool.release(f.slot)
		}
	}()

	create := flag&os.O_CREATE != 0
	excl := flag&os.O_EXCL != 0
	for attempt := 0; attempt < 3; attempt++ {
		var fl int
		switch {
		case create && (excl || attempt == 0):
			fl = flag | os.O_EXCL
		case create:
			fl = flag &^ (os.O_CREATE | os.O_EXCL)
		default:
			fl = flag
		}
		err = f.open(ctx, fl, perm&backend.PermBits)
		if err == nil {
			placed = false // Close releases it now
			if wf, ok := f.h.(wireFile); ok && fl&os.O_EXCL == 0 {
				// (A new file's attributes are fixMode's to keep.)
				if fi, ok := wf.openedStat(); ok {
					f.fresh, f.freshGen, f.freshAt = fi, b.mutations.Load(), time.Now()
				}
			}
			if fl&os.O_EXCL != 0 {
				if err := f.fixMode(perm & backend.PermBits); err != nil {
					f.Close()
					return nil, pathErr("open", name, err)
				}
			}
			return f, nil
		}
		exists := classify(err) == syscall.EEXIST
		if !exists && isGenericFailure(err) {
			st, lerr := b.lstatRaw(ctx, p)
			switch {
			case lerr == nil && excl:
				exists = true
			case lerr == nil && st.IsDir() && flag&(os.O_WRONLY|os.O_RDWR) != 0:
				return nil, errnoErr("open", name, syscall.EISDIR)
			case lerr == nil && fl&os.O_EXCL != 0:
				exists = true
			}
		}
		switch {
		case exists && excl:
			return nil, errnoErr("open", name, syscall.EEXIST)
		case exists && create && attempt == 0:
			continue // open the existing file without O_EXCL
		case classify(err) == syscall.ENOENT && create && attempt == 1:
			continue // removed between the two opens: create again
		}
		return nil, pathErr("open", name, err)
	}
	return nil, pathErr("open", name, err)
}

// open opens the handle on the file's connection's current transport; a
// file it creates asks for perm.
func (f *File) open(ctx context.Context, flag int, perm fs.FileMode) error {
	h, err := call(f.c, ctx, flag&os.O_EXCL == 0, func(t *transport) (opened, error) {
		h, err := t.openHandle(f.path, flag, perm, f.b.dataMax, true)
		return opened{t, h}, err
	}, func(o opened) { o.h.Close() })
	if err != nil {
		return err
	}
	f.t, f.h = h.t, h.h
	return nil
}

type opened struct {
	t *transport
	h fileHandle
}

// handle returns a handle valid on t, re-opening the file if its handle
// belongs to an older transport. The re-open runs without f.mu, so that
// Close and the file's other calls do not wait for a slow server; of two
// concurrent re-opens the first to finish is kept and the other closed.
func (f *File) handle(t *transport) (fileHandle, error) {
	f.mu.Lock()
	closed, ft, fh := f.closed, f.t, f.h
	f.mu.Unlock()
	switch {
	case closed:
		return nil, os.ErrClosed
	case ft == t:
		return fh, nil
	}
	h, err := t.openHandle(f.path, f.reopen, 0, f.b.dataMax, false)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	closed, ft, fh = f.closed, f.t, f.h
	if !closed && ft != t && (ft == nil || ft.gen < t.gen) {
		f.t, f.h = t, h
	}
	f.mu.Unlock()
	switch {
	case closed:
		// Close ran meanwhile and saw the old handle: this one is ours
		// to close.
		h.Close()
		return nil, os.ErrClosed
	case ft == t:
		h.Close()
		return fh, nil
	case ft != nil && ft.gen > t.gen:
		h.Close()
		return nil, &connError{errors.New("the sftp connection was replaced during the re-open")}
	}
	f.b.log.Info("re-opened file after reconnect", "name", f.name, "generation", t.gen)
	return h, nil
}

// fileCall runs fn with a valid handle, retrying across reconnects; File
// methods have no context, so OpTimeout bounds them.
func fileCall[T any](f *File, fn func(fileHandle) (T, error)) (T, error) {
	return call(f.c, context.Background(), true, func(t *transport) (T, error) {
		h, err := f.handle(t)
		if err != nil {
			var zero T
			return zero, err
		}
		return fn(h)
	}, nil)
}

func (f *File) chmod(mode fs.FileMode) error {
	_, err := fileCall(f, func(h fileHandle) (struct{}, error) { return struct{}{}, h.Chmod(mode) })
	return err
}

// fixMode gives a file this call created the mode the caller asked for.
// pkg/sftp's OPEN carries no attributes, so the server created it with
// its own default (OpenSSH: 0666 &^ umask, usually 0644); sftpwire's
// OPEN asks for the mode, but the server's umask may still take bits
// away. An FSTAT (with sftpwire, the LSTAT sent along with the OPEN)
// tells whether an FSETSTAT is needed at all; its answer is kept for the
// Stat that the mount makes right after creating, so in the common case
// the create costs OPEN+FSTAT, or OPEN+LSTAT in one round trip, instead
// of OPEN+FSETSTAT+FSTAT.
func (f *File) fixMode(mode fs.FileMode) error {
	gen := f.b.mutations.Load()
	f.mu.Lock()
	h := f.h
	f.mu.Unlock()
	var fi os.FileInfo
	var err error
	if wf, ok := h.(wireFile); ok {
		// The LSTAT sent with the OPEN saves the FSTAT's round trip.
		fi, ok = wf.createdStat()
		if !ok {
			fi = nil
		}
	}
	if fi == nil {
		fi, err = fileCall(f, func(h fileHandle) (os.FileInfo, error) { return h.Stat() })
	}
	if err != nil {
		// A server refusing FSTAT can still take the FSETSTAT; a lost
		// connection fails that too.
		return f.chmod(mode)
	}
	if fi.Mode()&backend.PermBits == mode {
		f.mu.Lock()
		f.fresh, f.freshGen, f.freshAt = fi, gen, time.Now()
		f.mu.Unlock()
		return nil
	}
	return f.chmod(mode)
}

// takeFresh returns (once) the attributes fetched when the file was
// created, if nothing was done through the handle since.
func (f *File) takeFresh() os.FileInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	fi := f.fresh
	f.fresh = nil
	if fi == nil || f.b.mutations.Load() != f.freshGen || time.Since(f.freshAt) > freshFor {
		return nil
	}
	return fi
}

type ioResult struct {
	n   int
	err error
}

// ReadAt reads len(p) bytes at off; a short read at end of file returns
// io.EOF.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errnoErr("read", f.name, syscall.EINVAL)
	}
	r, err := fileCall(f, func(h fileHandle) (ioResult, error) {
		n, err := h.ReadAt(p, off)
		if err == io.EOF {
			// An answer, not a failure: keep it out of the retry logic.
			return ioResult{n, io.EOF}, nil
		}
		return ioResult{n, err}, err
	})
	if err != nil {
		return r.n, f.err("read", err)
	}
	return r.n, r.err
}

// WriteAt writes p at off. A retry after a reconnect rewrites all of p,
// which is safe because the offset is explicit.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errnoErr("write", f.name, syscall.EINVAL)
	}
	f.takeFresh()
	f.b.mutations.Add(1)
	n, err := fileCall(f, func(h fileHandle) (int, error) { return h.WriteAt(p, off) })
	if err != nil {
		return n, f.err("write", err)
	}
	return n, nil
}

// Truncate sets the size through the handle (FSETSTAT).
func (f *File) Truncate(size int64) error {
	if size < 0 {
		return errnoErr("truncate", f.name, syscall.EINVAL)
	}
	f.takeFresh()
	f.b.mutations.Add(1)
	_, err := fileCall(f, func(h fileHandle) (struct{}, error) { return struct{}{}, h.Truncate(size) })
	return f.err("truncate", err)
}

// Sync uses fsync@openssh.com when the server has it. Without it every
// acknowledged write is already visible to other clients (the server
// wrote it before replying), so there is nothing more to do.
func (f *File) Sync() error {
	if !f.b.caps.Fsync {
		f.mu.Lock()
		closed := f.closed
		f.mu.Unlock()
		if closed {
			return f.err("sync", os.ErrClosed)
		}
		return nil
	}
	_, err := fileCall(f, func(h fileHandle) (struct{}, error) { return struct{}{}, h.Sync() })
	return f.err("sync", err)
}

// Stat uses FSTAT on the handle.
func (f *File) Stat() (backend.FileInfo, error) {
	if fi := f.takeFresh(); fi != nil {
		return toInfo(baseName(f.name), fi), nil
	}
	fi, err := fileCall(f, func(h fileHandle) (os.FileInfo, error) { return h.Stat() })
	if err != nil {
		return backend.FileInfo{}, f.err("stat", err)
	}
	return toInfo(baseName(f.name), fi), nil
}

// Close closes the handle. A handle on a dead transport is already gone
// on the server, so closing it is a no-op.
func (f *File) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return &fs.PathError{Op: "close", Path: f.name, Err: fs.ErrClosed}
	}
	f.closed = true
	f.fresh = nil
	t, h := f.t, f.h
	f.mu.Unlock()
	f.b.pool.release(f.slot)
	if t == nil || t.isDead() {
		return nil
	}
	_, err := run(f.c, context.Background(), t, func(*transport) (struct{}, error) { return struct{}{}, h.Close() }, nil)
	if err != nil && (isConnErr(t, err) || t.isDead()) {
		// The server dropped the handle with the connection; every write
		// was acknowledged before, so nothing is lost.
		return nil
	}
	return f.err("close", err)
}

func (f *File) err(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, os.ErrClosed) {
		return &fs.PathError{Op: op, Path: f.name, Err: fs.ErrClosed}
	}
	return pathErr(op, f.name, err)
}
