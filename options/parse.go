package options

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/sftpfs/sftpfs/backend/sftp"
	"github.com/sftpfs/sftpfs/fusefs"
)

// Backend names for Config.Backend.
const (
	BackendSFTP  = "sftp"
	BackendLocal = "local"
)

// Env says who is parsing and where file options resolve.
type Env struct {
	// Scope is ScopeCLI for `sftpfs mount` or ScopeVolume for the Docker
	// plugin. ScopeBoth is rejected: file resolution rules differ and a
	// caller must choose.
	Scope Scope
	// SecretsDir (ScopeVolume) is the directory that file options name
	// files in. Empty: file options are rejected.
	SecretsDir string
	// BaseDir (ScopeCLI) is what relative file names are relative to,
	// normally the current directory. Empty: used as given.
	BaseDir string
	// Home (ScopeCLI), when set, enables OpenSSH-like defaults: "~/"
	// expansion, ~/.ssh/id_ed25519, id_ecdsa, id_rsa as identities and
	// ~/.ssh/known_hosts, each only if it exists.
	Home string
	// SystemKnownHosts (ScopeCLI) is the system-wide known_hosts file
	// read after ~/.ssh/known_hosts when neither known_hosts nor hostkey
	// is given, if it exists (normally /etc/ssh/ssh_known_hosts, as
	// OpenSSH's GlobalKnownHostsFile). The plugin never reads the
	// host's: its known_hosts files live in the secrets directory.
	SystemKnownHosts string
	// AgentSocket (ScopeCLI) is the default ssh_agent ($SSH_AUTH_SOCK).
	AgentSocket string
	// DefaultUser (ScopeCLI) is the login user when none is given.
	DefaultUser string
}

// Config is the result of Parse: everything needed to open a backend and
// mount it.
type Config struct {
	// Backend is BackendSFTP or BackendLocal.
	Backend string
	// SFTP is the connection configuration (BackendSFTP).
	SFTP sftp.Config
	// LocalRoot is the directory served (BackendLocal).
	LocalRoot string
	// FS holds the FUSE options; FSName is set to the Remote string.
	FS fusefs.Options
	// LogLevel is slog.LevelDebug with the debug option, else Info.
	LogLevel slog.Level
	// MetricsAddr is where `sftpfs mount` serves metrics ("" = off).
	MetricsAddr string
	// Warnings are things the user should hear about but that do not stop
	// the mount (inline secrets, disabled host key checking). They never
	// contain secrets.
	Warnings []string
}

// Remote describes where the data lives, without secrets:
// "user@host:port/abs/path", "user@host:port/~/rel/path" for paths
// relative to the login directory, or "local:/dir".
func (c *Config) Remote() string {
	if c.Backend == BackendLocal {
		return "local:" + c.LocalRoot
	}
	port := c.SFTP.Port
	if port == 0 {
		port = 22
	}
	p := c.SFTP.Path
	switch {
	case p == "" || p == ".":
		p = "/~"
	case strings.HasPrefix(p, "/"):
	default:
		p = "/~/" + p
	}
	return c.SFTP.User + "@" + net.JoinHostPort(c.SFTP.Host, strconv.Itoa(port)) + p
}

// given is one option as the user wrote it, resolved to the table.
type given struct {
	opt   Option
	name  string // as written
	value string
}

// resolve maps user-written names to table options, checking scope and
// duplicates. It returns the options by canonical name.
func resolve(opts map[string]string, scope Scope) (map[string]given, []error) {
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := map[string]given{}
	var errs []error
	for _, k := range keys {
		o, ok := Lookup(k)
		if !ok {
			errs = append(errs, unknownError(k))
			continue
		}
		if scope == ScopeVolume && o.Scope == ScopeCLI {
			errs = append(errs, errorf(o.Name, "option %q only works with `sftpfs mount`, not for Docker volumes", o.Name))
			continue
		}
		if scope == ScopeCLI && o.Scope == ScopeVolume {
			errs = append(errs, errorf(o.Name, "option %q only works for Docker volumes, not with `sftpfs mount`", o.Name))
			continue
		}
		v := strings.TrimSpace(opts[k])
		if prev, dup := out[o.Name]; dup {
			if !SameValue(o, prev.value, v) {
				errs = append(errs, errorf(o.Name, "option %q is given twice (as %q and %q) with different values; give it once", o.Name, prev.name, k))
			}
			continue
		}
		out[o.Name] = given{opt: o, name: k, value: v}
	}
	return out, errs
}

