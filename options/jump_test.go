package options

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sftpfs/sftpfs/backend/sftp"
)

func TestProxyJumpOption(t *testing.T) {
	f := newFixture(t)
	cfg, err := Parse(f.base("proxy_jump", "alice@bastion.example.com:2222, gw", "jump_hostkey", f.fingerprint), f.volume())
	if err != nil {
		t.Fatal(err)
	}
	want := []sftp.JumpHost{{User: "alice", Host: "bastion.example.com", Port: 2222}, {Host: "gw"}}
	if got := cfg.SFTP.JumpHosts; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("JumpHosts = %+v, want %+v", got, want)
	}
	if len(cfg.SFTP.JumpHostKeys) != 1 || cfg.SFTP.JumpHostKeys[0] != f.fingerprint {
		t.Errorf("JumpHostKeys = %v", cfg.SFTP.JumpHostKeys)
	}
	// known_hosts alone verifies the jump hosts too.
	if _, err := Parse(f.base("proxy_jump", "gw", "known_hosts", "known_hosts"), f.volume()); err != nil {
		t.Errorf("proxy_jump with known_hosts: %v", err)
	}

	for _, c := range []struct {
		opts []string
		want []string
	}{
		{[]string{"proxy_jump", "gw,,other"}, []string{"proxy_jump", "hop 2 of 3", "empty"}},
		{[]string{"proxy_jump", "gw:22x"}, []string{"proxy_jump", `port "22x"`}},
		{[]string{"proxy_jump", "gw:70000"}, []string{"proxy_jump", "1 to 65535"}},
		{[]string{"proxy_jump", "ssh -W %h:%p bastion"}, []string{"proxy_jump", "looks like a command", "ProxyCommand"}},
		{[]string{"proxy_jump", "@gw"}, []string{"proxy_jump", "user before @ is empty"}},
		{[]string{"proxy_jump", "gw:22:33", "jump_hostkey", "<fp>"}, []string{"proxy_jump", "brackets"}},
		{[]string{"proxy_jump", "http://gw", "jump_hostkey", "<fp>"}, []string{"proxy_jump", "ssh://"}},
		{[]string{"proxy_jump", "gw", "jump_hostkey", "SHA256:nope"}, []string{"jump_hostkey", "SHA256"}},
		// The target's pin says nothing about the jump host.
		{[]string{"proxy_jump", "gw"}, []string{"proxy_jump", "jump_hostkey"}},
		{[]string{"jump_hostkey", "<fp>"}, []string{"jump_hostkey", "proxy_jump"}},
		{[]string{"identities_only", "true", "identity", "<delete>", "password_file", "pw"}, []string{"identities_only", "identity"}},
		{[]string{"proxycommand", "nc %h %p"}, []string{"proxy_jump"}},
	} {
		for i := range c.opts {
			if c.opts[i] == "<fp>" {
				c.opts[i] = f.fingerprint
			}
		}
		_, err := Parse(f.base(c.opts...), f.volume())
		if err == nil {
			t.Errorf("%q: no error", c.opts)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q does not mention %q", c.opts, err, w)
			}
		}
	}
	// IPv6 in brackets is fine.
	cfg, err = Parse(f.base("proxy_jump", "[2001:db8::1]:2200", "jump_hostkey", f.fingerprint), f.volume())
	if err != nil || cfg.SFTP.JumpHosts[0].Host != "2001:db8::1" || cfg.SFTP.JumpHosts[0].Port != 2200 {
		t.Errorf("IPv6 hop: %+v, %v", cfg, err)
	}
	cfg, err = Parse(f.base("identities_only", "yes"), f.volume())
	if err != nil || !cfg.SFTP.IdentitiesOnly {
		t.Errorf("identities_only=yes: %v", err)
	}
}

// TestSystemKnownHosts: `sftpfs mount` reads /etc/ssh/ssh_known_hosts
// (Env.SystemKnownHosts) after ~/.ssh/known_hosts, like OpenSSH; a
// missing one is no error, and volumes never read it.
func TestSystemKnownHosts(t *testing.T) {
	f := newFixture(t)
	home := t.TempDir()
	os.Mkdir(filepath.Join(home, ".ssh"), 0o700)
	user := filepath.Join(home, ".ssh", "known_hosts")
	sys := filepath.Join(t.TempDir(), "ssh_known_hosts")
	data, _ := os.ReadFile(filepath.Join(f.dir, "known_hosts"))
	os.WriteFile(user, data, 0o644)
	os.WriteFile(sys, data, 0o644)
	env := Env{Scope: ScopeCLI, Home: home, DefaultUser: "me", BaseDir: f.dir, SystemKnownHosts: sys}
	opts := map[string]string{"host": "h", "identity": "id_ed25519"}
	cfg, err := Parse(opts, env)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.SFTP.KnownHostsFiles; len(got) != 2 || got[0] != user || got[1] != sys {
		t.Errorf("KnownHostsFiles = %v, want [%s %s]", got, user, sys)
	}
	// Only the system file: enough to verify.
	os.Remove(user)
	if cfg, err = Parse(opts, env); err != nil || len(cfg.SFTP.KnownHostsFiles) != 1 || cfg.SFTP.KnownHostsFiles[0] != sys {
		t.Errorf("system file only: %v, %v", cfg.SFTP.KnownHostsFiles, err)
	}
	// Neither: the usual "no way to verify" error, not a missing-file one.
	os.Remove(sys)
	if _, err = Parse(opts, env); err == nil || !strings.Contains(err.Error(), "no way to verify") {
		t.Errorf("no known_hosts at all: %v", err)
	}
	// An explicit known_hosts replaces both defaults.
	os.WriteFile(sys, data, 0o644)
	cfg, err = Parse(map[string]string{"host": "h", "identity": "id_ed25519", "known_hosts": "known_hosts"}, env)
	if err != nil || len(cfg.SFTP.KnownHostsFiles) != 1 || cfg.SFTP.KnownHostsFiles[0] != filepath.Join(f.dir, "known_hosts") {
		t.Errorf("explicit known_hosts: %v, %v", cfg.SFTP.KnownHostsFiles, err)
	}
}

func TestLoginRelativePathOption(t *testing.T) {
	f := newFixture(t)
	for in, want := range map[string][2]string{
		"~/data": {"data", "deploy@files.example.com:22/~/data"},
		"~":      {".", "deploy@files.example.com:22/~"},
		"/srv/x": {"/srv/x", "deploy@files.example.com:22/srv/x"},
	} {
		cfg, err := Parse(f.base("path", in), f.volume())
		if err != nil {
			t.Fatal(err)
		}
		if cfg.SFTP.Path != want[0] || cfg.Remote() != want[1] {
			t.Errorf("path %q: Path %q Remote %q, want %q %q", in, cfg.SFTP.Path, cfg.Remote(), want[0], want[1])
		}
	}
}
