package hotpath

import (
	"io"
	"sync"
	"time"
)

// delayPipe is a one-way byte stream whose bytes become readable delay
// after they were written, with unlimited bandwidth: a network link with
// a fixed latency.
type delayPipe struct {
	delay  time.Duration
	mu     sync.Mutex
	cond   *sync.Cond
	queue  []segment
	closed bool
}

type segment struct {
	data []byte
	at   time.Time
}

func newDelayPipe(d time.Duration) *delayPipe {
	p := &delayPipe{delay: d}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *delayPipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, io.ErrClosedPipe
	}
	p.queue = append(p.queue, segment{append([]byte(nil), b...), time.Now().Add(p.delay)})
	p.cond.Broadcast()
	return len(b), nil
}

func (p *delayPipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		for len(p.queue) == 0 && !p.closed {
			p.cond.Wait()
		}
		if len(p.queue) == 0 {
			return 0, io.EOF
		}
		if wait := time.Until(p.queue[0].at); wait > 0 {
			p.mu.Unlock()
			time.Sleep(wait)
			p.mu.Lock()
			continue
		}
		n := 0
		for len(p.queue) > 0 && n < len(b) && !time.Now().Before(p.queue[0].at) {
			k := copy(b[n:], p.queue[0].data)
			n += k
			if k == len(p.queue[0].data) {
				p.queue = p.queue[1:]
			} else {
				p.queue[0].data = p.queue[0].data[k:]
			}
		}
		return n, nil
	}
}

func (p *delayPipe) Close() error {
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	p.mu.Unlock()
	return nil
}

// end is one side of a latency link.
type end struct {
	r, w *delayPipe
}

func (e end) Read(b []byte) (int, error)  { return e.r.Read(b) }
func (e end) Write(b []byte) (int, error) { return e.w.Write(b) }
func (e end) Close() error                { e.r.Close(); return e.w.Close() }

// link returns the two ends of a connection with round-trip time rtt.
func link(rtt time.Duration) (a, b end) {
	ab, ba := newDelayPipe(rtt/2), newDelayPipe(rtt/2)
	return end{r: ba, w: ab}, end{r: ab, w: ba}
}
