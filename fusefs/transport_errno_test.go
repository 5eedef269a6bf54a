package fusefs_test

import (
	"context"
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/sftpfs/sftpfs/backend/sftp"
	"github.com/sftpfs/sftpfs/internal/faultproxy"
	"github.com/sftpfs/sftpfs/internal/pipesftp"
)

// resetListings is the transport of an in-process SFTP connection whose
// directory-listing sessions are TCP connections the peer has reset.
type resetListings struct{ io.Closer }

func (resetListings) OpenSFTPStream() (io.ReadWriteCloser, error) { return faultproxy.ResetConn() }

// A backend connection that breaks fails with the socket's errno deep
// inside (the soak test saw readdir fail with ECONNRESET); applications
// must see EIO, not ECONNRESET or EPIPE from getdents(2). The SFTP backend
// keeps the socket's errno out of its errors, so the FUSE layer needs no
// list of network errnos.
func TestToErrnoTransportErrnosAreEIO(t *testing.T) {
	requireMount(t)
	dial := pipesftp.Dialer(func(c io.Closer) io.Closer { return resetListings{c} })
	b, err := sftp.NewWithDialer(context.Background(), dial, t.TempDir(), sftp.Options{OpTimeout: 3 * time.Second, ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mnt := mountBackend(t, b, testOptions())
	_, err = os.ReadDir(mnt)
	wantErrno(t, "readdir over a reset connection", err, syscall.EIO)
}
