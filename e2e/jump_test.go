package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sftpfs/sftpfs/internal/sshdtest"
)

// TestPluginProxyJump: a Docker volume whose server only a bastion can
// reach (both real sshds in a network namespace; the plugin uses the
// host network, where the bastion's veth address is the only way in),
// with proxy_jump, jump_hostkey and the key in the plugin's secrets
// directory. One container writes, another reads; a wrong jump host key
// is refused at create, naming the hop.
func TestPluginProxyJump(t *testing.T) {
	h := setup(t)
	j := sshdtest.StartJump(t, sshdtest.Options{})
	keyName := "jump_key_" + h.suffix
	key, err := os.ReadFile(j.Target.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.secrets, keyName), key, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(filepath.Join(h.secrets, keyName)) })

	dir := t.TempDir()
	opts := func(jumpKey string) []string {
		return []string{
			"-o", "host=127.0.0.1", "-o", "port=" + strconv.Itoa(j.Target.Port), "-o", "user=" + j.Target.User,
			"-o", "path=" + dir, "-o", "identity=" + keyName, "-o", "hostkey=" + j.Target.HostKeyFingerprint,
			"-o", "proxy_jump=" + j.Bastion.Addr, "-o", "jump_hostkey=" + jumpKey,
		}
	}

	bad := h.name("jump-bad")
	h.mustFail(append([]string{"volume", "create", "-d", plugin}, append(opts(j.Target.HostKeyFingerprint), bad)...),
		"jump host 1 of 1 ("+j.Bastion.Addr+")", j.Bastion.HostKeyFingerprint)

	vol := h.name("jump")
	h.create(vol, opts(j.Bastion.HostKeyFingerprint)...)
	h.must("run", "--rm", "-v", vol+":/data", image, "sh", "-c", "echo through the bastion > /data/jumped.txt")
	if got := readFile(t, filepath.Join(dir, "jumped.txt")); got != "through the bastion\n" {
		t.Fatalf("server has %q", got)
	}
	if out := h.must("run", "--rm", "-v", vol+":/data", image, "cat", "/data/jumped.txt"); out != "through the bastion\n" {
		t.Fatalf("second container read %q", out)
	}
	st := h.inspect(vol)["Status"].(map[string]any)
	if st["host_key"] != j.Target.HostKeyFingerprint {
		t.Errorf("status host_key %v, want the target's %s", st["host_key"], j.Target.HostKeyFingerprint)
	}
	if strings.Contains(h.must("volume", "inspect", vol), string(key[:40])) {
		t.Error("volume inspect shows key material")
	}
}
