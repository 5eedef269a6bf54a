package sftp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	psftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/sftpfs/sftpfs/backend"
)

// Directory listings are read with our own OPENDIR/READDIR/CLOSE on a
// second "sftp" subsystem session of the same SSH connection, because
// pkg/sftp's ReadDir reduces every name the server sends to path.Base:
// "../../x" arrives as "x" and "a/b" as "b", so a hostile server could
// make one entry alias another and the caller could not even tell. With
// the raw names, an entry that is not a single path element is rejected
// (dropped, logged, counted in Status.RejectedNames) and never listed.
//
// The session belongs to one transport: it is opened at the first
// listing on a connection, closed when that connection dies (a reconnect
// opens a new one on the next listing), and every listing runs through
// call(), so op_timeout, retries and reconnects are those of any other
// call. A transport that cannot open a second session (a server that
// refuses it, or a test pipe without SSH) falls back to pkg/sftp's
// ReadDir, whose names are already reduced to one element.

// SFTP v3 packet types and attribute flags (draft-ietf-secsh-filexfer-02).
const (
	pktInit    = 1
	pktVersion = 2
	pktClose   = 4
	pktOpendir = 11
	pktReaddir = 12
	pktStatus  = 101
	pktHandle  = 102
	pktName    = 104

	attrSize     = 0x1
	attrUIDGID   = 0x2
	attrPerm     = 0x4
	attrACModT   = 0x8
	attrExtended = 0x80000000

	// maxListPacket bounds one reply of the listing session. OpenSSH
	// sends at most 256 KiB; the bound only keeps a hostile length
	// field from making us allocate gigabytes.
	maxListPacket = 4 << 20
	// maxLoggedRejects bounds the log lines for one listing; the rest
	// are summarized.
	maxLoggedRejects = 10
	// readdirStart READDIRs are in flight on a handle at first, growing
	// by one per batch received up to readdirMax (like sshfs; start 2 so
	// that a directory of one batch costs one round trip, names and EOF).
	readdirStart = 2
	readdirMax   = 8
)

// streamOpener is implemented by transports (the io.Closer a Dialer
// returns) that can open another SFTP stream to the same server without
// a new login; tests use it for in-process servers.
type streamOpener interface {
	OpenSFTPStream() (io.ReadWriteCloser, error)
}

// sessionOpener is the part of *ssh.Client the lister needs.
type sessionOpener interface {
	NewSession() (*ssh.Session, error)
}

// errNoListSession means the transport cannot open a listing session;
// listings then use pkg/sftp.
var errNoListSession = errors.New("no second sftp session")

// dirEntry is one raw entry of a listing.
type dirEntry struct {
	name string
	info backend.FileInfo
}

// dirLister owns the listing session of the current transport. Its zero
// value is ready to use.
type dirLister struct {
	rejected atomic.Int64

	// mu guards the fields below and is never held across a network
	// round trip: one slow session open must not hold up the listings
	// and reconnects of the whole mount.
	mu          sync.Mutex
	t           *transport // the transport cl and unsupported refer to
	cl          *listClient
	opening     chan struct{} // closed when the open in flight ends; nil if none
	unsupported bool
	warned      bool
}

// listOpenPatience is how long a listing waits for a session that
// another listing is opening before it opens one of its own. Opening
// costs three round trips (channel, subsystem, INIT), so a healthy open
// ends well within it and concurrent first listings share one session;
// a stuck one (a server that never answers that channel) delays the
// others by this much, not by op_timeout.
const listOpenPatience = 2 * time.Second

// ReadDir lists a directory with the names exactly as the server sent
// them, rejecting those that are not a single path element (see above).
func (b *Backend) ReadDir(ctx context.Context, name string) ([]backend.FileInfo, error) {
	p, err := b.abs("readdir", name)
	if err != nil {
		return nil, err
	}
	list, err := call(b.c, ctx, true, func(t *transport) ([]dirEntry, error) { return b.dirs.list(ctx, t, p, b.log) }, nil)
	if err != nil {
		// OpenSSH says FAILURE for a file, other servers NO_SUCH_FILE.
		if classify(err) != syscall.EACCES && !isConnErr(nil, err) {
			if st, serr := call(b.c, ctx, true, func(t *transport) (os.FileInfo, error) { return t.client.Stat(p) }, nil); serr == nil && !st.IsDir() {
				return nil, errnoErr("readdir", name, syscall.ENOTDIR)
			}
		}
		return nil, pathErr("readdir", name, err)
	}
	return b.dirs.accept(name, list, b.log), nil
}

