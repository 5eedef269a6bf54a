package sftp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/sftpfs/sftpfs/internal/sshdtest"
	"github.com/sftpfs/sftpfs/sftpserver"
)

// secrets collects every secret a test used, and every error and log
// line, so one assertion can check that no secret leaked.
type secrets struct {
	mu     sync.Mutex
	values []string
	texts  []string
	logBuf bytes.Buffer
}

func (s *secrets) add(v ...string) { s.mu.Lock(); s.values = append(s.values, v...); s.mu.Unlock() }
func (s *secrets) text(v string)   { s.mu.Lock(); s.texts = append(s.texts, v); s.mu.Unlock() }
func (s *secrets) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logBuf.Write(p)
}

func (s *secrets) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(s, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (s *secrets) check(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	all := append([]string{s.logBuf.String()}, s.texts...)
	for _, v := range s.values {
		if len(v) < 6 {
			continue
		}
		for _, txt := range all {
			if strings.Contains(txt, v) {
				t.Errorf("secret %.8q... leaked into %q", v, txt)
			}
		}
	}
}

// keyFormats writes one private key per type and encoding and returns
// name -> (file, public key).
type keyFile struct {
	path string
	pub  ssh.PublicKey
	pem  []byte
}

func writeKeys(t *testing.T, dir string) map[string]keyFile {
	t.Helper()
	out := map[string]keyFile{}
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaPriv, _ := rsa.GenerateKey(rand.Reader, 2048)
	_ = edPub
	put := func(name string, priv crypto.Signer, block *pem.Block) {
		data := pem.EncodeToMemory(block)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		pub, err := ssh.NewPublicKey(priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		out[name] = keyFile{p, pub, data}
	}
	for name, k := range map[string]crypto.Signer{"ed25519-openssh": edPriv, "ecdsa-openssh": ecPriv, "rsa-openssh": rsaPriv} {
		b, err := ssh.MarshalPrivateKey(k, "")
		if err != nil {
			t.Fatal(err)
		}
		put(name, k, b)
	}
	ec, _ := x509.MarshalECPrivateKey(ecPriv)
	put("ecdsa-pem", ecPriv, &pem.Block{Type: "EC PRIVATE KEY", Bytes: ec})
	put("rsa-pem", rsaPriv, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaPriv)})
	for name, k := range map[string]crypto.Signer{"ed25519-pkcs8": edPriv, "ecdsa-pkcs8": ecPriv, "rsa-pkcs8": rsaPriv} {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		put(name, k, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	return out
}

func authorizedLine(k ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

func TestAuthAndHostKeysSSHD(t *testing.T) {
	dir := t.TempDir()
	keys := writeKeys(t, dir)
	var authLines []string
	for _, k := range keys {
		authLines = append(authLines, authorizedLine(k.pub))
	}
	// A passphrase-protected key, an agent key and a CA for certificates.
	_, ppPriv, _ := ed25519.GenerateKey(rand.Reader)
	passphrase := "correct horse battery staple 42"
	ppBlock, err := ssh.MarshalPrivateKeyWithPassphrase(ppPriv, "", []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	ppFile := filepath.Join(dir, "pp-key")
	os.WriteFile(ppFile, pem.EncodeToMemory(ppBlock), 0o600)
	ppPub, _ := ssh.NewPublicKey(ppPriv.Public())
	authLines = append(authLines, authorizedLine(ppPub))
	ppPassFile := filepath.Join(dir, "pp-pass")
	os.WriteFile(ppPassFile, []byte(passphrase+"\n"), 0o600)
	wrongPassFile := filepath.Join(dir, "pp-wrong")
	os.WriteFile(wrongPassFile, []byte("not the passphrase at all\n"), 0o600)

	_, agentPriv, _ := ed25519.GenerateKey(rand.Reader)
	agentPub, _ := ssh.NewPublicKey(agentPriv.Public())
	authLines = append(authLines, authorizedLine(agentPub))

	_, caPriv, _ := ed25519.GenerateKey(rand.Reader)
	caSigner, _ := ssh.NewSignerFromKey(caPriv)
	caFile := filepath.Join(dir, "user-ca.pub")
	os.WriteFile(caFile, ssh.MarshalAuthorizedKey(caSigner.PublicKey()), 0o644)

	// Host certificate: sshd loads it at the restart below.
	hostCertFile := filepath.Join(dir, "host-cert.pub")
	srv := sshdtest.Start(t, sshdtest.Options{
		AuthorizedKeys:    authLines,
		TrustedUserCAKeys: caFile,
		ExtraConfig:       []string{"HostCertificate " + hostCertFile},
	})
	hostCert := &ssh.Certificate{
		Key: srv.HostSigner.PublicKey(), CertType: ssh.HostCert, KeyId: "host",
		ValidPrincipals: []string{"127.0.0.1"}, ValidBefore: ssh.CertTimeInfinity,
	}
	if err := hostCert.SignCert(rand.Reader, caSigner); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(hostCertFile, ssh.MarshalAuthorizedKey(hostCert), 0o644)
	srv.Restart()

	sec := &secrets{}
	sec.add(passphrase, "not the passphrase at all")
	for _, k := range keys {
		sec.add(string(k.pem), base64.StdEncoding.EncodeToString(k.pem))
		// The base64 body of the PEM block is what users paste.
		body := strings.Join(strings.Split(string(k.pem), "\n")[1:3], "")
		sec.add(body)
	}
	base := func() Config {
		c := sshdConfig(srv, t.TempDir())
		c.IdentityFiles = nil
		c.Logger = sec.logger()
		c.OpTimeout = 5 * time.Second
		return c
	}
	connect := func(t *testing.T, c Config) error {
		t.Helper()
		b, err := New(context.Background(), c)
		if err != nil {
			sec.text(err.Error())
			return err
		}
		defer b.Close()
		if _, err := b.Stat(context.Background(), "."); err != nil {
			t.Fatalf("Stat after login: %v", err)
		}
		return nil
	}
	mustConnect := func(t *testing.T, c Config) {
		t.Helper()
		if err := connect(t, c); err != nil {
			t.Fatalf("New: %v", err)
		}
	}
	mustFail := func(t *testing.T, c Config, want ...string) error {
		t.Helper()
		err := connect(t, c)
		if err == nil {
			t.Fatalf("New succeeded; want an error containing %q", want)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not contain %q", err, w)
			}
		}
		return err
	}

	for name, k := range keys {
		t.Run("KeyFile/"+name, func(t *testing.T) {
			c := base()
			c.IdentityFiles = []string{k.path}
			mustConnect(t, c)
		})
	}
	t.Run("InlineKey", func(t *testing.T) {
		c := base()
		c.IdentityInline = [][]byte{keys["rsa-pkcs8"].pem}
		mustConnect(t, c)
	})
	t.Run("Passphrase", func(t *testing.T) {
		c := base()
		c.IdentityFiles = []string{ppFile}
		c.PassphraseFile = ppPassFile
		mustConnect(t, c)
	})
	t.Run("PassphraseMissing", func(t *testing.T) {
		c := base()
		c.IdentityFiles = []string{ppFile}
		mustFail(t, c, ppFile, "needs passphrase_file")
	})
	t.Run("PassphraseWrong", func(t *testing.T) {
		c := base()
		c.IdentityFiles = []string{ppFile}
		c.PassphraseFile = wrongPassFile
		mustFail(t, c, ppFile, "does not decrypt")
	})
	t.Run("Agent", func(t *testing.T) {
		kr := agent.NewKeyring()
		if err := kr.Add(agent.AddedKey{PrivateKey: agentPriv}); err != nil {
			t.Fatal(err)
		}
		sock := serveAgent(t, kr)
		c := base()
		c.AgentSocket = sock
		mustConnect(t, c)
	})
	t.Run("Certificate", func(t *testing.T) {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		block, _ := ssh.MarshalPrivateKey(priv, "")
		keyPath := filepath.Join(t.TempDir(), "cert-key")
		os.WriteFile(keyPath, pem.EncodeToMemory(block), 0o600)
		pub, _ := ssh.NewPublicKey(priv.Public())
		cert := &ssh.Certificate{Key: pub, CertType: ssh.UserCert, KeyId: "test", ValidPrincipals: []string{srv.User},
			ValidBefore: ssh.CertTimeInfinity, Permissions: ssh.Permissions{Extensions: map[string]string{"permit-pty": ""}}}
		if err := cert.SignCert(rand.Reader, caSigner); err != nil {
			t.Fatal(err)
		}
		certPath := keyPath + "-cert.pub"
		os.WriteFile(certPath, ssh.MarshalAuthorizedKey(cert), 0o644)
		c := base()
		c.IdentityFiles = []string{keyPath}
		// Without the certificate the key is not authorized.
		mustFail(t, c, "authentication as user", "publickey")
		c.CertificateFile = certPath
		mustConnect(t, c)
	})
	t.Run("WrongKey", func(t *testing.T) {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		block, _ := ssh.MarshalPrivateKey(priv, "")
		p := filepath.Join(t.TempDir(), "stranger")
		os.WriteFile(p, pem.EncodeToMemory(block), 0o600)
		sec.add(string(pem.EncodeToMemory(block)))
		c := base()
		c.IdentityFiles = []string{p}
		err := mustFail(t, c, "authentication as user", "offered [publickey]", p)
		var ae *AuthError
		if !errors.As(err, &ae) {
			t.Fatalf("error %T is not an *AuthError", err)
		}
	})
	t.Run("NotAKey", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "garbage")
		os.WriteFile(p, []byte("hello this is not a key at all, secret-ish content"), 0o600)
		sec.add("hello this is not a key at all")
		c := base()
		c.IdentityFiles = []string{p}
		mustFail(t, c, p, "not a private key")
	})

	hostKeyLine := func(marker string, key ssh.PublicKey, host string) string {
		l := knownhosts.Line([]string{host}, key)
		if marker != "" {
			l = marker + " " + l
		}
		return l
	}
	withKnownHosts := func(t *testing.T, lines ...string) Config {
		p := filepath.Join(t.TempDir(), "known_hosts")
		os.WriteFile(p, []byte("# test\n"+strings.Join(lines, "\n")+"\n"), 0o644)
		c := base()
		c.IdentityFiles = []string{srv.KeyFile}
		c.KnownHostsFiles = []string{p}
		return c
	}
	otherKey := func() ssh.PublicKey {
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		k, _ := ssh.NewPublicKey(pub)
		return k
	}
	t.Run("HostKey/Unknown", func(t *testing.T) {
		c := withKnownHosts(t, hostKeyLine("", otherKey(), "otherhost"))
		err := mustFail(t, c, "is not known", srv.HostKeyFingerprint, "hostkey="+srv.HostKeyFingerprint)
		var hk *HostKeyError
		if !errors.As(err, &hk) || hk.Problem != HostKeyUnknown {
			t.Fatalf("error %v is not HostKeyUnknown", err)
		}
	})
	t.Run("HostKey/Changed", func(t *testing.T) {
		c := withKnownHosts(t, hostKeyLine("", otherKey(), srv.Addr))
		err := mustFail(t, c, "HOST KEY MISMATCH", "man-in-the-middle", srv.HostKeyFingerprint)
		var hk *HostKeyError
		if !errors.As(err, &hk) || hk.Problem != HostKeyMismatch {
			t.Fatalf("error %v is not HostKeyMismatch", err)
		}
	})
	t.Run("HostKey/Revoked", func(t *testing.T) {
		c := withKnownHosts(t, srv.HostKeyLine, "@revoked * "+authorizedLine(srv.HostSigner.PublicKey()))
		c.HostKeys = []string{srv.HostKeyFingerprint} // a pin does not override @revoked
		mustFail(t, c, "@revoked")
	})
	t.Run("HostKey/Hashed", func(t *testing.T) {
		hashed := knownhosts.HashHostname(knownhosts.Normalize(srv.Addr)) + " " + authorizedLine(srv.HostSigner.PublicKey())
		mustConnect(t, withKnownHosts(t, hashed))
	})
	t.Run("HostKey/CertAuthority", func(t *testing.T) {
		c := withKnownHosts(t, hostKeyLine("@cert-authority", caSigner.PublicKey(), "[127.0.0.1]:"+strconv.Itoa(srv.Port)))
		mustConnect(t, c)
	})
	t.Run("HostKey/CertAuthorityWrongCA", func(t *testing.T) {
		c := withKnownHosts(t, hostKeyLine("@cert-authority", otherKey(), "[127.0.0.1]:"+strconv.Itoa(srv.Port)))
		mustFail(t, c, "host key")
	})
	t.Run("HostKey/PinnedFingerprint", func(t *testing.T) {
		c := base()
		c.IdentityFiles = []string{srv.KeyFile}
		c.KnownHostsFiles = nil
		c.HostKeys = []string{srv.HostKeyFingerprint}
		mustConnect(t, c)
	})
	t.Run("HostKey/PinnedWrong", func(t *testing.T) {
		c := base()
		c.IdentityFiles = []string{srv.KeyFile}
		c.KnownHostsFiles = nil
		wrong := otherKey()
		c.HostKeys = []string{authorizedLine(wrong)}
		// A changed key: the message names the pin and warns, and never
		// advises pinning what the server presented.
		err := mustFail(t, c, "does not match hostkey "+ssh.FingerprintSHA256(wrong), "man-in-the-middle", srv.HostKeyFingerprint)
		if strings.Contains(err.Error(), "hostkey="+srv.HostKeyFingerprint) {
			t.Errorf("the error advises trusting the presented key: %v", err)
		}
	})
	t.Run("HostKey/Insecure", func(t *testing.T) {
		c := base()
		c.IdentityFiles = []string{srv.KeyFile}
		c.KnownHostsFiles = nil
		c.InsecureIgnoreHostKey = true
		mustConnect(t, c)
		if !strings.Contains(sec.logBuf.String(), "NOT verified") {
			t.Error("no warning logged for insecure_ignore_host_key")
		}
	})

	t.Run("NoSecretsLeaked", func(t *testing.T) { sec.check(t) })
}

// serveAgent serves kr on a unix socket until the test ends.
func serveAgent(t *testing.T, kr agent.Agent) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); _ = agent.ServeAgent(kr, c) }()
		}
	}()
	return sock
}

