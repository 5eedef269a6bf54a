package sftp

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"syscall"
	"testing"
	"time"

	"github.com/sftpfs/sftpfs/internal/faultproxy"
	"github.com/sftpfs/sftpfs/internal/pipesftp"
)

// resetStreams is a pipeDialer transport whose listing sessions are TCP
// connections the peer has reset, so a listing fails with the kernel's
// EPIPE.
type resetStreams struct{ io.Closer }

func (resetStreams) OpenSFTPStream() (io.ReadWriteCloser, error) { return faultproxy.ResetConn() }

// A broken connection must reach callers as an I/O error, never as a
// path error whose errno is the socket's (EPIPE, ECONNRESET): the
// contract reserves an Errno for a condition of the file, and the FUSE
// layer would hand it to read(2) as is.
func TestTransportErrnoIsNotAFileError(t *testing.T) {
	dial := pipesftp.Dialer(func(c io.Closer) io.Closer { return resetStreams{c} })
	b, err := NewWithDialer(context.Background(), dial, t.TempDir(), Options{OpTimeout: 3 * time.Second, ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = b.ReadDir(context.Background(), ".")
	if err == nil {
		t.Fatal("ReadDir over a reset listing session succeeded")
	}
	t.Logf("ReadDir: %v", err)
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Op != "readdir" || pe.Path != "." {
		t.Errorf("error %v is not a *fs.PathError for readdir .", err)
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		t.Errorf("error %v carries errno %v (%d); a connection failure must carry none", err, errno, int(errno))
	}
	if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("error %v matches a socket errno", err)
	}
	for _, sentinel := range []error{fs.ErrNotExist, fs.ErrExist, fs.ErrPermission, fs.ErrInvalid, errors.ErrUnsupported} {
		if errors.Is(err, sentinel) {
			t.Errorf("error %v matches %v", err, sentinel)
		}
	}
}
