package sftpserver

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/sftpfs/sftpfs/internal/testenv"
)

func newSigner(t *testing.T) (ssh.Signer, ed25519.PrivateKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, priv
}

// start runs a server for cfg and stops it when the test ends, checking
// that Serve then returns nil.
func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	return s
}

func dial(s *Server, user string, auth ...ssh.AuthMethod) (*sftp.Client, error) {
	c, err := ssh.Dial("tcp", s.Addr(), &ssh.ClientConfig{
		User: user, Auth: auth,
		HostKeyCallback: ssh.FixedHostKey(s.HostKey()),
		Timeout:         10 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	sc, err := sftp.NewClient(c)
	if err != nil {
		c.Close()
		return nil, err
	}
	return sc, nil
}

func mustDial(t *testing.T, s *Server, auth ...ssh.AuthMethod) *sftp.Client {
	t.Helper()
	sc, err := dial(s, "tester", auth...)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	t.Cleanup(func() { sc.Close() })
	return sc
}

// keyServer serves a fresh directory to one authorized key.
func keyServer(t *testing.T, mod func(*Config)) (*Server, *sftp.Client, string) {
	t.Helper()
	root := t.TempDir()
	signer, _ := newSigner(t)
	cfg := Config{Root: root, AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()}}
	if mod != nil {
		mod(&cfg)
	}
	s := start(t, cfg)
	return s, mustDial(t, s, ssh.PublicKeys(signer)), root
}

func TestNewNeedsAuthAndRoot(t *testing.T) {
	if _, err := New(Config{Root: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "AuthorizedKeys") {
		t.Fatalf("New without auth: %v", err)
	}
	if _, err := New(Config{Password: []byte("x")}); err == nil || !strings.Contains(err.Error(), "Root") {
		t.Fatalf("New without root: %v", err)
	}
	if _, err := New(Config{Root: filepath.Join(t.TempDir(), "missing"), Password: []byte("x")}); err == nil {
		t.Fatal("New with a missing root succeeded")
	}
}

func TestKeyAuthReadWrite(t *testing.T) {
	s, sc, root := keyServer(t, nil)
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") {
		t.Fatalf("default address %s is not loopback", s.Addr())
	}
	f, err := sc.Create("/dir-less.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("hello world")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "dir-less.txt")); err != nil || string(b) != "hello world" {
		t.Fatalf("on disk: %q, %v", b, err)
	}
	f, err = sc.Open("dir-less.txt") // relative: from "/"
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	f.Close()
	if err != nil || string(b) != "hello world" {
		t.Fatalf("read back: %q, %v", b, err)
	}

	// An unknown key is refused.
	other, _ := newSigner(t)
	if c, err := dial(s, "tester", ssh.PublicKeys(other)); err == nil {
		c.Close()
		t.Fatal("login with an unauthorized key succeeded")
	}
}

func TestPasswordAuth(t *testing.T) {
	s := start(t, Config{Root: t.TempDir(), Password: []byte("s3cret-pw")})
	sc := mustDial(t, s, ssh.Password("s3cret-pw"))
	if _, err := sc.Stat("/"); err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"wrong", "s3cret-p", "s3cret-pw2", ""} {
		if c, err := dial(s, "tester", ssh.Password(pw)); err == nil {
			c.Close()
			t.Fatalf("login with password %q succeeded", pw)
		}
	}
	// Without a configured key, key login is refused too.
	k, _ := newSigner(t)
	if c, err := dial(s, "tester", ssh.PublicKeys(k)); err == nil {
		c.Close()
		t.Fatal("key login succeeded on a password-only server")
	}
}

func TestPasswordNeverLogged(t *testing.T) {
	var logs strings.Builder
	s := start(t, Config{Root: t.TempDir(), Password: []byte("s3cret-pw"), Logger: newTextLogger(&logs)})
	mustDial(t, s, ssh.Password("s3cret-pw"))
	if c, err := dial(s, "tester", ssh.Password("wrong-guess-pw")); err == nil {
		c.Close()
	}
	s.Close()
	out := logs.String()
	if !strings.Contains(out, "sftp login") || !strings.Contains(out, "wrong password") {
		t.Fatalf("expected login events in the log:\n%s", out)
	}
	if strings.Contains(out, "s3cret-pw") || strings.Contains(out, "wrong-guess-pw") {
		t.Fatalf("a password appears in the log:\n%s", out)
	}
}

