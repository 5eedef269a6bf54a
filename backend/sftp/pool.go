package sftp

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	psftp "github.com/pkg/sftp"
)

// extraRetry is how long an extra connection whose dial failed is left
// out of placement before a new file may try it again.
const extraRetry = time.Minute

// pool holds a Backend's SSH connections (option conns). One connection
// is one SSH transport reader on our side and one sshd plus one
// sftp-server process on the server, each able to use about one core:
// several files read at once go faster over several connections.
//
// Connection 0 is dialled by New and carries every path call (stat,
// listings, rename, unlink, mkdir, ...): a `find` or `ls` pays no more
// than with one connection (sshfs's max_conns spreads metadata too and
// makes `find` several times slower). Open files are placed on the
// connection with the fewest open files, lowest index first, so one file
// at a time stays on connection 0 and single-stream work, mount time and
// idle memory are those of one connection. The extra connections are
// dialled when a file is first placed on them; one that cannot be
// dialled is skipped for extraRetry and its file goes to connection 0.
// Each connection reconnects on its own (conn), and a File re-opens its
// handle on its own connection.
type pool struct {
	dial  Dialer
	o     Options
	log   *slog.Logger
	check func(*psftp.Client) error // the root check for reconnects
	dials sync.WaitGroup            // dials in flight, waited for by close

	mu     sync.Mutex
	slots  []*slot // slots[0] holds connection 0
	closed bool
	// warned is set once a dial of an extra connection failed: the
	// warning is logged once per backend, not once per file.
	warned bool
}

// slot is one connection of the pool.
type slot struct {
	c *conn // nil until dialled
	// ready is closed when a dial in progress ends; nil when none is.
	ready    chan struct{}
	open     int       // files placed here and not closed
	failedAt time.Time // the last failed dial
}

// newPool makes a pool of o.Conns connections around the connected c0.
func newPool(c0 *conn, dial Dialer, o Options, check func(*psftp.Client) error) *pool {
	p := &pool{dial: dial, o: o, log: o.Logger, check: check, slots: make([]*slot, max(o.Conns, 1))}
	for i := range p.slots {
		p.slots[i] = &slot{}
	}
	p.slots[0].c = c0
	return p
}

// acquire places a new file: it returns the connection for it and its
// index, for release. Dialling an extra connection is bounded by
// ConnectTimeout and ctx; if it fails, the file goes to connection 0.
func (p *pool) acquire(ctx context.Context) (*conn, int) {
	p.mu.Lock()
	i := p.pick(time.Now())
	s := p.slots[i]
	s.open++
	if s.c != nil || p.closed {
		c := s.c
		if c == nil {
			c, i = p.moveTo0(s)
		}
		p.mu.Unlock()
		return c, i
	}
	ready := s.ready
	if ready == nil {
		ready = make(chan struct{})
		s.ready = ready
		p.dials.Add(1)
		p.mu.Unlock()
		p.dialSlot(ctx, i, s, ready)
	} else {
		p.mu.Unlock()
		select {
		case <-ready:
		case <-ctx.Done():
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.c != nil {
		return s.c, i
	}
	return p.moveTo0(s)
}

// moveTo0 moves a file placed on s (not connected) to connection 0.
// p.mu must be held.
func (p *pool) moveTo0(s *slot) (*conn, int) {
	s.open--
	p.slots[0].open++
	return p.slots[0].c, 0
}

// pick returns the slot with the fewest open files, lowest index first,
// leaving out extra connections whose dial failed recently. p.mu must
// be held.
func (p *pool) pick(now time.Time) int {
	best := 0
	for i, s := range p.slots[1:] {
		if s.c == nil && !s.failedAt.IsZero() && now.Sub(s.failedAt) < extraRetry {
			continue
		}
		if s.open < p.slots[best].open {
			best = i + 1
		}
	}
	return best
}

// dialSlot dials the connection of slot i and installs it, or records
// the failure. It closes ready at the end.
func (p *pool) dialSlot(ctx context.Context, i int, s *slot, ready chan struct{}) {
	defer p.dials.Done()
	c := newConn(p.dial, p.o, p.log.With("conn", strconv.Itoa(i)))
	c.check = p.check
	cctx, cancel := context.WithTimeout(ctx, p.o.ConnectTimeout)
	err := c.connect(cctx)
	cancel()
	p.mu.Lock()
	s.ready = nil
	close(ready)
	closed := p.closed
	switch {
	case err != nil:
		s.failedAt = time.Now()
		if !p.warned {
			p.warned = true
			// Dial errors name the host, the option and the method,
			// never a secret.
			p.log.Warn("cannot open an extra SSH connection (option conns); its files use the first connection, "+
				"retried for new files after "+extraRetry.String()+" (logged once)", "conn", i, "error", err.Error())
		}
	case !closed:
		s.c = c
	}
	p.mu.Unlock()
	if err != nil || closed {
		c.close()
	}
}

// release undoes acquire when the file at index i is closed.
func (p *pool) release(i int) {
	p.mu.Lock()
	p.slots[i].open--
	p.mu.Unlock()
}

// extra returns the dialled extra connections.
func (p *pool) extra() []*conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*conn
	for _, s := range p.slots[1:] {
		if s.c != nil {
			out = append(out, s.c)
		}
	}
	return out
}

// close closes the extra connections and waits for dials in flight;
// connection 0 belongs to the Backend, which closes it after.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.dials.Wait()
	for _, c := range p.extra() {
		c.close()
	}
}