// accept drops the entries a caller must never see: "." and ".." (every
// server sends them), duplicates, and names that are not a single path
// element (empty, or containing "/" or NUL). The last are what a hostile
// or broken server sends; each is logged (quoted, so control characters
// stay visible) and counted. A name such as "a..b" is a valid file name
// and is kept: ".." is only dangerous as a whole element.
func (d *dirLister) accept(dir string, list []dirEntry, log *slog.Logger) []backend.FileInfo {
	out := make([]backend.FileInfo, 0, len(list))
	seen := make(map[string]bool, len(list))
	bad := 0
	for _, e := range list {
		n := e.name
		switch {
		case n == "." || n == "..":
			continue
		case n == "" || strings.ContainsAny(n, "/\x00"):
			bad++
			if bad <= maxLoggedRejects {
				log.Warn("server sent a directory entry whose name is not a single path element; rejected it",
					"dir", dir, "entry", fmt.Sprintf("%q", n))
			}
			continue
		case seen[n]:
			log.Debug("server listed a name twice; keeping the first", "dir", dir, "entry", fmt.Sprintf("%q", n))
			continue
		}
		seen[n] = true
		e.info.Name = n
		out = append(out, e.info)
	}
	if bad > 0 {
		d.rejected.Add(int64(bad))
		if bad > maxLoggedRejects {
			log.Warn("more directory entries rejected in this listing", "dir", dir, "not_logged", bad-maxLoggedRejects, "total", bad)
		}
	}
	return out
}

// list reads the directory p (a remote path) on t.
func (d *dirLister) list(ctx context.Context, t *transport, p string, log *slog.Logger) ([]dirEntry, error) {
	cl, err := d.client(t, log)
	if errors.Is(err, errNoListSession) {
		fis, err := t.client.ReadDirContext(ctx, p)
		if err != nil {
			return nil, err
		}
		out := make([]dirEntry, len(fis))
		for i, fi := range fis {
			out[i] = dirEntry{name: fi.Name(), info: toInfo(fi.Name(), fi)}
		}
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	return cl.list(ctx, p)
}

// client returns the listing session of t, opening it if needed. The
// open runs without d.mu (see listOpenPatience); when two opens race, the
// first installed session wins and the other is closed.
func (d *dirLister) client(t *transport, log *slog.Logger) (*listClient, error) {
	d.mu.Lock()
	cl, wait, err := d.current(t)
	d.mu.Unlock()
	if cl != nil || err != nil {
		return cl, err
	}
	if wait != nil {
		timer := time.NewTimer(listOpenPatience)
		select {
		case <-wait:
		case <-t.dead:
		case <-timer.C:
		}
		timer.Stop()
		d.mu.Lock()
		cl, _, err = d.current(t)
		d.mu.Unlock()
		if cl != nil || err != nil {
			return cl, err
		}
	}
	mine := make(chan struct{})
	d.mu.Lock()
	if d.opening == nil {
		d.opening = mine
	}
	d.mu.Unlock()

	cl, err = openListClient(t)

	d.mu.Lock()
	defer d.mu.Unlock()
	if d.opening == mine {
		d.opening = nil
	}
	close(mine)
	won, cur, curErr := d.current(t)
	switch {
	case won != nil || curErr != nil:
		// Another listing installed a session first (or the transport
		// is gone): use that and drop ours.
		if err == nil {
			cl.fail(errors.New("another listing session was opened first"))
		}
		return won, curErr
	case errors.Is(err, errNoListSession):
		if cur != nil {
			// Another open is still going (a refusal may be the
			// server's session limit): list without a session this
			// once rather than give up on sessions.
			return nil, err
		}
		d.unsupported = true
		// A bare errNoListSession is a transport without sessions (a
		// pipe); only a server's refusal is worth a warning.
		if err != errNoListSession && !d.warned {
			d.warned = true
			log.Warn("cannot open a second sftp session for directory listings; using the single-session path, "+
				"where a name with '/' is reduced to its last element instead of being rejected", "error", err)
		}
		return nil, err
	case err != nil:
		return nil, err
	}
	d.cl = cl
	return cl, nil
}

// current returns, for a listing on t, the live session to use, or else
// the channel of an open in flight (nil if none), or else an error:
// errNoListSession when t cannot have sessions, a connection error when t
// is older than the transport d already moved to. It switches d to t
// when t is newer. d.mu must be held.
func (d *dirLister) current(t *transport) (*listClient, chan struct{}, error) {
	if d.t != t {
		if d.t != nil && d.t.gen > t.gen {
			return nil, nil, &connError{errors.New("the sftp connection was replaced during the listing")}
		}
		if d.cl != nil {
			d.cl.fail(errors.New("connection replaced"))
		}
		d.t, d.cl, d.opening, d.unsupported = t, nil, nil, false
	}
	if d.unsupported {
		return nil, nil, errNoListSession
	}
	if d.cl != nil && !d.cl.isDead() {
		return d.cl, nil, nil
	}
	return nil, d.opening, nil
}

// openListClient opens and initializes a listing session on t.
func openListClient(t *transport) (*listClient, error) {
	var r io.Reader
	var w io.Writer
	var closer func()
	switch o := t.closer.(type) {
	case streamOpener:
		s, err := o.OpenSFTPStream()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errNoListSession, err)
		}
		r, w, closer = s, s, func() { s.Close() }
	case sessionOpener:
		s, out, in, err := openSFTPSession(o)
		if err != nil {
			var oce *ssh.OpenChannelError
			if errors.As(err, &oce) || errors.Is(err, errSubsystemRefused) {
				// The server said no (MaxSessions, a restricted
				// account): an answer, not a broken connection.
				return nil, fmt.Errorf("%w: %v", errNoListSession, err)
			}
			return nil, err
		}
		r, w, closer = out, in, func() { s.Close() }
	default:
		return nil, errNoListSession
	}
	c := &listClient{r: r, w: w, closer: closer, pending: map[uint32]chan []byte{}, dead: make(chan struct{})}
	// The session dies with its connection: a killed transport (op
	// timeout, keepalive, Close) closes the stream and fails every call
	// waiting on it.
	go func() {
		select {
		case <-t.dead:
			c.fail(errors.New("the sftp connection was closed"))
		case <-c.dead:
		}
	}()
	if err := c.init(); err != nil {
		c.fail(err)
		return nil, err
	}
	go c.readLoop()
	return c, nil
}

