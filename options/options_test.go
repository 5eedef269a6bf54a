package options

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/sftpfs/sftpfs/backend/sftp"
	"github.com/sftpfs/sftpfs/fusefs"
)

// fixture is a secrets directory with a real key, known_hosts and a
// password file, plus the matching host key values.
type fixture struct {
	dir         string
	keyPEM      []byte
	fingerprint string
	keyLine     string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(blk)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	for name, data := range map[string]string{
		"id_ed25519":  string(keyPEM),
		"known_hosts": "example.com " + line + "\n",
		"pw":          "hunter2-secret\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	return fixture{dir: dir, keyPEM: keyPEM, fingerprint: ssh.FingerprintSHA256(signer.PublicKey()), keyLine: line}
}

func (f fixture) volume() Env { return Env{Scope: ScopeVolume, SecretsDir: f.dir} }

// base is a minimal valid volume option set.
func (f fixture) base(extra ...string) map[string]string {
	m := map[string]string{"host": "files.example.com", "user": "deploy", "identity": "id_ed25519", "hostkey": f.fingerprint}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "<delete>" {
			delete(m, extra[i])
			continue
		}
		m[extra[i]] = extra[i+1]
	}
	return m
}

func TestParseDefaults(t *testing.T) {
	f := newFixture(t)
	cfg, err := Parse(f.base(), f.volume())
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.SFTP
	if cfg.Backend != BackendSFTP || c.Host != "files.example.com" || c.User != "deploy" || c.Port != 22 || c.Path != "" {
		t.Errorf("connection = %+v", c)
	}
	if c.ConnectTimeout != 10*time.Second || c.OpTimeout != 30*time.Second || c.KeepaliveInterval != 15*time.Second || c.KeepaliveCountMax != 3 {
		t.Errorf("timeouts = %v %v %v %v", c.ConnectTimeout, c.OpTimeout, c.KeepaliveInterval, c.KeepaliveCountMax)
	}
	if len(c.IdentityFiles) != 1 || c.IdentityFiles[0] != filepath.Join(f.dir, "id_ed25519") {
		t.Errorf("identity = %v", c.IdentityFiles)
	}
	if len(c.HostKeys) != 1 || c.HostKeys[0] != f.fingerprint {
		t.Errorf("hostkeys = %v", c.HostKeys)
	}
	fo := cfg.FS
	if fo.UID != -1 || fo.GID != -1 || fo.Umask != 0 || fo.ReadOnly || !fo.AllowOther || !fo.DefaultPermissions ||
		fo.AttrTimeout != time.Second || fo.EntryTimeout != time.Second || fo.NegativeTimeout != 0 || fo.MaxWrite != 1<<20 {
		t.Errorf("fs = %+v", fo)
	}
	if got, want := cfg.Remote(), "deploy@files.example.com:22/~"; got != want {
		t.Errorf("Remote = %q, want %q", got, want)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings = %v", cfg.Warnings)
	}
}

// TestDefaultsMatchTable keeps the documented defaults honest: parsing
// every default explicitly gives the same Config as not giving them.
func TestDefaultsMatchTable(t *testing.T) {
	f := newFixture(t)
	for _, env := range []Env{f.volume(), {Scope: ScopeCLI, BaseDir: f.dir}} {
		implicit, err := Parse(f.base(), env)
		if err != nil {
			t.Fatal(err)
		}
		opts := f.base()
		for _, o := range Table() {
			if d := o.DefaultFor(env.Scope); d != "" {
				opts[o.Name] = d
			}
		}
		explicit, err := Parse(opts, env)
		if err != nil {
			t.Fatal(err)
		}
		if implicit.SFTP.Port != explicit.SFTP.Port || implicit.SFTP.OpTimeout != explicit.SFTP.OpTimeout ||
			implicit.FS != explicit.FS || implicit.LogLevel != explicit.LogLevel {
			t.Errorf("%v: explicit defaults differ:\n%+v\n%+v", env.Scope, implicit, explicit)
		}
	}
}