// valueError reports a malformed value, quoting it unless it is secret.
func valueError(o Option, value, want string) *Error {
	if o.Secret {
		return errorf(o.Name, "option %q: invalid value; want %s", o.Name, want)
	}
	return errorf(o.Name, "option %q: invalid value %q; want %s", o.Name, value, want)
}

func parseBool(o Option, v string) (bool, error) {
	switch strings.ToLower(v) {
	case "", "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return false, valueError(o, v, "true or false")
}

func parseInt(o Option, v string, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, valueError(o, v, fmt.Sprintf("a whole number from %d to %d", lo, hi))
	}
	return n, nil
}

func parseDuration(o Option, v string, allowZero bool) (time.Duration, error) {
	want := "a duration like 15s, 2m or 1m30s (a bare number means seconds)"
	if !allowZero {
		want = "a positive " + strings.TrimPrefix(want, "a ")
	}
	var d time.Duration
	if n, err := strconv.ParseFloat(v, 64); err == nil && !strings.ContainsAny(v, "eEnNxX") {
		if n > float64(1<<31) {
			return 0, valueError(o, v, want)
		}
		d = time.Duration(n * float64(time.Second))
	} else if d, err = time.ParseDuration(v); err != nil {
		return 0, valueError(o, v, want)
	}
	if d < 0 || (d == 0 && !allowZero) {
		return 0, valueError(o, v, want)
	}
	return d, nil
}

func parseMode(o Option, v string) (fs.FileMode, error) {
	n, err := strconv.ParseUint(v, 8, 32)
	if err != nil || n > 0o777 {
		return 0, valueError(o, v, "octal permission bits from 000 to 777, like 022")
	}
	return fs.FileMode(n), nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// ParseRemote splits an SFTP location "[user@]host[:path]" (host may be
// a bracketed IPv6 address) as used by sshcmd and the `sftpfs mount`
// SOURCE argument.
func ParseRemote(s string) (user, host, path string, err error) {
	want := "want [user@]host:[path], like deploy@files.example.com:/srv/data"
	rest := s
	stop := strings.IndexAny(s, ":[")
	if stop < 0 {
		stop = len(s)
	}
	if at := strings.LastIndex(s[:stop], "@"); at >= 0 {
		user, rest = s[:at], s[at+1:]
		if user == "" {
			return "", "", "", fmt.Errorf("empty user before @ in %q; %s", s, want)
		}
	}
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 {
			return "", "", "", fmt.Errorf("missing ] after IPv6 address in %q; %s", s, want)
		}
		host, rest = rest[1:end], rest[end+1:]
		if rest != "" && rest[0] != ':' {
			return "", "", "", fmt.Errorf("unexpected %q after ] in %q; %s", rest, s, want)
		}
		path = strings.TrimPrefix(rest, ":")
	} else {
		host, path, _ = strings.Cut(rest, ":")
	}
	if host == "" {
		return "", "", "", fmt.Errorf("no host in %q; %s", s, want)
	}
	if strings.ContainsAny(host, " \t\n/@[]") || strings.ContainsAny(user, " \t\n:") {
		return "", "", "", fmt.Errorf("malformed location %q; %s", s, want)
	}
	return user, host, path, nil
}

// checkHostKey accepts a "SHA256:" fingerprint or a public key line.
func checkHostKey(k string) bool {
	if fp, ok := strings.CutPrefix(k, "SHA256:"); ok {
		b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(fp, "="))
		return err == nil && len(b) == 32
	}
	_, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k))
	return err == nil
}

