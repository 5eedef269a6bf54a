package sshcompat

import (
	"crypto/ed25519"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/sftpfs/sftpfs/options"
)

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want Args
		err  string
	}{
		{args: []string{"h:/p", "/mnt"}, want: Args{Source: "h:/p", Mountpoint: "/mnt"}},
		// sshfs habits, flags before and after, joined and separate.
		{args: []string{"-p", "2222", "h:/p", "/mnt", "-o", "reconnect", "-oro", "-f"},
			want: Args{Source: "h:/p", Mountpoint: "/mnt", Port: "2222", Opts: []string{"reconnect", "ro"}, Foreground: true}},
		{args: []string{"-p2222", "-F", "none", "h:", "m"}, want: Args{Source: "h:", Mountpoint: "m", Port: "2222", ConfigFile: "none"}},
		{args: []string{"-Fcfg", "-d", "h:", "m"}, want: Args{Source: "h:", Mountpoint: "m", ConfigFile: "cfg", Debug: true, Foreground: true}},
		// mount(8) helper flags.
		{args: []string{"h:", "m", "-n", "-s", "-v", "-o", "rw"}, want: Args{Source: "h:", Mountpoint: "m", Opts: []string{"rw"}}},
		{args: []string{"--", "-odd:", "m"}, want: Args{Source: "-odd:", Mountpoint: "m"}},
		{args: []string{"-p", "1", "-p", "2", "h:", "m"}, err: "-p is given twice"},
		{args: []string{"h:", "m", "-p"}, err: "-p needs a value"},
		{args: []string{"h:", "m", "-x"}, err: `unknown flag "-x"`},
		{args: []string{"h:", "m", "-C"}, err: "compress"},
		{args: []string{"h:", "m", "-1"}, err: "protocol 1"},
		{args: []string{"--debug", "h:", "m"}, want: Args{Source: "h:", Mountpoint: "m", Debug: true, Foreground: true}},
		{args: []string{"h:"}, err: "want SOURCE and MOUNTPOINT"},
		{args: []string{"h:", "/dev/fd/3", "-o", "rw"}, err: "drop_privileges"},
	} {
		got, _, err := ParseArgs(tc.args)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseArgs(%q) error = %v, want %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseArgs(%q): %v", tc.args, err)
			continue
		}
		if got.Source != tc.want.Source || got.Mountpoint != tc.want.Mountpoint || got.Port != tc.want.Port ||
			got.ConfigFile != tc.want.ConfigFile || got.Foreground != tc.want.Foreground || got.Debug != tc.want.Debug ||
			strings.Join(got.Opts, "|") != strings.Join(tc.want.Opts, "|") {
			t.Errorf("ParseArgs(%q) = %+v, want %+v", tc.args, got, tc.want)
		}
	}
	if _, help, _ := ParseArgs([]string{"h:", "-h"}); !help {
		t.Error("-h is not help")
	}
}

func TestLooksLikeSource(t *testing.T) {
	for arg, want := range map[string]bool{
		"host:/srv": true, "alias:": true, "u@h:p": true, "/srv/dir": true, "local:/d": true, "-p": true,
		"frobnicate": false, "mount": false,
	} {
		if got := LooksLikeSource(arg); got != want {
			t.Errorf("LooksLikeSource(%q) = %v", arg, got)
		}
	}
}

