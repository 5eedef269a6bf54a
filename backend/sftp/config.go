package sftp

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Config says where to connect and how to authenticate and verify the
// server. Secret material is referenced by file path wherever possible, so
// that files are re-read on every (re)connect and rotated keys take effect
// without a remount; inline secrets exist for migration only.
type Config struct {
	Host string
	Port int    // 22 when 0
	User string // required
	// Path is the remote directory that becomes the backend root;
	// relative paths are relative to the login directory.
	Path string
	// CreatePath makes New create Path (and parents) when it is missing;
	// otherwise a missing Path is an error.
	CreatePath bool

	// Authentication, tried in this order: certificates, the keys named
	// here, agent keys, password (as OpenSSH does, so that the named key
	// is offered before the server's MaxAuthTries is spent on agent keys).
	IdentityFiles   []string // private key files (OpenSSH, PEM, PKCS#8)
	IdentityInline  [][]byte // private key file contents (identity_b64)
	CertificateFile string   // OpenSSH user certificate for the key
	PassphraseFile  string   // passphrase for encrypted keys
	PasswordFile    string
	Password        []byte // inline password (migration only)
	AgentSocket     string // ssh-agent socket path
	// IdentitiesOnly offers only the named keys (IdentityFiles,
	// IdentityInline), never the agent's other keys (OpenSSH's
	// IdentitiesOnly).
	IdentitiesOnly bool

	// Host key verification: at least one of KnownHostsFiles or HostKeys,
	// unless InsecureIgnoreHostKey.
	KnownHostsFiles       []string
	HostKeys              []string // "SHA256:..." fingerprints or authorized_keys-format lines
	InsecureIgnoreHostKey bool

	// JumpHosts are the hops of proxy_jump, dialled in order, each
	// through the one before, the target through the last. Every hop's
	// host key is verified against JumpHostKeys and KnownHostsFiles, and
	// every hop authenticates with the same keys, agent and password.
	JumpHosts    []JumpHost
	JumpHostKeys []string // jump_hostkey: pins for the jump hosts

	ConnectTimeout    time.Duration // TCP + SSH handshake
	OpTimeout         time.Duration // every remote call
	KeepaliveInterval time.Duration
	KeepaliveCountMax int
	Ciphers           []string // empty: AEAD ciphers first

	// MaxPacket is the SFTP read/write payload size in bytes. Sizes above
	// 32768 are not guaranteed by the protocol; OpenSSH accepts up to
	// 261120. 0 picks automatically: LargeMaxPacket when the server
	// announces limits@openssh.com (OpenSSH 8.6 and later, whose
	// sftp-server reads and writes up to that size), else
	// DefaultMaxPacket. Large packets cut the number of requests, and
	// with it the client's CPU per byte, by eight (docs/perf.md).
	MaxPacket int

	// Conns is the number of SSH connections: 1 to MaxConns, 0 for
	// DefaultConns. Metadata always uses the first; open files are spread
	// over all of them, the extra ones dialled when a file is first
	// placed on them (pool.go).
	Conns int

	// Reconnect paces reconnect attempts; not a user option (tests
	// shorten it).
	Reconnect ReconnectPolicy

	// Logger receives connection events; nil discards them.
	Logger *slog.Logger
}

// Defaults applied by New for zero-valued fields.
const (
	DefaultPort              = 22
	DefaultConnectTimeout    = 15 * time.Second
	DefaultOpTimeout         = 30 * time.Second
	DefaultKeepaliveInterval = 15 * time.Second
	DefaultKeepaliveCountMax = 3
	// DefaultMaxPacket is the payload size every SFTP server must accept
	// (draft-ietf-secsh-filexfer-02 section 3 only guarantees 32768).
	DefaultMaxPacket = 32 * 1024
	// LargeMaxPacket is the automatic size for servers that announce
	// limits@openssh.com: OpenSSH's own maximum read/write length.
	LargeMaxPacket = 261120
	// maxMaxPacket keeps a request inside OpenSSH's 256 KiB packet limit
	// with room for the request header.
	maxMaxPacket = 256*1024 - 1024
	// DefaultConns is the number of SSH connections when Conns is 0
	// (docs/perf.md, "Multiple connections").
	DefaultConns = 1
	// MaxConns bounds Conns: each connection is an sshd and an
	// sftp-server process on the server.
	MaxConns = 8
)