func TestCertAuth(t *testing.T) {
	ca, _ := newSigner(t)
	otherCA, _ := newSigner(t)
	s := start(t, Config{Root: t.TempDir(), TrustedUserCAKeys: []ssh.PublicKey{ca.PublicKey()}})
	user, _ := newSigner(t)
	certSigner := func(by ssh.Signer, principals []string, typ uint32, after, before time.Time) ssh.Signer {
		cert := &ssh.Certificate{
			Key: user.PublicKey(), CertType: typ, KeyId: "test-cert",
			ValidPrincipals: principals,
			ValidAfter:      uint64(after.Unix()), ValidBefore: uint64(before.Unix()),
		}
		if err := cert.SignCert(rand.Reader, by); err != nil {
			t.Fatal(err)
		}
		cs, err := ssh.NewCertSigner(cert, user)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	now := time.Now()
	good := certSigner(ca, []string{"tester"}, ssh.UserCert, now.Add(-time.Minute), now.Add(time.Hour))
	sc := mustDial(t, s, ssh.PublicKeys(good))
	if _, err := sc.Stat("/"); err != nil {
		t.Fatal(err)
	}
	for what, bad := range map[string]ssh.Signer{
		"untrusted CA":    certSigner(otherCA, []string{"tester"}, ssh.UserCert, now.Add(-time.Minute), now.Add(time.Hour)),
		"wrong principal": certSigner(ca, []string{"someone-else"}, ssh.UserCert, now.Add(-time.Minute), now.Add(time.Hour)),
		"expired":         certSigner(ca, []string{"tester"}, ssh.UserCert, now.Add(-2*time.Hour), now.Add(-time.Hour)),
		"host cert":       certSigner(ca, []string{"tester"}, ssh.HostCert, now.Add(-time.Minute), now.Add(time.Hour)),
		"bare key":        user,
	} {
		if c, err := dial(s, "tester", ssh.PublicKeys(bad)); err == nil {
			c.Close()
			t.Errorf("login with %s succeeded", what)
		}
	}
}

// TestContainment: nothing outside Root can be read, written or listed,
// by "../", absolute paths or symlinks.
func TestContainment(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	os.Mkdir(root, 0o755)
	os.WriteFile(filepath.Join(parent, "secret"), []byte("outside"), 0o644)
	os.Mkdir(filepath.Join(parent, "outdir"), 0o755)
	os.Symlink("../secret", filepath.Join(root, "rel-link"))
	os.Symlink(filepath.Join(parent, "secret"), filepath.Join(root, "abs-link"))
	os.Symlink(filepath.Join(parent, "outdir"), filepath.Join(root, "dir-link"))
	os.WriteFile(filepath.Join(root, "inside"), []byte("in"), 0o644)

	signer, _ := newSigner(t)
	s := start(t, Config{Root: root, AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()}})
	sc := mustDial(t, s, ssh.PublicKeys(signer))

	readable := func(p string) bool {
		f, err := sc.Open(p)
		if err != nil {
			return false
		}
		defer f.Close()
		b, err := io.ReadAll(f)
		return err == nil && string(b) == "outside"
	}
	for _, p := range []string{"../secret", "/../secret", "/../../secret", "rel-link", "abs-link", "dir-link/../secret",
		parent + "/secret", "inside/../../secret"} {
		if readable(p) {
			t.Errorf("read the outside file through %q", p)
		}
	}
	// "/../inside" is cleaned to "/inside": still inside and readable.
	if f, err := sc.Open("/../inside"); err != nil {
		t.Errorf("open /../inside: %v", err)
	} else {
		f.Close()
	}

	for _, p := range []string{"../new", "dir-link/new", "/../outdir/new", "abs-link"} {
		if f, err := sc.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC); err == nil {
			f.Write([]byte("x"))
			f.Close()
		}
		sc.Mkdir(p + "-dir")
	}
	if ents, err := sc.ReadDir("dir-link"); err == nil {
		t.Errorf("listed the outside directory through a symlink: %d entries", len(ents))
	}
	// A symlink made over SFTP is stored verbatim but leads nowhere.
	if err := sc.Symlink("/etc/passwd", "made-link"); err != nil {
		t.Fatalf("symlink: %v", err)
	}
	if f, err := sc.Open("made-link"); err == nil {
		b, _ := io.ReadAll(f)
		f.Close()
		if strings.Contains(string(b), "root:") {
			t.Error("read the host's /etc/passwd through a client-made symlink")
		}
	}
	if tgt, err := sc.ReadLink("made-link"); err != nil || tgt != "/etc/passwd" {
		t.Errorf("readlink: %q, %v", tgt, err)
	}
	sc.Rename("inside", "../moved")
	sc.PosixRename("inside", "dir-link/moved")
	sc.Chmod("abs-link", 0o777)
	sc.Truncate("rel-link", 0)

	// The outside is exactly as it was.
	if b, err := os.ReadFile(filepath.Join(parent, "secret")); err != nil || string(b) != "outside" {
		t.Errorf("outside file changed: %q, %v", b, err)
	}
	if fi, _ := os.Stat(filepath.Join(parent, "secret")); fi.Mode().Perm() != 0o644 {
		t.Errorf("outside file mode changed: %v", fi.Mode())
	}
	ents, _ := os.ReadDir(parent)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "outdir,root,secret" {
		t.Errorf("entries outside root: %v", names)
	}
	if ents, _ := os.ReadDir(filepath.Join(parent, "outdir")); len(ents) != 0 {
		t.Errorf("files created in the outside directory: %v", ents)
	}
}

