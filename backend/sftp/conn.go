package sftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	psftp "github.com/pkg/sftp"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/internal/logx"
)

// Dialer opens one SFTP session. The io.Closer tears down the transport
// under the client (an *ssh.Client, a pipe, a process); if it also has
// SendRequest (as *ssh.Client does), keepalives are sent through it.
type Dialer func(ctx context.Context) (*psftp.Client, io.Closer, error)

// requester is the part of *ssh.Client used for keepalives.
type requester interface {
	SendRequest(name string, wantReply bool, payload []byte) (bool, []byte, error)
}

// Reconnect pacing defaults (see ReconnectPolicy).
const (
	DefaultMinBackoff  = 100 * time.Millisecond
	DefaultMaxBackoff  = 30 * time.Second
	DefaultFailedRetry = 5 * time.Minute
	DefaultLogEvery    = 5 * time.Minute
)

const (
	// killGrace is how long a timed-out call may take to return after its
	// connection was closed under it; closing the socket normally makes
	// it return at once.
	killGrace = time.Second
)

// transport is one live SFTP session. Once dead it is never revived; a
// reconnect creates a new one.
type transport struct {
	client *psftp.Client
	closer io.Closer
	gen    uint64
	dead   chan struct{}
	once   sync.Once
	// data is the session open files use (datafile.go).
	data dataSession

	// The calls in flight on this transport, oldest first, for its
	// watchdog (see begin). Every call gets the same op_timeout, so the
	// oldest call has the earliest deadline.
	mu         sync.Mutex
	head, tail *callSlot
	poke       chan struct{} // capacity 1: wakes an idle watchdog
	// armed is set while the watchdog's timer will wake it by itself (at
	// the deadline of a call that was oldest then, which is no later than
	// any deadline of a call beginning now): begin need not wake it.
	armed bool
	// wakes counts the watchdog's wake-ups by begin (tests).
	wakes atomic.Int64
}

// callSlot is one call in flight on a transport.
type callSlot struct {
	deadline   time.Time
	prev, next *callSlot
	timedOut   bool // set by the watchdog before it kills the transport
}

// begin registers a call that must end within timeout, which must be
// the same for every call (the watchdog relies on deadlines growing).
func (t *transport) begin(timeout time.Duration) *callSlot {
	s := &callSlot{}
	t.mu.Lock()
	s.deadline = time.Now().Add(timeout)
	if t.tail == nil {
		t.head, t.tail = s, s
		// Waking the watchdog costs a goroutine switch (and often a
		// thread wake-up) per call when calls come one at a time
		// (random reads, file creations); while its timer is armed it
		// wakes by itself in time and looks at the list again.
		if !t.armed {
			select {
			case t.poke <- struct{}{}:
			default:
			}
		}
	} else {
		s.prev, t.tail.next, t.tail = t.tail, s, s
	}
	t.mu.Unlock()
	return s
}

// end unregisters s and reports whether the watchdog timed it out.
func (t *transport) end(s *callSlot) bool {
	t.mu.Lock()
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		t.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		t.tail = s.prev
	}
	timedOut := s.timedOut
	t.mu.Unlock()
	return timedOut
}

func (t *transport) isDead() bool {
	if t == nil {
		return false
	}
	select {
	case <-t.dead:
		return true
	default:
		return false
	}
}

// shut closes the transport; the first call wins.
func (t *transport) shut() {
	t.once.Do(func() {
		close(t.dead)
		// Closing the transport first makes pending calls fail at once;
		// client.Close then waits for pkg/sftp's reader to exit.
		go func() {
			t.closer.Close()
			t.client.Close()
		}()
	})
}

// conn holds the current transport and replaces it when it breaks.
type conn struct {
	dial        Dialer
	opTimeout   time.Duration
	kaInterval  time.Duration
	kaCountMax  int
	dialTimeout time.Duration
	rp          ReconnectPolicy
	log         *slog.Logger
	// every bounds the "still reconnecting" lines of one outage.
	every *logx.Every

	ctx    context.Context // cancelled by close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	cur        *transport
	gen        uint64
	wake       chan struct{} // closed and replaced whenever cur changes
	reconnects int
	lastErr    string
	downSince  time.Time // when cur became nil; zero while connected
	// failed is set while the last attempt failed for a reason retrying
	// will not fix (permanent): calls fail at once with lastErr.
	failed      bool
	loopRunning bool
	closed      bool
	// check, if set, vets a fresh connection before it is installed
	// (the backend's root still exists).
	check func(*psftp.Client) error
}

