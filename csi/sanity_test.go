package csi

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"
	"sigs.k8s.io/yaml"
)

// TestSanity runs the CSI conformance suite (csi-sanity) against the
// plugin served on a unix socket, backed by a real OpenSSH sshd and with
// real FUSE mounts at the staging and target paths. The key and the
// known_hosts line reach the plugin only through the secrets file.
//
// Cases the suite skips, and why (they are features sftpfs does not
// offer, so the suite itself skips them from the capabilities):
//   - ListVolumes, GetCapacity: not advertised (a controller restart
//     would list only what its state directory kept; capacity is the
//     server's).
//   - ControllerPublish/Unpublish: nothing to attach; every node
//     connects to the server itself.
//   - Snapshots, cloning, expansion, ModifyVolume: an SFTP directory
//     has none of these.
//   - "already existing name and different capacity": capacity is
//     reported as unknown (0), so the suite cannot compare it.
//   - "publishing more volumes than the node max attach limit": no limit.
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
	cfg.Address = "unix://" + p.sock
	cfg.TargetPath = filepath.Join(dir, "target")
	cfg.StagingPath = filepath.Join(dir, "staging")
	cfg.SecretsFile = secretsFile
	cfg.TestVolumeParameters = params
	cfg.IdempotentCount = 2
	sanity.Test(t, cfg)
}
