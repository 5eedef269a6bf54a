package driver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/volume"
)

// A remount stuck on a server that does not answer must not hold up
// Shutdown: the other volumes are unmounted at once and Shutdown returns
// promptly. It used to wait for every background remount first (up to
// MountTimeout, 60 s) before unmounting anything.
func TestShutdownNotDelayedByStuckRemount(t *testing.T) {
	e := newEnv(t)
	d1 := e.driver(t)
	for _, name := range []string{"stuck", "fine"} {
		if err := d1.Create(&volume.CreateRequest{Name: name, Options: map[string]string{"host": "h"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := d1.Mount(&volume.MountRequest{Name: name, ID: "ctr-" + name}); err != nil {
			t.Fatal(err)
		}
	}
	// Restart (the first driver is dropped as in a crash); the server
	// of "stuck" does not answer.
	e.fm = newFakeMounter()
	e.fm.block = make(chan struct{})
	e.fm.blockMP = filepath.Join(e.root, "stuck")
	d2 := e.driver(t)
	d2.Start()
	for deadline := time.Now().Add(5 * time.Second); e.fm.liveCount() != 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(`"fine" was not remounted`)
		}
	}
	start := time.Now()
	done := make(chan struct{})
	go func() { d2.Shutdown(); close(done) }()
	select {
	case <-done:
		t.Logf("Shutdown took %v", time.Since(start).Round(time.Millisecond))
	case <-time.After(3 * time.Second):
		t.Fatalf("Shutdown still running after 3s (live mounts %d): it waits for the stuck remount", e.fm.liveCount())
	}
	if n := e.fm.liveCount(); n != 0 {
		t.Errorf("%d mounts left after Shutdown", n)
	}
	// The callers stay recorded, so the next start remounts both.
	e.fm = newFakeMounter()
	d3 := e.driver(t)
	d3.Start()
	d3.Wait()
	if n := e.fm.liveCount(); n != 2 {
		t.Errorf("next start remounted %d volumes, want 2", n)
	}
	d3.Shutdown()
}