func TestPasswordAuthSFTPServer(t *testing.T) {
	password := "s3cret-Password-for-test"
	srv, err := sftpserver.New(sftpserver.Config{Root: t.TempDir(), Password: []byte(password)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); srv.Close(); <-done })

	host, portStr, _ := net.SplitHostPort(srv.Addr())
	port, _ := strconv.Atoi(portStr)
	sec := &secrets{}
	sec.add(password, "wrong-password-value")
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte(password+"\n"), 0o600)
	cfg := Config{Host: host, Port: port, User: "tester", Path: ".", HostKeys: []string{ssh.FingerprintSHA256(srv.HostKey())},
		Logger: sec.logger(), OpTimeout: 5 * time.Second}

	t.Run("PasswordFile", func(t *testing.T) {
		c := cfg
		c.PasswordFile = pwFile
		b, err := New(context.Background(), c)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		b.Close()
	})
	t.Run("InlinePassword", func(t *testing.T) {
		c := cfg
		c.Password = []byte(password)
		b, err := New(context.Background(), c)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		b.Close()
	})
	t.Run("WrongPassword", func(t *testing.T) {
		c := cfg
		c.Password = []byte("wrong-password-value")
		_, err := New(context.Background(), c)
		if err == nil {
			t.Fatal("wrong password accepted")
		}
		sec.text(err.Error())
		if !strings.Contains(err.Error(), "authentication as user") || !strings.Contains(err.Error(), "password") {
			t.Fatalf("error %q does not explain the password failure", err)
		}
	})
	sec.check(t)
}

func TestHostKeyAlgorithms(t *testing.T) {
	rsaPriv, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaPub, _ := ssh.NewPublicKey(rsaPriv.Public())
	p := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(p, []byte(knownhosts.Line([]string{"example.com:2222"}, rsaPub)+"\n"), 0o644)
	c := Config{Host: "example.com", Port: 2222, KnownHostsFiles: []string{p}}
	cb, algos, err := c.hostKeyPolicy("example.com:2222", slog.New(slog.DiscardHandler), &seenHostKey{})
	if err != nil || cb == nil {
		t.Fatal(err)
	}
	if strings.Join(algos[:3], ",") != "rsa-sha2-512,rsa-sha2-256,ssh-rsa" {
		t.Fatalf("algorithms for an rsa known_hosts entry = %v; want the rsa ones first", algos)
	}
	_, algos, _ = c.hostKeyPolicy("other.example:22", slog.New(slog.DiscardHandler), &seenHostKey{})
	if strings.Join(algos, ",") != strings.Join(defaultHostKeyAlgorithms(), ",") {
		t.Fatalf("algorithms for an unknown host = %v; want the default order", algos)
	}
}