// listClient is a minimal SFTP v3 client for OPENDIR/READDIR/CLOSE that
// keeps the names exactly as the server sent them. Requests are
// multiplexed by id, so concurrent listings share the session.
type listClient struct {
	r      io.Reader
	w      io.Writer
	closer func()

	wmu sync.Mutex // serializes packet writes

	mu      sync.Mutex
	next    uint32
	pending map[uint32]chan []byte
	err     error
	dead    chan struct{}

	// peakReaddirs is the most READDIRs one listing had in flight at
	// once (tests).
	peakReaddirs atomic.Int64
}

func (c *listClient) isDead() bool {
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

// fail marks the session dead with err (the first error wins) and closes
// the stream.
func (c *listClient) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	close(c.dead)
	c.mu.Unlock()
	c.closer()
}

func (c *listClient) deadErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Errorf("sftp listing session: %w", c.err)
}

// readPacket reads one length-prefixed packet.
func readPacket(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > maxListPacket {
		return nil, fmt.Errorf("server sent an sftp packet of %d bytes (allowed 1 to %d)", n, maxListPacket)
	}
	pkt := make([]byte, n)
	if _, err := io.ReadFull(r, pkt); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return pkt, nil
}

func (c *listClient) write(pkt []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.w.Write(pkt)
	return err
}

// init sends INIT (version 3) and reads VERSION. The stream is closed
// under it if the connection dies meanwhile.
func (c *listClient) init() error {
	if err := c.write([]byte{0, 0, 0, 5, pktInit, 0, 0, 0, 3}); err != nil {
		return err
	}
	pkt, err := readPacket(c.r)
	if err != nil {
		return fmt.Errorf("starting the sftp listing session: %w", err)
	}
	if pkt[0] != pktVersion || len(pkt) < 5 {
		return fmt.Errorf("starting the sftp listing session: expected VERSION, got packet type %d", pkt[0])
	}
	if v := binary.BigEndian.Uint32(pkt[1:]); v != 3 {
		return fmt.Errorf("starting the sftp listing session: server speaks sftp version %d, want 3", v)
	}
	return nil
}

