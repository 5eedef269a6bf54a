package driver

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/volume"
	"golang.org/x/sys/unix"
)

// TestRemountWhileOldMountInUse: a volume's FUSE mount dies at the
// plugin's mountpoint while a container still holds it (its own bind
// mount, another reference to the same FUSE session). The next Mount
// must replace it within the request budget, not wait for that container
// to go (the 3 min soak saw a remount hold the volume's lock for 140 s and
// dockerd time out), must not unmount the read-only guard that is then on
// top, and the old container keeps being served.
func TestRemountWhileOldMountInUse(t *testing.T) {
	c, _, data, root := realLocalDriver(t)
	c.mustOK("Create", volume.CreateRequest{Name: "v", Options: map[string]string{"local": data}}, nil)
	var mr volume.MountResponse
	c.mustOK("Mount", volume.MountRequest{Name: "v", ID: "old"}, &mr)
	mp := mr.Mountpoint

	container := t.TempDir() // the old container's view of the volume
	if err := unix.Mount(mp, container, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	bound := true
	t.Cleanup(func() {
		if bound {
			_ = unix.Unmount(container, unix.MNT_DETACH)
		}
	})
	// The mount dies at the plugin's mountpoint only.
	if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.mustOK("Mount", volume.MountRequest{Name: "v", ID: "new"}, nil)
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the remount took %s with the old mount still in use", took)
	}
	if n, _ := mountCount(mp); n != 2 {
		t.Fatalf("%d mounts on %s after the remount, want the guard and the new FUSE mount", n, mp)
	}
	if err := os.WriteFile(filepath.Join(mp, "new.txt"), []byte("new"), 0o644); err != nil {
		t.Fatalf("write through the new mount: %v", err)
	}
	if err := os.WriteFile(filepath.Join(container, "old.txt"), []byte("old"), 0o644); err != nil {
		t.Fatalf("write through the old container's mount: %v", err)
	}
	for _, f := range []string{"new.txt", "old.txt"} {
		if _, err := os.Stat(filepath.Join(data, f)); err != nil {
			t.Errorf("%s not in the storage: %v", f, err)
		}
	}
	if err := unix.Unmount(container, 0); err != nil {
		t.Fatal(err)
	}
	bound = false
	for _, id := range []string{"old", "new"} {
		c.mustOK("Unmount", volume.UnmountRequest{Name: "v", ID: id}, nil)
	}
	noMountsBelow(t, root)
}
