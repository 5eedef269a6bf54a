package csi

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sftpfs/sftpfs/internal/sshdtest"
	"github.com/sftpfs/sftpfs/internal/testenv"
)

// testPlugin is a Driver served over gRPC on a temporary unix socket,
// as `sftpfs csi` serves it, with its log captured.
type testPlugin struct {
	d      *Driver
	sock   string
	logs   *testenv.Buffer
	conn   *grpc.ClientConn
	ctrl   csipb.ControllerClient
	node   csipb.NodeClient
	ident  csipb.IdentityClient
	state  string
	tmpDir string
}

func startPlugin(t *testing.T) *testPlugin {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireFUSE(t)
	// Socket paths are limited to 108 bytes; t.TempDir can be long.
	dir, err := os.MkdirTemp("", "csi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &testPlugin{sock: filepath.Join(dir, "csi.sock"), logs: &testenv.Buffer{}, state: filepath.Join(dir, "state"), tmpDir: dir}
	log := slog.New(slog.NewTextHandler(p.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p.d, err = New(Config{NodeID: "test-node", StateDir: p.state, SelfAccess: true, Logger: log,
		CheckTimeout: 15 * time.Second, MountTimeout: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	l, err := Listen(p.sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := p.d.NewServer()
	go func() { _ = srv.Serve(l) }()
	p.conn, err = grpc.NewClient("unix://"+p.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.conn.Close()
		srv.Stop()
		p.d.Shutdown()
		if t.Failed() {
			t.Logf("plugin log:\n%s", p.logs.String())
		}
	})
	p.ctrl, p.node, p.ident = csipb.NewControllerClient(p.conn), csipb.NewNodeClient(p.conn), csipb.NewIdentityClient(p.conn)
	return p
}

// sshdVolume starts a real OpenSSH sshd and returns volume parameters
// (no secret) for a fresh remote directory and the secrets that log in.
func sshdVolume(t *testing.T) (srv *sshdtest.Server, params, secrets map[string]string) {
	t.Helper()
	srv = sshdtest.Start(t, sshdtest.Options{})
	remote := t.TempDir()
	key, err := os.ReadFile(srv.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	params = map[string]string{"host": srv.Host, "port": strconv.Itoa(srv.Port), "user": srv.User, "path": remote}
	secrets = map[string]string{SecretIdentity: string(key), SecretKnownHosts: srv.HostKeyLine + "\n"}
	return srv, params, secrets
}

func mountCap(mode csipb.VolumeCapability_AccessMode_Mode, flags ...string) *csipb.VolumeCapability {
	return &csipb.VolumeCapability{
		AccessType: &csipb.VolumeCapability_Mount{Mount: &csipb.VolumeCapability_MountVolume{MountFlags: flags}},
		AccessMode: &csipb.VolumeCapability_AccessMode{Mode: mode},
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}
