package sftpwire

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// SSH_FXF_* open flags.
const (
	flagRead   = 0x01
	flagWrite  = 0x02
	flagAppend = 0x04
	flagCreat  = 0x08
	flagTrunc  = 0x10
	flagExcl   = 0x20
)

// Attribute flags (SSH_FILEXFER_ATTR_*).
const (
	AttrSize        = 0x01
	AttrUIDGID      = 0x02
	AttrPermissions = 0x04
	AttrACModTime   = 0x08
	attrExtended    = 0x80000000
)

// Attrs are SFTP version 3 file attributes; Flags says which are set.
// Mode is the whole st_mode (type and permission bits).
type Attrs struct {
	Flags        uint32
	Size         uint64
	UID, GID     uint32
	Mode         uint32
	Atime, Mtime uint32
}

func (a *Attrs) append(b []byte) []byte {
	if a == nil {
		return binary.BigEndian.AppendUint32(b, 0)
	}
	fl := a.Flags &^ attrExtended
	b = binary.BigEndian.AppendUint32(b, fl)
	if fl&AttrSize != 0 {
		b = binary.BigEndian.AppendUint64(b, a.Size)
	}
	if fl&AttrUIDGID != 0 {
		b = binary.BigEndian.AppendUint32(b, a.UID)
		b = binary.BigEndian.AppendUint32(b, a.GID)
	}
	if fl&AttrPermissions != 0 {
		b = binary.BigEndian.AppendUint32(b, a.Mode)
	}
	if fl&AttrACModTime != 0 {
		b = binary.BigEndian.AppendUint32(b, a.Atime)
		b = binary.BigEndian.AppendUint32(b, a.Mtime)
	}
	return b
}

func parseAttrs(b []byte) (Attrs, error) {
	var a Attrs
	bad := &ProtocolError{"malformed ATTRS reply"}
	u32 := func() (uint32, bool) {
		if len(b) < 4 {
			return 0, false
		}
		v := binary.BigEndian.Uint32(b)
		b = b[4:]
		return v, true
	}
	var ok bool
	if a.Flags, ok = u32(); !ok {
		return a, bad
	}
	if a.Flags&AttrSize != 0 {
		if len(b) < 8 {
			return a, bad
		}
		a.Size = binary.BigEndian.Uint64(b)
		b = b[8:]
	}
	if a.Flags&AttrUIDGID != 0 {
		a.UID, ok = u32()
		if !ok {
			return a, bad
		}
		if a.GID, ok = u32(); !ok {
			return a, bad
		}
	}
	if a.Flags&AttrPermissions != 0 {
		if a.Mode, ok = u32(); !ok {
			return a, bad
		}
	}
	if a.Flags&AttrACModTime != 0 {
		if a.Atime, ok = u32(); !ok {
			return a, bad
		}
		if a.Mtime, ok = u32(); !ok {
			return a, bad
		}
	}
	// Extended attributes (attrExtended) are not used and ignored.
	return a, nil
}

// File is an open remote file handle.
type File struct {
	c *Client
	h string
}

// openFlags turns os.OpenFile flags into SSH_FXF_* flags.
func openFlags(flag int) uint32 {
	var f uint32
	switch flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR) {
	case os.O_WRONLY:
		f = flagWrite
	case os.O_RDWR:
		f = flagRead | flagWrite
	default:
		f = flagRead
	}
	if flag&os.O_APPEND != 0 {
		f |= flagAppend
	}
	if flag&os.O_CREATE != 0 {
		f |= flagCreat
	}
	if flag&os.O_TRUNC != 0 {
		f |= flagTrunc
	}
	if flag&os.O_EXCL != 0 {
		f |= flagExcl
	}
	return f
}

// OpenFile opens path with os.OpenFile flags. attrs (may be nil) go with
// the OPEN: with O_CREATE, AttrPermissions sets the new file's mode
// (OpenSSH applies its umask to it).
func (c *Client) OpenFile(path string, flag int, attrs *Attrs) (*File, error) {
	cl := c.get()
	defer c.put(cl)
	c.beginOpen(cl, path, flag, attrs)
	if err := c.roundTrip(cl); err != nil {
		return nil, err
	}
	return openResult(c, cl)
}

