package sshdtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"github.com/sftpfs/sftpfs/internal/testenv"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func dialSFTP(t *testing.T, s *Server, cfg *ssh.ClientConfig) (*ssh.Client, *sftp.Client) {
	t.Helper()
	c, err := ssh.Dial("tcp", s.Addr, cfg)
	if err != nil {
		t.Fatalf("ssh dial %s: %v", s.Addr, err)
	}
	sc, err := sftp.NewClient(c)
	if err != nil {
		c.Close()
		t.Fatalf("sftp over %s: %v", s.Addr, err)
	}
	t.Cleanup(func() { sc.Close(); c.Close() })
	return c, sc
}

// TestStartSFTPAndKnownHosts logs in with the generated key, checks the
// host key through the written known_hosts file, and does SFTP work.
func TestStartSFTPAndKnownHosts(t *testing.T) {
	s := Start(t, Options{})
	if !strings.HasPrefix(s.HostKeyFingerprint, "SHA256:") || !strings.HasPrefix(s.HostKeyLine, "[127.0.0.1]:") {
		t.Fatalf("fingerprint %q, known_hosts line %q", s.HostKeyFingerprint, s.HostKeyLine)
	}
	cb, err := knownhosts.New(s.KnownHostsFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.ClientConfig()
	cfg.HostKeyCallback = cb
	_, sc := dialSFTP(t, s, cfg)
	p := filepath.Join(t.TempDir(), "f")
	f, err := sc.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if b, err := os.ReadFile(p); err != nil || string(b) != "hello" {
		t.Fatalf("file written over SFTP: %q, %v", b, err)
	}

	// A different host key must be rejected by the known_hosts file.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	os.WriteFile(s.KnownHostsFile, []byte(knownhosts.Line([]string{s.Addr}, mustSigner(t, other).PublicKey())+"\n"), 0o644)
	cb, _ = knownhosts.New(s.KnownHostsFile)
	cfg.HostKeyCallback = cb
	if c, err := ssh.Dial("tcp", s.Addr, cfg); err == nil {
		c.Close()
		t.Fatal("dial succeeded with a wrong known_hosts entry")
	}
}

// TestOpenSSHClient checks the key file and known_hosts file formats with
// the real OpenSSH client, which is what users' tooling reads.
func TestOpenSSHClient(t *testing.T) {
	sshBin := testenv.LookPath(t, "ssh")
	s := Start(t, Options{})
	out, err := exec.Command(sshBin, "-F", "/dev/null", "-i", s.KeyFile,
		"-o", "UserKnownHostsFile="+s.KnownHostsFile, "-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes", "-p", strconv.Itoa(s.Port), s.User+"@"+s.Host, "echo", "ok-from-sshd").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok-from-sshd") {
		t.Fatalf("ssh: %v\n%s", err, out)
	}
}

func mustSigner(t *testing.T, k any) ssh.Signer {
	t.Helper()
	s, err := ssh.NewSignerFromKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRestartDropsConnections: after Restart, old connections are dead,
// the port and host key are the same, and new logins work.
func TestRestartDropsConnections(t *testing.T) {
	s := Start(t, Options{})
	addr, fp := s.Addr, s.HostKeyFingerprint
	c, sc := dialSFTP(t, s, s.ClientConfig())
	if _, err := sc.Stat("/"); err != nil {
		t.Fatal(err)
	}
	connPIDs := processTree(s.cmd.Process.Pid)
	if len(connPIDs) < 2 {
		t.Fatalf("expected per-connection sshd processes under the listener, got %v", connPIDs)
	}
	s.Restart()
	if s.Addr != addr || s.HostKeyFingerprint != fp {
		t.Fatalf("restart changed address or key: %s %s -> %s %s", addr, fp, s.Addr, s.HostKeyFingerprint)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("old connection still alive 10s after Restart")
	}
	// Every old process must be gone, not even a zombie: pid 1 here may
	// never reap, and leaked zombies use up pids.
	for _, p := range connPIDs {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/stat"); err == nil && strings.Contains(string(b), "(sshd)") {
			t.Errorf("old sshd process %d still exists after Restart: %s", p.pid, b)
		}
	}
	_, sc2 := dialSFTP(t, s, s.ClientConfig())
	if _, err := sc2.Stat("/"); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	s.Stop() // idempotent
	if c, err := ssh.Dial("tcp", s.Addr, s.ClientConfig()); err == nil {
		c.Close()
		t.Fatal("dial succeeded after Stop")
	}
}

// TestExtraConfigAndCert: ExtraConfig replaces a default (the sftp
// subsystem becomes the sftp-server binary), and a user certificate
// signed by TrustedUserCAKeys logs in while the plain key of the CA's
// user is not in authorized_keys.
func TestExtraConfigAndCert(t *testing.T) {
	dir := t.TempDir()
	_, caPriv, _ := ed25519.GenerateKey(rand.Reader)
	ca := mustSigner(t, caPriv)
	caFile := filepath.Join(dir, "ca.pub")
	if err := os.WriteFile(caFile, ssh.MarshalAuthorizedKey(ca.PublicKey()), 0o644); err != nil {
		t.Fatal(err)
	}
	s := Start(t, Options{
		ExtraConfig:       []string{"Subsystem sftp /usr/lib/openssh/sftp-server", "Match User nobody-sshdtest", "  PasswordAuthentication no"},
		TrustedUserCAKeys: caFile,
		HostKeyType:       "ecdsa",
	})
	cfgText, _ := os.ReadFile(filepath.Join(s.Dir, "sshd_config"))
	if strings.Contains(string(cfgText), "internal-sftp") {
		t.Fatalf("default Subsystem line not replaced:\n%s", cfgText)
	}
	if s.HostSigner.PublicKey().Type() != ssh.KeyAlgoECDSA256 {
		t.Fatalf("host key type %s", s.HostSigner.PublicKey().Type())
	}

	_, userPriv, _ := ed25519.GenerateKey(rand.Reader)
	user := mustSigner(t, userPriv)
	cfg := s.ClientConfig()
	cfg.Auth = []ssh.AuthMethod{ssh.PublicKeys(user)}
	if c, err := ssh.Dial("tcp", s.Addr, cfg); err == nil {
		c.Close()
		t.Fatal("login with an unauthorized key succeeded")
	}
	cert := &ssh.Certificate{
		Key: user.PublicKey(), CertType: ssh.UserCert, KeyId: "test",
		ValidPrincipals: []string{s.User},
		ValidAfter:      uint64(time.Now().Add(-time.Minute).Unix()),
		ValidBefore:     uint64(time.Now().Add(time.Hour).Unix()),
		Permissions:     ssh.Permissions{Extensions: map[string]string{}},
	}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	cs, err := ssh.NewCertSigner(cert, user)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth = []ssh.AuthMethod{ssh.PublicKeys(cs)}
	_, sc := dialSFTP(t, s, cfg)
	if _, err := sc.Stat("/"); err != nil {
		t.Fatal(err)
	}
	// The sftp-server binary (not internal-sftp) must be serving.
	found := false
	for _, p := range processTree(s.cmd.Process.Pid) {
		if exe, _ := os.Readlink("/proc/" + strconv.Itoa(p.pid) + "/exe"); exe == "/usr/lib/openssh/sftp-server" {
			found = true
		}
	}
	if !found {
		t.Error("no /usr/lib/openssh/sftp-server process under sshd")
	}
	if !strings.Contains(s.Logs(), "Accepted publickey") {
		t.Errorf("sshd logs lack the accepted login:\n%s", s.Logs())
	}
}