func newConn(dial Dialer, o Options, log *slog.Logger) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	rp := o.Reconnect.withDefaults()
	return &conn{
		dial: dial, opTimeout: o.OpTimeout, kaInterval: o.KeepaliveInterval, kaCountMax: o.KeepaliveCountMax,
		dialTimeout: o.ConnectTimeout, rp: rp, log: log, ctx: ctx, cancel: cancel, wake: make(chan struct{}),
		every: logx.NewEvery(rp.LogEvery),
	}
}

// connect makes the first connection synchronously so that New reports
// configuration errors (auth, host key) directly.
func (c *conn) connect(ctx context.Context) error {
	cl, closer, err := c.dial(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.install(cl, closer)
	return nil
}

// install makes a new transport current. c.mu must be held.
func (c *conn) install(cl *psftp.Client, closer io.Closer) {
	c.gen++
	t := &transport{client: cl, closer: closer, gen: c.gen, dead: make(chan struct{}), poke: make(chan struct{}, 1)}
	c.cur = t
	c.downSince = time.Time{}
	close(c.wake)
	c.wake = make(chan struct{})
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		select {
		case <-t.dead:
		case <-waitChan(cl):
			c.kill(t, errors.New("the server closed the connection"))
		}
	}()
	go func() {
		defer c.wg.Done()
		c.watchdog(t)
	}()
	if r, ok := closer.(requester); ok && c.kaInterval > 0 {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.keepalive(t, r)
		}()
	}
}

// waitChan adapts Client.Wait to a channel. The goroutine ends when the
// client is closed, which every transport eventually is.
func waitChan(cl *psftp.Client) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		_ = cl.Wait()
		close(ch)
	}()
	return ch
}

// keepalive sends keepalive@openssh.com every interval; after kaCountMax
// consecutive requests without a reply within the interval the connection
// is declared dead. Any reply, including "unknown request", proves the
// server alive.
func (c *conn) keepalive(t *transport, r requester) {
	tick := time.NewTicker(c.kaInterval)
	defer tick.Stop()
	missed := 0
	for {
		select {
		case <-t.dead:
			return
		case <-c.ctx.Done():
			return
		case <-tick.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := r.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		timer := time.NewTimer(c.kaInterval)
		select {
		case err := <-reply:
			timer.Stop()
			if err != nil {
				c.kill(t, fmt.Errorf("keepalive failed: %w", err))
				return
			}
			missed = 0
		case <-timer.C:
			missed++
			c.log.Debug("keepalive unanswered", "missed", missed)
			if missed >= c.kaCountMax {
				c.kill(t, fmt.Errorf("server did not answer %d keepalives (interval %v)", missed, c.kaInterval))
				return
			}
		case <-t.dead:
			timer.Stop()
			return
		}
	}
}

// watchdog enforces op_timeout for every call on t: when the oldest call
// in flight passes its deadline, the transport is killed (pkg/sftp calls
// cannot be cancelled individually; closing the connection is what makes
// them return). One goroutine and timer per connection instead of one
// per call keeps the per-call cost to a list insert and removal.
func (c *conn) watchdog(t *transport) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		t.mu.Lock()
		var wait time.Duration
		if t.head != nil {
			now := time.Now()
			wait = t.head.deadline.Sub(now)
			if wait <= 0 {
				for s := t.head; s != nil && !s.deadline.After(now); s = s.next {
					s.timedOut = true
				}
				t.mu.Unlock()
				c.kill(t, c.timeoutErr())
				return
			}
		}
		t.armed = wait > 0
		t.mu.Unlock()
		var fire <-chan time.Time
		if wait > 0 {
			timer.Reset(wait)
			fire = timer.C
		}
		select {
		case <-fire:
		case <-t.poke:
			t.wakes.Add(1)
			timer.Stop()
		case <-t.dead:
			return
		case <-c.ctx.Done():
			return
		}
	}
}

func (c *conn) timeoutErr() error {
	return fmt.Errorf("the server did not answer within op_timeout %v", c.opTimeout)
}

// kill declares t dead (if it is still current, once) and starts the
// reconnect loop.
func (c *conn) kill(t *transport, why error) {
	c.mu.Lock()
	if c.cur == t {
		c.cur = nil
		c.downSince = time.Now()
		c.lastErr = why.Error()
		if !c.closed {
			c.log.Warn("sftp connection lost; reconnecting", "error", why.Error(), "generation", t.gen)
			c.every.Restart(time.Now())
			if !c.loopRunning {
				c.loopRunning = true
				c.wg.Add(1)
				go c.reconnectLoop()
			}
		}
	}
	c.mu.Unlock()
	t.shut()
}

