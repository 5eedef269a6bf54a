package fusefs_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/backend/local"
	"github.com/sftpfs/sftpfs/fusefs"
	"github.com/sftpfs/sftpfs/internal/testenv"
)

// testSubtype marks every mount made by these tests, so TestMain can
// find any that were left behind.
const testSubtype = "sftpfs-test"

func TestMain(m *testing.M) {
	code := m.Run()
	if left := leftoverMounts(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: test mounts still present in /proc/self/mountinfo:\n%s\n", strings.Join(left, "\n"))
		code = 1
	}
	os.Exit(code)
}

// leftoverMounts lists mountinfo lines of filesystems of type
// fuse.<testSubtype>.
func leftoverMounts() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var left []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		// Fields after " - " are: fstype source super-options.
		_, after, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		if fst, _, _ := strings.Cut(after, " "); fst == "fuse."+testSubtype {
			left = append(left, line)
		}
	}
	return left
}

// testOptions are the defaults with the test subtype.
func testOptions() fusefs.Options {
	o := fusefs.DefaultOptions()
	o.Subtype = testSubtype
	o.FSName = "sftpfs-test-local"
	return o
}

// requireMount stops the test unless FUSE mounts can be made here.
func requireMount(t *testing.T) {
	t.Helper()
	testenv.RequireFUSE(t)
	// DirectMount needs CAP_SYS_ADMIN; the fusermount fallback is not
	// what these tests want to exercise.
	testenv.RequireRoot(t)
}

// mountBackend mounts b on a fresh directory and unmounts it when the
// test ends. It returns the mountpoint.
func mountBackend(t *testing.T, b backend.Backend, o fusefs.Options) string {
	t.Helper()
	_, mnt := mountBackendServer(t, b, o)
	return mnt
}

// mountBackendServer is mountBackend that also returns the Server.
func mountBackendServer(t *testing.T, b backend.Backend, o fusefs.Options) (*fusefs.Server, string) {
	t.Helper()
	requireMount(t)
	mnt := t.TempDir()
	srv, err := fusefs.Mount(mnt, b, o)
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	t.Cleanup(func() {
		var err error
		// A just-closed descriptor may still hold the mount busy for a
		// moment (the kernel's release is asynchronous).
		for range 50 {
			if err = srv.Unmount(); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
			_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
		srv.Wait()
		_ = b.Close()
	})
	return srv, mnt
}

// mountLocal mounts a local backend over a fresh directory. It returns
// the mountpoint and the backing directory.
func mountLocal(t *testing.T, o fusefs.Options) (mnt, back string) {
	t.Helper()
	requireMount(t)
	back = t.TempDir()
	b, err := local.New(back)
	if err != nil {
		t.Fatalf("local.New: %v", err)
	}
	return mountBackend(t, b, o), back
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// appendBytes appends n bytes "y" to name through a descriptor of its
// own and closes it (close returns the write-behind's error).
func appendBytes(t *testing.T, name string, n int) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(bytes.Repeat([]byte("y"), n)); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// wantErrno fails unless err carries errno want.
func wantErrno(t *testing.T, what string, err error, want syscall.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want %v (%d)", what, err, want, int(want))
	}
}

// countingBackend counts the remote stats the FUSE layer makes.
type countingBackend struct {
	backend.Backend
	lstats, stats atomic.Int64
}

func (c *countingBackend) Lstat(ctx context.Context, name string) (backend.FileInfo, error) {
	c.lstats.Add(1)
	return c.Backend.Lstat(ctx, name)
}

func (c *countingBackend) Stat(ctx context.Context, name string) (backend.FileInfo, error) {
	c.stats.Add(1)
	return c.Backend.Stat(ctx, name)
}

// faultBackend injects write errors into files whose name starts with
// "fault-": WriteAt of "fault-enospc*" fails with ENOSPC, and Sync of
// "fault-sync*" fails with an error that has no errno (like a dropped
// connection would).
type faultBackend struct {
	backend.Backend
}

func (fb faultBackend) OpenFile(ctx context.Context, name string, flag int, perm fs.FileMode) (backend.File, error) {
	f, err := fb.Backend.OpenFile(ctx, name, flag, perm)
	if err != nil || !strings.HasPrefix(name, "fault-") {
		return f, err
	}
	return faultFile{File: f, name: name}, nil
}

type faultFile struct {
	backend.File
	name string
}

var errConnLost = errors.New("connection to storage lost")

func (f faultFile) WriteAt(p []byte, off int64) (int, error) {
	if strings.HasPrefix(f.name, "fault-enospc") {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: syscall.ENOSPC}
	}
	return f.File.WriteAt(p, off)
}

func (f faultFile) Sync() error {
	if strings.HasPrefix(f.name, "fault-sync") {
		return errConnLost
	}
	return f.File.Sync()
}

// logBuffer is a concurrency-safe sink for slog output.
type logBuffer struct{ testenv.Buffer }

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, nil))
}
