package driver

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/volume"
	"github.com/sftpfs/sftpfs/internal/testenv"
	"golang.org/x/sys/unix"
)

// noMountsBelow fails the test if anything is still mounted under root.
func noMountsBelow(t *testing.T, root string) {
	t.Helper()
	mps, err := mountsBelow(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(mps) > 0 {
		t.Fatalf("mounts left behind under %s: %v", root, mps)
	}
}

// cleanupMounts detaches whatever a failed test left under root.
func cleanupMounts(t *testing.T, root string) {
	t.Cleanup(func() {
		mps, _ := mountsBelow(root)
		for _, mp := range mps {
			_ = detachAll(mp, 8)
		}
	})
}

// With the guard on and no filesystem above it (the fake mounts
// nothing, which is exactly the situation after a FUSE server dies),
// writes to the mountpoint must fail with EROFS rather than land on the
// plugin's disk.
func TestGuardRefusesWritesWhenNothingIsMounted(t *testing.T) {
	testenv.RequireRoot(t)
	e := newEnv(t)
	cleanupMounts(t, e.root)
	d, err := New(Config{MountRoot: e.root, Mounter: e.fm, Guard: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	c := serve(t, d)
	c.mustOK("Create", volume.CreateRequest{Name: "g", Options: map[string]string{"host": "h"}}, nil)
	var mr volume.MountResponse
	c.mustOK("Mount", volume.MountRequest{Name: "g", ID: "a"}, &mr)
	if n, _ := mountCount(mr.Mountpoint); n != 1 {
		t.Fatalf("%d mounts on the mountpoint, want the guard", n)
	}
	err = os.WriteFile(filepath.Join(mr.Mountpoint, "leak"), []byte("x"), 0o644)
	if !errors.Is(err, syscall.EROFS) {
		t.Fatalf("write to an unserved mountpoint: %v, want EROFS", err)
	}
	if err := os.Mkdir(filepath.Join(mr.Mountpoint, "dir"), 0o755); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("mkdir on an unserved mountpoint: %v, want EROFS", err)
	}
	c.mustOK("Unmount", volume.UnmountRequest{Name: "g", ID: "a"}, nil)
	noMountsBelow(t, e.root)
	c.mustOK("Remove", volume.RemoveRequest{Name: "g"}, nil)
	if _, err := os.Stat(mr.Mountpoint); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("mountpoint not removed: %v", err)
	}
}

// A failed mount with no callers must not leave the guard behind.
func TestGuardRemovedAfterFailedMount(t *testing.T) {
	testenv.RequireRoot(t)
	e := newEnv(t)
	cleanupMounts(t, e.root)
	d, err := New(Config{MountRoot: e.root, Mounter: e.fm, Guard: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	c := serve(t, d)
	c.mustOK("Create", volume.CreateRequest{Name: "g", Options: map[string]string{"host": "h"}}, nil)
	e.fm.failMount = errors.New("authentication failed")
	c.mustFail("Mount", volume.MountRequest{Name: "g", ID: "a"}, "authentication failed")
	noMountsBelow(t, e.root)
	if st := c.get("g").Status; st["last_error"] != "authentication failed" {
		t.Errorf("last_error = %v", st["last_error"])
	}
}

// Mounts left under the mount root by a crashed run are detached at start.
func TestStaleMountsDetachedAtStart(t *testing.T) {
	testenv.RequireRoot(t)
	e := newEnv(t)
	cleanupMounts(t, e.root)
	stale := filepath.Join(e.root, "old")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	for range 2 { // a guard with something stacked on it
		if err := unix.Mount("stale", stale, "tmpfs", 0, "size=4k"); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	if _, err := New(Config{MountRoot: e.root, Mounter: e.fm, Guard: true, Logger: testLogger(t)}); err != nil {
		t.Fatal(err)
	}
	noMountsBelow(t, e.root)
	if time.Since(start) > 5*time.Second {
		t.Fatal("start-up cleanup was slow")
	}
}

// A plugin killed while a volume was mounted leaves its guard with the
// dead filesystem on top. The next start detaches the dead mount but
// keeps the guard, so that between that cleanup and the remount a
// container still writing to the mountpoint gets EROFS; before, the
// cleanup detached the guard too and such a write landed on the
// plugin's own disk with success (seen in TestPluginCrash: an
// "fsync'ed" file that never reached the server).
func TestGuardKeptOverRestart(t *testing.T) {
	testenv.RequireRoot(t)
	e := newEnv(t)
	cleanupMounts(t, e.root)
	cfg := Config{MountRoot: e.root, StateDir: filepath.Join(t.TempDir(), "state"), Mounter: e.fm, Guard: true, Logger: testLogger(t)}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := serve(t, d)
	c.mustOK("Create", volume.CreateRequest{Name: "g", Options: map[string]string{"host": "h"}}, nil)
	var mr volume.MountResponse
	c.mustOK("Mount", volume.MountRequest{Name: "g", ID: "a"}, &mr)
	// The killed plugin's filesystem, dead on top of the guard.
	if err := unix.Mount("dead", mr.Mountpoint, "tmpfs", 0, "size=4k"); err != nil {
		t.Fatal(err)
	}
	// A new plugin process starts over the same state (d is abandoned,
	// as a killed process would be: no Shutdown).
	if _, err := New(cfg); err != nil {
		t.Fatal(err)
	}
	if n, _ := mountCount(mr.Mountpoint); n != 1 {
		t.Errorf("%d mounts on the mountpoint after start, want the guard alone", n)
	}
	err = os.WriteFile(filepath.Join(mr.Mountpoint, "leak"), []byte("x"), 0o644)
	if !errors.Is(err, syscall.EROFS) {
		t.Fatalf("write to the mountpoint after a restart, before the remount: %v, want EROFS", err)
	}
}
