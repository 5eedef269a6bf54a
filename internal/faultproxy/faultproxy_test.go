package faultproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// echoServer answers every line with prefix+line, until the test ends.
func echoServer(t *testing.T, prefix string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := io.WriteString(c, prefix+l); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func newProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

type client struct {
	net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{c, bufio.NewReader(c)}
}

// roundTrip sends a line and returns the answer, or an error if none
// arrives within d.
func (c *client) roundTrip(line string, d time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(d))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	l, err := c.r.ReadString('\n')
	return strings.TrimSuffix(l, "\n"), err
}

func TestForwardAndStats(t *testing.T) {
	p := newProxy(t, echoServer(t, "A:"))
	if !strings.HasPrefix(p.Addr(), "127.0.0.1:") || p.Port() == 0 {
		t.Fatalf("Addr %q Port %d", p.Addr(), p.Port())
	}
	c := dial(t, p.Addr())
	for i := 0; i < 3; i++ {
		if got, err := c.roundTrip("hello", 5*time.Second); err != nil || got != "A:hello" {
			t.Fatalf("round trip: %q, %v", got, err)
		}
	}
	// 3 × "hello\n" (6) one way, 3 × "A:hello\n" (8) back. The proxy
	// counts a chunk after forwarding it, so the client can see the last
	// reply a moment before the count includes it.
	waitFor(t, func() bool { return p.Stats().Bytes >= 3*6+3*8 }, "byte count to include the last reply")
	st := p.Stats()
	if st.Conns != 1 || st.Active != 1 || st.Bytes != 3*6+3*8 {
		t.Fatalf("stats %+v; want Conns 1 Active 1 Bytes 42", st)
	}
	c.Close()
	waitFor(t, func() bool { return p.Stats().Active == 0 }, "connection to end after client close")
}

func TestStall(t *testing.T) {
	p := newProxy(t, echoServer(t, ""))
	c := dial(t, p.Addr())
	p.SetStall(true)
	p.SetStall(true) // idempotent
	if got, err := c.roundTrip("x", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("stalled round trip: %q, %v; want a timeout", got, err)
	}
	// A connection made while stalled is accepted but gets nothing.
	c2 := dial(t, p.Addr())
	if got, err := c2.roundTrip("y", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("new conn while stalled: %q, %v; want a timeout", got, err)
	}
	p.SetStall(false)
	p.SetStall(false)
	// The held bytes are delivered after resume.
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if l, err := c.r.ReadString('\n'); err != nil || l != "x\n" {
		t.Fatalf("after resume: %q, %v", l, err)
	}
	c2.SetDeadline(time.Now().Add(5 * time.Second))
	if l, err := c2.r.ReadString('\n'); err != nil || l != "y\n" {
		t.Fatalf("after resume (second conn): %q, %v", l, err)
	}
}

func TestDropAll(t *testing.T) {
	p := newProxy(t, echoServer(t, ""))
	c1, c2 := dial(t, p.Addr()), dial(t, p.Addr())
	for _, c := range []*client{c1, c2} {
		if _, err := c.roundTrip("a", 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	p.DropAll()
	for _, c := range []*client{c1, c2} {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err := c.r.ReadString('\n')
		if err == nil || isTimeout(err) {
			t.Fatalf("read after DropAll: %v; want the connection closed", err)
		}
	}
	waitFor(t, func() bool { return p.Stats().Active == 0 }, "no active connections after DropAll")
	// New connections still work.
	if got, err := dial(t, p.Addr()).roundTrip("b", 5*time.Second); err != nil || got != "b" {
		t.Fatalf("after DropAll: %q, %v", got, err)
	}
}

func TestRefuseAndSetTarget(t *testing.T) {
	p := newProxy(t, echoServer(t, "A:"))
	old := dial(t, p.Addr())
	// A round trip first: dial returns once the kernel has queued the
	// connection, which can be before the proxy accepts it, and a
	// connection accepted after SetRefuse(true) is refused.
	if got, err := old.roundTrip("w", 5*time.Second); err != nil || got != "A:w" {
		t.Fatalf("before SetRefuse: %q, %v", got, err)
	}
	p.SetRefuse(true)
	c := dial(t, p.Addr())
	if got, err := c.roundTrip("x", 5*time.Second); err == nil || isTimeout(err) {
		t.Fatalf("refused conn: %q, %v; want closed", got, err)
	}
	p.SetRefuse(false)
	p.SetTarget(echoServer(t, "B:"))
	if got, err := dial(t, p.Addr()).roundTrip("x", 5*time.Second); err != nil || got != "B:x" {
		t.Fatalf("after SetTarget: %q, %v", got, err)
	}
	// Existing connections keep their target.
	if got, err := old.roundTrip("x", 5*time.Second); err != nil || got != "A:x" {
		t.Fatalf("old connection after SetTarget: %q, %v", got, err)
	}
	if st := p.Stats(); st.Conns != 2 {
		t.Fatalf("stats %+v; want 2 forwarded connections (the refused one not counted)", st)
	}
}

func TestDeadTarget(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	p := newProxy(t, dead)
	if got, err := dial(t, p.Addr()).roundTrip("x", 5*time.Second); err == nil || isTimeout(err) {
		t.Fatalf("dead target: %q, %v; want the connection closed", got, err)
	}
}

func TestCloseDropsEverything(t *testing.T) {
	p, err := New(echoServer(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.Addr())
	p.SetStall(true)
	io.WriteString(c, "x\n") // a forwarder is now waiting on the stall
	time.Sleep(50 * time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung with a stalled connection")
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.r.ReadString('\n'); err == nil || isTimeout(err) {
		t.Fatalf("read after Close: %v; want closed", err)
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Fatal("proxy still accepts after Close")
	}
}

// TestConcurrentControl flips every knob while traffic flows; run with
// -race it checks the proxy's locking.
func TestConcurrentControl(t *testing.T) {
	a, b := echoServer(t, ""), echoServer(t, "")
	p := newProxy(t, a)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.Dial("tcp", p.Addr())
				if err != nil {
					continue
				}
				cl := &client{c, bufio.NewReader(c)}
				cl.roundTrip("z", 50*time.Millisecond)
				c.Close()
			}
		}()
	}
	for i := 0; i < 50; i++ {
		p.SetStall(i%3 == 0)
		p.SetRefuse(i%5 == 0)
		if i%2 == 0 {
			p.SetTarget(a)
		} else {
			p.SetTarget(b)
		}
		if i%7 == 0 {
			p.DropAll()
		}
		_ = p.Stats()
		time.Sleep(2 * time.Millisecond)
	}
	p.SetStall(false)
	p.SetRefuse(false)
	close(stop)
	wg.Wait()
	if p.Stats().Conns == 0 {
		t.Fatal("no connection was forwarded")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestResetConnWriteFailsWithEPIPE(t *testing.T) {
	c, err := ResetConn()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Write([]byte("x"))
	var oe *net.OpError
	if !errors.As(err, &oe) || !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("write on a reset connection: %v, want a *net.OpError with EPIPE", err)
	}
}
