package driver

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/volume"

	"github.com/sftpfs/sftpfs/internal/faultproxy"
	"github.com/sftpfs/sftpfs/internal/sshdtest"
	"github.com/sftpfs/sftpfs/internal/testenv"
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
	shutdownWithin(t, d2, 3*time.Second)
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

// The same with the production mounter, real FUSE mounts and a real
// OpenSSH server whose traffic stalls (as a hung server or a black-holed
// route): at the next start the SFTP volume's remount hangs in the SSH
// handshake while the local volume is remounted; Shutdown unmounts the
// local volume and returns within a small bound.
func TestShutdownNotDelayedByStalledServer(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireFUSE(t)
	srv := sshdtest.Start(t, sshdtest.Options{})
	px, err := faultproxy.New(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "volumes")
	cleanupMounts(t, root)
	secrets := filepath.Dir(srv.KeyFile)
	newDriver := func() *Driver {
		d, err := New(Config{MountRoot: root, Mounter: selfAccessMounter(secrets, testLogger(t)), Guard: true, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	d1 := newDriver()
	if err := d1.Create(&volume.CreateRequest{Name: "remote", Options: map[string]string{
		"host": srv.Host, "port": strconv.Itoa(px.Port()), "user": srv.User, "path": t.TempDir(),
		"identity": filepath.Base(srv.KeyFile), "hostkey": srv.HostKeyFingerprint, "connect_timeout": "50s",
	}}); err != nil {
		t.Fatal(err)
	}
	if err := d1.Create(&volume.CreateRequest{Name: "loc", Options: map[string]string{"local": data}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"remote", "loc"} {
		if _, err := d1.Mount(&volume.MountRequest{Name: name, ID: "ctr-" + name}); err != nil {
			t.Fatal(err)
		}
	}
	d1.Shutdown() // keeps both callers for the next start

	px.SetStall(true)
	defer px.SetStall(false)
	d2 := newDriver()
	d2.Start()
	locMP := filepath.Join(root, "loc")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if p, err := d2.Path(&volume.PathRequest{Name: "loc"}); err == nil && p.Mountpoint == locMP {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(`"loc" was not remounted`)
		}
	}
	shutdownWithin(t, d2, 5*time.Second)
	if n, err := mountCount(locMP); err != nil || n != 0 {
		t.Errorf("%d mounts left on %s after Shutdown (%v)", n, locMP, err)
	}
}

// shutdownWithin runs d.Shutdown and fails the test if it has not
// returned within bound (a background remount is stuck by then).
func shutdownWithin(t *testing.T, d *Driver, bound time.Duration) {
	t.Helper()
	start := time.Now()
	done := make(chan struct{})
	go func() { d.Shutdown(); close(done) }()
	select {
	case <-done:
		t.Logf("Shutdown took %v", time.Since(start).Round(time.Millisecond))
	case <-time.After(bound):
		t.Fatalf("Shutdown still running after %v: it waits for the stuck remount", bound)
	}
}
