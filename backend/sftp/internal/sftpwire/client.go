package sftpwire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Packet types (draft-ietf-secsh-filexfer-02 section 3).
const (
	fxpInit          = 1
	fxpVersion       = 2
	fxpOpen          = 3
	fxpClose         = 4
	fxpRead          = 5
	fxpWrite         = 6
	fxpLstat         = 7
	fxpFstat         = 8
	fxpFsetstat      = 10
	fxpStatus        = 101
	fxpHandle        = 102
	fxpData          = 103
	fxpAttrs         = 105
	fxpExtended      = 200
	fxpExtendedReply = 201
)

const (
	// DefaultMaxData is the READ/WRITE payload every server accepts.
	DefaultMaxData = 32 << 10
	// LargestMaxData caps what limits@openssh.com may raise it to:
	// OpenSSH announces 261120 (its 256 KiB packet limit minus room for
	// the header), and larger requests gain nothing measurable.
	LargestMaxData = 256<<10 - 1024
	// DefaultMaxInflight bounds the requests in flight per client.
	DefaultMaxInflight = 64
	// maxOtherReply bounds replies other than DATA (STATUS, HANDLE,
	// ATTRS, VERSION, EXTENDED_REPLY), which are small.
	maxOtherReply = 256 << 10
	// firstWrite is how much of a request goes into the first channel
	// write: one SSH packet at OpenSSH's 32 KiB channel packet size.
	firstWrite = 32 << 10
)

// Options tune a Client; the zero value is usable.
type Options struct {
	// MaxData is the largest READ or WRITE payload. 0 asks the server
	// (limits@openssh.com, capped at LargestMaxData) and falls back to
	// DefaultMaxData.
	MaxData int
	// MaxInflight bounds the requests in flight; 0 means
	// DefaultMaxInflight.
	MaxInflight int
}

// Client is one SFTP session. Its methods are safe for concurrent use.
type Client struct {
	r       io.Reader
	w       io.Writer
	closer  io.Closer
	maxData int
	exts    map[string]string
	sem     chan struct{} // one token per request in flight

	wmu sync.Mutex // one request's writes are not interleaved with another's

	mu      sync.Mutex
	next    uint32
	pending map[uint32]*call
	cause   error // first failure seen by a sender, for the message
	err     error // set (wrapping ErrConnLost) once the stream broke

	recvDone chan struct{}
	calls    sync.Pool
}

// call is one request and, once done is signalled, its reply.
type call struct {
	req  []byte // encoded request, reused
	dst  []byte // READ destination, or nil
	done chan struct{}
	typ  byte   // reply type
	n    int    // DATA bytes copied into dst
	body []byte // reply after the request id (not for DATA), reused
	err  error  // the stream broke before the reply
}

// New starts a session on a stream whose server side runs an SFTP
// server: it sends INIT, waits for VERSION and starts the receive
// goroutine. closer must end the stream both ways (reads of r fail after
// it); Close calls it, and so does a write failure. The handshake itself
// has no timeout: the caller bounds it by closing the stream.
func New(r io.Reader, w io.Writer, closer io.Closer, o Options) (*Client, error) {
	c := &Client{
		r: r, w: w, closer: closer, pending: make(map[uint32]*call),
		recvDone: make(chan struct{}),
	}
	c.calls.New = func() any { return &call{done: make(chan struct{}, 1)} }
	if o.MaxInflight <= 0 {
		o.MaxInflight = DefaultMaxInflight
	}
	c.sem = make(chan struct{}, o.MaxInflight)
	init := []byte{0, 0, 0, 5, fxpInit, 0, 0, 0, 3}
	if _, err := w.Write(init); err != nil {
		closer.Close()
		return nil, fmt.Errorf("sftp init: %w", err)
	}
	exts, err := readVersion(r)
	if err != nil {
		closer.Close()
		return nil, err
	}
	c.exts = exts
	go c.recvLoop()
	c.maxData = o.MaxData
	if c.maxData <= 0 {
		c.maxData = DefaultMaxData
		if _, ok := exts["limits@openssh.com"]; ok {
			if lim, err := c.limits(); err == nil && lim > 0 {
				c.maxData = int(min(lim, LargestMaxData))
			} else if errors.Is(err, ErrConnLost) {
				c.Close()
				return nil, err
			}
		}
	}
	return c, nil
}

