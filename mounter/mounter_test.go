package mounter

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/internal/sshdtest"
	"github.com/sftpfs/sftpfs/internal/testenv"
	"github.com/sftpfs/sftpfs/options"

	"github.com/sftpfs/sftpfs/internal/mountinfo"
)

// mounted reports whether mp is a mount point in /proc/self/mountinfo.
func mounted(t *testing.T, mp string) bool {
	t.Helper()
	ps, err := mountinfo.Points()
	if err != nil {
		t.Fatal(err)
	}
	return slices.Contains(ps, mp)
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// mountLocal mounts a fresh directory and guarantees it is unmounted.
func mountLocal(t *testing.T, extra map[string]string) (m *Mounted, src, mp string) {
	t.Helper()
	testenv.RequireFUSE(t)
	return mountLocalOn(t, t.TempDir(), extra)
}

func mountLocalOn(t *testing.T, mp string, extra map[string]string) (m *Mounted, src, mountpoint string) {
	t.Helper()
	src = t.TempDir()
	opts := map[string]string{"local": src}
	for k, v := range extra {
		opts[k] = v
	}
	cfg, err := options.Parse(opts, options.Env{Scope: options.ScopeCLI})
	if err != nil {
		t.Fatal(err)
	}
	m, err = Mount(context.Background(), cfg, mp, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Unmount(); err != nil {
			t.Errorf("cleanup unmount: %v", err)
		}
		if mounted(t, mp) {
			t.Errorf("%s still mounted", mp)
			unix.Unmount(mp, unix.MNT_DETACH)
		}
	})
	return m, src, mp
}

func TestMountLocal(t *testing.T) {
	m, src, mp := mountLocal(t, nil)
	if !mounted(t, mp) {
		t.Fatal("not in mountinfo")
	}
	if err := os.WriteFile(filepath.Join(mp, "hello"), []byte("world"), 0o640); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(src, "hello"))
	if err != nil || string(got) != "world" {
		t.Fatalf("backing file = %q, %v", got, err)
	}
	if err := m.Alive(context.Background()); err != nil {
		t.Errorf("Alive: %v", err)
	}
	st := m.Status()
	if st.State != backend.StateConnected || st.Backend != options.BackendLocal || st.Remote != "local:"+src || st.Mountpoint != mp {
		t.Errorf("Status = %+v", st)
	}
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.Done():
	default:
		t.Fatal("Done not closed after Unmount")
	}
	if mounted(t, mp) {
		t.Error("still mounted after Unmount")
	}
	if err := m.Alive(context.Background()); err == nil {
		t.Error("Alive after Unmount")
	}
	if m.Status().State != backend.StateUnmounted {
		t.Errorf("state %q after Unmount", m.Status().State)
	}
	if err := m.Unmount(); err != nil {
		t.Errorf("second Unmount: %v", err)
	}
}

func TestReadOnly(t *testing.T) {
	_, src, mp := mountLocal(t, map[string]string{"ro": "true"})
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := os.WriteFile(filepath.Join(mp, "g"), []byte("x"), 0o644)
	if !errors.Is(err, unix.EROFS) {
		t.Errorf("write on ro mount: %v, want EROFS", err)
	}
	if b, err := os.ReadFile(filepath.Join(mp, "f")); err != nil || string(b) != "x" {
		t.Errorf("read on ro mount: %q %v", b, err)
	}
}

