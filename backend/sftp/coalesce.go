package sftp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	psftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// sshPacketData is the data an SSH channel packet carries at most with
// OpenSSH (its session channels announce a 32 KiB maximum packet).
const sshPacketData = 32 << 10

// coalescer sits between pkg/sftp and the SSH channel. pkg/sftp sends a
// request that carries data (WRITE) as two writes, the header fields and
// then the data, and x/crypto/ssh makes every channel write at least one
// SSH packet: a 4 KiB WRITE cost two packets (two encryptions, two
// write(2)s here, two reads and decryptions at the server), a 256 KiB one
// nine. The coalescer holds such a header back and sends it in one
// channel write with the start of its data, filling that first packet;
// requests that arrive whole pass through untouched. pkg/sftp writes each
// request's pieces back to back under its own lock, so they arrive here
// in order.
type coalescer struct {
	w      io.Writer
	closer io.Closer

	mu      sync.Mutex
	pending []byte // a held-back header
	missing int    // bytes of the current request not written yet
	buf     []byte // reused to join a header with the start of its data
}

func (c *coalescer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case len(c.pending) > 0 && len(p) <= c.missing:
		// The data of the held header: join it with the header, up to
		// one full SSH packet.
		k := min(len(p), sshPacketData-len(c.pending))
		c.buf = append(append(c.buf[:0], c.pending...), p[:k]...)
		c.pending = c.pending[:0]
		c.missing -= len(p)
		if _, err := c.w.Write(c.buf); err != nil {
			return 0, err
		}
		if k == len(p) {
			return len(p), nil
		}
		n, err := c.w.Write(p[k:])
		return k + n, err
	case len(c.pending) > 0:
		// Not the data of the held header (pkg/sftp changed how it
		// writes): send both as they came.
		c.missing = 0
		if err := c.flush(); err != nil {
			return 0, err
		}
		return c.w.Write(p)
	case c.missing > 0:
		// More data of a request whose start went out already.
		c.missing = max(c.missing-len(p), 0)
		return c.w.Write(p)
	}
	if len(p) >= 4 {
		total := 4 + int(binary.BigEndian.Uint32(p))
		if len(p) < total && len(p) < sshPacketData {
			// A header whose data follows: hold it back.
			c.pending = append(c.pending[:0], p...)
			c.missing = total - len(p)
			return len(p), nil
		}
		c.missing = max(total-len(p), 0)
	}
	return c.w.Write(p)
}

// flush sends a held-back header on its own. c.mu must be held.
func (c *coalescer) flush() error {
	if len(c.pending) == 0 {
		return nil
	}
	_, err := c.w.Write(c.pending)
	c.pending = c.pending[:0]
	return err
}

// Close sends whatever is held back and closes the session.
func (c *coalescer) Close() error {
	c.mu.Lock()
	ferr := c.flush()
	c.mu.Unlock()
	if err := c.closer.Close(); err != nil {
		return err
	}
	return ferr
}

// errSubsystemRefused means the server refused to start the sftp
// subsystem on a session it had opened.
var errSubsystemRefused = errors.New("the server refused the sftp subsystem")

// openSFTPSession opens a session on c running the sftp subsystem and
// returns it with its stdout and stdin. Its stderr is drained: unread, it
// would fill the channel's window and stall the session.
func openSFTPSession(c sessionOpener) (*ssh.Session, io.Reader, io.WriteCloser, error) {
	s, err := c.NewSession()
	if err != nil {
		return nil, nil, nil, err
	}
	in, err1 := s.StdinPipe()
	out, err2 := s.StdoutPipe()
	stderr, err3 := s.StderrPipe()
	if err := errors.Join(err1, err2, err3); err != nil {
		s.Close()
		return nil, nil, nil, err
	}
	if err := s.RequestSubsystem("sftp"); err != nil {
		s.Close()
		return nil, nil, nil, fmt.Errorf("%w: %v", errSubsystemRefused, err)
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	return s, out, in, nil
}

// newSFTPClient starts pkg/sftp on a new sftp session of client, like
// psftp.NewClient, with a coalescer under pkg/sftp's writes.
func newSFTPClient(client *ssh.Client, opts ...psftp.ClientOption) (*psftp.Client, error) {
	s, out, in, err := openSFTPSession(client)
	if err != nil {
		return nil, err
	}
	return psftp.NewClientPipe(out, &coalescer{w: in, closer: s}, opts...)
}