// OpenLstat is OpenFile with an LSTAT of path sent right behind the
// OPEN, without waiting for it: one round trip for both, as sshfs does
// when it creates a file. A server that answers requests in order (as
// OpenSSH's does) stats what the OPEN left at path; one that does not
// may answer from before it. The attributes are nil when the LSTAT
// failed, or when the OPEN did (whose error is returned).
func (c *Client) OpenLstat(path string, flag int, attrs *Attrs) (*File, *Attrs, error) {
	ocl, scl := c.get(), c.get()
	defer c.put(ocl)
	defer c.put(scl)
	c.beginOpen(ocl, path, flag, attrs)
	if err := c.send(ocl, nil); err != nil {
		return nil, nil, err
	}
	begin(scl, fxpLstat)
	scl.req = appendString(scl.req, path)
	finish(scl, 0)
	statSent := c.send(scl, nil) == nil
	<-ocl.done
	var st *Attrs
	if statSent {
		<-scl.done
		if scl.err == nil && scl.typ == fxpAttrs {
			if a, err := parseAttrs(scl.body); err == nil {
				st = &a
			}
		}
	}
	if ocl.err != nil {
		return nil, nil, ocl.err
	}
	f, err := openResult(c, ocl)
	if err != nil {
		return nil, nil, err
	}
	return f, st, nil
}

func (c *Client) beginOpen(cl *call, path string, flag int, attrs *Attrs) {
	begin(cl, fxpOpen)
	cl.req = appendString(cl.req, path)
	cl.req = binary.BigEndian.AppendUint32(cl.req, openFlags(flag))
	cl.req = attrs.append(cl.req)
	finish(cl, 0)
}

// openResult turns the reply to an OPEN into a File.
func openResult(c *Client, cl *call) (*File, error) {
	switch cl.typ {
	case fxpHandle:
		h, _, ok := getString(cl.body)
		if !ok {
			return nil, &ProtocolError{"malformed HANDLE reply"}
		}
		return &File{c: c, h: string(h)}, nil
	case fxpStatus:
		if err := statusErr(cl.body); err != nil {
			return nil, err
		}
	}
	return nil, &ProtocolError{fmt.Sprintf("expected HANDLE, got packet type %d", cl.typ)}
}

// handleOp sends a request of type typ carrying the handle (after an
// optional string, for EXTENDED) and whatever more adds, and returns the
// call with its reply; the caller puts it back.
func (f *File) handleOp(typ byte, ext string, more func([]byte) []byte) (*call, error) {
	cl := f.c.get()
	begin(cl, typ)
	if ext != "" {
		cl.req = appendString(cl.req, ext)
	}
	cl.req = appendString(cl.req, f.h)
	if more != nil {
		cl.req = more(cl.req)
	}
	finish(cl, 0)
	if err := f.c.roundTrip(cl); err != nil {
		f.c.put(cl)
		return nil, err
	}
	return cl, nil
}

func (f *File) statusOp(typ byte, ext string, more func([]byte) []byte) error {
	cl, err := f.handleOp(typ, ext, more)
	if err != nil {
		return err
	}
	defer f.c.put(cl)
	return status(cl)
}

// Close closes the handle (CLOSE).
func (f *File) Close() error { return f.statusOp(fxpClose, "", nil) }

// Sync is fsync@openssh.com; check HasExtension first.
func (f *File) Sync() error { return f.statusOp(fxpExtended, "fsync@openssh.com", nil) }

// Setstat sets attributes through the handle (FSETSTAT).
func (f *File) Setstat(a Attrs) error {
	return f.statusOp(fxpFsetstat, "", a.append)
}

// Stat returns the handle's attributes (FSTAT).
func (f *File) Stat() (Attrs, error) {
	cl, err := f.handleOp(fxpFstat, "", nil)
	if err != nil {
		return Attrs{}, err
	}
	defer f.c.put(cl)
	switch cl.typ {
	case fxpAttrs:
		return parseAttrs(cl.body)
	case fxpStatus:
		if err := statusErr(cl.body); err != nil {
			return Attrs{}, err
		}
	}
	return Attrs{}, &ProtocolError{fmt.Sprintf("expected ATTRS, got packet type %d", cl.typ)}
}

