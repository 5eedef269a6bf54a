package fusefs

import (
	"testing"
	"time"
)

// TestMemBudget: tryTake refuses at the limit, take waits for a unit to
// come back, and a budget of 0 bytes bounds nothing.
func TestMemBudget(t *testing.T) {
	b := newMemBudget(2*readChunk + readChunk/2) // two units: a part buffer is no unit
	for i := range 2 {
		if !b.tryTake() {
			t.Fatalf("tryTake %d of 2 failed below the limit", i+1)
		}
	}
	if b.tryTake() {
		t.Fatal("tryTake took a third unit of two")
	}
	took := make(chan struct{})
	go func() { b.take(); close(took) }()
	select {
	case <-took:
		t.Fatal("take did not wait for a free unit")
	case <-time.After(50 * time.Millisecond):
	}
	b.give()
	select {
	case <-took:
	case <-time.After(5 * time.Second):
		t.Fatal("take still waits after a unit was given back")
	}
	if held, peak := b.stats(); held != 2 || peak != 2 {
		t.Errorf("held %d peak %d, want 2 and 2", held, peak)
	}
	u := newMemBudget(0)
	for range 100 {
		if !u.tryTake() {
			t.Fatal("an unbounded budget refused a unit")
		}
	}
	if b := newMemBudget(1); b.limit != 1 {
		t.Errorf("a budget below one buffer has %d units, want 1", b.limit)
	}
}