// reconnectLoop dials with jittered exponential backoff until it succeeds
// or the backend is closed. It runs even when no caller waits, so an idle
// mount recovers on its own and Status shows the truth.
//
// Logging is per state change (lost, failed, refused no longer,
// re-established) plus at most one line per LogEvery while the state
// stays, never one per attempt: a plugin with a hundred volumes on a dead
// server must not flood dockerd's log. A permanent error (see permanent)
// puts the connection in StateFailed: calls fail at once with the reason,
// and attempts slow down to FailedRetry.
func (c *conn) reconnectLoop() {
	defer c.wg.Done()
	attempt := 0
	for {
		ctx, cancel := context.WithTimeout(c.ctx, c.dialTimeout)
		cl, closer, err := c.dial(ctx)
		cancel()
		c.mu.Lock()
		check := c.check
		c.mu.Unlock()
		if err == nil && check != nil {
			if cerr := c.vet(cl, check); cerr != nil {
				closer.Close()
				cl.Close()
				cl, closer, err = nil, nil, cerr
			}
		}
		c.mu.Lock()
		if c.closed {
			c.loopRunning = false
			c.mu.Unlock()
			if err == nil {
				closer.Close()
				cl.Close()
			}
			return
		}
		attempt++
		if err == nil {
			c.reconnects++
			c.loopRunning = false
			c.failed = false
			down := time.Since(c.downSince)
			c.install(cl, closer)
			n := c.reconnects
			c.mu.Unlock()
			c.log.Info("sftp connection re-established", "reconnects", n, "attempts", attempt,
				"down_for", down.Round(time.Millisecond))
			return
		}
		perm := permanent(err)
		wasFailed := c.failed
		c.lastErr = err.Error()
		c.failed = perm
		c.mu.Unlock()
		var wait time.Duration
		if perm {
			wait = jittered(c.rp.FailedRetry, rand.Float64())
		} else {
			wait = backoff(attempt-1, c.rp.MinBackoff, c.rp.MaxBackoff, rand.Float64())
		}
		now := time.Now()
		switch {
		case perm && !wasFailed:
			c.every.Restart(now)
			c.log.Error("volume failed: the server refused the connection for a reason retrying will not fix; "+
				"calls fail with this error until it is fixed, attempts go on rarely", "error", err.Error(), "retry_in", wait.Round(time.Millisecond))
		case !perm && wasFailed:
			c.every.Restart(now)
			c.log.Warn("the server no longer refuses the connection; reconnecting", "error", err.Error(), "retry_in", wait.Round(time.Millisecond))
		case attempt == 1:
			c.log.Warn("sftp reconnect failed; retrying with backoff (logged again at most every "+c.rp.LogEvery.String()+")",
				"error", err.Error(), "retry_in", wait.Round(time.Millisecond))
		default:
			if ok, held := c.every.Allow(now); ok {
				state := backend.StateReconnecting
				if perm {
					state = backend.StateFailed
				}
				c.log.Warn("sftp still not connected", "state", string(state), "error", err.Error(), "attempts", attempt,
					"not_logged", held, "retry_in", wait.Round(time.Millisecond))
			}
		}
		select {
		case <-c.ctx.Done():
		case <-time.After(wait):
		}
	}
}

// vet runs check on a fresh connection, bounded by op_timeout.
func (c *conn) vet(cl *psftp.Client, check func(*psftp.Client) error) error {
	res := make(chan error, 1)
	go func() { res <- check(cl) }()
	timer := time.NewTimer(c.opTimeout)
	defer timer.Stop()
	select {
	case err := <-res:
		return err
	case <-timer.C:
		// Closing the client (the caller does) makes check return.
		return c.timeoutErr()
	}
}

// errClosedBackend is returned for calls on a closed backend.
var errClosedBackend = errors.New("sftp backend is closed")

// getBy is get bounded by deadline too. Calls use it only when there is
// no live transport: a context with a timer per call costs more than the
// rest of the call's bookkeeping.
func (c *conn) getBy(ctx context.Context, deadline time.Time) (*transport, error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	return c.get(ctx)
}

// get returns the current transport, waiting for a reconnect until ctx
// ends or the outage is op_timeout old, whichever comes first.
//
// The second bound makes an outage cost each caller at most one
// op_timeout: once the server has been unreachable that long, calls fail
// at once (the reconnect loop goes on trying) instead of each waiting
// op_timeout again. Without it one open(2) of a cached name, which the
// kernel may turn into LOOKUP, GETATTR of the parent and LOOKUP again,
// took three op_timeouts during a network cut.
func (c *conn) get(ctx context.Context) (*transport, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, errClosedBackend
		}
		if t := c.cur; t != nil {
			c.mu.Unlock()
			return t, nil
		}
		wake, last, since, failed := c.wake, c.lastErr, c.downSince, c.failed
		c.mu.Unlock()
		if failed {
			return nil, &FailedError{Reason: last}
		}
		wait := time.Until(since.Add(c.opTimeout))
		if since.IsZero() {
			wait = c.opTimeout
		}
		if wait <= 0 {
			return nil, fmt.Errorf("not connected to the server for %v (reconnecting; last error: %s)",
				time.Since(since).Round(100*time.Millisecond), last)
		}
		timer := time.NewTimer(wait)
		select {
		case <-wake:
			timer.Stop()
		case <-timer.C:
			// Loop: the check above reports the outage.
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("not connected to the server (reconnecting; last error: %s): %w", last, ctx.Err())
		}
	}
}

