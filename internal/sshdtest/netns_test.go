package sshdtest

import (
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestStockHostKeys: a server with the three host key types a stock
// install has presents each when asked for it.
func TestStockHostKeys(t *testing.T) {
	s := Start(t, Options{HostKeyTypes: []string{"rsa", "ecdsa", "ed25519"}})
	if len(s.HostKeys) != 3 || s.HostSigner != s.HostKeys[0].Signer {
		t.Fatalf("HostKeys = %+v", s.HostKeys)
	}
	for _, k := range s.HostKeys {
		cfg := s.ClientConfig()
		cfg.HostKeyCallback = ssh.FixedHostKey(k.Signer.PublicKey())
		cfg.HostKeyAlgorithms = []string{k.Signer.PublicKey().Type()}
		if k.Type == "rsa" {
			cfg.HostKeyAlgorithms = []string{ssh.KeyAlgoRSASHA512}
		}
		c, err := ssh.Dial("tcp", s.Addr, cfg)
		if err != nil {
			t.Fatalf("asking for the %s key: %v", k.Type, err)
		}
		c.Close()
	}
}

// TestJump: the target is reachable through the bastion only, and both
// survive a restart in their namespace.
func TestJump(t *testing.T) {
	j := StartJump(t, Options{})
	if c, err := net.DialTimeout("tcp", j.Target.Addr, time.Second); err == nil {
		// Something else of this namespace may listen on that port; it
		// must not be the target.
		c.Close()
		cfg := j.Target.ClientConfig()
		cfg.Timeout = 2 * time.Second
		if sc, err := ssh.Dial("tcp", j.Target.Addr, cfg); err == nil {
			sc.Close()
			t.Fatal("the target is reachable without the bastion")
		}
	}
	dial := func() {
		t.Helper()
		bc := j.Bastion.ClientConfig()
		bc.Auth = []ssh.AuthMethod{ssh.PublicKeys(j.Target.ClientSigner)}
		b, err := ssh.Dial("tcp", j.Bastion.Addr, bc)
		if err != nil {
			t.Fatalf("bastion %s: %v", j.Bastion.Addr, err)
		}
		defer b.Close()
		conn, err := b.Dial("tcp", j.Target.Addr)
		if err != nil {
			t.Fatalf("through the bastion to %s: %v", j.Target.Addr, err)
		}
		sc, chans, reqs, err := ssh.NewClientConn(conn, j.Target.Addr, j.Target.ClientConfig())
		if err != nil {
			t.Fatalf("target through the bastion: %v", err)
		}
		ssh.NewClient(sc, chans, reqs).Close()
	}
	dial()
	j.Bastion.Restart()
	j.Target.Restart()
	dial()
}

// TestNetNSCleanup: the namespace and the host's veth end are gone after
// the test that made them, even when it failed half-way.
func TestNetNSCleanup(t *testing.T) {
	var name, hostIf string
	t.Run("make", func(t *testing.T) {
		ns := NewNetNS(t)
		name, hostIf = ns.Name, "sfh"+strings.TrimPrefix(ns.Name, "sftpfs-test-")
		out, _ := exec.Command("ip", "-o", "addr", "show", "dev", hostIf).CombinedOutput()
		if !strings.Contains(string(out), ns.HostAddr+"/30") {
			t.Fatalf("host end %s lacks %s: %s", hostIf, ns.HostAddr, out)
		}
		// The namespace's end answers from the test's namespace.
		if out, err := exec.Command("ping", "-c", "1", "-W", "2", ns.NSAddr).CombinedOutput(); err != nil {
			if _, lerr := exec.LookPath("ping"); lerr == nil {
				t.Fatalf("ping %s: %v %s", ns.NSAddr, err, out)
			}
		}
	})
	out, _ := exec.Command("ip", "netns", "list").CombinedOutput()
	if strings.Contains(string(out), name) {
		t.Errorf("namespace %s left behind: %s", name, out)
	}
	if err := exec.Command("ip", "link", "show", hostIf).Run(); err == nil {
		t.Errorf("veth %s left behind", hostIf)
	}
}
