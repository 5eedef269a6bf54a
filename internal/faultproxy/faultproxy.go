package faultproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Stats counts what the proxy has done since New.
type Stats struct {
	// Conns is the number of client connections forwarded to a target
	// (refused ones and failed dials are not counted).
	Conns int64
	// Active is the number of forwarded connections open now.
	Active int64
	// Bytes is the number of bytes forwarded, both directions together.
	Bytes int64
}

// Proxy forwards TCP connections from Addr to a target address. All
// methods are safe for concurrent use.
type Proxy struct {
	ln net.Listener
	wg sync.WaitGroup

	conns, bytes atomic.Int64

	mu     sync.Mutex
	target string
	refuse bool
	// resume is closed while traffic flows; while stalled it is open
	// and forwarders wait on it before writing.
	resume chan struct{}
	active map[*pair]struct{}
	closed bool
}

// pair is one client connection and its connection to the target.
type pair struct {
	client, server net.Conn
	done           chan struct{} // closed by kill
	once           sync.Once
}

// kill closes both sides with an RST (SO_LINGER 0), so peers see a
// connection reset rather than an orderly end of stream.
func (p *pair) kill() { p.close(true) }

// close closes both sides once. Only an abrupt close sends an RST: after
// both directions ended normally an RST could discard data still in the
// kernel's send buffer.
func (p *pair) close(abrupt bool) {
	p.once.Do(func() {
		close(p.done)
		for _, c := range []net.Conn{p.client, p.server} {
			if tc, ok := c.(*net.TCPConn); ok && abrupt {
				_ = tc.SetLinger(0)
			}
			_ = c.Close()
		}
	})
}

// New starts a proxy listening on 127.0.0.1 (a free port) that forwards
// to target ("host:port").
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	resume := make(chan struct{})
	close(resume)
	p := &Proxy{ln: ln, target: target, resume: resume, active: map[*pair]struct{}{}}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr is the proxy's "127.0.0.1:PORT", where clients connect.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Port is the proxy's port.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// SetTarget changes where new connections are forwarded; existing ones
// keep their target.
func (p *Proxy) SetTarget(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

// SetRefuse makes the proxy accept new connections and close them at once
// (true), or forward them again (false).
func (p *Proxy) SetRefuse(refuse bool) {
	p.mu.Lock()
	p.refuse = refuse
	p.mu.Unlock()
}

// SetStall stops (true) or resumes (false) forwarding bytes in both
// directions, for existing and new connections. Connections stay open
// while stalled; data read meanwhile is held and delivered on resume.
func (p *Proxy) SetStall(stall bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.resume: // flowing now
		if stall {
			p.resume = make(chan struct{})
		}
	default: // stalled now
		if !stall {
			close(p.resume)
		}
	}
}

// DropAll abruptly closes every current connection (both the client's and
// the target's side, with a TCP reset). New connections are still
// accepted.
func (p *Proxy) DropAll() {
	p.mu.Lock()
	victims := make([]*pair, 0, len(p.active))
	for c := range p.active {
		victims = append(victims, c)
	}
	p.mu.Unlock()
	for _, c := range victims {
		c.kill()
	}
}

// Stats returns the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	active := int64(len(p.active))
	p.mu.Unlock()
	return Stats{Conns: p.conns.Load(), Active: active, Bytes: p.bytes.Load()}
}

// Close stops listening, drops all connections and waits for the proxy's
// goroutines to end. A second Close returns nil.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	p.DropAll()
	p.wg.Wait()
	return err
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failures (e.g. out of file descriptors):
			// back off instead of spinning.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		p.mu.Lock()
		refuse, target, closed := p.refuse, p.target, p.closed
		p.mu.Unlock()
		if refuse || closed {
			_ = c.Close()
			continue
		}
		p.wg.Add(1)
		go p.handle(c, target)
	}
}

func (p *Proxy) handle(client net.Conn, target string) {
	defer p.wg.Done()
	server, err := net.DialTimeout("tcp", target, 10*time.Second)
	if err != nil {
		// Like an unreachable server behind a load balancer: the
		// client sees its connection closed.
		_ = client.Close()
		return
	}
	c := &pair{client: client, server: server, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.kill()
		return
	}
	p.active[c] = struct{}{}
	p.mu.Unlock()
	p.conns.Add(1)

	var fwd sync.WaitGroup
	fwd.Add(2)
	go func() { defer fwd.Done(); p.forward(c, server, client) }()
	go func() { defer fwd.Done(); p.forward(c, client, server) }()
	fwd.Wait()
	c.close(false)
	p.mu.Lock()
	delete(p.active, c)
	p.mu.Unlock()
}

// forward copies src to dst, waiting while the proxy is stalled. When src
// ends, it half-closes dst so the peer sees the end of stream, and the
// other direction keeps going until it ends too.
func (p *Proxy) forward(c *pair, dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			resume := p.resume
			p.mu.Unlock()
			select {
			case <-resume:
			case <-c.done:
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				c.kill()
				return
			}
			p.bytes.Add(int64(n))
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
					return
				}
			}
			c.kill()
			return
		}
	}
}