// readLoop delivers replies to their requests until the stream fails.
// A reply to an unknown id is a protocol violation: the stream can no
// longer be trusted.
func (c *listClient) readLoop() {
	for {
		pkt, err := readPacket(c.r)
		if err == nil && len(pkt) < 5 {
			err = fmt.Errorf("server sent a %d-byte sftp packet, too short for a reply", len(pkt))
		}
		if err != nil {
			c.fail(err)
			return
		}
		id := binary.BigEndian.Uint32(pkt[1:])
		c.mu.Lock()
		ch, ok := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if !ok {
			c.fail(fmt.Errorf("server answered request id %d, which was never sent", id))
			return
		}
		ch <- pkt // buffered: never blocks, even for abandoned requests
	}
}

// request sends a packet built by build(id) and waits for the reply.
// If ctx ends first the reply is left to be discarded.
func (c *listClient) request(ctx context.Context, typ byte, body func(b []byte) []byte) ([]byte, error) {
	ch, err := c.send(typ, body)
	if err != nil {
		return nil, err
	}
	return c.wait(ctx, ch)
}

// send sends a request and returns the channel its reply arrives on.
func (c *listClient) send(typ byte, body func(b []byte) []byte) (chan []byte, error) {
	ch := make(chan []byte, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.deadErr()
	}
	c.next++
	id := c.next
	c.pending[id] = ch
	c.mu.Unlock()
	pkt := binary.BigEndian.AppendUint32(append(make([]byte, 4, 64), typ), id)
	pkt = body(pkt)
	binary.BigEndian.PutUint32(pkt, uint32(len(pkt)-4))
	if err := c.write(pkt); err != nil {
		c.fail(err)
		return nil, c.deadErr()
	}
	return ch, nil
}

// wait waits for the reply on ch. If ctx ends first the reply is left
// to be discarded.
func (c *listClient) wait(ctx context.Context, ch chan []byte) ([]byte, error) {
	select {
	case r := <-ch:
		return r, nil
	case <-c.dead:
		return nil, c.deadErr()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func appendString(b []byte, s string) []byte {
	return append(binary.BigEndian.AppendUint32(b, uint32(len(s))), s...)
}

// statusError turns a STATUS reply into an error; nil for SSH_FX_OK.
func statusError(pkt []byte) error {
	if len(pkt) < 9 {
		return errors.New("server sent a truncated STATUS reply")
	}
	code := binary.BigEndian.Uint32(pkt[5:])
	if code == 0 {
		return nil
	}
	if code == fxEOF {
		return io.EOF
	}
	return &psftp.StatusError{Code: code}
}

// list reads the whole directory p.
func (c *listClient) list(ctx context.Context, p string) ([]dirEntry, error) {
	pkt, err := c.request(ctx, pktOpendir, func(b []byte) []byte { return appendString(b, p) })
	if err != nil {
		return nil, err
	}
	var handle string
	switch pkt[0] {
	case pktStatus:
		err := statusError(pkt)
		if err == nil || err == io.EOF {
			err = fmt.Errorf("server answered OPENDIR with status %v instead of a handle", err)
		}
		return nil, err
	case pktHandle:
		d := decoder{b: pkt[5:]}
		handle = d.str()
		if d.err != nil {
			return nil, fmt.Errorf("server sent a malformed HANDLE reply: %w", d.err)
		}
	default:
		return nil, fmt.Errorf("server answered OPENDIR with packet type %d", pkt[0])
	}
	// CLOSE goes after every READDIR sent, so the server (which answers
	// a session's requests in order) has finished with the handle.
	defer c.closeHandle(handle)
	// Several READDIRs are kept in flight on the handle: each returns the
	// next batch (OpenSSH: 100 names), so one at a time costs a round trip
	// per batch, and a small directory two (names, then EOF). Servers
	// answer a handle's READDIRs in order (OpenSSH's sftp-server and
	// pkg/sftp's server run them one after the other); sshfs does the
	// same. The replies are consumed in the order sent; READDIRs still in
	// flight after EOF are answered EOF and their replies dropped.
	readdir := func(b []byte) []byte { return appendString(b, handle) }
	var inflight []chan []byte
	sendReaddir := func() error {
		ch, err := c.send(pktReaddir, readdir)
		if err != nil {
			return err
		}
		inflight = append(inflight, ch)
		if n := int64(len(inflight)); n > c.peakReaddirs.Load() {
			c.peakReaddirs.Store(n)
		}
		return nil
	}
	for range readdirStart {
		if err := sendReaddir(); err != nil {
			return nil, err
		}
	}
	var out []dirEntry
	var peeked []byte // the next reply, already received
	for batches := 0; ; batches++ {
		pkt := peeked
		peeked = nil
		if pkt == nil {
			var err error
			if pkt, err = c.wait(ctx, inflight[0]); err != nil {
				return nil, err
			}
			inflight = inflight[1:]
		}
		switch pkt[0] {
		case pktStatus:
			err := statusError(pkt)
			if err == io.EOF {
				return out, nil
			}
			if err == nil {
				err = errors.New("server answered READDIR with status OK instead of names")
			}
			return nil, err
		case pktName:
			out, err = parseNames(pkt[5:], out)
			if err != nil {
				return nil, err
			}
			// The next reply is often here already; when it is EOF
			// the listing is complete and no READDIR more is sent
			// (a small directory costs OPENDIR and two READDIRs).
			select {
			case peeked = <-inflight[0]:
				inflight = inflight[1:]
				if peeked[0] == pktStatus && statusError(peeked) == io.EOF {
					return out, nil
				}
			default:
			}
			// A directory that went on past a batch or two is likely
			// big: deepen the pipeline step by step.
			for len(inflight) < min(readdirStart+batches, readdirMax) {
				if err := sendReaddir(); err != nil {
					return nil, err
				}
			}
		default:
			return nil, fmt.Errorf("server answered READDIR with packet type %d", pkt[0])
		}
	}
}

// closeHandle sends CLOSE without waiting for the answer: a listing that
// was read (or abandoned) need not pay another round trip, and the reply
// lands in a buffered channel nobody reads. A failed write has already
// failed the session.
func (c *listClient) closeHandle(h string) {
	_, _ = c.send(pktClose, func(b []byte) []byte { return appendString(b, h) })
}

// decoder reads SFTP wire types, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) u32() uint32 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 4 {
		d.err = io.ErrUnexpectedEOF
		return 0
	}
	v := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) u64() uint64 {
	hi := d.u32()
	return uint64(hi)<<32 | uint64(d.u32())
}

