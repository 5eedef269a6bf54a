package csi

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"
	"google.golang.org/grpc"
	"sigs.k8s.io/yaml"
)

// TestSanity runs the CSI conformance suite (csi-sanity) against the
// plugin served on a unix socket, backed by a real OpenSSH sshd and with
// real FUSE mounts at the staging and target paths. The key and the
// known_hosts line reach the plugin only through the secrets file.
//
// 36 specs run and pass; the suite itself skips 55 (and has one pending),
// from the capabilities the plugin reports, because sftpfs does not offer
// the feature:
//   - ListVolumes, GetCapacity: not advertised (capacity is the server's;
//     the controller keeps only names and options).
//   - ControllerPublish/Unpublish, and the controller "volume lifecycle"
//     specs built on them: nothing to attach, every node connects to the
//     server itself.
//   - Snapshots, group snapshots, cloning (volume content source),
//     expansion (controller and node), ModifyVolume and volume attribute
//     classes: an SFTP directory has none of these.
//   - "already existing name and different capacity": capacity is
//     reported as unknown (0), so the suite cannot compare it.
//   - "more volumes than the node max attach limit": there is no limit.
func TestSanity(t *testing.T) {
	if testing.Short() {
		t.Skip("csi-sanity mounts dozens of volumes over OpenSSH; skipped in -short mode")
	}
	p := startPlugin(t)
	_, params, secrets := sshdVolume(t)

	dir := t.TempDir()
	all := map[string]map[string]string{
		"CreateVolumeSecret":      secrets,
		"NodeStageVolumeSecret":   secrets,
		"NodePublishVolumeSecret": secrets,
	}
	b, err := yaml.Marshal(all)
	if err != nil {
		t.Fatal(err)
	}
	secretsFile := filepath.Join(dir, "secrets.yaml")
	if err := os.WriteFile(secretsFile, b, 0o600); err != nil {
		t.Fatal(err)
	}

	cfg := sanity.NewTestConfig()
	// csi-test's Connect waits for a state change after dialing: when a
	// unix socket connects before it first reads the state (READY), it
	// waits for a change that never comes and fails after a minute (seen
	// under -race). A passthrough address keeps Connect from installing
	// its own dialer, and ours lets the connection settle a moment later.
	cfg.Address = "passthrough:///csi.sock"
	cfg.DialOptions = append(cfg.DialOptions, grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
		time.Sleep(100 * time.Millisecond)
		return (&net.Dialer{}).DialContext(ctx, "unix", p.sock)
	}))
	cfg.TargetPath = filepath.Join(dir, "target")
	cfg.StagingPath = filepath.Join(dir, "staging")
	cfg.SecretsFile = secretsFile
	cfg.TestVolumeParameters = params
	cfg.IdempotentCount = 2
	sanity.Test(t, cfg)
}
