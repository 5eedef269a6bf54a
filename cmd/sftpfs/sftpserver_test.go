package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// runServer starts `sftpfs sftp-server args` and returns the two ready
// lines and a stop function that returns the exit status.
func runSFTPServerForTest(t *testing.T, args ...string) (ready, khLine string, stop func() int) {
	t.Helper()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	var stderr sftpSrvBuf
	code := make(chan int, 1)
	go func() {
		code <- serveSFTP(ctx, args, pw, &stderr)
		pw.Close()
	}()
	lines := make(chan []string, 1)
	go func() {
		r := bufio.NewReader(pr)
		var got []string
		for len(got) < 2 {
			l, err := r.ReadString('\n')
			if err != nil {
				break
			}
			got = append(got, strings.TrimSuffix(l, "\n"))
		}
		lines <- got
		io.Copy(io.Discard, r)
	}()
	var got []string
	select {
	case got = <-lines:
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatalf("no ready lines; stderr:\n%s", stderr.String())
	}
	if len(got) != 2 {
		cancel()
		t.Fatalf("ready output %q; stderr:\n%s", got, stderr.String())
	}
	stopped := false
	var status int
	stop = func() int {
		if !stopped {
			stopped = true
			cancel()
			select {
			case status = <-code:
			case <-time.After(10 * time.Second):
				t.Fatal("sftp-server did not stop")
			}
		}
		return status
	}
	t.Cleanup(func() { stop() })
	return got[0], got[1], stop
}

// sftpSrvBuf is a strings.Builder safe for the server's concurrent
// logging and the test's reads.
type sftpSrvBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *sftpSrvBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *sftpSrvBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestSFTPServerCommand(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	ak := filepath.Join(dir, "authorized_keys")
	os.WriteFile(ak, append([]byte("# comment\n\n"), ssh.MarshalAuthorizedKey(signer.PublicKey())...), 0o600)
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("pw-123\n"), 0o600)
	hostKey := filepath.Join(dir, "host_key")

	ready, khLine, stop := runSFTPServerForTest(t, "-root", root, "-authorized-keys", ak, "-password-file", pwFile, "-host-key", hostKey)
	f := strings.Fields(ready)
	// sftp-server listening on ADDR host key TYPE FINGERPRINT
	if len(f) != 8 || strings.Join(f[:3], " ") != "sftp-server listening on" || f[6] != "ssh-ed25519" || !strings.HasPrefix(f[7], "SHA256:") {
		t.Fatalf("ready line %q", ready)
	}
	addr, fp := f[3], f[7]
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("default listen address %s is not loopback", addr)
	}
	if st, err := os.Stat(hostKey); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("generated host key file: %v %v", st, err)
	}
	khFile := filepath.Join(dir, "known_hosts")
	os.WriteFile(khFile, []byte(khLine+"\n"), 0o644)
	cb, err := knownhosts.New(khFile)
	if err != nil {
		t.Fatalf("known_hosts line %q: %v", khLine, err)
	}
	for _, auth := range []ssh.AuthMethod{ssh.PublicKeys(signer), ssh.Password("pw-123")} {
		c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "anyone", Auth: []ssh.AuthMethod{auth}, HostKeyCallback: cb})
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		sc, err := sftp.NewClient(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := sc.Mkdir("made"); err != nil && !os.IsExist(err) {
			if _, serr := os.Stat(filepath.Join(root, "made")); serr != nil {
				t.Fatalf("mkdir: %v", err)
			}
		}
		sc.Close()
		c.Close()
	}
	if _, err := os.Stat(filepath.Join(root, "made")); err != nil {
		t.Fatalf("directory made over SFTP: %v", err)
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit status %d after stop; want 0", code)
	}

	// A second run keeps the host key; -read-only refuses writes.
	ready2, khLine2, _ := runSFTPServerForTest(t, "-root", root, "-authorized-keys", ak, "-host-key", hostKey, "-read-only")
	// The port differs (port 0), so accept the new line's address only.
	os.WriteFile(khFile, []byte(khLine2+"\n"), 0o644)
	if cb, err = knownhosts.New(khFile); err != nil {
		t.Fatal(err)
	}
	f2 := strings.Fields(ready2)
	if f2[7] != fp {
		t.Fatalf("host key changed across runs: %s -> %s", fp, f2[7])
	}
	c, err := ssh.Dial("tcp", f2[3], &ssh.ClientConfig{User: "u", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: cb})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := sftp.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if err := sc.Mkdir("again"); err == nil {
		t.Fatal("mkdir succeeded on a -read-only server")
	}
}