// TestTranslate is the migration table of README "Coming from sshfs":
// every sshfs flag and -o name listed there, and mount(8)'s generic
// options, with what each becomes.
func TestTranslate(t *testing.T) {
	caller := Caller{UID: 1234, GID: 5678}
	for _, tc := range []struct {
		opts []string
		port string
		want map[string]string
		plan func(Plan) bool // extra check on the plan
		err  string
	}{
		// sshfs -o names
		{opts: []string{"reconnect"}, want: map[string]string{}},
		{opts: []string{"ServerAliveInterval=15,ServerAliveCountMax=4"}, want: map[string]string{"keepalive": "15", "keepalive_count": "4"}},
		{opts: []string{"ServerAliveInterval=0"}, want: map[string]string{}, plan: func(p Plan) bool { return len(p.Warnings) == 1 }},
		{opts: []string{"IdentityFile=/k1", "IdentityFile=/k2"}, want: map[string]string{"identity": "/k1,/k2"}},
		{opts: []string{"UserKnownHostsFile=/kh"}, want: map[string]string{"known_hosts": "/kh"}},
		{opts: []string{"GlobalKnownHostsFile=/g"}, want: map[string]string{"known_hosts": "/g"}},
		{opts: []string{"IdentitiesOnly=yes"}, want: map[string]string{OptIdentitiesOnly: "yes"}},
		{opts: []string{"CertificateFile=/c"}, want: map[string]string{"certificate": "/c"}},
		{opts: []string{"Port=2222"}, want: map[string]string{"port": "2222"}},
		{opts: []string{"HostName=10.0.0.1"}, want: map[string]string{"host": "10.0.0.1"}},
		{opts: []string{"User=bob"}, want: map[string]string{"user": "bob"}},
		{opts: []string{"ConnectTimeout=5"}, want: map[string]string{"connect_timeout": "5"}},
		{opts: []string{"Ciphers=aes128-ctr"}, want: map[string]string{"ciphers": "aes128-ctr"}},
		{opts: []string{"ProxyJump=jump@j:2200"}, want: map[string]string{OptProxyJump: "jump@j:2200"}},
		{opts: []string{"ProxyJump=none"}, want: map[string]string{}},
		{opts: []string{"idmap=user"}, want: map[string]string{"uid": "1234", "gid": "5678"}},
		{opts: []string{"idmap=none"}, want: map[string]string{}},
		{opts: []string{"uid=1,gid=2,umask=022"}, want: map[string]string{"uid": "1", "gid": "2", "umask": "022"}},
		{opts: []string{"allow_other,default_permissions"}, want: map[string]string{"allow_other": "", "default_permissions": ""}},
		{opts: []string{"ro"}, want: map[string]string{"ro": ""}},
		{opts: []string{"sshfs_debug"}, want: map[string]string{"debug": "true"}},
		{opts: []string{"BatchMode=yes"}, want: map[string]string{}},
		{opts: []string{"Compression=no"}, want: map[string]string{}},
		{opts: []string{"big_writes"}, want: map[string]string{}},
		{opts: []string{"max_write=65536"}, want: map[string]string{"max_write": "65536"}},
		{opts: []string{"entry_timeout=2,attr_timeout=3,negative_timeout=4"}, want: map[string]string{"entry_timeout": "2", "attr_timeout": "3", "negative_timeout": "4"}},
		{opts: []string{"StrictHostKeyChecking=yes"}, want: map[string]string{}, plan: func(p Plan) bool { return p.StrictHostKeyChecking == "yes" }},
		{opts: []string{"StrictHostKeyChecking=accept-new"}, want: map[string]string{}, plan: func(p Plan) bool { return p.StrictHostKeyChecking == "accept-new" }},
		{opts: []string{"ssh_config=/c"}, want: map[string]string{}, plan: func(p Plan) bool { return p.SSHConfig == "/c" }},
		{opts: []string{"foreground"}, want: map[string]string{}, plan: func(p Plan) bool { return p.Foreground }},
		// kept for options.Parse to accept or explain (kernel_cache etc.)
		{opts: []string{"kernel_cache"}, want: map[string]string{"kernel_cache": ""}},
		// mount(8) and systemd
		{opts: []string{"_netdev,nofail,noauto,auto,defaults,user,users,nouser,owner,group,nodev,nosuid,dev,suid,async,noatime,relatime,atime"}, want: map[string]string{}},
		{opts: []string{"x-systemd.automount,x-systemd.idle-timeout=60,x-mount.mkdir,comment=systemd.automount"}, want: map[string]string{}},
		{opts: []string{"rw"}, want: map[string]string{"ro": "false"}},
		{opts: []string{"noexec"}, want: map[string]string{"noexec": ""}},
		{opts: []string{"exec"}, want: map[string]string{"noexec": "false"}},
		{opts: []string{"user=alice"}, want: map[string]string{"user": "alice"}},
		// -p and its -o spellings agree or conflict.
		{port: "2222", opts: []string{"Port=2222"}, want: map[string]string{"port": "2222"}},
		{port: "2222", opts: []string{"port=22"}, err: `"port" is given twice`},
		// The same value in two spellings is one value; different
		// values conflict.
		{opts: []string{"ConnectTimeout=1,connect_timeout=1s"}, want: map[string]string{"connect_timeout": "1"}},
		{opts: []string{"ConnectTimeout=1,connect_timeout=2s"}, err: `"connect_timeout" is given twice with different values ("1" and "2s")`},
		{opts: []string{"rw,ro"}, err: `"ro" is given twice`},
		// refused, with what to use
		{opts: []string{"ProxyCommand=ssh -W %h:%p j"}, err: "ProxyJump"},
		{opts: []string{"StrictHostKeyChecking=no"}, err: "accept-new"},
		{opts: []string{"StrictHostKeyChecking=ask"}, err: "never prompts"},
		{opts: []string{"idmap=file"}, err: "uid=N,gid=N"},
		{opts: []string{"Compression=yes"}, err: "does not compress"},
		{opts: []string{"BatchMode=no"}, err: "never prompts"},
		{opts: []string{"delay_connect"}, err: "connects when mounting"},
		{opts: []string{"HashKnownHosts=yes"}, err: "ssh_config"},
		{opts: []string{"ssh_config"}, err: "needs a file"},
		{opts: []string{"=x"}, err: "no name"},
		{opts: []string{"contain_symlinks"}, want: map[string]string{"symlinks": "contain"}},
		{opts: []string{"transform_symlinks"}, want: map[string]string{"symlinks": "contain"}},
		{opts: []string{"no_contain_symlinks"}, want: map[string]string{"symlinks": "keep"}},
		{opts: []string{"max_conns=4"}, want: map[string]string{"conns": "4"}},
		{opts: []string{"sshfs_sync"}, err: "fsync"},
		{opts: []string{"no_readahead"}, err: "sequential"},
		{opts: []string{"sync_readdir"}, err: "remove it"},
		{opts: []string{"direct_io"}, err: "attr_timeout=0"},
		{opts: []string{"disable_hardlink"}, err: "remove it"},
		{opts: []string{"no_check_root"}, err: "create_path"},
		{opts: []string{"passive"}, err: "remove it"},
		{opts: []string{"uidfile=/f"}, err: "idmap=user"},
		{opts: []string{"gidfile=/f"}, err: "idmap=user"},
		{opts: []string{"nomap=ignore"}, err: "idmap=user"},
		{opts: []string{"noforget"}, err: "remove it"},
		{opts: []string{"remember=5"}, err: "remove it"},
		{opts: []string{"modules=iconv"}, err: "libfuse"},
		{opts: []string{"no_rofd_flush"}, err: "remove it"},
		{opts: []string{"ac_attr_timeout=1"}, err: "attr_timeout"},
		{opts: []string{"ssh_protocol=2"}, err: "SSH 2"},
		{opts: []string{"dcache_timeout=20"}, err: "kernel cache"},
	} {
		p, err := Translate(Args{Opts: tc.opts, Port: tc.port}, caller)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Translate(%q) error = %v, want %q", tc.opts, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Translate(%q): %v", tc.opts, err)
			continue
		}
		if !maps.Equal(p.Opts, tc.want) {
			t.Errorf("Translate(%q) = %v, want %v", tc.opts, p.Opts, tc.want)
		}
		if tc.plan != nil && !tc.plan(p) {
			t.Errorf("Translate(%q): plan %+v", tc.opts, p)
		}
	}
}

