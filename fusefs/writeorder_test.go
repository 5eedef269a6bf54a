package fusefs_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/backend/local"
	"github.com/sftpfs/sftpfs/internal/testenv"
)

// slowWriteBackend delays every backend write whose data starts with
// 'A', so that a write acknowledged first by the mount (write-behind)
// reaches the storage after a later one unless the mount orders them.
type slowWriteBackend struct {
	backend.Backend
	delay time.Duration
}

func (b slowWriteBackend) OpenFile(ctx context.Context, name string, flag int, perm fs.FileMode) (backend.File, error) {
	f, err := b.Backend.OpenFile(ctx, name, flag, perm)
	if err != nil {
		return nil, err
	}
	return slowWriteFile{File: f, delay: b.delay}, nil
}

type slowWriteFile struct {
	backend.File
	delay time.Duration
}

func (f slowWriteFile) WriteAt(p []byte, off int64) (int, error) {
	if len(p) > 0 && p[0] == 'A' {
		time.Sleep(f.delay)
	}
	return f.File.WriteAt(p, off)
}

// TestWriteOrderAcrossDescriptors: write(fd1, A) returns, then
// write(fd2, B) over the same range returns; POSIX says B wins. With
// write-behind ranges kept per handle, A (delayed in the backend) landed
// last and silently replaced B.
func TestWriteOrderAcrossDescriptors(t *testing.T) {
	requireMount(t)
	back := t.TempDir()
	lb, err := local.New(back)
	if err != nil {
		t.Fatal(err)
	}
	mnt := mountBackend(t, slowWriteBackend{Backend: lb, delay: 150 * time.Millisecond}, testOptions())

	a := bytes.Repeat([]byte("A"), 64<<10)
	b := bytes.Repeat([]byte("B"), 64<<10)
	check := func(t *testing.T, name string) {
		t.Helper()
		got, err := os.ReadFile(filepath.Join(back, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, b) {
			t.Errorf("server holds %d bytes starting %q, want the later write (all B)", len(got), got[:min(len(got), 8)])
		}
	}

	t.Run("TwoDescriptors", func(t *testing.T) {
		p := filepath.Join(mnt, "two-fds")
		writeFile(t, p, "")
		// fd2 closes first: its own write is done, fd1's may not be.
		writeTwoFDs(t, p, a, b, true)
		check(t, "two-fds")
	})

	t.Run("TwoProcesses", func(t *testing.T) {
		dd := testenv.LookPath(t, "dd")
		p := filepath.Join(mnt, "two-procs")
		writeFile(t, p, "")
		// The other process opens the file first (an open waits for
		// writes in flight, which would order them anyway), then
		// writes B from its stdin once A was written here.
		cmd := exec.Command(dd, "of="+p, "bs=64k", "iflag=fullblock", "conv=notrunc", "status=none")
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		cmd.Stderr = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitOpenBy(t, cmd.Process.Pid, p)
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(a, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := in.Write(b); err != nil {
			t.Fatal(err)
		}
		in.Close()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("dd: %v: %s", err, out.String())
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		check(t, "two-procs")
	})
}

// waitOpenBy waits until process pid has name open.
func waitOpenBy(t *testing.T, pid int, name string) {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	for range 500 {
		fds, _ := os.ReadDir(dir)
		for _, fd := range fds {
			if target, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && target == name {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("process %d did not open %s within 5 s", pid, name)
}

// TestWriteOrderAcrossDescriptorsSSHD is the same race without any
// injected delay, against real OpenSSH: 256 KiB writes (several FUSE
// WRITEs each, all in flight at once) through two descriptors, many
// rounds. Before the writes were ordered per file, the server kept the
// earlier write in about one round in ten.
func TestWriteOrderAcrossDescriptorsSSHD(t *testing.T) {
	m := mountSSHD(t, testOptions())
	rounds := 200
	if testing.Short() {
		rounds = 40
	}
	size := 256 << 10
	p := filepath.Join(m.mnt, "f")
	writeFile(t, p, "")
	lost := 0
	for i := range rounds {
		a := bytes.Repeat([]byte{byte('a' + i%13)}, size)
		b := bytes.Repeat([]byte{byte('A' + i%13)}, size)
		writeTwoFDs(t, p, a, b, false)
		got, err := os.ReadFile(filepath.Join(m.back, "f"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, b) {
			lost++
			if lost <= 3 {
				t.Errorf("round %d: server holds %s, want the later write", i, describeRuns(got))
			}
		}
	}
	if lost > 0 {
		t.Errorf("acknowledged later write lost in %d of %d rounds", lost, rounds)
	}
}

// describeRuns summarises data as runs of equal bytes ("65536 x 'a', ...").
func describeRuns(data []byte) string {
	var out []byte
	for i := 0; i < len(data); {
		j := i
		for j < len(data) && data[j] == data[i] {
			j++
		}
		if len(out) > 0 {
			out = append(out, ", "...)
		}
		out = fmt.Appendf(out, "%d x %q", j-i, data[i])
		i = j
	}
	return string(out)
}

// writeTwoFDs opens p twice, writes a at 0 through the first descriptor
// and then b at 0 through the second, and closes both (the second first
// when secondFirst).
func writeTwoFDs(t *testing.T, p string, a, b []byte, secondFirst bool) {
	t.Helper()
	fds := make([]int, 2)
	for i := range fds {
		fd, err := unix.Open(p, unix.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fds[i] = fd
	}
	for i, data := range [][]byte{a, b} {
		if _, err := unix.Pwrite(fds[i], data, 0); err != nil {
			t.Fatal(err)
		}
	}
	if secondFirst {
		fds[0], fds[1] = fds[1], fds[0]
	}
	for _, fd := range fds {
		if err := unix.Close(fd); err != nil {
			t.Fatal(err)
		}
	}
}
