package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sftpfs/sftpfs/internal/sshdtest"
	"github.com/sftpfs/sftpfs/internal/testenv"
)

// TestMountREADMEHostKeyRecipe follows README's recipe word for word
// against a server with rsa, ecdsa and ed25519 host keys (a stock
// install): `ssh-keyscan -t ed25519 HOST | ssh-keygen -lf -`, then
// -o hostkey=SHA256:... . It failed before host key negotiation, because
// the server answered with its ECDSA key.
func TestMountREADMEHostKeyRecipe(t *testing.T) {
	testenv.RequireFUSE(t)
	testenv.LookPath(t, "ssh-keyscan")
	testenv.LookPath(t, "ssh-keygen")
	srv := sshdtest.Start(t, sshdtest.Options{HostKeyTypes: []string{"rsa", "ecdsa", "ed25519"}})
	out, err := exec.Command("sh", "-c", "ssh-keyscan -p "+strconv.Itoa(srv.Port)+" -t ed25519 "+srv.Host+" 2>/dev/null | ssh-keygen -lf -").CombinedOutput()
	if err != nil {
		t.Fatalf("the recipe: %v\n%s", err, out)
	}
	fields := strings.Fields(string(out))
	if len(fields) < 2 || !strings.HasPrefix(fields[1], "SHA256:") {
		t.Fatalf("the recipe printed %q", out)
	}
	fp := fields[1]
	if fp != srv.HostKeys[2].Fingerprint {
		t.Fatalf("the recipe gave %s, the ed25519 key is %s", fp, srv.HostKeys[2].Fingerprint)
	}
	bin := buildBinary(t)
	remote, mp := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(remote, "f"), []byte("stock"), 0o644)
	mountWith := func(t *testing.T, opt string) {
		t.Helper()
		p := startMount(t, bin, mp, "-o", "identity="+srv.KeyFile+","+opt, "-o", "port="+strconv.Itoa(srv.Port),
			srv.User+"@"+srv.Host+":"+remote)
		if b, err := os.ReadFile(filepath.Join(mp, "f")); err != nil || string(b) != "stock" {
			t.Fatalf("read through the mount with %s: %q, %v", opt, b, err)
		}
		p.stop(t, syscall.SIGTERM)
	}
	mountWith(t, "hostkey="+fp)
	// A pin of each of the server's keys mounts, whatever the type.
	for _, k := range srv.HostKeys {
		t.Run("Pin/"+k.Type, func(t *testing.T) { mountWith(t, "hostkey="+k.Fingerprint) })
	}
	// A known_hosts that lists only the ed25519 key, as one written by
	// `ssh-keyscan -t ed25519` would.
	t.Run("KnownHostsEd25519Only", func(t *testing.T) {
		line, err := exec.Command("ssh-keyscan", "-p", strconv.Itoa(srv.Port), "-t", "ed25519", srv.Host).Output()
		if err != nil || len(line) == 0 {
			t.Fatalf("ssh-keyscan: %q, %v", line, err)
		}
		kh := filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(kh, line, 0o600); err != nil {
			t.Fatal(err)
		}
		mountWith(t, "known_hosts="+kh)
	})
}

// TestMountProxyJump mounts a server that only a bastion can reach (both
// real sshds in a network namespace), once with -o proxy_jump and once
// through a ~/.ssh/config alias whose ProxyJump names another alias, and
// keeps working across a restart of the bastion's sshd and of the
// target's.
func TestMountProxyJump(t *testing.T) {
	testenv.RequireFUSE(t)
	j := sshdtest.StartJump(t, sshdtest.Options{})
	bin := buildBinary(t)

	t.Run("options", func(t *testing.T) {
		remote, mp := t.TempDir(), t.TempDir()
		p := startMount(t, bin, mp,
			"-o", "identity="+j.Target.KeyFile+",hostkey="+j.Target.HostKeyFingerprint,
			"-o", "proxy_jump="+j.Bastion.Addr+",jump_hostkey="+j.Bastion.HostKeyFingerprint,
			"-o", "keepalive=1s,keepalive_count=2,op_timeout=5s",
			"-o", "port="+strconv.Itoa(j.Target.Port),
			j.Target.User+"@"+j.Target.Host+":"+remote)
		survivesRestarts(t, j, p, mp, remote)
	})

	t.Run("ssh_config", func(t *testing.T) {
		home := t.TempDir()
		ssh := filepath.Join(home, ".ssh")
		if err := os.Mkdir(ssh, 0o700); err != nil {
			t.Fatal(err)
		}
		var kh []byte
		for _, f := range []string{j.Bastion.KnownHostsFile, j.Target.KnownHostsFile} {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			kh = append(kh, b...)
		}
		if err := os.WriteFile(filepath.Join(ssh, "known_hosts"), kh, 0o600); err != nil {
			t.Fatal(err)
		}
		config := fmt.Sprintf(`Host bastion
  HostName %s
  Port %d
  User %s

Host inside
  HostName %s
  Port %d
  User %s
  IdentityFile %s
  ProxyJump bastion
  ServerAliveInterval 1
  ServerAliveCountMax 2
`, j.Bastion.Host, j.Bastion.Port, j.Bastion.User, j.Target.Host, j.Target.Port, j.Target.User, j.Target.KeyFile)
		if err := os.WriteFile(filepath.Join(ssh, "config"), []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		remote, mp := t.TempDir(), t.TempDir()
		p := startMountEnv(t, []string{"HOME=" + home, "SSH_AUTH_SOCK="}, bin, mp, "-o", "op_timeout=5s", "inside:"+remote)
		survivesRestarts(t, j, p, mp, remote)
	})
}

// survivesRestarts writes through the mount at mp, then checks that it
// reads the server's data again after a restart of the bastion's sshd
// and then of the target's, and stops the mount.
func survivesRestarts(t *testing.T, j *sshdtest.Jump, p *mountProc, mp, remote string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(mp, "f"), []byte("jumped"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(remote, "f")); err != nil || string(b) != "jumped" {
		t.Fatalf("server has %q, %v", b, err)
	}
	readAgain := func(after string) {
		t.Helper()
		want := "after " + after
		os.WriteFile(filepath.Join(remote, "f"), []byte(want), 0o644)
		deadline := time.Now().Add(time.Minute)
		for {
			b, err := os.ReadFile(filepath.Join(mp, "f"))
			if err == nil && string(b) == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %s the mount never read again: %q, %v\n%s", after, b, err, p.stderr)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	j.Bastion.Restart()
	readAgain("bastion restart")
	j.Target.Restart()
	readAgain("target restart")
	p.stop(t, syscall.SIGTERM)
}