// defaultCiphers prefers AEAD ciphers, which need no separate MAC and are
// the fastest on hardware with AES instructions.
func defaultCiphers() []string {
	return []string{
		"aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com",
		"aes128-ctr", "aes192-ctr", "aes256-ctr",
	}
}

// supportedCiphers lists the ciphers x/crypto/ssh implements, so a typo
// in the ciphers option is reported at validation time instead of as an
// obscure handshake failure.
func supportedCiphers() []string {
	return ssh.SupportedAlgorithms().Ciphers
}

// withDefaults returns a copy of c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = DefaultOpTimeout
	}
	if c.KeepaliveInterval == 0 {
		c.KeepaliveInterval = DefaultKeepaliveInterval
	}
	if c.KeepaliveCountMax <= 0 {
		c.KeepaliveCountMax = DefaultKeepaliveCountMax
	}
	if c.Conns == 0 {
		c.Conns = DefaultConns
	}
	if len(c.Ciphers) == 0 {
		c.Ciphers = defaultCiphers()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate checks the configuration without touching the network or the
// files it names, so it can run when a volume is created. The error
// joins one *FieldError per problem (errors.As finds the first); messages
// name the option (as spelled in the sftpfs option table) and never
// contain a secret.
func (c Config) Validate() error {
	var errs []error
	add := func(field, format string, a ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)})
	}

	if strings.TrimSpace(c.Host) == "" {
		add("host", "host is required: set host=NAME (or sshcmd=user@host:path)")
	} else if strings.ContainsAny(c.Host, " \t\n/@") {
		add("host", "host %q is not a host name or address", c.Host)
	}
	if c.Port < 0 || c.Port > 65535 {
		add("port", "port %d is out of range: use 1-65535 (default 22)", c.Port)
	}
	if strings.TrimSpace(c.User) == "" {
		add("user", "user is required: set user=NAME (or sshcmd=user@host:path)")
	}
	if strings.ContainsRune(c.Path, 0) {
		add("path", "path contains a NUL byte")
	}

	if len(c.IdentityFiles) == 0 && len(c.IdentityInline) == 0 && c.PasswordFile == "" &&
		len(c.Password) == 0 && c.AgentSocket == "" {
		add("identity", "no authentication configured: set identity (a private key file), identity_b64, password_file or ssh_agent")
	}
	if c.PasswordFile != "" && len(c.Password) > 0 {
		add("password", "password and password_file are both set: keep only password_file")
	}
	if c.CertificateFile != "" && len(c.IdentityFiles) == 0 && len(c.IdentityInline) == 0 && c.AgentSocket == "" {
		add("certificate", "certificate is set but there is no private key for it: set identity or identity_b64")
	}
	for i, k := range c.IdentityInline {
		if len(k) == 0 {
			add("identity_b64", "identity_b64 #%d is empty", i+1)
		}
	}

	if c.InsecureIgnoreHostKey {
		if len(c.KnownHostsFiles) > 0 || len(c.HostKeys) > 0 {
			add("insecure_ignore_host_key", "insecure_ignore_host_key conflicts with known_hosts/hostkey: remove insecure_ignore_host_key")
		}
	} else if len(c.KnownHostsFiles) == 0 && len(c.HostKeys) == 0 {
		add("hostkey", "no host key verification configured: set known_hosts=FILE or hostkey=SHA256:... "+
			"(or, only for testing, insecure_ignore_host_key=true)")
	}
	for _, hk := range c.HostKeys {
		if _, err := parsePinnedKey(hk); err != nil {
			add("hostkey", "hostkey %q: %v", hk, err)
		}
	}
	for _, hk := range c.JumpHostKeys {
		if _, err := parsePinnedKey(hk); err != nil {
			add("jump_hostkey", "jump_hostkey %q: %v", hk, err)
		}
	}
	if len(c.JumpHostKeys) > 0 && len(c.JumpHosts) == 0 {
		add("jump_hostkey", "jump_hostkey is set but proxy_jump is not: give proxy_jump=[user@]host[:port] or remove jump_hostkey")
	}
	if len(c.JumpHosts) > 0 && !c.InsecureIgnoreHostKey && len(c.KnownHostsFiles) == 0 && len(c.JumpHostKeys) == 0 {
		add("proxy_jump", "proxy_jump: no host key verification for the jump hosts: set jump_hostkey=SHA256:... (`ssh-keyscan BASTION | ssh-keygen -lf -`) or a known_hosts file that lists them")
	}
	for i, j := range c.JumpHosts {
		if strings.TrimSpace(j.Host) == "" || strings.ContainsAny(j.Host, " \t\n/@") {
			add("proxy_jump", "proxy_jump: hop %d: host %q is not a host name or address", i+1, j.Host)
		}
		if j.Port < 0 || j.Port > 65535 {
			add("proxy_jump", "proxy_jump: hop %d: port %d is out of range: use 1-65535 (default 22)", i+1, j.Port)
		}
	}
	if c.IdentitiesOnly && len(c.IdentityFiles) == 0 && len(c.IdentityInline) == 0 {
		add("identities_only", "identities_only is set but no key is named: give identity=KEYFILE (identities_only keeps the agent's other keys out)")
	}

	if c.ConnectTimeout < 0 {
		add("connect_timeout", "connect_timeout %v is negative", c.ConnectTimeout)
	}
	if c.OpTimeout < 0 {
		add("op_timeout", "op_timeout %v is negative", c.OpTimeout)
	}
	if c.KeepaliveInterval < 0 {
		add("keepalive", "keepalive %v is negative: use 0 for the default (%v)", c.KeepaliveInterval, DefaultKeepaliveInterval)
	}
	if c.KeepaliveCountMax < 0 {
		add("keepalive_count", "keepalive_count %d is negative", c.KeepaliveCountMax)
	}
	if len(c.Ciphers) > 0 {
		known := supportedCiphers()
		for _, ci := range c.Ciphers {
			if !contains(known, ci) {
				add("ciphers", "ciphers: %q is not supported; supported: %s", ci, strings.Join(known, ","))
			}
		}
	}
	if c.MaxPacket < 0 || c.MaxPacket > maxMaxPacket {
		add("max_packet", "max_packet %d is out of range: use 1-%d (default %d)", c.MaxPacket, maxMaxPacket, DefaultMaxPacket)
	}
	if c.Conns < 0 || c.Conns > MaxConns {
		add("conns", "conns %d is out of range: use 1-%d SSH connections (default %d)", c.Conns, MaxConns, DefaultConns)
	}
	return errors.Join(errs...)
}

// Remote is the display form user@host:port/path (no secrets).
func (c Config) Remote() string {
	port := c.Port
	if port == 0 {
		port = DefaultPort
	}
	// A relative path is relative to the login directory; "~/" makes that
	// visible in the display form.
	p := LoginRelative(c.Path)
	if p == "." {
		p = "/~"
	} else if p != "" && !strings.HasPrefix(p, "/") {
		p = "/~/" + p
	}
	return fmt.Sprintf("%s@%s:%d%s", c.User, c.Host, port, p)
}

// LoginRelative rewrites a remote path written the shell's way, "~" or
// "~/dir", into the form SFTP servers resolve against the login
// directory ("." or "dir"): servers do not expand "~", so "host:~/x"
// would otherwise name a directory literally called "~". "~user/..." is
// left alone (SFTP has no way to look up another user's home).
func LoginRelative(p string) string {
	switch {
	case p == "~" || p == "~/":
		return "."
	case strings.HasPrefix(p, "~/"):
		rest := strings.TrimLeft(p[2:], "/")
		if rest == "" {
			return "."
		}
		return rest
	}
	return p
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