// TestTranslateParses runs mapped options through options.Parse, so a
// mapping to a name the table lacks cannot pass unnoticed (except the
// two names of the backend side of issue 12).
func TestTranslateParses(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	kh := filepath.Join(dir, "kh")
	for _, f := range []string{key, kh} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p, err := Translate(Args{Port: "2222", Opts: []string{
		"IdentityFile=" + key + ",UserKnownHostsFile=" + kh + ",reconnect,ServerAliveInterval=15,ServerAliveCountMax=5,idmap=user",
		"ConnectTimeout=3,connect_timeout=3s,Ciphers=aes128-ctr,rw,nodev,nosuid,noexec,_netdev,nofail,x-systemd.automount,default_permissions,allow_other",
	}}, Caller{UID: 1000, GID: 1000})
	if err != nil {
		t.Fatal(err)
	}
	p.Opts["host"], p.Opts["user"] = "h", "u"
	cfg, err := options.Parse(p.Opts, options.Env{Scope: options.ScopeCLI})
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.SFTP
	if c.Port != 2222 || c.KeepaliveInterval.Seconds() != 15 || c.KeepaliveCountMax != 5 || c.ConnectTimeout.Seconds() != 3 ||
		cfg.FS.UID != 1000 || cfg.FS.GID != 1000 || !cfg.FS.NoExec || cfg.FS.ReadOnly || !cfg.FS.AllowOther ||
		strings.Join(c.IdentityFiles, ",") != key || strings.Join(c.KnownHostsFiles, ",") != kh {
		t.Errorf("parsed %+v / %+v", c, cfg.FS)
	}
}

