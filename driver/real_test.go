package driver

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/docker/go-plugins-helpers/volume"
	"golang.org/x/sys/unix"

	"github.com/sftpfs/sftpfs/internal/testenv"
)

// selfAccessMounter is the production mounter for tests that read and
// write the mounts from this process, which the plugin never does: its
// mounts keep go-fuse's mount-time poll probe (fusefs.Options.ServeOnly).
func selfAccessMounter(secretsDir string, _ *slog.Logger) Mounter {
	m := NewMounter(secretsDir, nil).(*realMounter)
	m.selfAccess = true
	return m
}

// realLocalDriver serves a driver with the production mounter and the
// read-only guard, its mount root cleaned up after the test. It returns
// the client, the test's directory, an empty data directory for local
// volumes in it, and the mount root.
func realLocalDriver(t *testing.T) (c *client, dir, data, root string) {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireFUSE(t)
	dir = t.TempDir()
	data = filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	root = filepath.Join(dir, "volumes")
	cleanupMounts(t, root)
	d, err := New(Config{MountRoot: root, Mounter: selfAccessMounter(filepath.Join(dir, "secrets"), testLogger(t)), Guard: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Shutdown)
	return serve(t, d), dir, data, root
}

// The production mounter over backend/local with real FUSE, through the
// HTTP handler: data reaches the backing directory, callers share one
// mount, a mount killed from outside leaves the read-only guard (EROFS),
// the next Mount replaces it, and nothing is left mounted at the end.
func TestRealMounterLocalFUSE(t *testing.T) {
	c, dir, data, root := realLocalDriver(t)

	c.mustFail("Create", volume.CreateRequest{Name: "bad", Options: map[string]string{"local": data, "bogus": "1"}}, "bogus")
	c.mustFail("Create", volume.CreateRequest{Name: "bad", Options: map[string]string{"local": filepath.Join(dir, "missing")}}, "missing")

	c.mustOK("Create", volume.CreateRequest{Name: "loc", Options: map[string]string{"local": data}}, nil)
	if st := c.get("loc").Status; st["backend"] != "local" || !strings.Contains(st["remote"].(string), data) {
		t.Fatalf("status = %v", st)
	}
	var mr volume.MountResponse
	c.mustOK("Mount", volume.MountRequest{Name: "loc", ID: "a"}, &mr)
	mp := mr.Mountpoint
	if err := os.WriteFile(filepath.Join(mp, "f.txt"), []byte("through fuse"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(data, "f.txt")); err != nil || string(b) != "through fuse" {
		t.Fatalf("backing dir has %q, %v", b, err)
	}
	// The plugin presents files as root-owned unless uid/gid are set,
	// and chown is then a successful no-op (Docker's copy-up chowns).
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(mp, "f.txt"), &st); err != nil || st.Uid != 0 || st.Gid != 0 {
		t.Fatalf("owner through the mount %d:%d (%v), want 0:0", st.Uid, st.Gid, err)
	}
	if err := os.Chown(filepath.Join(data, "f.txt"), 4321, 4321); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(mp, "f.txt"), 1234, 1234); err != nil {
		t.Fatalf("chown through the mount: %v", err)
	}
	if err := syscall.Stat(filepath.Join(data, "f.txt"), &st); err != nil || st.Uid != 4321 {
		t.Fatalf("chown through a mapped mount reached the backing file: uid %d (%v)", st.Uid, err)
	}

	c.mustOK("Mount", volume.MountRequest{Name: "loc", ID: "b"}, nil)
	if n, _ := mountCount(mp); n != 2 {
		t.Fatalf("%d mounts on %s, want guard + one FUSE mount shared by both callers", n, mp)
	}
	if st := c.get("loc").Status; st["state"] != "connected" || st["mounts"] != float64(2) {
		t.Fatalf("status = %v", st)
	}

	// Kill the FUSE mount from outside: the guard must catch writes.
	if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mp, "lost.txt"), []byte("x"), 0o644); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("write after the filesystem died: %v, want EROFS", err)
	}
	c.mustOK("Mount", volume.MountRequest{Name: "loc", ID: "c"}, nil)
	if b, err := os.ReadFile(filepath.Join(mp, "f.txt")); err != nil || string(b) != "through fuse" {
		t.Fatalf("after remount read %q, %v", b, err)
	}
	if n, _ := mountCount(mp); n != 2 {
		t.Fatalf("%d mounts on %s after remount, want 2", n, mp)
	}

	for _, id := range []string{"a", "b", "c"} {
		c.mustOK("Unmount", volume.UnmountRequest{Name: "loc", ID: id}, nil)
	}
	noMountsBelow(t, root)
	c.mustOK("Remove", volume.RemoveRequest{Name: "loc"}, nil)
	if b, err := os.ReadFile(filepath.Join(data, "f.txt")); err != nil || string(b) != "through fuse" {
		t.Fatalf("Remove touched the data: %q, %v", b, err)
	}
}