// decodeB64 accepts standard or URL base64, padded or not, ignoring
// whitespace (so a wrapped `base64` output works too).
func decodeB64(v string) ([]byte, error) {
	v = strings.Join(strings.Fields(v), "")
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(v); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// fileKind says what a File option must point at.
type fileKind int

const (
	regularFile fileKind = iota
	socketFile
	directory
)

// resolveFile turns a File option value into a path following env's
// rules and checks that it exists and is usable.
func resolveFile(g given, v string, env Env, kind fileKind) (string, error) {
	o := g.opt
	var p string
	switch {
	case env.Scope == ScopeCLI || o.Name == OptLocal:
		p = v
		if env.Home != "" && (p == "~" || strings.HasPrefix(p, "~/")) {
			p = filepath.Join(env.Home, strings.TrimPrefix(p, "~"))
		}
		if !filepath.IsAbs(p) {
			if env.Scope == ScopeVolume {
				return "", errorf(o.Name, "option %q: %q must be an absolute path inside the plugin", o.Name, v)
			}
			if env.BaseDir != "" {
				p = filepath.Join(env.BaseDir, p)
			}
		}
		p = filepath.Clean(p)
	default:
		if env.SecretsDir == "" {
			return "", errorf(o.Name, "option %q names a file, but this plugin has no secrets directory configured; use an inline option or configure the secrets mount", o.Name)
		}
		name := v
		if filepath.IsAbs(name) && normalize(g.name) == normalize("IdentityFile") {
			// vieux/sshfs volumes name a path on the host; the key must
			// now be in the secrets directory under the same file name.
			name = filepath.Base(name)
		}
		if filepath.IsAbs(name) {
			return "", errorf(o.Name, "option %q: %q is an absolute path; for volumes give the name of a file in the plugin's secrets directory (%s), e.g. %s=%s", o.Name, v, env.SecretsDir, o.Name, filepath.Base(name))
		}
		for _, el := range strings.Split(filepath.ToSlash(name), "/") {
			if el == ".." {
				return "", errorf(o.Name, "option %q: %q may not contain \"..\"; give the name of a file in the plugin's secrets directory (%s)", o.Name, v, env.SecretsDir)
			}
		}
		p = filepath.Join(env.SecretsDir, filepath.Clean(name))
	}
	hint := "check the path and its permissions"
	if env.Scope == ScopeVolume && o.Name != OptLocal {
		hint = fmt.Sprintf("put the file in the plugin's secrets directory (%s) and check its permissions", env.SecretsDir)
	}
	st, err := os.Stat(p)
	if err != nil {
		return "", errorf(o.Name, "option %q: cannot use %q: %v; %s", o.Name, p, unwrapPathErr(err), hint)
	}
	switch kind {
	case directory:
		if !st.IsDir() {
			return "", errorf(o.Name, "option %q: %q is not a directory", o.Name, p)
		}
	case socketFile:
		if st.Mode().Type() != fs.ModeSocket {
			return "", errorf(o.Name, "option %q: %q is not a socket; give the ssh-agent socket ($SSH_AUTH_SOCK)", o.Name, p)
		}
	default:
		if !st.Mode().IsRegular() {
			return "", errorf(o.Name, "option %q: %q is not a regular file; %s", o.Name, p, hint)
		}
		f, err := os.Open(p)
		if err != nil {
			return "", errorf(o.Name, "option %q: cannot read %q: %v; %s", o.Name, p, unwrapPathErr(err), hint)
		}
		f.Close()
	}
	return p, nil
}

// unwrapPathErr drops the path from an *fs.PathError, which the caller
// already prints.
func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// explicitSSH lists the SSH-only options given, for the local conflict.
func explicitSSH(g map[string]given) []string {
	var out []string
	for name, x := range g {
		if x.opt.Group == GroupConnection || x.opt.Group == GroupAuth || x.opt.Group == GroupHostKey {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Parse validates opts (as written by the user: any spelling, aliases)
// and builds a Config. All problems found are returned together (joined;
// each is an *Error); no message contains a secret value.
func Parse(opts map[string]string, env Env) (*Config, error) {
	if env.Scope != ScopeCLI && env.Scope != ScopeVolume {
		return nil, errors.New("options.Parse: Env.Scope must be ScopeCLI or ScopeVolume")
	}
	g, errs := resolve(opts, env.Scope)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	p := parser{g: g, env: env}
	cfg := p.build()
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return cfg, nil
}

// parser accumulates errors while converting values.
type parser struct {
	g    map[string]given
	env  Env
	errs []error
}

func (p *parser) fail(err error) { p.errs = append(p.errs, err) }

func (p *parser) has(name string) bool { _, ok := p.g[name]; return ok }

// raw returns the given value or the table default.
func (p *parser) raw(name string) (given, string) {
	if x, ok := p.g[name]; ok {
		return x, x.value
	}
	o, _ := Lookup(name)
	return given{opt: o, name: name}, o.DefaultFor(p.env.Scope)
}

// choice returns the value of an option with a fixed set of Values,
// lower-cased, or "" after recording an error naming the valid values.
func (p *parser) choice(name string) string {
	x, v := p.raw(name)
	c, err := parseChoice(x.opt, v)
	if err != nil {
		p.fail(err)
	}
	return c
}

func parseChoice(o Option, v string) (string, error) {
	lv := strings.ToLower(strings.TrimSpace(v))
	for _, ok := range o.Values {
		if lv == ok {
			return lv, nil
		}
	}
	return "", valueError(o, v, "one of "+strings.Join(o.Values, ", "))
}

func (p *parser) str(name string) string { _, v := p.raw(name); return v }

func (p *parser) boolean(name string) bool {
	x, v := p.raw(name)
	b, err := parseBool(x.opt, v)
	if err != nil {
		p.fail(err)
	}
	return b
}

func (p *parser) integer(name string, lo, hi int64) int64 {
	x, v := p.raw(name)
	n, err := parseInt(x.opt, v, lo, hi)
	if err != nil {
		p.fail(err)
	}
	return n
}

func (p *parser) duration(name string, allowZero bool) time.Duration {
	x, v := p.raw(name)
	d, err := parseDuration(x.opt, v, allowZero)
	if err != nil {
		p.fail(err)
	}
	return d
}

func (p *parser) files(name string, kind fileKind) []string {
	x, v := p.raw(name)
	var out []string
	for _, item := range splitList(v) {
		f, err := resolveFile(x, item, p.env, kind)
		if err != nil {
			p.fail(err)
			continue
		}
		out = append(out, f)
	}
	return out
}

func (p *parser) file(name string, kind fileKind) string {
	x, v := p.raw(name)
	if v == "" {
		return ""
	}
	f, err := resolveFile(x, v, p.env, kind)
	if err != nil {
		p.fail(err)
	}
	return f
}

// existing returns the paths that exist as regular files.
func existing(paths ...string) []string {
	var out []string
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			out = append(out, p)
		}
	}
	return out
}

func (p *parser) build() *Config {
	cfg := &Config{FS: fusefs.DefaultOptions()}

	// fs
	fo := &cfg.FS
	fo.UID = int(p.integer(OptUID, -1, 1<<32-2))
	fo.GID = int(p.integer(OptGID, -1, 1<<32-2))
	if x, v := p.raw(OptUmask); true {
		m, err := parseMode(x.opt, v)
		if err != nil {
			p.fail(err)
		}
		fo.Umask = m
	}
	fo.ReadOnly = p.boolean(OptRO)
	fo.NoExec = p.boolean(OptNoExec)
	fo.AllowOther = p.boolean(OptAllowOther)
	if p.env.Scope == ScopeVolume {
		fo.AllowOther = true // containers run as other users
	}
	fo.DefaultPermissions = p.boolean(OptDefaultPermissions)
	fo.AttrTimeout = p.duration(OptAttrTimeout, true)
	fo.EntryTimeout = p.duration(OptEntryTimeout, true)
	fo.NegativeTimeout = p.duration(OptNegativeTimeout, true)
	fo.MaxWrite = int(p.integer(OptMaxWrite, 4096, 16<<20))
	fo.Symlinks = fusefs.SymlinkPolicy(p.choice(OptSymlinks))
	fo.Debug = p.boolean(OptFUSEDebug)
	cfg.LogLevel = slog.LevelInfo
	if p.boolean(OptDebug) {
		cfg.LogLevel = slog.LevelDebug
	}
	cfg.MetricsAddr = p.str(OptMetrics)

	if p.has(OptLocal) {
		cfg.Backend = BackendLocal
		if ssh := explicitSSH(p.g); len(ssh) > 0 {
			p.fail(errorf(OptLocal, "option %q serves a local directory and cannot be combined with SSH options (%s); remove them or remove local", OptLocal, strings.Join(ssh, ", ")))
		}
		cfg.LocalRoot = p.file(OptLocal, directory)
		cfg.FS.FSName = fsName(cfg.Remote())
		return cfg
	}
	cfg.Backend = BackendSFTP
	p.buildSFTP(cfg)
	cfg.FS.FSName = fsName(cfg.Remote())
	return cfg
}

// fsName makes a string safe for the fsname= mount option, where commas
// separate options and whitespace is escaped in /proc/mounts.
func fsName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\\' {
			return '_'
		}
		return r
	}, s)
}

