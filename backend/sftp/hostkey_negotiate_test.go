package sftp

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/sftpfs/sftpfs/internal/sshdtest"
)

// stockHostKeys are the host keys `ssh-keygen -A` gives a stock server.
var stockHostKeys = []string{"rsa", "ecdsa", "ed25519"}

// listRoot connects with c and lists the root, the least a mount does.
func listRoot(t *testing.T, c Config) error {
	t.Helper()
	b, err := New(context.Background(), c)
	if err != nil {
		return err
	}
	defer b.Close()
	if _, err := b.ReadDir(context.Background(), "."); err != nil {
		t.Fatalf("ReadDir after login: %v", err)
	}
	return nil
}

// TestHostKeyStockServer: a server with rsa, ecdsa and ed25519 host keys
// (as every stock OpenSSH install has) must be reachable with a pin of
// any of its fingerprints, or a known_hosts that lists any one type. Before
// negotiation was built, x/crypto asked for ECDSA first and a pinned
// ed25519 fingerprint (the README recipe) failed with "is not known:
// ecdsa-sha2-nistp256".
func TestHostKeyStockServer(t *testing.T) {
	srv := sshdtest.Start(t, sshdtest.Options{HostKeyTypes: stockHostKeys})
	base := func() Config {
		c := sshdConfig(srv, t.TempDir())
		c.KnownHostsFiles = nil
		return c
	}
	for _, k := range srv.HostKeys {
		t.Run("Pin/"+k.Type, func(t *testing.T) {
			c := base()
			c.HostKeys = []string{k.Fingerprint}
			if err := listRoot(t, c); err != nil {
				t.Fatalf("pin of the %s key %s: %v", k.Type, k.Fingerprint, err)
			}
		})
		t.Run("PinKeyLine/"+k.Type, func(t *testing.T) {
			c := base()
			c.HostKeys = []string{strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.Signer.PublicKey())))}
			if err := listRoot(t, c); err != nil {
				t.Fatalf("pin of the %s key line: %v", k.Type, err)
			}
		})
		t.Run("KnownHostsOnly/"+k.Type, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "known_hosts")
			os.WriteFile(p, []byte(knownhosts.Line([]string{srv.Addr}, k.Signer.PublicKey())+"\n"), 0o644)
			c := base()
			c.KnownHostsFiles = []string{p}
			if err := listRoot(t, c); err != nil {
				t.Fatalf("known_hosts with only the %s line: %v", k.Type, err)
			}
		})
	}
	t.Run("WrongPin", func(t *testing.T) {
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		other, _ := ssh.NewPublicKey(pub)
		c := base()
		c.HostKeys = []string{ssh.FingerprintSHA256(other)}
		err := listRoot(t, c)
		if err == nil {
			t.Fatal("a wrong pin connected")
		}
		var hk *HostKeyError
		if !asHostKeyError(err, &hk) || hk.Problem != HostKeyUnknown {
			t.Fatalf("error %v is not a HostKeyUnknown error", err)
		}
		for _, k := range srv.HostKeys {
			if !strings.Contains(err.Error(), k.Fingerprint) {
				t.Errorf("error %q does not name the %s key %s the server has", err, k.Type, k.Fingerprint)
			}
		}
		if len(hk.Seen) != len(srv.HostKeys) {
			t.Errorf("Seen = %q, want one entry per host key", hk.Seen)
		}
	})
	t.Run("ChangedKeySameType", func(t *testing.T) {
		// A known_hosts entry of the type the server has, but another key:
		// that stays a mismatch, with no retries that could hide it.
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		other, _ := ssh.NewPublicKey(pub)
		p := filepath.Join(t.TempDir(), "known_hosts")
		os.WriteFile(p, []byte(knownhosts.Line([]string{srv.Addr}, other)+"\n"), 0o644)
		c := base()
		c.KnownHostsFiles = []string{p}
		err := listRoot(t, c)
		var hk *HostKeyError
		if err == nil || !asHostKeyError(err, &hk) || hk.Problem != HostKeyMismatch {
			t.Fatalf("error %v, want HOST KEY MISMATCH", err)
		}
	})
}