// writeFile writes a file in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResolveSSHConfig(t *testing.T) {
	home := t.TempDir()
	l := Local{Home: home, User: "me", Hostname: "box", UID: 1, GID: 2}
	key := writeFile(t, home, ".ssh/id_work", "")
	writeFile(t, home, ".ssh/id_box_bob", "")
	kh := writeFile(t, home, ".ssh/kh_work", "")
	writeFile(t, home, ".ssh/config", `
# first obtained value wins: the alias block comes first
Host work
  HostName 127.0.0.1
  Port 2200
  User deploy
  IdentityFile ~/.ssh/id_work
  IdentityFile ~/.ssh/missing_%r
  UserKnownHostsFile ~/.ssh/kh_work
  ConnectTimeout 7
  ServerAliveInterval 20
  ServerAliveCountMax 2
  Ciphers aes256-ctr
  IdentitiesOnly yes
  ProxyJump hop@j:22
  StrictHostKeyChecking accept-new
  HashKnownHosts yes

Host *.example.org
  HostName %h.internal
  User bob
  IdentityFile %d/.ssh/id_%l_%r

Host bad
  ProxyCommand ssh -W %h:%p j

Host *
  Port 2201
  User fallback
`)
	res, err := Resolve(Args{Source: "work:/srv"}, l)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"host": "127.0.0.1", "port": "2200", "user": "deploy", "path": "/srv", "identity": key, "known_hosts": kh,
		"connect_timeout": "7", "keepalive": "20", "keepalive_count": "2", "ciphers": "aes256-ctr",
		OptIdentitiesOnly: "yes", OptProxyJump: "hop@j:22",
	}
	if !maps.Equal(res.Opts, want) {
		t.Errorf("work: %v\nwant %v", res.Opts, want)
	}
	if !res.AcceptNew || !res.HashKnownHosts || res.KnownHosts != kh || len(res.Warnings) != 1 {
		t.Errorf("work: accept-new %v hash %v known_hosts %q warnings %q", res.AcceptNew, res.HashKnownHosts, res.KnownHosts, res.Warnings)
	}

	// Explicit options beat the file: SOURCE user, -p, -o.
	res, err = Resolve(Args{Source: "admin@work:", Port: "2300", Opts: []string{"ConnectTimeout=1,StrictHostKeyChecking=yes,UserKnownHostsFile=/x"}}, l)
	if err != nil {
		t.Fatal(err)
	}
	if o := res.Opts; o["user"] != "admin" || o["port"] != "2300" || o["connect_timeout"] != "1" || o["known_hosts"] != "/x" || res.AcceptNew || res.KnownHosts != "/x" {
		t.Errorf("explicit: %v accept-new %v", o, res.AcceptNew)
	}

	// Patterns and tokens: %h (the alias), %d, %l, %r.
	res, err = Resolve(Args{Source: "files.example.org:"}, l)
	if err != nil {
		t.Fatal(err)
	}
	if o := res.Opts; o["host"] != "files.example.org.internal" || o["user"] != "bob" || o["port"] != "2201" ||
		o["identity"] != filepath.Join(home, ".ssh/id_box_bob") {
		t.Errorf("pattern: %v", o)
	}
	if res.KnownHosts != filepath.Join(home, ".ssh", "known_hosts") {
		t.Errorf("default known_hosts for accept-new = %q", res.KnownHosts)
	}

	// accept-new records into the user's file (from the config, not yet
	// existing), never into a global one, and the check reads it too.
	global := writeFile(t, home, "global_kh", "")
	newKH := filepath.Join(home, ".ssh", "kh_new")
	writeFile(t, home, "an_config", "Host an\n  UserKnownHostsFile "+newKH+"\n  GlobalKnownHostsFile "+global+"\n  StrictHostKeyChecking accept-new\n")
	res, err = Resolve(Args{Source: "an:", ConfigFile: filepath.Join(home, "an_config")}, l)
	if err != nil || !res.AcceptNew || res.KnownHosts != newKH || res.Opts["known_hosts"] != newKH+","+global {
		t.Errorf("accept-new with a new UserKnownHostsFile: %+v %v", res, err)
	}
	// -o StrictHostKeyChecking=yes beats the file; the file's "no" is a
	// warning, not a failure.
	res, err = Resolve(Args{Source: "an:", ConfigFile: filepath.Join(home, "an_config"), Opts: []string{"StrictHostKeyChecking=yes"}}, l)
	if err != nil || res.AcceptNew || res.Opts["known_hosts"] != global {
		t.Errorf("explicit yes: %+v %v", res, err)
	}
	writeFile(t, home, "no_config", "Host *\n  StrictHostKeyChecking no\n")
	res, err = Resolve(Args{Source: "x:", ConfigFile: filepath.Join(home, "no_config")}, l)
	if err != nil || res.AcceptNew || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "ignored") {
		t.Errorf("StrictHostKeyChecking no in the file: %+v %v", res, err)
	}

	if _, err := Resolve(Args{Source: "bad:"}, l); err == nil || !strings.Contains(err.Error(), "ProxyCommand is not supported") || !strings.Contains(err.Error(), "ProxyJump") {
		t.Errorf("ProxyCommand: %v", err)
	}
	// -F none and -o ssh_config=none read no file; -F FILE reads that one.
	for _, a := range []Args{{Source: "work:", ConfigFile: "none"}, {Source: "work:", Opts: []string{"ssh_config=none"}}} {
		res, err := Resolve(a, l)
		if err != nil || res.Opts["host"] != "work" || res.SSHConfigFile != "" {
			t.Errorf("%+v: %v %v", a, res, err)
		}
	}
	other := writeFile(t, home, "other_config", "Host work\n  HostName 10.1.1.1\n")
	res, err = Resolve(Args{Source: "work:", ConfigFile: other}, l)
	if err != nil || res.Opts["host"] != "10.1.1.1" || res.Opts["port"] != "" {
		t.Errorf("-F: %v %v", res, err)
	}
	if _, err := Resolve(Args{Source: "work:", ConfigFile: filepath.Join(home, "nope")}, l); err == nil || !strings.Contains(err.Error(), "-F none") {
		t.Errorf("missing -F file: %v", err)
	}
	// No ~/.ssh/config is fine; local sources never read it.
	res, err = Resolve(Args{Source: "h:/p"}, Local{Home: t.TempDir()})
	if err != nil || !maps.Equal(res.Opts, map[string]string{"host": "h", "path": "/p"}) {
		t.Errorf("no config: %v %v", res, err)
	}
	res, err = Resolve(Args{Source: "local:/d", ConfigFile: "/nonexistent"}, l)
	if err != nil || !res.Local {
		t.Errorf("local: %v %v", res, err)
	}
	if _, err := Resolve(Args{Source: "u@h:", Opts: []string{"user=x"}}, l); err == nil || !strings.Contains(err.Error(), "remove -o user") {
		t.Errorf("SOURCE conflict: %v", err)
	}
}