func TestOperations(t *testing.T) {
	_, sc, root := keyServer(t, nil)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	put := func(p, data string) {
		t.Helper()
		f, err := sc.Create(p)
		must(err)
		_, err = f.Write([]byte(data))
		must(err)
		must(f.Close())
	}
	disk := func(p string) string {
		b, _ := os.ReadFile(filepath.Join(root, p))
		return string(b)
	}
	must(sc.Mkdir("d"))
	put("d/a", "A")
	put("d/b", "B")
	ents, err := sc.ReadDir("d")
	must(err)
	if len(ents) != 2 {
		t.Fatalf("ReadDir: %d entries", len(ents))
	}
	// Plain rename refuses to replace; posix-rename replaces.
	if err := sc.Rename("d/a", "d/b"); err == nil {
		t.Fatal("SSH_FXP_RENAME replaced an existing file")
	}
	must(sc.PosixRename("d/a", "d/b"))
	if disk("d/b") != "A" {
		t.Fatalf("after posix-rename d/b = %q", disk("d/b"))
	}
	// Errors map to codes the client understands.
	if _, err := sc.Stat("nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat missing: %v", err)
	}
	if err := sc.Remove("d"); err == nil {
		t.Fatal("Remove on a directory succeeded")
	}
	if err := sc.RemoveDirectory("d"); err == nil {
		t.Fatal("Rmdir on a non-empty directory succeeded")
	}
	if err := sc.Mkdir("d"); err == nil {
		t.Fatal("Mkdir on an existing name succeeded")
	}
	// Setstat: chmod, truncate, times.
	must(sc.Chmod("d/b", 0o600))
	must(sc.Truncate("d/b", 5))
	mt := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	must(sc.Chtimes("d/b", mt, mt))
	fi, err := os.Stat(filepath.Join(root, "d/b"))
	must(err)
	if fi.Mode().Perm() != 0o600 || fi.Size() != 5 || !fi.ModTime().Equal(mt) {
		t.Fatalf("after setstat: mode %v size %d mtime %v", fi.Mode(), fi.Size(), fi.ModTime())
	}
	// Symlink, Lstat, Stat, hard link.
	must(sc.Symlink("b", "d/l"))
	if lfi, err := sc.Lstat("d/l"); err != nil || lfi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("lstat symlink: %v %v", lfi, err)
	}
	if sfi, err := sc.Stat("d/l"); err != nil || !sfi.Mode().IsRegular() || sfi.Size() != 5 {
		t.Fatalf("stat through symlink: %v %v", sfi, err)
	}
	must(sc.Link("d/b", "d/hard"))
	if disk("d/hard") != disk("d/b") {
		t.Fatal("hard link content differs")
	}
	// Append mode writes at the end whatever the offset.
	put("app", "123")
	f, err := sc.OpenFile("app", os.O_WRONLY|os.O_APPEND)
	must(err)
	_, err = f.Write([]byte("45"))
	must(err)
	must(f.Close())
	if disk("app") != "12345" {
		t.Fatalf("append: %q", disk("app"))
	}
	// Read-write handle.
	f, err = sc.OpenFile("app", os.O_RDWR)
	must(err)
	_, err = f.WriteAt([]byte("X"), 1)
	must(err)
	buf := make([]byte, 5)
	_, err = f.ReadAt(buf, 0)
	must(err)
	must(f.Close())
	if string(buf) != "1X345" {
		t.Fatalf("read-write: %q", buf)
	}
	// O_EXCL on an existing file fails.
	if _, err := sc.OpenFile("app", os.O_WRONLY|os.O_CREATE|os.O_EXCL); err == nil {
		t.Fatal("O_EXCL on an existing file succeeded")
	}
	vfs, err := sc.StatVFS("/")
	must(err)
	if vfs.Blocks == 0 || vfs.Bsize == 0 {
		t.Fatalf("statvfs: %+v", vfs)
	}
	must(sc.Remove("d/l"))
	must(sc.Remove("d/hard"))
	must(sc.Remove("d/b"))
	must(sc.RemoveDirectory("d"))
	if _, err := os.Stat(filepath.Join(root, "d")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("d still exists: %v", err)
	}
}

