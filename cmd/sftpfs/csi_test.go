package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sftpfs/sftpfs/internal/testenv"
)

func TestCSIFlags(t *testing.T) {
	t.Setenv("CSI_ENDPOINT", "")
	var errb bytes.Buffer
	if code := runCSI(nil, &bytes.Buffer{}, &errb); code != 2 || !strings.Contains(errb.String(), "CSI_ENDPOINT") {
		t.Fatalf("no endpoint: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := runCSI([]string{"-endpoint", "tcp://127.0.0.1:1"}, &bytes.Buffer{}, &errb); code != 2 || !strings.Contains(errb.String(), "unix") {
		t.Fatalf("tcp endpoint: exit %d, %q", code, errb.String())
	}
}

// runCSI end to end in-process: it serves CSI on the socket named by
// CSI_ENDPOINT, creates a volume (local backend, so no server needed),
// keeps the controller's list in the state directory, and stops cleanly on
// SIGTERM, removing its socket.
func TestCSILifecycle(t *testing.T) {
	dir, err := os.MkdirTemp("", "csicmd") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "csi.sock")
	data := filepath.Join(dir, "data")
	os.Mkdir(data, 0o755)
	t.Setenv("CSI_ENDPOINT", "unix://"+sock)

	var stderr testenv.Buffer
	done := make(chan int, 1)
	go func() {
		done <- runCSI([]string{"-node-id", "n1", "-state-dir", filepath.Join(dir, "state")}, &bytes.Buffer{}, &stderr)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("socket never appeared; log:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	info, err := csipb.NewIdentityClient(conn).GetPluginInfo(ctx, &csipb.GetPluginInfoRequest{})
	if err != nil || info.Name != "sftpfs.csi.sftpfs.dev" {
		t.Fatalf("GetPluginInfo: %v, %v", info, err)
	}
	ni, err := csipb.NewNodeClient(conn).NodeGetInfo(ctx, &csipb.NodeGetInfoRequest{})
	if err != nil || ni.NodeId != "n1" {
		t.Fatalf("NodeGetInfo: %v, %v", ni, err)
	}
	_, err = csipb.NewControllerClient(conn).CreateVolume(ctx, &csipb.CreateVolumeRequest{Name: "v", Parameters: map[string]string{"local": data},
		VolumeCapabilities: []*csipb.VolumeCapability{{
			AccessType: &csipb.VolumeCapability_Mount{Mount: &csipb.VolumeCapability_MountVolume{}},
			AccessMode: &csipb.VolumeCapability_AccessMode{Mode: csipb.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER}}}})
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "state", "volumes.json")); err != nil {
		t.Errorf("controller state: %v", err)
	}

	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d; log:\n%s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("sftpfs csi did not stop on SIGTERM")
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
	if !strings.Contains(stderr.String(), `msg="serving CSI"`) || !strings.Contains(stderr.String(), "method=CreateVolume") {
		t.Errorf("log lacks the serving line or the call:\n%s", stderr.String())
	}
}
