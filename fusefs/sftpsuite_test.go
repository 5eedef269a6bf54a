package fusefs_test

import (
	"context"
	"io"
	"maps"
	"net"
	"runtime"
	"testing"
	"time"

	psftp "github.com/pkg/sftp"

	"github.com/sftpfs/sftpfs/backend/sftp"
	"github.com/sftpfs/sftpfs/fusefs"
	"github.com/sftpfs/sftpfs/internal/sshdtest"
)

// storage is a kind of storage the suites run over.
type storage struct {
	name string
	// mount mounts a fresh, empty storage with options o and returns the
	// mountpoint and the directory the storage keeps its files in
	// (which a test reads and writes behind the mount's back).
	mount func(t *testing.T, o fusefs.Options) (mnt, back string)
	// limits are what the storage cannot present, by name, with the
	// reason; a scenario leaves out just the check that needs it.
	limits map[string]string
}

// lacks reports whether s cannot present what; scenarios call it
// before a check that needs it.
func (s storage) lacks(what string) bool {
	_, ok := s.limits[what]
	return ok
}

var localStorage = storage{name: "Local", mount: mountLocal}

// sftpLimits are what no SFTP server can present.
var sftpLimits = map[string]string{
	"nlink": "SFTP v3 attributes carry no link count: every file shows 1 link",
}

// The syscall suite and the posix subset run over the SFTP backend too,
// against two servers: pkg/sftp's server in this process (over a pipe,
// so no SSH) and a real OpenSSH sshd (internal/sshdtest). The local
// backend runs them in TestSyscalls and TestPosix.
//
// What cannot pass over SFTP is listed here with the reason; every other
// scenario must pass on every server.

// sftpSyscallSkip: syscall scenarios that cannot pass over SFTP (none:
// the checks that need what SFTP lacks consult storage.limits).
var sftpSyscallSkip = map[string]string{}

// sftpPosixSkip: posixtest scenarios (of posixIncluded) that cannot pass
// over SFTP, with the reason.
var sftpPosixSkip = map[string]string{
	"Link": "it checks the link count after link(2): " + sftpLimits["nlink"],
}

// sftpStorages are the SFTP servers the suites run against.
func sftpStorages(t *testing.T) []storage {
	pkgLimits := maps.Clone(sftpLimits)
	pkgLimits["atime"] = "pkg/sftp's server reports the modification time as access time"
	return []storage{
		{name: "PkgSFTP", mount: mountPkgSFTP, limits: pkgLimits},
		{name: "OpenSSH", mount: sshdStorage(t), limits: sftpLimits},
	}
}

// mountPkgSFTP mounts the SFTP backend talking to pkg/sftp's server,
// run in this process over a net.Pipe for each connection the backend
// opens (as backend/sftp's conformance suite does).
func mountPkgSFTP(t *testing.T, o fusefs.Options) (mnt, back string) {
	t.Helper()
	requireMount(t)
	back = t.TempDir()
	dial := func(ctx context.Context) (*psftp.Client, io.Closer, error) {
		cs, ss := net.Pipe()
		srv, err := psftp.NewServer(ss)
		if err != nil {
			return nil, nil, err
		}
		go func() { _ = srv.Serve(); srv.Close() }()
		cl, err := psftp.NewClientPipe(cs, cs)
		if err != nil {
			cs.Close()
			return nil, nil, err
		}
		return cl, pipeClosers{cs, ss}, nil
	}
	b, err := sftp.NewWithDialer(context.Background(), dial, back, sftp.Options{OpTimeout: 20 * time.Second})
	if err != nil {
		t.Fatalf("sftp.NewWithDialer: %v", err)
	}
	o.FSName = "sftpfs-test-pkgsftp"
	return mountBackend(t, b, o), back
}

type pipeClosers []io.Closer

func (c pipeClosers) Close() error {
	for _, x := range c {
		x.Close()
	}
	return nil
}

// sshdStorage starts one OpenSSH sshd for the test (now, in the test's
// own goroutine, where a failure may stop it) and returns a mount
// function that mounts a fresh directory of it.
func sshdStorage(t *testing.T) func(*testing.T, fusefs.Options) (string, string) {
	srv := sshdtest.Start(t, sshdtest.Options{})
	return func(t *testing.T, o fusefs.Options) (mnt, back string) {
		t.Helper()
		requireMount(t)
		back = t.TempDir()
		b, err := sftp.New(context.Background(), sftp.Config{
			Host: srv.Host, Port: srv.Port, User: srv.User, Path: back,
			IdentityFiles:   []string{srv.KeyFile},
			KnownHostsFiles: []string{srv.KnownHostsFile},
			ConnectTimeout:  10 * time.Second,
			OpTimeout:       20 * time.Second,
		})
		if err != nil {
			t.Fatalf("sftp.New: %v", err)
		}
		o.FSName = "sftpfs-test-sshd"
		return mountBackend(t, b, o), back
	}
}

func TestSyscallsSFTP(t *testing.T) {
	requireMount(t)
	for _, s := range sftpStorages(t) {
		t.Run(s.name, func(t *testing.T) { runSyscallSuite(t, s, sftpSyscallSkip) })
	}
}

func TestSyscallsSFTPGOMAXPROCS1(t *testing.T) {
	requireMount(t)
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	for _, s := range sftpStorages(t) {
		t.Run(s.name, func(t *testing.T) { runSyscallSuite(t, s, sftpSyscallSkip) })
	}
}

func TestPosixSFTP(t *testing.T) {
	requireMount(t)
	for _, s := range sftpStorages(t) {
		t.Run(s.name, func(t *testing.T) { runPosix(t, s, sftpPosixSkip) })
	}
}
