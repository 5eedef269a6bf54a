package driver

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/sftpfs/sftpfs/internal/mountinfo"
	"github.com/sftpfs/sftpfs/internal/testenv"
)

func TestFuseConnID(t *testing.T) {
	for dev, want := range map[string]string{"0:52": "52", "0:1234": "1234", "1:2": "1048578"} {
		if got, ok := fuseConnID(dev); !ok || got != want {
			t.Errorf("fuseConnID(%q) = %q, %v; want %q", dev, got, ok, want)
		}
	}
	for _, dev := range []string{"", "52", "a:b", "0:-1"} {
		if got, ok := fuseConnID(dev); ok {
			t.Errorf("fuseConnID(%q) = %q, want failure", dev, got)
		}
	}
}

// wedgedRoot is a filesystem whose lookups never answer until release is
// closed: a server that is alive as far as the kernel knows but stuck,
// like a SIGKILLed plugin whose last thread waits on its own mount.
type wedgedRoot struct {
	gofs.Inode
	release chan struct{}
}

var _ gofs.NodeLookuper = (*wedgedRoot)(nil)

func (r *wedgedRoot) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	<-r.release
	return nil, syscall.ENOENT
}

// TestStartupAbortsWedgedMounts leaves a wedged FUSE mount under the
// mount root with a process blocked on it, then starts a driver there:
// New must abort the connection through fusectl, which releases the
// process with ENOTCONN, and detach the mount, all without the test's
// help and without hanging.
func TestStartupAbortsWedgedMounts(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireFUSE(t)
	statBin := testenv.LookPath(t, "stat")
	root := filepath.Join(t.TempDir(), "volumes")
	cleanupMounts(t, root)
	mp := filepath.Join(root, "stale")
	if err := os.MkdirAll(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	wr := &wedgedRoot{release: make(chan struct{})}
	srv, err := gofs.Mount(mp, wr, &gofs.Options{MountOptions: fuse.MountOptions{DirectMount: true, Name: "wedged"}})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { srv.Wait(); close(served) }()
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(wr.release) }) }
	t.Cleanup(func() {
		release()
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			t.Error("the wedged server did not stop")
		}
	})

	// A separate process, so that this test never waits on the mount
	// it serves itself.
	var out strings.Builder
	blocked := exec.Command(statBin, filepath.Join(mp, "x"))
	blocked.Stdout, blocked.Stderr = &out, &out
	if err := blocked.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = blocked.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = blocked.Process.Kill()
		<-exited
	})
	select {
	case <-exited:
		err := waitErr
		t.Fatalf("stat on the wedged mount returned (%v: %s); it should block", err, out.String())
	case <-time.After(500 * time.Millisecond):
	}

	start := time.Now()
	d, err := New(Config{MountRoot: root, Mounter: newFakeMounter(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Shutdown)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("New took %v on a wedged stale mount", took)
	}
	select {
	case <-exited:
		err := waitErr
		// ECONNABORTED for the request that was waiting, ENOTCONN
		// for any later one.
		if o := out.String(); err == nil || !strings.Contains(o, "connection abort") && !strings.Contains(o, "not connected") {
			t.Errorf("blocked stat released with %v, output %q; want ECONNABORTED or ENOTCONN", err, o)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the process blocked on the stale mount is still blocked 10s after the driver started")
	}
	// The in-process server's stuck handler can return now; with the
	// connection aborted its loop must end.
	release()
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Error("the aborted connection's server loop did not end")
	}
	ms, _ := mountinfo.Read()
	for _, m := range ms {
		if strings.HasPrefix(m.Mountpoint, root+"/") {
			t.Errorf("still mounted after startup cleanup: %s (%s)", m.Mountpoint, m.FSType)
		}
	}
}

// The plugin's placeholder mounts (/sys/fs/fuse/connections bound
// read-only at /secrets and /state) are fusectl mounts listed before any
// writable one; aborting through them failed with EROFS, so a killed
// plugin's stale connections were never aborted.
func TestWritableFuseCtlSkipsReadOnly(t *testing.T) {
	testenv.RequireRoot(t)
	ro, rw := t.TempDir(), t.TempDir()
	if err := unix.Mount("fusectl", ro, "fusectl", unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("mounting fusectl read-only: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(ro, unix.MNT_DETACH) })
	if err := unix.Mount("fusectl", rw, "fusectl", 0, ""); err != nil {
		t.Fatalf("mounting fusectl: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(rw, unix.MNT_DETACH) })
	ms := []mountinfo.Mount{{Mountpoint: ro, FSType: "fusectl"}, {Mountpoint: rw, FSType: "fusectl"}}
	got, ok := writableFuseCtl(ms, func(dir string) bool { return unix.Access(dir, unix.W_OK) == nil })
	if !ok || got != rw {
		t.Errorf("writableFuseCtl = %q, %v; want the writable %s, not the read-only %s", got, ok, rw, ro)
	}
}