func TestSFTPServerUsageErrors(t *testing.T) {
	dir := t.TempDir()
	ak := filepath.Join(dir, "ak")
	os.WriteFile(ak, []byte("not a key\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	badKey := filepath.Join(dir, "badkey")
	os.WriteFile(badKey, []byte("garbage"), 0o600)
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("p\n"), 0o600)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "-root DIR is required"},
		{[]string{"-root", dir}, 2, "no way to log in"},
		{[]string{"-root", dir, "-password-file", pw, "extra"}, 2, "unexpected argument"},
		{[]string{"-root", filepath.Join(dir, "missing"), "-password-file", pw}, 1, "must be an existing directory"},
		{[]string{"-root", dir, "-authorized-keys", ak}, 1, "line 1 is not an OpenSSH public key"},
		{[]string{"-root", dir, "-password-file", empty}, 1, "is empty"},
		{[]string{"-root", dir, "-password-file", pw, "-host-key", badKey}, 1, "is not a private key"},
		{[]string{"-root", dir, "-password-file", pw, "-listen", "127.0.0.1:99999"}, 1, "cannot listen"},
	} {
		var out, errb strings.Builder
		code := serveSFTP(context.Background(), tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tc.args, code, errb.String(), tc.code, tc.want)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:22": true, "[::1]:22": true, "localhost:0": true, "127.1.2.3:5": true,
		":22": false, "0.0.0.0:22": false, "[::]:22": false, "192.168.1.5:22": false, "example.com:22": false, "bad": false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v", addr, got)
		}
	}
}

// TestSFTPServerCertAuthority: an authorized_keys line with the
// cert-authority option makes its key a trusted user CA, not a login key.
func TestSFTPServerCertAuthority(t *testing.T) {
	dir := t.TempDir()
	_, caPriv, _ := ed25519.GenerateKey(rand.Reader)
	ca, _ := ssh.NewSignerFromKey(caPriv)
	ak := filepath.Join(dir, "authorized_keys")
	os.WriteFile(ak, append([]byte("cert-authority "), ssh.MarshalAuthorizedKey(ca.PublicKey())...), 0o600)
	ready, _, _ := runSFTPServerForTest(t, "-root", dir, "-authorized-keys", ak)
	addr := strings.Fields(ready)[3]

	_, userPriv, _ := ed25519.GenerateKey(rand.Reader)
	user, _ := ssh.NewSignerFromKey(userPriv)
	cert := &ssh.Certificate{Key: user.PublicKey(), CertType: ssh.UserCert, ValidPrincipals: []string{"alice"},
		ValidAfter: uint64(time.Now().Add(-time.Minute).Unix()), ValidBefore: uint64(time.Now().Add(time.Hour).Unix())}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	certSigner, _ := ssh.NewCertSigner(cert, user)
	login := func(s ssh.Signer) error {
		c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "alice", Auth: []ssh.AuthMethod{ssh.PublicKeys(s)}, HostKeyCallback: ssh.InsecureIgnoreHostKey()})
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := login(certSigner); err != nil {
		t.Fatalf("certificate login: %v", err)
	}
	if login(ca) == nil {
		t.Fatal("the CA key itself logged in; cert-authority keys must only sign")
	}
}
