package sftp

import (
	"context"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	psftp "github.com/pkg/sftp"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/backend/backendtest"
	"github.com/sftpfs/sftpfs/internal/pipesftp"
	"github.com/sftpfs/sftpfs/internal/sshdtest"
	"github.com/sftpfs/sftpfs/internal/testenv"
)

const sftpServerPath = "/usr/lib/openssh/sftp-server"

// pipeDialer serves each dial with an in-process pkg/sftp server over a
// net.Pipe. Without a working directory the server takes paths as given,
// so symlink targets stay verbatim; the backend root is absolute.
func pipeDialer() Dialer { return pipesftp.Dialer(nil) }

// execDialer runs OpenSSH's sftp-server binary over pipes.
func execDialer(t testing.TB) Dialer {
	return func(ctx context.Context) (*psftp.Client, io.Closer, error) {
		cmd := exec.Command(sftpServerPath, "-l", "QUIET")
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return nil, nil, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return nil, nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, nil, err
		}
		cl, err := psftp.NewClientPipe(stdout, stdin)
		if err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, nil, err
		}
		return cl, procCloser{cmd, stdin}, nil
	}
}

type procCloser struct {
	cmd   *exec.Cmd
	stdin io.Closer
}

func (p procCloser) Close() error {
	p.stdin.Close()
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	return nil
}

func newDialerBackend(t *testing.T, dial Dialer) backend.Backend {
	t.Helper()
	b, err := NewWithDialer(context.Background(), dial, t.TempDir(), Options{OpTimeout: 20 * time.Second})
	if err != nil {
		t.Fatalf("NewWithDialer: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestSuitePkgSFTPServer(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend { return noATime{newDialerBackend(t, pipeDialer())} })
}

// noATime hides access times: pkg/sftp's server reports the modification
// time as access time, which the contract allows only as "not reported".
type noATime struct{ backend.Backend }

func (n noATime) Stat(ctx context.Context, name string) (backend.FileInfo, error) {
	fi, err := n.Backend.Stat(ctx, name)
	fi.ATime = time.Time{}
	return fi, err
}

func (n noATime) Lstat(ctx context.Context, name string) (backend.FileInfo, error) {
	fi, err := n.Backend.Lstat(ctx, name)
	fi.ATime = time.Time{}
	return fi, err
}

func (n noATime) ReadDir(ctx context.Context, name string) ([]backend.FileInfo, error) {
	list, err := n.Backend.ReadDir(ctx, name)
	for i := range list {
		list[i].ATime = time.Time{}
	}
	return list, err
}

func TestSuiteOpenSSHSFTPServer(t *testing.T) {
	_, err := os.Stat(sftpServerPath)
	testenv.Require(t, sftpServerPath+" (Debian package openssh-sftp-server)", err == nil)
	backendtest.Run(t, func(t *testing.T) backend.Backend { return newDialerBackend(t, execDialer(t)) })
}

// sshdConfig is a Config for the generated key and known_hosts of srv.
func sshdConfig(srv *sshdtest.Server, dir string) Config {
	return Config{
		Host: srv.Host, Port: srv.Port, User: srv.User, Path: dir,
		IdentityFiles:   []string{srv.KeyFile},
		KnownHostsFiles: []string{srv.KnownHostsFile},
		ConnectTimeout:  10 * time.Second,
		OpTimeout:       20 * time.Second,
	}
}

// openBackend connects with cfg and closes the backend when the test
// ends; a failure to connect fails the test.
func openBackend(t testing.TB, cfg Config) *Backend {
	t.Helper()
	b, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestSuiteSSHD(t *testing.T) {
	srv := sshdtest.Start(t, sshdtest.Options{})
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		return openBackend(t, sshdConfig(srv, t.TempDir()))
	})
}
