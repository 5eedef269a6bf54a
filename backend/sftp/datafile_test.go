package sftp

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	psftp "github.com/pkg/sftp"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/internal/pipesftp"
	"github.com/sftpfs/sftpfs/internal/sshdtest"
)

// handleOf returns the open handle of a backend file.
func handleOf(t *testing.T, f backend.File) fileHandle {
	t.Helper()
	bf := f.(*File)
	bf.mu.Lock()
	defer bf.mu.Unlock()
	return bf.h
}

// roundTrip writes, reads back and checks a file through b, and returns
// the handle type it used.
func dataRoundTrip(t *testing.T, b *Backend, name string) fileHandle {
	t.Helper()
	ctx := context.Background()
	f, err := b.OpenFile(ctx, name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := bytes.Repeat([]byte("0123456789abcdef"), 70000) // several requests
	if n, err := f.WriteAt(data, 3); n != len(data) || err != nil {
		t.Fatalf("WriteAt = %d, %v", n, err)
	}
	got := make([]byte, len(data)+100)
	n, err := f.ReadAt(got, 3)
	if n != len(data) || err != io.EOF || !bytes.Equal(got[:n], data) {
		t.Fatalf("ReadAt = %d, %v (equal %v), want %d, io.EOF", n, err, bytes.Equal(got[:n], data), len(data))
	}
	if err := f.Truncate(10); err != nil {
		t.Fatal(err)
	}
	if fi, err := f.Stat(); err != nil || fi.Size != 10 || fi.Mode&backend.PermBits != 0o600 {
		t.Fatalf("Stat = %+v, %v", fi, err)
	}
	return handleOf(t, f)
}

// TestDataSessionSSHD: against OpenSSH, files go through the sftpwire
// session; an in-process server without an SSH connection keeps
// pkg/sftp; both behave the same.
func TestDataSessionSSHD(t *testing.T) {
	srv := sshdtest.Start(t, sshdtest.Options{})
	b := openBackend(t, sshdConfig(srv, t.TempDir()))
	if h := dataRoundTrip(t, b, "f"); h == nil {
		t.Fatal("no handle")
	} else if _, ok := h.(wireFile); !ok {
		t.Errorf("handle over sshd is %T, want the sftpwire data session", h)
	}

	pb, err := NewWithDialer(context.Background(), pipesftp.Dialer(nil), t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pb.Close()
	if h := dataRoundTrip(t, pb, "f"); h == nil {
		t.Fatal("no handle")
	} else if _, ok := h.(*psftp.File); !ok {
		t.Errorf("handle over an in-process server is %T, want *psftp.File", h)
	}
}

// TestDataSessionRefusedSSHD: a server allowing one session per
// connection refuses the data session; files then use pkg/sftp.
func TestDataSessionRefusedSSHD(t *testing.T) {
	srv := sshdtest.Start(t, sshdtest.Options{ExtraConfig: []string{"MaxSessions 1"}})
	b := openBackend(t, sshdConfig(srv, t.TempDir()))
	if h := dataRoundTrip(t, b, "f"); h == nil {
		t.Fatal("no handle")
	} else if _, ok := h.(*psftp.File); !ok {
		t.Errorf("handle with MaxSessions 1 is %T, want *psftp.File", h)
	}
}

// TestCreateModeUmaskSSHD: the OPEN of a create carries the mode, which
// the server's umask (077 here) narrows; the file still ends up with
// exactly the requested mode.
func TestCreateModeUmaskSSHD(t *testing.T) {
	srv := sshdtest.Start(t, sshdtest.Options{ExtraConfig: []string{"Subsystem sftp internal-sftp -u 077"}})
	dir := t.TempDir()
	b := openBackend(t, sshdConfig(srv, dir))
	ctx := context.Background()
	for _, perm := range []fs.FileMode{0o644, 0o600, 0o755, 0o666} {
		name := perm.String()
		f, err := b.OpenFile(ctx, name, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := f.Stat()
		f.Close()
		if err != nil || fi.Mode&backend.PermBits != perm {
			t.Errorf("%v: handle Stat mode %v, %v", perm, fi.Mode, err)
		}
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.Mode()&backend.PermBits != perm {
			t.Errorf("%v: mode on the server %v, %v", perm, st.Mode(), err)
		}
	}
}

// TestDataSessionLossReconnects: when only the data session breaks (its
// sftp-server gone, the SSH connection alive), a call on an open file
// treats that as a lost connection: the backend reconnects, re-opens the
// file and the call succeeds, instead of failing with an I/O error.
func TestDataSessionLossReconnects(t *testing.T) {
	srv := sshdtest.Start(t, sshdtest.Options{})
	dir := t.TempDir()
	b := openBackend(t, sshdConfig(srv, dir))
	want := []byte("hello, data session")
	if err := os.WriteFile(filepath.Join(dir, "f"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := b.OpenFile(context.Background(), "f", os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, ok := handleOf(t, f).(wireFile); !ok {
		t.Fatalf("handle is %T, want the sftpwire data session", handleOf(t, f))
	}
	tr := b.c.current()
	tr.data.cl.Close()
	got := make([]byte, 100)
	n, err := f.ReadAt(got, 0)
	if err != io.EOF || !bytes.Equal(got[:n], want) {
		t.Fatalf("ReadAt after the data session broke = %q, %v; want %q, io.EOF", got[:n], err, want)
	}
	if st := b.Status(); st.Reconnects < 1 {
		t.Errorf("Status().Reconnects = %d, want >= 1", st.Reconnects)
	}
	if h, ok := handleOf(t, f).(wireFile); !ok || b.c.current() == tr {
		t.Errorf("after the reconnect: handle %T on the old transport %v", h, b.c.current() == tr)
	}
}