// TestHostKeyOtherTypeOnly: known_hosts lists only an RSA key for a host
// that has only an ed25519 key: the presented key is unknown, not a
// "MITM" mismatch, and the error says which types known_hosts has.
func TestHostKeyOtherTypeOnly(t *testing.T) {
	srv := sshdtest.Start(t, sshdtest.Options{})
	rsaSrv := sshdtest.Start(t, sshdtest.Options{HostKeyType: "rsa"})
	p := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(p, []byte(knownhosts.Line([]string{srv.Addr}, rsaSrv.HostSigner.PublicKey())+"\n"), 0o644)
	c := sshdConfig(srv, t.TempDir())
	c.KnownHostsFiles = []string{p}
	err := listRoot(t, c)
	var hk *HostKeyError
	if err == nil || !asHostKeyError(err, &hk) || hk.Problem != HostKeyUnknown {
		t.Fatalf("error %v, want host key unknown", err)
	}
	for _, w := range []string{srv.HostKeyFingerprint, "only ssh-rsa keys"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

// TestAuthNamedKeyBeforeAgent: an agent holding several keys the server
// does not accept must not spend the server's MaxAuthTries before the
// named key is offered (OpenSSH offers the named keys first). With
// identities_only the agent is not asked at all.
func TestAuthNamedKeyBeforeAgent(t *testing.T) {
	srv := sshdtest.Start(t, sshdtest.Options{ExtraConfig: []string{"MaxAuthTries 3"}})
	kr := agent.NewKeyring()
	for i := 0; i < 5; i++ {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		if err := kr.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
			t.Fatal(err)
		}
	}
	sock := serveAgent(t, kr)
	t.Run("NamedFirst", func(t *testing.T) {
		c := sshdConfig(srv, t.TempDir())
		c.AgentSocket = sock
		if err := listRoot(t, c); err != nil {
			t.Fatalf("named key with an agent of 5 unauthorized keys, MaxAuthTries 3: %v", err)
		}
	})
	t.Run("IdentitiesOnly", func(t *testing.T) {
		c := sshdConfig(srv, t.TempDir())
		c.AgentSocket = sock
		c.IdentitiesOnly = true
		if err := listRoot(t, c); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(srv.Logs(), "Failed publickey"); n != 0 {
			t.Errorf("identities_only: sshd logged %d refused keys, want 0 (the agent's keys were offered)", n)
		}
	})
	t.Run("AgentOnly", func(t *testing.T) {
		// Without a named key every agent key is offered, and the server
		// refuses them all.
		c := sshdConfig(srv, t.TempDir())
		c.IdentityFiles = nil
		c.AgentSocket = sock
		err := listRoot(t, c)
		if err == nil || !strings.Contains(err.Error(), "agent key") {
			t.Fatalf("agent with only unauthorized keys: %v, want an authentication error naming the agent keys", err)
		}
	})
}

// TestLoginRelativePath: "~/x" is x in the login directory, as in
// sshfs and scp, not a directory named "~".
func TestLoginRelativePath(t *testing.T) {
	home := t.TempDir()
	// internal-sftp -d sets the directory relative paths start from,
	// standing in for the login directory.
	srv := sshdtest.Start(t, sshdtest.Options{ExtraConfig: []string{"Subsystem sftp internal-sftp -d " + home}})
	if err := os.Mkdir(filepath.Join(home, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(home, "x", "marker"), []byte("m"), 0o644)
	for _, p := range []string{"~/x", "~"} {
		c := sshdConfig(srv, p)
		b, err := New(context.Background(), c)
		if err != nil {
			t.Fatalf("path %q: %v", p, err)
		}
		want := filepath.Join(home, "x", "marker")
		name := "marker"
		if p == "~" {
			name = "x/marker"
		}
		st, err := b.Stat(context.Background(), name)
		b.Close()
		if err != nil || st.Size != 1 {
			t.Fatalf("path %q: stat %s (%s): %v", p, name, want, err)
		}
	}
	if _, err := os.Stat(filepath.Join(home, "~")); err == nil {
		t.Fatal("a directory literally named ~ appeared")
	}
}

func asHostKeyError(err error, hk **HostKeyError) bool {
	for e := err; e != nil; {
		if h, ok := e.(*HostKeyError); ok {
			*hk = h
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

// TestOrderHostKeyAlgorithms checks the pure ordering.
func TestOrderHostKeyAlgorithms(t *testing.T) {
	def := defaultHostKeyAlgorithms()
	if def[6] != ssh.KeyAlgoED25519 || !strings.HasSuffix(def[0], "-cert-v01@openssh.com") {
		t.Fatalf("default order %v: want certificates first, then ssh-ed25519 before ECDSA and RSA", def)
	}
	idx := func(l []string, a string) int {
		for i, x := range l {
			if x == a {
				return i
			}
		}
		return -1
	}
	if idx(def, ssh.KeyAlgoED25519) > idx(def, ssh.KeyAlgoECDSA256) || idx(def, ssh.KeyAlgoECDSA256) > idx(def, ssh.KeyAlgoRSASHA512) {
		t.Errorf("default order %v: want ed25519 < ecdsa < rsa", def)
	}
	got := orderHostKeyAlgorithms([]string{ssh.KeyAlgoRSA}, false)
	if strings.Join(got[:3], ",") != "rsa-sha2-512,rsa-sha2-256,ssh-rsa" || len(got) != len(def) {
		t.Errorf("rsa known: %v", got)
	}
	got = orderHostKeyAlgorithms([]string{ssh.KeyAlgoECDSA256, ssh.KeyAlgoED25519}, true)
	if !strings.Contains(got[0], "-cert-") || idx(got, ssh.KeyAlgoECDSA256) > idx(got, ssh.KeyAlgoED25519) || idx(got, ssh.KeyAlgoED25519) > idx(got, ssh.KeyAlgoRSASHA512) {
		t.Errorf("CA + ecdsa + ed25519 known: %v", got)
	}
	seen := map[string]bool{}
	for _, a := range got {
		if seen[a] {
			t.Errorf("duplicate %s in %v", a, got)
		}
		seen[a] = true
	}
	if got := orderHostKeyAlgorithms([]string{"ssh-dss"}, false); strings.Join(got, ",") != strings.Join(def, ",") {
		t.Errorf("a known ssh-dss key changed the order: %v", got)
	}
	left := withoutKeyType(def, ssh.KeyAlgoRSA)
	for _, a := range []string{ssh.KeyAlgoRSA, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA512} {
		if idx(left, a) >= 0 {
			t.Errorf("withoutKeyType(ssh-rsa) kept %s", a)
		}
	}
	if idx(left, ssh.KeyAlgoED25519) < 0 {
		t.Error("withoutKeyType(ssh-rsa) dropped ed25519")
	}
}

func TestLoginRelative(t *testing.T) {
	for in, want := range map[string]string{
		"~": ".", "~/": ".", "~/x": "x", "~/x/y": "x/y", "~//x": "x",
		"/abs": "/abs", "rel": "rel", "": "", "~user/x": "~user/x", "a/~/b": "a/~/b",
	} {
		if got := LoginRelative(in); got != want {
			t.Errorf("LoginRelative(%q) = %q, want %q", in, got, want)
		}
	}
	if r := (Config{User: "u", Host: "h", Path: "~/x"}).Remote(); r != "u@h:22/~/x" {
		t.Errorf("Remote for ~/x = %q", r)
	}
	if r := (Config{User: "u", Host: "h", Path: "~"}).Remote(); r != "u@h:22/~" {
		t.Errorf("Remote for ~ = %q", r)
	}
}

// TestCapAgentKeys checks the pure cap: named keys always first, agent
// duplicates dropped, and room left for a password.
func TestCapAgentKeys(t *testing.T) {
	mk := func(desc string) namedSigner {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		s, _ := ssh.NewSignerFromKey(priv)
		return namedSigner{s, desc}
	}
	named := []namedSigner{mk("named")}
	var ag []namedSigner
	for i := 0; i < 8; i++ {
		ag = append(ag, mk("agent"))
	}
	ag = append(ag, namedSigner{named[0].Signer, "agent copy of named"})
	if got, note := capAgentKeys(nil, ag, false); len(got) != 9 || note != "" {
		t.Errorf("agent only: %d keys (note %q), want all 9", len(got), note)
	}
	got, note := capAgentKeys(named, ag, false)
	if len(got) != 5 || !strings.Contains(note, "3 more agent keys") {
		t.Errorf("one named key: %d agent keys (note %q), want 5", len(got), note)
	}
	for _, g := range got {
		if g.desc == "agent copy of named" {
			t.Error("the agent's copy of the named key is offered twice")
		}
	}
	if got, _ := capAgentKeys(named, ag, true); len(got) != 4 {
		t.Errorf("named key and password: %d agent keys, want 4", len(got))
	}
	if got, _ := capAgentKeys(named, ag[:2], true); len(got) != 2 {
		t.Errorf("few agent keys: %d, want 2", len(got))
	}
}

func TestParseProxyJump(t *testing.T) {
	good := map[string][]JumpHost{
		"gw":                          {{Host: "gw"}},
		"a@gw:2222,b@10.0.0.1":        {{User: "a", Host: "gw", Port: 2222}, {User: "b", Host: "10.0.0.1"}},
		" gw , ssh://u@h2:23/":        {{Host: "gw"}, {User: "u", Host: "h2", Port: 23}},
		"[2001:db8::1]:22,[::1]":      {{Host: "2001:db8::1", Port: 22}, {Host: "::1"}},
		"first.last@corp@bastion:222": nil, // two @: an error below
	}
	for in, want := range good {
		got, err := ParseProxyJump(in)
		if want == nil {
			if err == nil {
				t.Errorf("%q: no error", in)
			}
			continue
		}
		if err != nil || len(got) != len(want) {
			t.Errorf("%q: %+v, %v", in, got, err)
			continue
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%q hop %d: %+v, want %+v", in, i+1, got[i], want[i])
			}
		}
	}
	for in, want := range map[string]string{
		"gw,":         "hop 2 of 2 (\"\"): it is empty",
		"gw:":         "port after : is empty",
		"gw:0":        "1 to 65535",
		"[::1":        "missing ]",
		"[::1]22":     "expected :port",
		"a:b:c":       "brackets",
		"nc gw 22":    "looks like a command",
		"gw;rm -rf /": "looks like a command",
		"ftp://gw":    "ssh://",
		"u@":          "host is empty",
		"gw/path":     "not a host name",
	} {
		_, err := ParseProxyJump(in)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "[user@]host[:port]") {
			t.Errorf("ParseProxyJump(%q) = %v, want an error mentioning %q and the syntax", in, err, want)
		}
	}
	if hops, err := ParseProxyJump(""); hops != nil || err != nil {
		t.Errorf("empty: %v %v", hops, err)
	}
	if s := (JumpHost{User: "u", Host: "::1"}).String(); s != "u@[::1]:22" {
		t.Errorf("String = %q", s)
	}
}
