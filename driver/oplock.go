package driver

import (
	"context"
	"sync"
)

// opLock is a mutex whose Lock can give up when a context ends: a Mount
// that waits for another operation on the same volume must still answer
// Docker in time (Config.MountRequestTimeout). The zero value is unlocked.
type opLock struct {
	mu   sync.Mutex
	held bool
	wake chan struct{} // closed at the next Unlock; nil while nobody waits
}

// Lock waits as long as it takes.
func (l *opLock) Lock() { l.lockContext(context.Background()) }

// lockContext takes the lock, or reports false when ctx ends first.
func (l *opLock) lockContext(ctx context.Context) bool {
	for {
		l.mu.Lock()
		if !l.held {
			l.held = true
			l.mu.Unlock()
			return true
		}
		if l.wake == nil {
			l.wake = make(chan struct{})
		}
		wake := l.wake
		l.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return false
		}
	}
}

// Unlock releases the lock and wakes every waiter; one of them gets it.
func (l *opLock) Unlock() {
	l.mu.Lock()
	if !l.held {
		l.mu.Unlock()
		panic("driver: unlock of an unlocked opLock")
	}
	l.held = false
	if l.wake != nil {
		close(l.wake)
		l.wake = nil
	}
	l.mu.Unlock()
}
