package mounter

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sftpfs/sftpfs/internal/mountinfo"
	"github.com/sftpfs/sftpfs/internal/testenv"
	"github.com/sftpfs/sftpfs/options"
)

// TestUnmountDoesNotWaitForOtherUsers: a Docker volume's FUSE mount is
// also bind-mounted into every container that uses it (another reference
// to the same FUSE session, in another mount namespace). Unmounting the
// plugin's mountpoint must free it and return at once, not wait until
// those users let go: the driver remounts a dead volume while old
// containers still hold it, and waited there for minutes, holding the
// volume's lock. The other users keep being served, and the session ends
// when they let go.
func TestUnmountDoesNotWaitForOtherUsers(t *testing.T) {
	m, src, mp := mountLocal(t, nil)
	other := t.TempDir() // stands for a container's bind mount
	if err := unix.Mount(mp, other, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount: %v", err)
	}
	bound := true
	t.Cleanup(func() {
		if bound {
			_ = unix.Unmount(other, unix.MNT_DETACH)
		}
	})
	if err := os.WriteFile(filepath.Join(mp, "before"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := m.Unmount(); err != nil {
		t.Fatalf("Unmount: %v", err)
	}
	if d := time.Since(start); d > sessionEndWait+2*time.Second {
		t.Fatalf("Unmount took %s while another mount of the session exists; want about %s at most", d, sessionEndWait)
	}
	if mounted(t, mp) {
		t.Fatalf("%s still mounted after Unmount", mp)
	}
	select {
	case <-m.Done():
		t.Fatal("the session ended although a bind mount of it still exists")
	default:
	}
	// Still served for the other user.
	if b, err := os.ReadFile(filepath.Join(other, "before")); err != nil || string(b) != "1" {
		t.Fatalf("read through the remaining bind mount: %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(other, "after"), []byte("2"), 0o644); err != nil {
		t.Fatalf("write through the remaining bind mount: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(src, "after")); err != nil || string(b) != "2" {
		t.Fatalf("the write through the bind mount is not in the storage: %q, %v", b, err)
	}
	if err := unix.Unmount(other, 0); err != nil {
		t.Fatalf("unmounting the bind mount: %v", err)
	}
	bound = false
	select {
	case <-m.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not end within 10s of its last user letting go")
	}
}

// TestUnmountLeavesForeignTop: when our mount was detached from outside
// (while still in use), whatever is now on top of the mountpoint (the
// driver's read-only guard) is not ours and must stay mounted.
func TestUnmountLeavesForeignTop(t *testing.T) {
	mp0 := t.TempDir()
	if err := unix.Mount("guard", mp0, "tmpfs", unix.MS_RDONLY, "size=4k"); err != nil {
		t.Fatalf("mounting a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(mp0, unix.MNT_DETACH) })
	testenv.RequireFUSE(t)
	cfg, err := options.Parse(map[string]string{"local": t.TempDir()}, options.Env{Scope: options.ScopeCLI})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Mount(context.Background(), cfg, mp0, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(mp0) // keeps the session alive across the detach
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Unmount(mp0, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := m.Unmount(); err != nil {
		t.Fatalf("Unmount: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Unmount of a detached mount took %s", d)
	}
	top := ""
	ms, err := mountinfo.Read()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ms {
		if e.Mountpoint == mp0 {
			top = e.FSType
		}
	}
	if top != "tmpfs" {
		t.Fatalf("Unmount removed what was on top of the mountpoint: top is now %q, want the tmpfs", top)
	}
	f.Close()
	select {
	case <-m.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the detached session did not end within 10s of its last file closing")
	}
}