func readVersion(r io.Reader) (map[string]string, error) {
	var hdr [9]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("sftp init: reading the server's version: %w", err)
	}
	length := binary.BigEndian.Uint32(hdr[:4])
	if hdr[4] != fxpVersion || length < 5 || length > maxOtherReply {
		return nil, &ProtocolError{fmt.Sprintf("expected VERSION, got packet type %d length %d", hdr[4], length)}
	}
	if v := binary.BigEndian.Uint32(hdr[5:9]); v != 3 {
		return nil, &ProtocolError{fmt.Sprintf("server speaks SFTP version %d, want 3", v)}
	}
	body := make([]byte, length-5)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("sftp init: reading the server's version: %w", err)
	}
	exts := make(map[string]string)
	for len(body) > 0 {
		name, rest, ok := getString(body)
		if !ok {
			return nil, &ProtocolError{"malformed extension in VERSION"}
		}
		data, rest, ok := getString(rest)
		if !ok {
			return nil, &ProtocolError{"malformed extension in VERSION"}
		}
		exts[string(name)] = string(data)
		body = rest
	}
	return exts, nil
}

// HasExtension reports whether the server announced ext (for example
// "fsync@openssh.com").
func (c *Client) HasExtension(ext string) bool {
	_, ok := c.exts[ext]
	return ok
}

// MaxData is the largest payload of one READ or WRITE.
func (c *Client) MaxData() int { return c.maxData }

// Close ends the session; pending calls fail with ErrConnLost.
func (c *Client) Close() error {
	c.fail(errors.New("client closed"))
	<-c.recvDone
	return nil
}

// Done is closed once the session is over (closed or broken).
func (c *Client) Done() <-chan struct{} { return c.recvDone }

// fail records why the stream is being torn down and closes it, which
// makes the receive goroutine fail every pending call.
func (c *Client) fail(cause error) {
	c.mu.Lock()
	if c.cause == nil {
		c.cause = cause
	}
	c.mu.Unlock()
	c.closer.Close()
}

// recvLoop reads replies until the stream breaks, then fails every
// pending call. Only it signals calls, so a READ destination is never
// written after its caller was told the call ended.
func (c *Client) recvLoop() {
	var hdr [9]byte
	var err error
	for {
		if _, err = io.ReadFull(c.r, hdr[:]); err != nil {
			break
		}
		length := binary.BigEndian.Uint32(hdr[:4])
		typ, id := hdr[4], binary.BigEndian.Uint32(hdr[5:9])
		if length < 5 {
			err = &ProtocolError{fmt.Sprintf("reply of length %d", length)}
			break
		}
		cl := c.take(id)
		if cl == nil {
			err = &ProtocolError{fmt.Sprintf("reply (type %d) for unknown request id %d", typ, id)}
			break
		}
		cl.typ = typ
		if err = c.readReply(cl, typ, int(length)-5); err != nil {
			cl.err = c.brokenErr(err)
			c.signal(cl)
			break
		}
		c.signal(cl)
	}
	c.mu.Lock()
	if c.cause != nil {
		err = c.cause
	}
	c.err = c.brokenErr(err)
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	c.closer.Close()
	for _, cl := range pending {
		cl.err = c.err
		c.signal(cl)
	}
	close(c.recvDone)
}

func (c *Client) brokenErr(err error) error {
	var pe *ProtocolError
	if errors.As(err, &pe) {
		return fmt.Errorf("%w: %v", ErrConnLost, pe)
	}
	return connLost(err)
}

// readReply reads the rest (size bytes) of a reply for cl.
func (c *Client) readReply(cl *call, typ byte, size int) error {
	if typ == fxpData && cl.dst != nil {
		var lb [4]byte
		if size < 4 {
			return &ProtocolError{"short DATA reply"}
		}
		if _, err := io.ReadFull(c.r, lb[:]); err != nil {
			return err
		}
		n := int(binary.BigEndian.Uint32(lb[:]))
		if n != size-4 || n > len(cl.dst) {
			return &ProtocolError{fmt.Sprintf("DATA of %d bytes in a reply of %d for a read of %d", n, size, len(cl.dst))}
		}
		if _, err := io.ReadFull(c.r, cl.dst[:n]); err != nil {
			return err
		}
		cl.n = n
		return nil
	}
	if size > maxOtherReply {
		return &ProtocolError{fmt.Sprintf("reply (type %d) of %d bytes", typ, size)}
	}
	if cap(cl.body) < size {
		cl.body = make([]byte, size)
	}
	cl.body = cl.body[:size]
	_, err := io.ReadFull(c.r, cl.body)
	return err
}

