package driver

import (
	"context"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/volume"
)

// TestMountAnswersWithinRequestBudget: Docker gives up on a plugin call
// after about 30s and then never unmounts that caller. A Mount must answer
// within MountRequestTimeout, both when the server is slow to mount and
// when it waits behind another operation on the same volume, and a caller
// whose Mount failed must not be counted (it would block volume rm).
func TestMountAnswersWithinRequestBudget(t *testing.T) {
	e := newEnv(t)
	const budget = 300 * time.Millisecond
	d, err := New(Config{MountRoot: e.root, Mounter: e.fm, Logger: testLogger(t),
		MountTimeout: time.Minute, MountRequestTimeout: budget})
	if err != nil {
		t.Fatal(err)
	}
	c := serve(t, d)
	c.mustOK("Create", volume.CreateRequest{Name: "v", Options: map[string]string{"host": "h"}}, nil)
	block := make(chan struct{})
	e.fm.mu.Lock()
	e.fm.block = block
	e.fm.mu.Unlock()

	// Two callers at once: one mounts (and the server hangs), the other
	// waits for the volume's lock. Both must answer within the budget.
	type res struct {
		id  string
		err string
		d   time.Duration
	}
	out := make(chan res, 2)
	for _, id := range []string{"a", "b"} {
		go func() {
			start := time.Now()
			e := c.call("Mount", volume.MountRequest{Name: "v", ID: id}, nil)
			out <- res{id, e, time.Since(start)}
		}()
	}
	for range 2 {
		r := <-out
		if r.err == "" {
			t.Errorf("Mount %s succeeded although the server never finished mounting", r.id)
		}
		if r.d > budget+time.Second {
			t.Errorf("Mount %s answered after %v; want within the request budget %v", r.id, r.d, budget)
		}
		t.Logf("Mount %s failed after %v: %s", r.id, r.d.Round(time.Millisecond), r.err)
	}
	if st := c.get("v").Status; st["mounts"] != float64(0) {
		t.Fatalf("mount count after failed Mounts = %v; want 0 (callers whose Mount failed are not counted)", st["mounts"])
	}
	close(block)
	e.fm.mu.Lock()
	e.fm.block = nil
	e.fm.mu.Unlock()
	c.mustOK("Mount", volume.MountRequest{Name: "v", ID: "c"}, nil)
	c.mustOK("Unmount", volume.UnmountRequest{Name: "v", ID: "c"}, nil)
	c.mustOK("Remove", volume.RemoveRequest{Name: "v"}, nil)
}

func TestOpLock(t *testing.T) {
	var l opLock
	l.Lock()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if l.lockContext(ctx) {
		t.Fatal("lockContext took a held lock")
	}
	got := make(chan bool)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		got <- l.lockContext(ctx)
	}()
	time.Sleep(20 * time.Millisecond)
	l.Unlock()
	if !<-got {
		t.Fatal("a waiter did not get the lock after Unlock")
	}
	l.Unlock()
}