// TestSymlinksOption checks the per-scope defaults of symlinks (contain
// on the host, keep inside containers), its values and its errors.
func TestSymlinksOption(t *testing.T) {
	f := newFixture(t)
	cli := Env{Scope: ScopeCLI, BaseDir: f.dir}
	for _, tc := range []struct {
		env  Env
		opts map[string]string
		want fusefs.SymlinkPolicy
	}{
		{cli, f.base(), fusefs.SymlinkContain},
		{f.volume(), f.base(), fusefs.SymlinkKeep},
		{cli, f.base("symlinks", "keep"), fusefs.SymlinkKeep},
		{f.volume(), f.base("Symlinks", " Contain "), fusefs.SymlinkContain},
		{f.volume(), f.base("symlinks", "REFUSE"), fusefs.SymlinkRefuse},
		{cli, map[string]string{"local": f.dir}, fusefs.SymlinkContain},
	} {
		cfg, err := Parse(tc.opts, tc.env)
		if err != nil {
			t.Errorf("%v %v: %v", tc.env.Scope, tc.opts, err)
			continue
		}
		if cfg.FS.Symlinks != tc.want {
			t.Errorf("%v %v: Symlinks = %q, want %q", tc.env.Scope, tc.opts, cfg.FS.Symlinks, tc.want)
		}
	}
	for _, bad := range []string{"follow", "", "transform"} {
		_, err := Parse(f.base("symlinks", bad), f.volume())
		var oe *Error
		if err == nil || !errors.As(err, &oe) || oe.Option != OptSymlinks ||
			!strings.Contains(err.Error(), `"symlinks"`) || !strings.Contains(err.Error(), "keep, contain, refuse") {
			t.Errorf("symlinks=%q: error %v; want one naming the option and listing keep, contain, refuse", bad, err)
		}
	}
	c, err := Canonical(map[string]string{"symlinks": "Refuse"})
	if err != nil || c["symlinks"] != "refuse" {
		t.Errorf("Canonical symlinks=Refuse = %v, %v", c, err)
	}
	if _, err := Canonical(map[string]string{"symlinks": "sometimes"}); err == nil {
		t.Error("Canonical accepted symlinks=sometimes")
	}
	// sshfs users reaching for transform_symlinks are pointed here.
	if _, err := Parse(f.base("transform_symlinks", ""), f.volume()); err == nil || !strings.Contains(err.Error(), "symlinks=contain") {
		t.Errorf("transform_symlinks: %v", err)
	}
}

func TestParseValues(t *testing.T) {
	f := newFixture(t)
	cfg, err := Parse(f.base(
		"Port", "2222", "path", "/srv/data", "create-path", "yes", "ConnectTimeout", "5",
		"op_timeout", "1m30s", "keepalive", "1s", "keepalive_count", "7", "max_packet", "65536", "conns", "4", "ciphers", "aes128-gcm@openssh.com, aes256-ctr",
		"uid", "1000", "gid", "1001", "umask", "027", "ro", "", "default_permissions", "off",
		"attr_timeout", "0", "entry_timeout", "2.5", "negative_timeout", "3s", "max_write", "131072", "debug", "1", "fuse_debug", "true",
		"hostkey", f.fingerprint+","+f.keyLine, "known_hosts", "<delete>",
	), f.volume())
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.SFTP
	if c.Port != 2222 || c.Path != "/srv/data" || !c.CreatePath || c.ConnectTimeout != 5*time.Second || c.OpTimeout != 90*time.Second ||
		c.KeepaliveInterval != time.Second || c.KeepaliveCountMax != 7 || c.MaxPacket != 65536 || c.Conns != 4 || strings.Join(c.Ciphers, " ") != "aes128-gcm@openssh.com aes256-ctr" {
		t.Errorf("sftp = %+v", c)
	}
	if len(c.HostKeys) != 2 || c.HostKeys[1] != f.keyLine {
		t.Errorf("hostkeys = %q", c.HostKeys)
	}
	fo := cfg.FS
	if fo.UID != 1000 || fo.GID != 1001 || fo.Umask != 0o27 || !fo.ReadOnly || fo.DefaultPermissions ||
		fo.AttrTimeout != 0 || fo.EntryTimeout != 2500*time.Millisecond || fo.NegativeTimeout != 3*time.Second || fo.MaxWrite != 131072 || !fo.Debug {
		t.Errorf("fs = %+v", fo)
	}
	if cfg.LogLevel.String() != "DEBUG" {
		t.Errorf("log level %v", cfg.LogLevel)
	}
	if got, want := cfg.Remote(), "deploy@files.example.com:2222/srv/data"; got != want {
		t.Errorf("Remote = %q, want %q", got, want)
	}
	if cfg.FS.FSName != cfg.Remote() {
		t.Errorf("FSName = %q", cfg.FS.FSName)
	}
}