func (c *Client) take(id uint32) *call {
	c.mu.Lock()
	cl := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	return cl
}

// signal completes cl and frees its slot.
func (c *Client) signal(cl *call) {
	<-c.sem
	cl.done <- struct{}{}
}

func (c *Client) get() *call {
	cl := c.calls.Get().(*call)
	cl.req = cl.req[:0]
	cl.dst, cl.typ, cl.n, cl.err = nil, 0, 0, nil
	return cl
}

func (c *Client) put(cl *call) {
	cl.dst = nil
	if cap(cl.body) > 64<<10 {
		cl.body = nil
	}
	c.calls.Put(cl)
}

// send registers cl and writes its request: cl.req holds the encoded
// request with a zero id (from begin) and its length counting data,
// which is written after cl.req. If send returns nil, cl will be
// signalled; otherwise it was never registered.
func (c *Client) send(cl *call, data []byte) error {
	select {
	case c.sem <- struct{}{}:
	case <-c.recvDone:
		return c.brokenNow()
	}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		<-c.sem
		return err
	}
	id := c.next
	c.next++
	c.pending[id] = cl
	c.mu.Unlock()
	binary.BigEndian.PutUint32(cl.req[5:9], id)

	// The header and the start of the data in one write fill the first
	// SSH packet; the rest goes straight from the caller's buffer.
	k := min(len(data), max(firstWrite-len(cl.req), 0))
	head := append(cl.req, data[:k]...)
	c.wmu.Lock()
	_, err := c.w.Write(head)
	if err == nil && k < len(data) {
		_, err = c.w.Write(data[k:])
	}
	c.wmu.Unlock()
	cl.req = head[:0]
	if err != nil {
		// A partial request leaves the stream unusable; the receive
		// goroutine fails cl with every other pending call.
		c.fail(err)
	}
	return nil
}

func (c *Client) brokenNow() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// roundTrip sends cl's request (no data) and waits for the reply.
func (c *Client) roundTrip(cl *call) error {
	if err := c.send(cl, nil); err != nil {
		return err
	}
	<-cl.done
	return cl.err
}

// begin starts a request of type typ in cl.req; the id is filled in by
// send and the length by finish.
func begin(cl *call, typ byte) {
	cl.req = append(cl.req[:0], 0, 0, 0, 0, typ, 0, 0, 0, 0)
}

// finish sets the packet length, counting extra bytes of data sent after
// cl.req.
func finish(cl *call, extra int) {
	binary.BigEndian.PutUint32(cl.req[:4], uint32(len(cl.req)-4+extra))
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func getString(b []byte) ([]byte, []byte, bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, false
	}
	return b[4 : 4+n], b[4+n:], true
}

// status turns a reply that should be a STATUS into an error (nil for OK).
func status(cl *call) error {
	if cl.typ != fxpStatus {
		return &ProtocolError{fmt.Sprintf("expected STATUS, got packet type %d", cl.typ)}
	}
	return statusErr(cl.body)
}

func statusErr(body []byte) error {
	if len(body) < 4 {
		return &ProtocolError{"short STATUS reply"}
	}
	code := binary.BigEndian.Uint32(body)
	if code == codeOK {
		return nil
	}
	if code == codeEOF {
		return io.EOF
	}
	msg, _, _ := getString(body[4:])
	return &StatusError{Code: code, Msg: string(msg)}
}

// limits asks limits@openssh.com for the largest read and write.
func (c *Client) limits() (uint64, error) {
	cl := c.get()
	defer c.put(cl)
	begin(cl, fxpExtended)
	cl.req = appendString(cl.req, "limits@openssh.com")
	finish(cl, 0)
	if err := c.roundTrip(cl); err != nil {
		return 0, err
	}
	if cl.typ != fxpExtendedReply || len(cl.body) < 32 {
		if cl.typ == fxpStatus {
			return 0, statusErr(cl.body)
		}
		return 0, &ProtocolError{"malformed limits@openssh.com reply"}
	}
	read := binary.BigEndian.Uint64(cl.body[8:16])
	write := binary.BigEndian.Uint64(cl.body[16:24])
	return min(read, write), nil
}
