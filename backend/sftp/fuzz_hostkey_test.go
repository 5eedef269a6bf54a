package sftp

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// fzHostKeys returns the server's key and another key, fixed so that
// seeds can name them.
func fzHostKeys(t testing.TB) (server, other ssh.PublicKey) {
	for i, seed := range [][]byte{bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)} {
		s, err := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(seed))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			server = s.PublicKey()
		} else {
			other = s.PublicKey()
		}
	}
	return server, other
}

// FuzzHostKeyPolicy feeds arbitrary known_hosts contents and hostkey pins
// to the host key policy and presents the server's key. Nothing may
// panic, and the key may only be accepted when the input really trusts
// it: its key material is in known_hosts, or a pin names it.
func FuzzHostKeyPolicy(f *testing.F) {
	server, other := fzHostKeys(f)
	srvLine := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(server)))
	othLine := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(other)))
	const host = "127.0.0.1:2222"
	for _, s := range [][2]string{
		{knownhosts.Line([]string{host}, server), ""},
		{knownhosts.Line([]string{host}, other), ""},
		{knownhosts.Line([]string{knownhosts.HashHostname(host)}, server), ""},
		{"@revoked * " + srvLine, ssh.FingerprintSHA256(server)},
		{"@cert-authority *.example " + othLine, ""},
		{"", ssh.FingerprintSHA256(server)},
		{"", srvLine},
		{"", "SHA256:" + strings.Repeat("A", 43)},
		{"[127.0.0.1]:2222,* " + othLine + "\n* " + srvLine, ""},
		{"!127.0.0.1 " + srvLine, ""},
		{"|1|AAAA|BBBB " + srvLine, ""},
		{"# comment\n\n   \t\n" + "[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", "ssh-ed25519"},
		{"@cert-authority", "SHA256:"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, content, pin string) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(kh, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _ = parsePinnedKey(pin)
		cfg := Config{Host: "127.0.0.1", Port: 2222, User: "u", KnownHostsFiles: []string{kh}}
		if pin != "" {
			cfg.HostKeys = []string{pin}
		}
		cb, _, err := cfg.hostKeyPolicy(host, slog.New(slog.DiscardHandler), &seenHostKey{})
		if err != nil {
			return
		}
		addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2222}
		if cb("["+"127.0.0.1"+"]:2222", addr, server) != nil {
			return
		}
		wire := base64.StdEncoding.EncodeToString(server.Marshal())
		pinned := false
		if p, err := parsePinnedKey(pin); err == nil && pin != "" {
			pinned = p.fingerprint == ssh.FingerprintSHA256(server)
		}
		if !strings.Contains(content, wire) && !pinned {
			t.Fatalf("server key accepted although neither known_hosts %q nor pin %q names it", content, pin)
		}
		if strings.Contains(content, "@revoked * "+srvLine) && strings.HasPrefix(strings.TrimSpace(content), "@revoked * "+srvLine) {
			t.Fatalf("server key accepted although known_hosts revokes it: %q", content)
		}
	})
}