// TestUnmountBusy keeps a file open on the mount: Unmount must still free
// the mountpoint (lazily), and the session ends when the file is closed.
func TestUnmountBusy(t *testing.T) {
	m, _, mp := mountLocal(t, nil)
	f, err := os.Create(filepath.Join(mp, "busy"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := m.Unmount(); err != nil {
		t.Fatalf("Unmount of busy mount: %v", err)
	}
	if mounted(t, mp) {
		t.Fatal("busy mount still attached after Unmount")
	}
	if _, err := f.Write([]byte("still works")); err != nil {
		t.Errorf("write to file open across lazy unmount: %v", err)
	}
	f.Close()
	select {
	case <-m.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("session did not end after the last file was closed")
	}
}

// TestExternalUnmount: someone runs umount; Done closes and Alive fails.
func TestExternalUnmount(t *testing.T) {
	m, _, mp := mountLocal(t, nil)
	if err := unix.Unmount(mp, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after external unmount")
	}
	if err := m.Alive(context.Background()); err == nil {
		t.Error("Alive after external unmount")
	}
	if err := m.Unmount(); err != nil {
		t.Errorf("Unmount after external unmount: %v", err)
	}
}

func TestMountErrors(t *testing.T) {
	testenv.RequireFUSE(t)
	cfg, err := options.Parse(map[string]string{"local": t.TempDir()}, options.Env{Scope: options.ScopeCLI})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Mount(context.Background(), cfg, filepath.Join(t.TempDir(), "missing"), nil); err == nil {
		t.Error("mount on a missing directory succeeded")
	}
	if _, err := Mount(context.Background(), &options.Config{Backend: "nfs"}, t.TempDir(), nil); err == nil || !strings.Contains(err.Error(), "nfs") {
		t.Errorf("unknown backend: %v", err)
	}
}

// TestMountSFTP mounts a real OpenSSH server through the same path the
// plugin uses, with a pinned host key.
func TestMountSFTP(t *testing.T) {
	testenv.RequireFUSE(t)
	srv := sshdtest.Start(t, sshdtest.Options{})
	remote := t.TempDir()
	secrets := filepath.Dir(srv.KeyFile)
	cfg, err := options.Parse(map[string]string{
		"host": srv.Host, "port": strconv.Itoa(srv.Port), "user": srv.User, "path": remote,
		"identity": filepath.Base(srv.KeyFile), "hostkey": srv.HostKeyFingerprint, "uid": "1000", "gid": "1000",
	}, options.Env{Scope: options.ScopeVolume, SecretsDir: secrets})
	if err != nil {
		t.Fatal(err)
	}
	mp := t.TempDir()
	m, err := Mount(context.Background(), cfg, mp, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
		if mounted(t, mp) {
			t.Errorf("%s still mounted", mp)
			unix.Unmount(mp, unix.MNT_DETACH)
		}
	})
	if err := os.WriteFile(filepath.Join(mp, "over-ssh"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(remote, "over-ssh")); err != nil || string(b) != "data" {
		t.Fatalf("remote file = %q, %v", b, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(mp, "over-ssh"), &st); err != nil || st.Uid != 1000 || st.Gid != 1000 {
		t.Errorf("owner = %d:%d, %v; want 1000:1000", st.Uid, st.Gid, err)
	}
	s := m.Status()
	if s.State != backend.StateConnected || s.HostKeyFingerprint != srv.HostKeyFingerprint || s.Backend != options.BackendSFTP ||
		s.Remote != cfg.Remote() || !strings.Contains(s.Remote, srv.User+"@127.0.0.1:") {
		t.Errorf("Status = %+v", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Alive(ctx); err != nil {
		t.Errorf("Alive: %v", err)
	}
}

func TestOpenBackendSFTPErrors(t *testing.T) {
	srv := sshdtest.Start(t, sshdtest.Options{})
	cfg, err := options.Parse(map[string]string{
		"host": srv.Host, "port": strconv.Itoa(srv.Port), "user": srv.User,
		"identity": srv.KeyFile, "hostkey": "SHA256:" + strings.Repeat("A", 43),
	}, options.Env{Scope: options.ScopeCLI})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := OpenBackend(ctx, cfg, nil)
	if err == nil {
		b.Close()
		t.Fatal("connected despite a wrong pinned host key")
	}
	if !strings.Contains(err.Error(), srv.HostKeyFingerprint) && !strings.Contains(strings.ToLower(err.Error()), "host key") {
		t.Errorf("error does not explain the host key problem: %v", err)
	}
}