func TestSecretsDirFiles(t *testing.T) {
	f := newFixture(t)
	if err := os.WriteFile(filepath.Join(f.dir, "sub", "key"), f.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(f.base("identity", "id_ed25519,sub/key", "known_hosts", "known_hosts", "hostkey", "<delete>", "password_file", "pw"), f.volume())
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.SFTP.IdentityFiles; len(got) != 2 || got[1] != filepath.Join(f.dir, "sub", "key") {
		t.Errorf("identity = %v", got)
	}
	if got := cfg.SFTP.KnownHostsFiles; len(got) != 1 || got[0] != filepath.Join(f.dir, "known_hosts") {
		t.Errorf("known_hosts = %v", got)
	}
	if cfg.SFTP.PasswordFile != filepath.Join(f.dir, "pw") {
		t.Errorf("password_file = %q", cfg.SFTP.PasswordFile)
	}
}

func TestVieuxCompat(t *testing.T) {
	f := newFixture(t)
	opts := map[string]string{
		"sshcmd":       "deploy@files.example.com:/srv/data",
		"port":         "2200",
		"IdentityFile": "/root/.ssh/id_ed25519",
		"allow_other":  "",
		"hostkey":      f.fingerprint,
	}
	cfg, err := Parse(opts, f.volume())
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.SFTP; c.User != "deploy" || c.Host != "files.example.com" || c.Path != "/srv/data" || c.Port != 2200 {
		t.Errorf("sftp = %+v", c)
	}
	if got := cfg.SFTP.IdentityFiles; len(got) != 1 || got[0] != filepath.Join(f.dir, "id_ed25519") {
		t.Errorf("IdentityFile mapped to %v, want the file name in the secrets dir", got)
	}
	// password inline works but warns, without the password in the warning.
	opts = map[string]string{"sshcmd": "deploy@files.example.com:", "password": "hunter2-secret", "hostkey": f.fingerprint}
	cfg, err = Parse(opts, f.volume())
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg.SFTP.Password) != "hunter2-secret" || len(cfg.Warnings) != 1 || strings.Contains(cfg.Warnings[0], "hunter2") {
		t.Errorf("password = %q, warnings = %q", cfg.SFTP.Password, cfg.Warnings)
	}
}

func TestParseRemote(t *testing.T) {
	for _, tc := range []struct{ in, user, host, path string }{
		{"host", "", "host", ""},
		{"host:", "", "host", ""},
		{"u@host:/a/b", "u", "host", "/a/b"},
		{"u@host:rel/p", "u", "host", "rel/p"},
		{"u@host:/p@2:x", "u", "host", "/p@2:x"},
		{"a@b@host:/p", "a@b", "host", "/p"},
		{"[::1]:/p", "", "::1", "/p"},
		{"u@[fe80::1]", "u", "fe80::1", ""},
	} {
		u, h, p, err := ParseRemote(tc.in)
		if err != nil || u != tc.user || h != tc.host || p != tc.path {
			t.Errorf("ParseRemote(%q) = %q %q %q %v", tc.in, u, h, p, err)
		}
	}
	for _, bad := range []string{"", ":/p", "@host:/p", "u@:/p", "[::1", "[::1]x", "ho st:/p", "a/b:/p"} {
		if _, _, _, err := ParseRemote(bad); err == nil {
			t.Errorf("ParseRemote(%q) succeeded", bad)
		}
	}
}

func TestLocal(t *testing.T) {
	dir := t.TempDir()
	cfg, err := Parse(map[string]string{"local": dir, "ro": "true"}, Env{Scope: ScopeVolume})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Backend != BackendLocal || cfg.LocalRoot != dir || cfg.Remote() != "local:"+dir || !cfg.FS.ReadOnly {
		t.Errorf("cfg = %+v", cfg)
	}
	cfg, err = Parse(map[string]string{"local": "."}, Env{Scope: ScopeCLI, BaseDir: dir})
	if err != nil || cfg.LocalRoot != dir || cfg.FS.AllowOther {
		t.Errorf("relative local: %+v %v", cfg, err)
	}
}

