package sftp

import (
	"errors"
	"fmt"
	"time"
)

// ReconnectPolicy paces the attempts to restore a lost connection. Zero
// fields take the Default* values; tests shorten them.
type ReconnectPolicy struct {
	// MinBackoff and MaxBackoff bound the doubling wait between attempts
	// (before jitter, which picks a wait in [d/2, d]: volumes that lost
	// one server together do not come back in lockstep).
	MinBackoff, MaxBackoff time.Duration
	// FailedRetry is the wait between attempts while the connection is
	// failed (a permanent error), with the same jitter.
	FailedRetry time.Duration
	// LogEvery bounds the repeated "still not connected" lines of one
	// outage; state changes are always logged.
	LogEvery time.Duration
}

func (p ReconnectPolicy) withDefaults() ReconnectPolicy {
	if p.MinBackoff <= 0 {
		p.MinBackoff = DefaultMinBackoff
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = DefaultMaxBackoff
	}
	p.MaxBackoff = max(p.MaxBackoff, p.MinBackoff)
	if p.FailedRetry <= 0 {
		p.FailedRetry = DefaultFailedRetry
	}
	if p.LogEvery <= 0 {
		p.LogEvery = DefaultLogEvery
	}
	return p
}

// backoff returns the wait after the attempt-th consecutive failure
// (from 0): min doubled attempt times, capped at max, then jittered with
// r in [0,1). The result lies in [min/2, max].
func backoff(attempt int, min, max time.Duration, r float64) time.Duration {
	d := min
	for i := 0; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return jittered(d, r)
}

// jittered returns a wait in [d/2, d] picked by r in [0,1) ("equal
// jitter": never much shorter than d, never longer).
func jittered(d time.Duration, r float64) time.Duration {
	half := d / 2
	return half + time.Duration(float64(d-half)*r)
}

// FailedError is what calls get while the connection is failed: the
// server refused it for a reason that retrying will not fix. Reason is
// the refusal (never a secret).
type FailedError struct{ Reason string }

func (e *FailedError) Error() string {
	return fmt.Sprintf("the volume failed and is not connected: %s", e.Reason)
}

// rootGoneError is the check's verdict when the remote directory of the
// volume no longer exists.
type rootGoneError struct{ root string }

func (e *rootGoneError) Error() string {
	return fmt.Sprintf("the remote directory %s no longer exists on the server; recreate it (or remove the volume)", e.root)
}

// permanent reports whether err, from a reconnect attempt, will not heal
// by retrying soon: the server's host key changed, is unknown or revoked;
// it refused our authentication; the remote directory is gone. A person
// has to act; until then attempts slow down and calls fail at once.
func permanent(err error) bool {
	var hk *HostKeyError
	var ae *AuthError
	var rg *rootGoneError
	return errors.As(err, &hk) || errors.As(err, &ae) || errors.As(err, &rg)
}