// startRead sends a READ of len(dst) bytes at off into dst.
func (f *File) startRead(dst []byte, off int64) (*call, error) {
	cl := f.c.get()
	cl.dst = dst
	begin(cl, fxpRead)
	cl.req = appendString(cl.req, f.h)
	cl.req = binary.BigEndian.AppendUint64(cl.req, uint64(off))
	cl.req = binary.BigEndian.AppendUint32(cl.req, uint32(len(dst)))
	finish(cl, 0)
	if err := f.c.send(cl, nil); err != nil {
		f.c.put(cl)
		return nil, err
	}
	return cl, nil
}

// readResult waits for a READ and returns the bytes it got; io.EOF when
// the server had none.
func (f *File) readResult(cl *call) (int, error) {
	<-cl.done
	defer f.c.put(cl)
	switch {
	case cl.err != nil:
		return 0, cl.err
	case cl.typ == fxpData && cl.dst != nil:
		if cl.n == 0 && len(cl.dst) > 0 {
			return 0, io.ErrNoProgress
		}
		return cl.n, nil
	case cl.typ == fxpStatus:
		if err := statusErr(cl.body); err != nil {
			return 0, err
		}
	}
	return 0, &ProtocolError{fmt.Sprintf("expected DATA, got packet type %d", cl.typ)}
}

// maxSplit is how many requests one ReadAt or WriteAt keeps on the
// stack; larger calls allocate the list.
const maxSplit = 16

// ReadAt reads len(p) bytes at off like io.ReaderAt: the requests (of
// at most MaxData bytes each) go out together and their replies land
// directly in p. A short read that is not at end of file is completed
// by further reads; at end of file it returns io.EOF.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	md := f.c.maxData
	var arr [maxSplit]*call
	calls := arr[:0]
	var sendErr error
	for lo := 0; lo < len(p); lo += md {
		cl, err := f.startRead(p[lo:min(lo+md, len(p))], off+int64(lo))
		if err != nil {
			sendErr = err
			break
		}
		calls = append(calls, cl)
	}
	n := 0
	var err error
	for i, cl := range calls {
		lo := i * md
		want := len(cl.dst)
		got, e := f.readResult(cl)
		if err != nil {
			continue // already failed at an earlier offset; just drain
		}
		if e == nil && got < want {
			var m int
			m, e = f.readSeq(p[lo+got:lo+want], off+int64(lo+got))
			got += m
		}
		n = lo + got
		err = e
	}
	if err == nil {
		err = sendErr
	}
	return n, err
}

// readSeq fills p with reads one at a time (after a short read).
func (f *File) readSeq(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		cl, err := f.startRead(p[n:min(n+f.c.maxData, len(p))], off+int64(n))
		if err != nil {
			return n, err
		}
		m, err := f.readResult(cl)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// WriteAt writes p at off: the WRITEs (of at most MaxData bytes each)
// go out together, then their replies are collected. n counts the bytes
// up to the first failed request.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	md := f.c.maxData
	var arr [maxSplit]*call
	calls := arr[:0]
	var sendErr error
	for lo := 0; lo < len(p); lo += md {
		data := p[lo:min(lo+md, len(p))]
		cl := f.c.get()
		begin(cl, fxpWrite)
		cl.req = appendString(cl.req, f.h)
		cl.req = binary.BigEndian.AppendUint64(cl.req, uint64(off+int64(lo)))
		cl.req = binary.BigEndian.AppendUint32(cl.req, uint32(len(data)))
		finish(cl, len(data))
		if err := f.c.send(cl, data); err != nil {
			f.c.put(cl)
			sendErr = err
			break
		}
		calls = append(calls, cl)
	}
	n := 0
	var err error
	for i, cl := range calls {
		<-cl.done
		e := cl.err
		if e == nil {
			e = status(cl)
		}
		if e == io.EOF {
			e = &StatusError{Code: codeEOF, Msg: "end of file on write"}
		}
		size := min(md, len(p)-i*md)
		f.c.put(cl)
		if err == nil {
			if e != nil {
				err = e
			} else {
				n += size
			}
		}
	}
	if err == nil {
		err = sendErr
	}
	return n, err
}