func TestTokens(t *testing.T) {
	tk := tokens{alias: "a", host: "h", user: "r", port: "22", l: Local{Home: "/home/me", User: "me", Hostname: "box"}}
	got, err := tk.expand("~/x/%d/%h/%l/%n/%p/%r/%u/%%")
	if want := "/home/me/x//home/me/h/box/a/22/r/me/%"; err != nil || got != want {
		t.Errorf("expand = %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{"%C", "x%"} {
		if _, err := tk.expand(bad); err == nil {
			t.Errorf("expand(%q) succeeded", bad)
		}
	}
}

func TestKnownHosts(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "sub", "known_hosts")
	if err := PrepareKnownHosts(file); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("prepared file: %v %v", st, err)
	}
	if known, err := HostKnown([]string{file}, "127.0.0.1", 2222); err != nil || known {
		t.Fatalf("empty file knows the host: %v %v", known, err)
	}
	// OpenSSH's format: [host]:port off port 22, plain host on 22.
	if l := KnownHostsLine("127.0.0.1", 2222, key, false); !strings.HasPrefix(l, "[127.0.0.1]:2222 ssh-ed25519 ") {
		t.Errorf("line = %q", l)
	}
	if l := KnownHostsLine("example.com", 22, key, false); !strings.HasPrefix(l, "example.com ssh-ed25519 ") {
		t.Errorf("line = %q", l)
	}
	// A file without a final newline gets one before the new line.
	if err := os.WriteFile(file, []byte("# no newline"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := AppendKnownHost(file, KnownHostsLine("127.0.0.1", 2222, key, true)); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(file)
	if lines := strings.Split(string(b), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[1], "|1|") {
		t.Errorf("file = %q", b)
	}
	// The hashed line is found by knownhosts, for this port only.
	cb, err := knownhosts.New(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := cb("127.0.0.1:2222", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2222}, key); err != nil {
		t.Errorf("recorded key not accepted: %v", err)
	}
	if known, err := HostKnown([]string{file}, "127.0.0.1", 2222); err != nil || !known {
		t.Errorf("HostKnown after recording: %v %v", known, err)
	}
	if known, _ := HostKnown([]string{file}, "127.0.0.1", 2223); known {
		t.Error("another port is known")
	}
}

// TestRefusedByOptions: sshfs names that Translate passes on are refused
// by options.Parse with the reason and the sftpfs option to use.
func TestRefusedByOptions(t *testing.T) {
	for name, want := range map[string]string{
		"kernel_cache":      "attr_timeout",
		"auto_cache":        "attr_timeout",
		"dir_cache=no":      "attr_timeout",
		"cache=no":          "attr_timeout",
		"cache_timeout=5":   "attr_timeout",
		"follow_symlinks":   "shown as symlinks",
		"workaround=rename": "not supported",
		"ssh_command=ssh":   "never runs external commands",
		"sftp_server=/x":    "not supported",
		"directport=22":     "not supported",
		"password_stdin":    "password_file",
		"allow_root":        "allow_other",
		"nonempty":          "not supported",
		"max_read=65536":    "not supported",
	} {
		p, err := Translate(Args{Opts: []string{name}}, Caller{})
		if err != nil {
			t.Errorf("Translate(%q): %v", name, err)
			continue
		}
		p.Opts["host"], p.Opts["user"], p.Opts["insecure_ignore_host_key"], p.Opts["password"] = "h", "u", "true", "x"
		_, err = options.Parse(p.Opts, options.Env{Scope: options.ScopeCLI})
		if err == nil || !strings.Contains(err.Error(), "is not an sftpfs option") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want a refusal mentioning %q", name, err, want)
		}
	}
}
