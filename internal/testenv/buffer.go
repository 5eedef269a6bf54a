package testenv

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer that may be written and read concurrently: a
// process's output copied by os/exec's goroutines, or a logger used by
// server goroutines, while the test reads what has arrived so far.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