func (p *parser) buildSFTP(cfg *Config) {
	c := &cfg.SFTP
	c.Host = p.str(OptHost)
	c.User = p.str(OptUser)
	c.Path = p.str(OptPath)
	if p.has(OptSSHCmd) {
		u, h, path, err := ParseRemote(p.str(OptSSHCmd))
		if err != nil {
			p.fail(errorf(OptSSHCmd, "option %q: %v", OptSSHCmd, err))
		}
		if p.has(OptHost) {
			p.fail(errorf(OptSSHCmd, "options %q and %q conflict: sshcmd already names the host; remove one", OptSSHCmd, OptHost))
		}
		if u != "" && p.has(OptUser) {
			p.fail(errorf(OptSSHCmd, "options %q and %q conflict: sshcmd already names the user; remove one", OptSSHCmd, OptUser))
		}
		if path != "" && p.has(OptPath) {
			p.fail(errorf(OptSSHCmd, "options %q and %q conflict: sshcmd already names the path; remove one", OptSSHCmd, OptPath))
		}
		c.Host = h
		if u != "" {
			c.User = u
		}
		if path != "" {
			c.Path = path
		}
	}
	if c.Host == "" && !p.has(OptSSHCmd) {
		p.fail(errorf(OptHost, "missing host: give host=NAME (or sshcmd=user@host:/path); for a local directory give local=/dir"))
	} else if strings.ContainsAny(c.Host, " \t\n/@") {
		p.fail(valueError(p.g[OptHost].opt, c.Host, "a host name or IP address"))
	}
	if c.User == "" {
		c.User = p.env.DefaultUser
	}
	// "host:~/dir" means dir in the login directory: servers do not
	// expand "~".
	c.Path = sftp.LoginRelative(c.Path)
	if c.User == "" {
		p.fail(errorf(OptUser, "missing user: give user=NAME (or sshcmd=user@host:/path)"))
	}
	c.Port = int(p.integer(OptPort, 1, 65535))
	c.CreatePath = p.boolean(OptCreatePath)
	c.ConnectTimeout = p.duration(OptConnectTimeout, false)
	c.OpTimeout = p.duration(OptOpTimeout, false)
	c.KeepaliveInterval = p.duration(OptKeepalive, false)
	c.KeepaliveCountMax = int(p.integer(OptKeepaliveCount, 1, 1000))
	c.Ciphers = splitList(p.str(OptCiphers))
	// 0 lets backend/sftp pick the largest size the server announces
	// (limits@openssh.com), falling back to 32768 that every server takes.
	if c.MaxPacket = int(p.integer(OptMaxPacket, 0, 261120)); c.MaxPacket != 0 && c.MaxPacket < 512 {
		p.fail(&Error{Option: OptMaxPacket, Msg: fmt.Sprintf("option %q: %d is too small: use 0 (automatic) or 512-261120", OptMaxPacket, c.MaxPacket)})
	}

	if x, v := p.raw(OptConns); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > sftp.MaxConns {
			p.fail(valueError(x.opt, v, fmt.Sprintf("a number of SSH connections from 1 to %d, e.g. conns=4 to read several files at once faster", sftp.MaxConns)))
		}
		c.Conns = n
	}

	// auth
	c.IdentityFiles = p.files(OptIdentity, regularFile)
	if p.has(OptIdentityB64) {
		o := p.g[OptIdentityB64].opt
		b, err := decodeB64(p.str(OptIdentityB64))
		if err != nil {
			p.fail(errorf(o.Name, "option %q is not valid base64; encode the whole key file, e.g. `base64 -w0 id_ed25519`", o.Name))
		} else if _, err := ssh.ParseRawPrivateKey(b); err != nil {
			var missing *ssh.PassphraseMissingError
			if !errors.As(err, &missing) {
				p.fail(errorf(o.Name, "option %q does not decode to a private key file (OpenSSH, PEM or PKCS#8); encode the whole key file, e.g. `base64 -w0 id_ed25519`", o.Name))
			}
		}
		if err == nil {
			c.IdentityInline = [][]byte{b}
		}
	}
	c.CertificateFile = p.file(OptCertificate, regularFile)
	c.PassphraseFile = p.file(OptPassphraseFile, regularFile)
	c.PasswordFile = p.file(OptPasswordFile, regularFile)
	if p.has(OptPassword) {
		if p.has(OptPasswordFile) {
			p.fail(errorf(OptPassword, "options %q and %q conflict; keep password_file and remove password", OptPassword, OptPasswordFile))
		}
		if p.str(OptPassword) == "" {
			p.fail(errorf(OptPassword, "option %q is empty; give the password or use password_file", OptPassword))
		}
		c.Password = []byte(p.g[OptPassword].value)
		cfg.Warnings = append(cfg.Warnings, "option password passes the password inline, where Docker shows it to anyone who can run `docker volume inspect`; put it in a file and use password_file instead")
	}
	c.AgentSocket = p.file(OptSSHAgent, socketFile)
	c.IdentitiesOnly = p.boolean(OptIdentitiesOnly)

	// hostkey
	c.KnownHostsFiles = p.files(OptKnownHosts, regularFile)
	if x, ok := p.g[OptHostKey]; ok {
		for _, k := range splitList(x.value) {
			if !checkHostKey(k) {
				p.fail(valueError(x.opt, k, "a SHA256:... fingerprint (`ssh-keygen -lf key.pub`) or a public key line like `ssh-ed25519 AAAA...`"))
				continue
			}
			c.HostKeys = append(c.HostKeys, k)
		}
	}
	if x, ok := p.g[OptJumpHostKey]; ok {
		for _, k := range splitList(x.value) {
			if !checkHostKey(k) {
				p.fail(valueError(x.opt, k, "a SHA256:... fingerprint (`ssh-keygen -lf key.pub`) or a public key line like `ssh-ed25519 AAAA...`"))
				continue
			}
			c.JumpHostKeys = append(c.JumpHostKeys, k)
		}
	}
	if x, ok := p.g[OptProxyJump]; ok {
		hops, err := sftp.ParseProxyJump(x.value)
		if err != nil {
			p.fail(&Error{Option: OptProxyJump, Msg: err.Error()})
		}
		c.JumpHosts = hops
	}
	c.InsecureIgnoreHostKey = p.boolean(OptInsecureIgnoreHostKey)
	if c.InsecureIgnoreHostKey {
		if p.has(OptHostKey) || p.has(OptKnownHosts) || p.has(OptJumpHostKey) {
			p.fail(errorf(OptInsecureIgnoreHostKey, "option %q conflicts with hostkey and known_hosts, which verify the server; remove insecure_ignore_host_key", OptInsecureIgnoreHostKey))
		}
		cfg.Warnings = append(cfg.Warnings, "insecure_ignore_host_key is on: the server's identity is not verified, so a man-in-the-middle can read and change all data; pin the key with hostkey=SHA256:...")
	}

	// OpenSSH-like defaults for `sftpfs mount`.
	if p.env.Scope == ScopeCLI {
		if home := p.env.Home; home != "" {
			if len(c.IdentityFiles) == 0 && !p.has(OptIdentity) {
				c.IdentityFiles = existing(filepath.Join(home, ".ssh", "id_ed25519"), filepath.Join(home, ".ssh", "id_ecdsa"), filepath.Join(home, ".ssh", "id_rsa"))
			}
			if !p.has(OptKnownHosts) && !p.has(OptHostKey) && !c.InsecureIgnoreHostKey {
				c.KnownHostsFiles = existing(filepath.Join(home, ".ssh", "known_hosts"))
			}
		}
		if !p.has(OptKnownHosts) && !p.has(OptHostKey) && !c.InsecureIgnoreHostKey && p.env.SystemKnownHosts != "" {
			// OpenSSH's GlobalKnownHostsFile, read after the user's file.
			c.KnownHostsFiles = append(c.KnownHostsFiles, existing(p.env.SystemKnownHosts)...)
		}
		if !p.has(OptSSHAgent) && p.env.AgentSocket != "" {
			if st, err := os.Stat(p.env.AgentSocket); err == nil && st.Mode().Type() == fs.ModeSocket {
				c.AgentSocket = p.env.AgentSocket
			}
		}
	}

	if len(p.errs) > 0 {
		return // the checks below would only repeat them
	}
	keys := len(c.IdentityFiles) + len(c.IdentityInline)
	if c.CertificateFile != "" && keys == 0 {
		p.fail(errorf(OptCertificate, "option %q needs the matching private key: give identity (or identity_b64)", OptCertificate))
	}
	if c.PassphraseFile != "" && keys == 0 {
		p.fail(errorf(OptPassphraseFile, "option %q needs an encrypted private key: give identity (or identity_b64)", OptPassphraseFile))
	}
	if keys == 0 && c.PasswordFile == "" && c.Password == nil && c.AgentSocket == "" {
		p.fail(errorf(OptIdentity, "no way to log in: give identity=KEYFILE (or password_file, identity_b64, ssh_agent)"))
	}
	if len(c.KnownHostsFiles) == 0 && len(c.HostKeys) == 0 && !c.InsecureIgnoreHostKey {
		p.fail(errorf(OptHostKey, "no way to verify the server: give hostkey=SHA256:... (get it with `ssh-keyscan HOST | ssh-keygen -lf -`) or known_hosts=FILE"))
	}
	if len(p.errs) > 0 {
		return
	}
	// The backend's own validation knows what it supports (ciphers, key
	// formats).
	for _, e := range backendErrors(c.Validate()) {
		p.fail(e)
	}
}

