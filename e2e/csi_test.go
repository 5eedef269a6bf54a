package e2e

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sftpfs/sftpfs/internal/mountinfo"
	"github.com/sftpfs/sftpfs/internal/sshdtest"
)

const csiPlugin = "sftpfs-csi-e2e:latest"

// TestCSIPluginPackaging installs the CSI plugin as `make plugin-csi`
// builds it (plugin/csi/config.json) on the real Docker engine and plays
// Swarm's part by hand through the plugin's socket, with the key and
// pinned host key only in the secrets map: create, stage at
// /data/staged/ID and publish at /data/published/ID, Swarm's paths. It
// checks what Docker 20.10 can show of the cluster volume flow: the plugin
// starts from its scratch rootfs, can use /dev/fuse and mount, reaches
// sshd over the host network, and its publish appears on the host through
// the propagated mount, where a container bind-mounting it reads and
// writes the server's files. Swarm itself (Docker 23+) is not exercised.
func TestCSIPluginPackaging(t *testing.T) {
	requireDocker(t)
	h := &harness{t: t, repo: repoRoot(t), suffix: strconv.FormatUint(rand.Uint64()%1e6, 36)}
	build := exec.Command(filepath.Join(h.repo, "scripts/build-plugin.sh"), "--csi")
	build.Dir = h.repo
	build.Env = append(os.Environ(), "PLUGIN_NAME="+csiPlugin)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("scripts/build-plugin.sh --csi: %v\n%s", err, out)
	}
	t.Cleanup(func() { docker(context.Background(), "plugin", "rm", "-f", csiPlugin) })
	h.buildImage(image)
	sshd := sshdtest.Start(t, sshdtest.Options{})
	remote := t.TempDir()
	key, err := os.ReadFile(sshd.KeyFile)
	if err != nil {
		t.Fatal(err)
	}

	id := strings.TrimSpace(h.must("plugin", "inspect", "-f", "{{.Id}}", csiPlugin))
	root := strings.TrimSpace(h.must("info", "-f", "{{.DockerRootDir}}"))
	sock := filepath.Join("/run/docker/plugins", id, "sftpfs-csi.sock")
	deadline := time.Now().Add(20 * time.Second)
	for _, err := os.Stat(sock); err != nil; _, err = os.Stat(sock) {
		if time.Now().After(deadline) {
			t.Fatalf("plugin socket %s never appeared: %v", sock, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctrl, node := csipb.NewControllerClient(conn), csipb.NewNodeClient(conn)

	vcap := &csipb.VolumeCapability{
		AccessType: &csipb.VolumeCapability_Mount{Mount: &csipb.VolumeCapability_MountVolume{}},
		AccessMode: &csipb.VolumeCapability_AccessMode{Mode: csipb.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER},
	}
	secrets := map[string]string{"identity": string(key), "hostkey": sshd.HostKeyFingerprint}
	name := "e2e-csi-" + h.suffix
	cv, err := ctrl.CreateVolume(ctx, &csipb.CreateVolumeRequest{Name: name, Secrets: secrets, VolumeCapabilities: []*csipb.VolumeCapability{vcap},
		Parameters: map[string]string{"host": "127.0.0.1", "port": strconv.Itoa(sshd.Port), "user": sshd.User, "path": remote}})
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	vid := cv.Volume.VolumeId
	staging, target := "/data/staged/"+vid, "/data/published/"+vid
	if _, err := node.NodeStageVolume(ctx, &csipb.NodeStageVolumeRequest{VolumeId: vid, StagingTargetPath: staging,
		VolumeCapability: vcap, VolumeContext: cv.Volume.VolumeContext, Secrets: secrets}); err != nil {
		t.Fatalf("NodeStageVolume: %v", err)
	}
	if _, err := node.NodePublishVolume(ctx, &csipb.NodePublishVolumeRequest{VolumeId: vid, StagingTargetPath: staging, TargetPath: target,
		VolumeCapability: vcap, VolumeContext: cv.Volume.VolumeContext, Secrets: secrets}); err != nil {
		t.Fatalf("NodePublishVolume: %v", err)
	}
	hostPath := filepath.Join(root, "plugins", id, "propagated-mount", vid)
	if !mountinfo.IsMounted(hostPath) {
		t.Fatalf("the publish at %s in the plugin does not show on the host at %s", target, hostPath)
	}
	// The bdi mount of plugin/csi/config.json lets the plugin raise the
	// volume's read-ahead (fusefs/bdi.go); the publish is a bind of the
	// FUSE mount, so it shows the FUSE device.
	if kb := readAheadOf(t, hostPath); kb != "1024" {
		t.Errorf("read_ahead_kb of the published volume's FUSE device = %s, want 1024", kb)
	}
	if err := os.WriteFile(filepath.Join(remote, "from-server"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := h.must("run", "--rm", "-v", hostPath+":/data", image, "cat", "/data/from-server"); out != "hello" {
		t.Errorf("container read %q through the published volume, want hello", out)
	}
	h.must("run", "--rm", "-v", hostPath+":/data", image, "sh", "-c", "echo written > /data/from-container")
	if got := readFile(t, filepath.Join(remote, "from-container")); got != "written\n" {
		t.Errorf("server has %q, want the container's write", got)
	}
	st, err := node.NodeGetVolumeStats(ctx, &csipb.NodeGetVolumeStatsRequest{VolumeId: vid, VolumePath: target})
	if err != nil || st.GetVolumeCondition().GetAbnormal() {
		t.Errorf("NodeGetVolumeStats: %v, %v", st, err)
	}
	if _, err := node.NodeUnpublishVolume(ctx, &csipb.NodeUnpublishVolumeRequest{VolumeId: vid, TargetPath: target}); err != nil {
		t.Errorf("NodeUnpublishVolume: %v", err)
	}
	if _, err := node.NodeUnstageVolume(ctx, &csipb.NodeUnstageVolumeRequest{VolumeId: vid, StagingTargetPath: staging}); err != nil {
		t.Errorf("NodeUnstageVolume: %v", err)
	}
	if mountinfo.IsMounted(hostPath) {
		t.Errorf("%s still mounted on the host after unpublish", hostPath)
	}
	if _, err := ctrl.DeleteVolume(ctx, &csipb.DeleteVolumeRequest{VolumeId: vid}); err != nil {
		t.Errorf("DeleteVolume: %v", err)
	}
	if got := readFile(t, filepath.Join(remote, "from-server")); got != "hello" {
		t.Errorf("DeleteVolume touched remote data: %q", got)
	}
}