func TestReadOnly(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "f"), []byte("data"), 0o644)
	os.Mkdir(filepath.Join(root, "d"), 0o755)
	_, sc, _ := keyServer(t, func(c *Config) { c.Root = root; c.ReadOnly = true })
	f, err := sc.Open("f")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if string(b) != "data" {
		t.Fatalf("read: %q", b)
	}
	denied := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, fs.ErrPermission) {
			t.Errorf("%s on a read-only server: %v; want permission denied", what, err)
		}
	}
	_, err = sc.Create("new")
	denied("create", err)
	_, err = sc.OpenFile("f", os.O_WRONLY)
	denied("open for writing", err)
	denied("mkdir", sc.Mkdir("x"))
	denied("remove", sc.Remove("f"))
	denied("rmdir", sc.RemoveDirectory("d"))
	denied("rename", sc.Rename("f", "g"))
	denied("posix-rename", sc.PosixRename("f", "g"))
	denied("chmod", sc.Chmod("f", 0o777))
	denied("symlink", sc.Symlink("f", "l"))
	denied("link", sc.Link("f", "h"))
	if vfs, err := sc.StatVFS("/"); err != nil || vfs.Flag&1 == 0 {
		t.Errorf("statvfs on a read-only server: %+v %v; want ST_RDONLY", vfs, err)
	}
	ents, _ := os.ReadDir(root)
	if len(ents) != 2 {
		t.Errorf("root changed: %v", ents)
	}
}

// TestOnlySFTP: shells, commands and forwarding are refused.
func TestOnlySFTP(t *testing.T) {
	signer, _ := newSigner(t)
	s := start(t, Config{Root: t.TempDir(), AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()}})
	c, err := ssh.Dial("tcp", s.Addr(), &ssh.ClientConfig{User: "u", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: ssh.FixedHostKey(s.HostKey())})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Run("id"); err == nil {
		t.Error("exec request succeeded")
	}
	sess.Close()
	if conn, err := c.Dial("tcp", "127.0.0.1:22"); err == nil {
		conn.Close()
		t.Error("port forwarding succeeded")
	}
}

// TestCloseAndContext: Close drops live connections, and cancelling the
// context passed to Serve closes the server.
func TestCloseAndContext(t *testing.T) {
	signer, _ := newSigner(t)
	s, err := New(Config{Root: t.TempDir(), AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	sc, err := dial(s, "u", ssh.PublicKeys(signer))
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- sc.Wait() }()
	select {
	case <-waitErr:
	case <-time.After(10 * time.Second):
		t.Fatal("client connection still open after the server closed")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestOpenSSHClient: the real OpenSSH sftp client can log in, check the
// host key from a known_hosts line and transfer files.
func TestOpenSSHClient(t *testing.T) {
	sftpBin := testenv.LookPath(t, "sftp")
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	signer, priv := newSigner(t)
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "id")
	os.WriteFile(keyFile, pem.EncodeToMemory(blk), 0o600)
	s := start(t, Config{Root: root, AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()}})
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte(knownhosts.Line([]string{s.Addr()}, s.HostKey())+"\n"), 0o644)
	local := filepath.Join(dir, "up.txt")
	os.WriteFile(local, []byte("via openssh"), 0o644)
	batch := filepath.Join(dir, "batch")
	os.WriteFile(batch, []byte("mkdir sub\nput "+local+" sub/up.txt\nrename sub/up.txt sub/moved.txt\nls -l sub\nget sub/moved.txt "+filepath.Join(dir, "down.txt")+"\n"), 0o644)
	_, port, _ := strings.Cut(s.Addr(), ":")
	if _, err := strconv.Atoi(port); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sftpBin, "-F", "/dev/null", "-b", batch, "-i", keyFile, "-P", port,
		"-o", "UserKnownHostsFile="+kh, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
		"tester@127.0.0.1").CombinedOutput()
	if err != nil {
		t.Fatalf("sftp: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "sub", "moved.txt")); string(b) != "via openssh" {
		t.Fatalf("uploaded file: %q\n%s", b, out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "down.txt")); string(b) != "via openssh" {
		t.Fatalf("downloaded file: %q\n%s", b, out)
	}
}