func (d *decoder) str() string {
	n := d.u32()
	if d.err != nil {
		return ""
	}
	if uint64(n) > uint64(len(d.b)) {
		d.err = fmt.Errorf("string of %d bytes with %d left in the packet", n, len(d.b))
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// parseNames appends the entries of a NAME reply body (after the id).
func parseNames(body []byte, out []dirEntry) ([]dirEntry, error) {
	d := decoder{b: body}
	count := d.u32()
	// Every entry takes at least 12 bytes (two empty strings and the
	// attribute flags); a larger count is a lie, not a reason to
	// allocate.
	if d.err == nil && uint64(count)*12 > uint64(len(d.b)) {
		return nil, fmt.Errorf("server sent a NAME reply claiming %d entries in %d bytes", count, len(d.b))
	}
	for i := uint32(0); i < count && d.err == nil; i++ {
		name := d.str()
		d.str() // longname: ls -l output, for humans
		info := d.attrs()
		out = append(out, dirEntry{name: name, info: info})
	}
	if d.err != nil {
		return nil, fmt.Errorf("server sent a malformed NAME reply: %w", d.err)
	}
	return out, nil
}

// attrs decodes an SFTP v3 ATTRS structure the way pkg/sftp does for
// other calls (see toInfo), so listings and Lstat agree.
func (d *decoder) attrs() backend.FileInfo {
	var fi backend.FileInfo
	flags := d.u32()
	if flags&attrSize != 0 {
		fi.Size = int64(d.u64())
	}
	if flags&attrUIDGID != 0 {
		fi.UID, fi.GID = d.u32(), d.u32()
	}
	if flags&attrPerm != 0 {
		fi.Mode = backend.ModeFromUnix(d.u32())
	}
	if flags&attrACModT != 0 {
		at, mt := d.u32(), d.u32()
		if at != 0 {
			fi.ATime = time.Unix(int64(at), 0)
		}
		fi.ModTime = time.Unix(int64(mt), 0)
	} else {
		fi.ModTime = time.Unix(0, 0)
	}
	if flags&attrExtended != 0 {
		n := d.u32()
		if d.err == nil && uint64(n)*8 > uint64(len(d.b)) {
			d.err = fmt.Errorf("%d extended attributes claimed in %d bytes", n, len(d.b))
		}
		for i := uint32(0); i < n && d.err == nil; i++ {
			d.str()
			d.str()
		}
	}
	return fi
}