// result carries one call's outcome across goroutines.
type result[T any] struct {
	v   T
	err error
}

// run executes fn on t, bounded by opTimeout through t's watchdog: on
// timeout the connection is closed, which makes fn return, and a
// connError is returned. fn runs on the caller's goroutine unless ctx can
// be cancelled (the mount passes contexts without cancellation); then it
// runs in its own goroutine so that the caller can leave when ctx ends,
// and discard (if not nil) receives the abandoned call's eventual value.
func run[T any](c *conn, ctx context.Context, t *transport, fn func(*transport) (T, error), discard func(T)) (T, error) {
	if ctx.Done() == nil {
		return runBounded(c, t, fn, discard)
	}
	ch := make(chan result[T], 1)
	go func() {
		v, err := runBounded(c, t, fn, discard)
		ch <- result[T]{v, err}
	}()
	var zero T
	select {
	case r := <-ch:
		return r.v, r.err
	case <-t.dead:
		// Killed (by the watchdog or a lost connection): fn normally
		// returns at once; wait (briefly) so that a retry never runs
		// concurrently with it on the same buffers.
		select {
		case r := <-ch:
			return r.v, r.err
		case <-time.After(killGrace):
			abandon(ch, discard)
			return zero, &connError{fmt.Errorf("the connection was closed and the call did not return within %v", killGrace)}
		case <-ctx.Done():
			abandon(ch, discard)
			return zero, ctx.Err()
		}
	case <-ctx.Done():
		abandon(ch, discard)
		return zero, ctx.Err()
	}
}

// runBounded runs fn registered with t's watchdog.
func runBounded[T any](c *conn, t *transport, fn func(*transport) (T, error), discard func(T)) (T, error) {
	s := t.begin(c.opTimeout)
	v, err := fn(t)
	if t.end(s) {
		if discard != nil && err == nil {
			discard(v)
		}
		var zero T
		return zero, &connError{c.timeoutErr()}
	}
	return v, err
}

func abandon[T any](ch chan result[T], discard func(T)) {
	if discard == nil {
		return
	}
	go func() {
		if r := <-ch; r.err == nil {
			discard(r.v)
		}
	}()
}

// call runs fn on a live transport, reconnecting as needed. Idempotent
// calls are retried while the op deadline allows; others are retried once
// after a reconnect (the first attempt may have reached the server, so a
// retry can report e.g. EEXIST for a Mkdir that did succeed).
func call[T any](c *conn, ctx context.Context, idempotent bool, fn func(*transport) (T, error), discard func(T)) (T, error) {
	var zero T
	// A caller that is already done gets its error without a request
	// going out; otherwise a fast reply could win the race in run.
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	// Waiting for a connection is bounded by op_timeout from here.
	start := time.Now()
	attempts := 2
	if idempotent {
		attempts = 4
	}
	var lastErr error
	for i := 0; i < attempts; i++ {
		t := c.current()
		var err error
		if t == nil {
			t, err = c.getBy(ctx, start.Add(c.opTimeout))
		}
		if err != nil {
			if lastErr != nil && ctx.Err() == nil {
				return zero, fmt.Errorf("%w (then: %v)", lastErr, err)
			}
			return zero, err
		}
		v, err := run(c, ctx, t, fn, discard)
		if !isConnErr(t, err) {
			return v, err
		}
		c.kill(t, err)
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return zero, &connError{lastErr}
}

// status returns the connection fields of Status.
func (c *conn) status() (state backend.State, reconnects int, lastErr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		state = backend.StateClosed
	case c.cur != nil:
		state = backend.StateConnected
	case c.failed:
		state = backend.StateFailed
	default:
		state = backend.StateReconnecting
	}
	return state, c.reconnects, c.lastErr
}

// current returns the live transport without waiting, or nil.
func (c *conn) current() *transport {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

// close shuts everything down; later calls fail with errClosedBackend.
func (c *conn) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	t := c.cur
	c.cur = nil
	close(c.wake)
	c.wake = make(chan struct{})
	c.mu.Unlock()
	c.cancel()
	if t != nil {
		t.shut()
	}
	c.wg.Wait()
}