// backendErrors turns the error of sftp.Config.Validate into option
// errors, each naming the option its *sftp.FieldError names.
func backendErrors(err error) []*Error {
	if err == nil {
		return nil
	}
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	out := make([]*Error, 0, len(list))
	for _, e := range list {
		opt := OptHost // the volume as a whole, when no field is named
		var fe *sftp.FieldError
		if errors.As(e, &fe) {
			if o, ok := Lookup(fe.Field); ok {
				opt = o.Name
			}
		}
		out = append(out, &Error{Option: opt, Msg: e.Error()})
	}
	return out
}

// Canonical resolves names and aliases to canonical names and normalizes
// values (booleans to true/false, durations and numbers to one spelling)
// without adding defaults or touching files, so two option sets can be
// compared: equal maps mean the same volume.
func Canonical(opts map[string]string) (map[string]string, error) {
	g, errs := resolve(opts, ScopeBoth)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	out := map[string]string{}
	for name, x := range g {
		v := x.value
		switch x.opt.Kind {
		case Bool:
			b, err := parseBool(x.opt, v)
			if err != nil {
				errs = append(errs, err)
			}
			v = strconv.FormatBool(b)
		case Int:
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				v = strconv.FormatInt(n, 10)
			}
		case Duration:
			if d, err := parseDuration(x.opt, v, true); err == nil {
				v = d.String()
			}
		case Mode:
			if m, err := parseMode(x.opt, v); err == nil {
				v = fmt.Sprintf("%03o", uint32(m))
			}
		case List, FileList:
			v = strings.Join(splitList(v), ",")
		case String:
			if x.opt.Values != nil {
				c, err := parseChoice(x.opt, v)
				if err != nil {
					errs = append(errs, err)
				}
				v = c
			}
		}
		out[name] = v
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Redacted replaces secret values in Redact output.
const Redacted = "<redacted>"

// Redact returns a copy of opts safe to log or show: values of secret
// options, and of unknown options (which may be a misspelled secret), are
// replaced by Redacted.
func Redact(opts map[string]string) map[string]string {
	out := make(map[string]string, len(opts))
	for k, v := range opts {
		if o, ok := Lookup(k); !ok || o.Secret {
			v = Redacted
		}
		out[k] = v
	}
	return out
}

// ParseList parses `sftpfs mount -o` arguments: each is a comma-separated
// list of key or key=value items. A literal comma inside a value is
// written "\," and a literal backslash "\\". A list option given more than
// once accumulates (-o hostkey=A -o hostkey=B); other repeats must mean the
// same value, in any spelling (ConnectTimeout=1 and connect_timeout=1s
// agree). Names are returned canonical where known; unknown names are kept
// as written so that Parse can report them.
func ParseList(args []string) (map[string]string, error) {
	out := map[string]string{}
	for _, arg := range args {
		items, err := SplitArg(arg)
		if err != nil {
			return nil, err
		}
		for _, item := range items {
			k, v, _ := strings.Cut(item, "=")
			if strings.TrimSpace(k) == "" {
				if strings.TrimSpace(item) == "" {
					continue
				}
				return nil, errorf("", "option %q has no name; write key=value", item)
			}
			if err := Merge(out, k, v); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// Merge adds option name=value to m under its canonical name (unknown
// names as written, for Parse to report). A list option already in m
// accumulates; any other option already in m must have the same value in
// any spelling (SameValue), else Merge fails naming both values unless
// the option is secret.
func Merge(m map[string]string, name, value string) error {
	k := strings.TrimSpace(name)
	o, ok := Lookup(k)
	if !ok {
		m[k] = value
		return nil
	}
	if prev, dup := m[o.Name]; dup {
		switch {
		case o.Kind == List || o.Kind == FileList:
			value = prev + "," + value
		case SameValue(o, prev, value):
			return nil
		case o.Secret:
			return errorf(o.Name, "option %q is given twice with different values; give it once", o.Name)
		default:
			return errorf(o.Name, "option %q is given twice with different values (%q and %q); give it once", o.Name, prev, value)
		}
	}
	m[o.Name] = value
	return nil
}

// SameValue reports whether a and b mean the same value of o: "yes" and
// "true", "1" and "1s", "022" and "22" are the same.
func SameValue(o Option, a, b string) bool {
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	if a == b {
		return true
	}
	switch o.Kind {
	case Bool:
		x, err1 := parseBool(o, a)
		y, err2 := parseBool(o, b)
		return err1 == nil && err2 == nil && x == y
	case Int:
		x, err1 := strconv.ParseInt(a, 10, 64)
		y, err2 := strconv.ParseInt(b, 10, 64)
		return err1 == nil && err2 == nil && x == y
	case Duration:
		x, err1 := parseDuration(o, a, true)
		y, err2 := parseDuration(o, b, true)
		return err1 == nil && err2 == nil && x == y
	case Mode:
		x, err1 := parseMode(o, a)
		y, err2 := parseMode(o, b)
		return err1 == nil && err2 == nil && x == y
	case String:
		return o.Values != nil && strings.EqualFold(a, b)
	}
	return false
}

// SplitArg splits one -o argument on unescaped commas, resolving "\," and
// "\\".
func SplitArg(s string) ([]string, error) { return splitEscaped(s) }

// splitEscaped splits s on unescaped commas, resolving "\," and "\\".
func splitEscaped(s string) ([]string, error) {
	var items []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			if i+1 >= len(s) || (s[i+1] != ',' && s[i+1] != '\\') {
				return nil, errorf("", "in an -o argument, a backslash must be followed by a comma or another backslash (\\, or \\\\)")
			}
			i++
			cur.WriteByte(s[i])
		case c == ',':
			items = append(items, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(items, cur.String()), nil
}