func TestCLIDefaults(t *testing.T) {
	home := t.TempDir()
	f := newFixture(t)
	ssh := filepath.Join(home, ".ssh")
	if err := os.Mkdir(ssh, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"id_ed25519", "known_hosts"} {
		data, _ := os.ReadFile(filepath.Join(f.dir, n))
		if err := os.WriteFile(filepath.Join(ssh, n), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := Env{Scope: ScopeCLI, Home: home, DefaultUser: "me", BaseDir: f.dir}
	cfg, err := Parse(map[string]string{"host": "h"}, env)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.SFTP
	if c.User != "me" || len(c.IdentityFiles) != 1 || c.IdentityFiles[0] != filepath.Join(ssh, "id_ed25519") ||
		len(c.KnownHostsFiles) != 1 || c.KnownHostsFiles[0] != filepath.Join(ssh, "known_hosts") {
		t.Errorf("cli defaults = %+v", c)
	}
	// Explicit options win; relative names are relative to BaseDir; ~ expands.
	cfg, err = Parse(map[string]string{"host": "h", "identity": "id_ed25519", "known_hosts": "~/.ssh/known_hosts", "user": "u"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.SFTP; c.User != "u" || c.IdentityFiles[0] != filepath.Join(f.dir, "id_ed25519") || c.KnownHostsFiles[0] != filepath.Join(ssh, "known_hosts") {
		t.Errorf("explicit = %+v", c)
	}
}

// TestErrors checks every error: it must name the option, say what to do,
// and never contain a secret value.
func TestErrors(t *testing.T) {
	f := newFixture(t)
	const secret = "hunter2-secret"
	vol := f.volume()
	cli := Env{Scope: ScopeCLI, BaseDir: f.dir}
	for _, tc := range []struct {
		name string
		opts map[string]string
		env  Env
		want []string // substrings of the message
	}{
		{"unknown suggests", f.base("hots", "x"), vol, []string{`"hots"`, `did you mean "host"`, "valid options:", "keepalive_count"}},
		{"unknown misspelled secret", f.base("passwrd", secret), vol, []string{`"passwrd"`, `did you mean "password"`}},
		{"reconnect", f.base("reconnect", ""), vol, []string{`"reconnect"`, "always on", "remove it"}},
		{"ServerAliveInterval", f.base("ServerAliveInterval", "15"), vol, []string{"ServerAliveInterval", "keepalive"}},
		{"ServerAliveCountMax", f.base("ServerAliveCountMax", "3"), vol, []string{"keepalive_count"}},
		{"StrictHostKeyChecking", f.base("StrictHostKeyChecking", "no"), vol, []string{"hostkey", "insecure_ignore_host_key"}},
		{"UserKnownHostsFile", f.base("UserKnownHostsFile", "/dev/null"), vol, []string{"known_hosts"}},
		{"ProxyCommand", f.base("ProxyCommand", "nc %h %p"), vol, []string{"ProxyCommand", "root"}},
		{"idmap", f.base("idmap", "user"), vol, []string{"uid and gid"}},
		{"missing host", f.base("host", "<delete>"), vol, []string{"missing host", "host="}},
		{"missing user", f.base("user", "<delete>"), vol, []string{"missing user", "user="}},
		{"bad host", f.base("host", "a b"), vol, []string{`"host"`, `"a b"`}},
		{"port zero", f.base("port", "0"), vol, []string{`"port"`, `"0"`, "1 to 65535"}},
		{"port big", f.base("port", "65536"), vol, []string{`"port"`, "1 to 65535"}},
		{"port text", f.base("port", "ssh"), vol, []string{`"port"`, `"ssh"`}},
		{"bool", f.base("ro", "maybe"), vol, []string{`"ro"`, `"maybe"`, "true or false"}},
		{"duration", f.base("op_timeout", "soon"), vol, []string{`"op_timeout"`, "15s"}},
		{"duration zero", f.base("connect_timeout", "0"), vol, []string{`"connect_timeout"`, "positive"}},
		{"duration negative", f.base("attr_timeout", "-1s"), vol, []string{`"attr_timeout"`}},
		{"umask", f.base("umask", "999"), vol, []string{`"umask"`, "octal"}},
		{"max_write", f.base("max_write", "10"), vol, []string{`"max_write"`, "4096"}},
		{"uid", f.base("uid", "-5"), vol, []string{`"uid"`}},
		{"max_packet", f.base("max_packet", "300000"), vol, []string{`"max_packet"`, "261120"}},
		{"max_packet small", f.base("max_packet", "100"), vol, []string{`"max_packet"`, "0 (automatic)"}},
		{"conns zero", f.base("conns", "0"), vol, []string{`"conns"`, `"0"`, "1 to 8", "conns=4"}},
		{"conns big", f.base("conns", "9"), vol, []string{`"conns"`, `"9"`, "1 to 8"}},
		{"conns text", f.base("conns", "many"), vol, []string{`"conns"`, `"many"`}},
		{"sshcmd+host", map[string]string{"sshcmd": "u@h:/p", "host": "h", "identity": "id_ed25519", "hostkey": f.fingerprint}, vol, []string{`"sshcmd"`, `"host"`, "conflict"}},
		{"sshcmd+user", map[string]string{"sshcmd": "u@h:/p", "user": "v", "identity": "id_ed25519", "hostkey": f.fingerprint}, vol, []string{`"user"`, "conflict"}},
		{"sshcmd+path", map[string]string{"sshcmd": "u@h:/p", "path": "/q", "identity": "id_ed25519", "hostkey": f.fingerprint}, vol, []string{`"path"`, "conflict"}},
		{"sshcmd bad", map[string]string{"sshcmd": "u@:/p", "identity": "id_ed25519", "hostkey": f.fingerprint}, vol, []string{`"sshcmd"`, "[user@]host"}},
		{"password+file", f.base("password", secret, "password_file", "pw"), vol, []string{`"password"`, `"password_file"`, "conflict"}},
		{"identity_b64 not base64", f.base("identity_b64", secret+"!!"), vol, []string{`"identity_b64"`, "base64 -w0"}},
		{"identity_b64 not a key", f.base("identity_b64", base64.StdEncoding.EncodeToString([]byte(secret))), vol, []string{`"identity_b64"`, "private key"}},
		{"insecure+hostkey", f.base("insecure_ignore_host_key", "true"), vol, []string{`"insecure_ignore_host_key"`, "hostkey"}},
		{"no hostkey", f.base("hostkey", "<delete>"), vol, []string{"verify the server", "hostkey=SHA256:", "known_hosts="}},
		{"bad hostkey", f.base("hostkey", "SHA256:abc"), vol, []string{`"hostkey"`, `"SHA256:abc"`, "ssh-ed25519 AAAA"}},
		{"no auth", f.base("identity", "<delete>"), vol, []string{"no way to log in", "identity="}},
		{"missing key file", f.base("identity", "nope"), vol, []string{`"identity"`, filepath.Join(f.dir, "nope"), "secrets directory", "no such file"}},
		{"key is a dir", f.base("identity", "sub"), vol, []string{`"identity"`, "not a regular file"}},
		{"absolute in volume", f.base("identity", "/etc/ssh/key"), vol, []string{`"identity"`, "absolute path", "identity=key"}},
		{"dotdot in volume", f.base("identity", "../id_ed25519"), vol, []string{`"identity"`, `".."`}},
		{"dotdot hidden", f.base("known_hosts", "sub/../../x"), vol, []string{`"known_hosts"`, `".."`}},
		{"no secrets dir", f.base(), Env{Scope: ScopeVolume}, []string{`"identity"`, "secrets directory"}},
		{"cli missing file", f.base("identity", "nope"), cli, []string{`"identity"`, "check the path"}},
		{"ssh_agent in volume", f.base("ssh_agent", "/tmp/agent"), vol, []string{`"ssh_agent"`, "sftpfs mount"}},
		{"ssh_agent not socket", f.base("ssh_agent", "id_ed25519"), cli, []string{`"ssh_agent"`, "not a socket"}},
		{"certificate without key", f.base("identity", "<delete>", "password_file", "pw", "certificate", "id_ed25519"), vol, []string{`"certificate"`, "identity"}},
		{"local + ssh", map[string]string{"local": f.dir, "host": "h", "password": secret}, vol, []string{`"local"`, "host, password"}},
		{"local relative in volume", map[string]string{"local": "data"}, vol, []string{`"local"`, "absolute"}},
		{"local not dir", map[string]string{"local": filepath.Join(f.dir, "pw")}, vol, []string{`"local"`, "not a directory"}},
		{"duplicate", map[string]string{"ro": "true", "readonly": "false", "local": f.dir}, vol, []string{`"ro"`, "twice"}},
		{"empty password", f.base("identity", "<delete>", "password", ""), vol, []string{`"password"`, "empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.opts, tc.env)
			if err == nil {
				t.Fatalf("Parse(%v) succeeded", Redact(tc.opts))
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if strings.Contains(msg, secret) || strings.Contains(msg, "BEGIN OPENSSH") {
				t.Errorf("error contains a secret: %q", msg)
			}
			var oe *Error
			if !errors.As(err, &oe) || oe.Option == "" {
				t.Errorf("error %q is not an *Error naming an option", msg)
			}
		})
	}
}

func TestIdentityB64(t *testing.T) {
	f := newFixture(t)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
		cfg, err := Parse(f.base("identity", "<delete>", "identity_b64", enc.EncodeToString(f.keyPEM)), f.volume())
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.SFTP.IdentityInline) != 1 || string(cfg.SFTP.IdentityInline[0]) != string(f.keyPEM) {
			t.Errorf("inline key not decoded")
		}
	}
}

func TestCanonical(t *testing.T) {
	a, err := Canonical(map[string]string{"Host": "h", "ro": "", "keepalive": "60", "Umask": "22", "IdentityFile": "a, b", "PASSWORD": "x"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Canonical(map[string]string{"host": "h", "readonly": "yes", "keepalive": "1m", "umask": "022", "identity": "a,b", "password": "x"})
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 6 || len(b) != 6 {
		t.Fatalf("a=%v b=%v", a, b)
	}
	for k, v := range a {
		if b[k] != v {
			t.Errorf("%s: %q != %q", k, v, b[k])
		}
	}
	if a["ro"] != "true" || a["keepalive"] != "1m0s" || a["umask"] != "022" {
		t.Errorf("a = %v", a)
	}
	c, _ := Canonical(map[string]string{"host": "h2"})
	if c["host"] == a["host"] {
		t.Error("different hosts compare equal")
	}
	if _, err := Canonical(map[string]string{"bogus": "1"}); err == nil {
		t.Error("unknown option accepted")
	}
	if _, err := Canonical(map[string]string{"ro": "maybe"}); err == nil {
		t.Error("bad bool accepted")
	}
}

func TestRedact(t *testing.T) {
	in := map[string]string{"host": "h", "Password": "s1", "identity_b64": "s2", "pasword": "s3", "identity": "id"}
	out := Redact(in)
	if out["host"] != "h" || out["identity"] != "id" || out["Password"] != Redacted || out["identity_b64"] != Redacted || out["pasword"] != Redacted {
		t.Errorf("Redact = %v", out)
	}
	if in["Password"] != "s1" {
		t.Error("Redact changed its input")
	}
}

func TestTableConsistent(t *testing.T) {
	seen := map[string]string{}
	for _, o := range Table() {
		if o.Name != strings.ToLower(o.Name) || strings.Contains(o.Name, "-") {
			t.Errorf("%q is not snake_case", o.Name)
		}
		if o.Help == "" || o.Group == "" {
			t.Errorf("%q lacks help or group", o.Name)
		}
		if o.Values != nil {
			for _, d := range []string{o.Default, o.DefaultVolume} {
				if d != "" && !slices.Contains(o.Values, d) {
					t.Errorf("%q: default %q is not one of its values %v", o.Name, d, o.Values)
				}
			}
		}
		for _, n := range append([]string{o.Name}, o.Aliases...) {
			k := normalize(n)
			if prev, dup := seen[k]; dup {
				t.Errorf("%q collides with %q", n, prev)
			}
			seen[k] = o.Name
			if _, bad := replaced()[k]; bad {
				t.Errorf("%q is both an option and a replaced name", n)
			}
		}
	}
	for _, g := range groupTitles() {
		n := 0
		for _, o := range Table() {
			if o.Group == g[0] {
				n++
			}
		}
		if n == 0 {
			t.Errorf("group %q is empty", g[0])
		}
	}
}

func TestScopeRequired(t *testing.T) {
	if _, err := Parse(map[string]string{"local": "/"}, Env{}); err == nil {
		t.Error("Parse without a scope succeeded")
	}
}

func TestParseList(t *testing.T) {
	m, err := ParseList([]string{`host=h,ro,IdentityFile=a\,b`, "identity=c", `hostkey=SHA256:x`, "hostkey=ssh-ed25519 AAAA", `path=/with\\back`, "bogus=1,,"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"host": "h", "ro": "", "identity": "a,b,c", "hostkey": "SHA256:x,ssh-ed25519 AAAA", "path": `/with\back`, "bogus": "1"}
	if len(m) != len(want) {
		t.Errorf("got %v", m)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %q, want %q", k, m[k], v)
		}
	}
	for _, bad := range [][]string{{"host=a", "host=b"}, {`path=a\b`}, {"=x"}, {`password=sec\`}} {
		_, err := ParseList(bad)
		if err == nil {
			t.Errorf("ParseList(%q) succeeded", bad)
		} else if strings.Contains(err.Error(), "sec") {
			t.Errorf("error leaks value: %v", err)
		}
	}
	if m, err := ParseList([]string{"ro", "ro=", "port=22", "port=22"}); err != nil || m["port"] != "22" {
		t.Errorf("agreeing repeats: %v %v", m, err)
	}
	// The same value in two spellings agrees (sshfs users write
	// ConnectTimeout=1 next to connect_timeout=1s); different values
	// are an error naming both, except secrets.
	if m, err := ParseList([]string{"ConnectTimeout=1,connect_timeout=1s", "ro=yes,readonly=true,umask=22,umask=022,symlinks=keep,symlinks=KEEP"}); err != nil || m["connect_timeout"] != "1" {
		t.Errorf("same value, two spellings: %v %v", m, err)
	}
	if _, err := ParseList([]string{"ConnectTimeout=1,connect_timeout=2s"}); err == nil || !strings.Contains(err.Error(), `("1" and "2s")`) {
		t.Errorf("different values: %v", err)
	}
	if _, err := ParseList([]string{"password=s3cr3t,password=other"}); err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("different secret values: %v", err)
	}
	// Volume options (a map) follow the same rule.
	f := newFixture(t)
	if _, err := Parse(f.base("ConnectTimeout", "1", "connect_timeout", "1s"), f.volume()); err != nil {
		t.Errorf("volume, same value in two spellings: %v", err)
	}
}

func TestBackendValidation(t *testing.T) {
	f := newFixture(t)
	_, err := Parse(f.base("ciphers", "rot13"), f.volume())
	var oe *Error
	if err == nil || !strings.Contains(err.Error(), `"rot13"`) || !errors.As(err, &oe) || oe.Option != "ciphers" {
		t.Errorf("unsupported cipher: %v", err)
	}
}

// Every problem sftp.Config.Validate reports names a field that is an
// option of the table, and the option error points at that option (the
// options used to guess it from the message's first word, which made a
// "max packet ..." message blame the host).
func TestBackendErrorsNameTheirOption(t *testing.T) {
	bad := sftp.Config{
		Host: "a b", Port: -1, Path: "x\x00", PasswordFile: "/p", Password: []byte("pw"),
		CertificateFile: "/c", IdentityInline: [][]byte{{}}, InsecureIgnoreHostKey: true,
		HostKeys: []string{"SHA256:short"}, ConnectTimeout: -1, OpTimeout: -1,
		KeepaliveInterval: -1, KeepaliveCountMax: -1, Ciphers: []string{"rot13"}, MaxPacket: 1 << 30, Conns: 9,
	}
	err := bad.Validate()
	errs := backendErrors(err)
	if len(errs) < 14 {
		t.Fatalf("Validate found %d problems, want at least 14: %v", len(errs), err)
	}
	seen := map[string]bool{}
	for _, e := range errs {
		o, ok := Lookup(e.Option)
		if !ok || o.Name != e.Option {
			t.Errorf("%q: option %q is not in the table", e.Msg, e.Option)
		}
		if !strings.HasPrefix(e.Msg, e.Option) && !strings.Contains(e.Msg, e.Option) {
			t.Errorf("%q does not mention the option %q it is attributed to", e.Msg, e.Option)
		}
		seen[e.Option] = true
	}
	for _, want := range []string{OptHost, OptPort, OptPath, OptPassword, OptIdentityB64, OptInsecureIgnoreHostKey,
		OptHostKey, OptConnectTimeout, OptOpTimeout, OptKeepalive, OptKeepaliveCount, OptCiphers, OptMaxPacket, OptConns} {
		if !seen[want] {
			t.Errorf("no error attributed to %q; got %v", want, errs)
		}
	}
	// Each joined error is a typed field error.
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *sftp.FieldError
		if !errors.As(e, &fe) || fe.Field == "" {
			t.Errorf("%v is not a *sftp.FieldError with a field", e)
		}
	}
}
