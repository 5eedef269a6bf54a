package options

import (
	"strings"
)

// Kind says how an option's value is parsed.
type Kind int

// The kinds of option values.
const (
	Bool     Kind = iota // true/false/yes/no/on/off/1/0; empty means true
	Int                  // decimal integer
	Duration             // Go duration ("15s") or bare seconds ("15")
	String               // free text
	Mode                 // octal permission bits ("022")
	List                 // comma-separated strings
	File                 // a file name (see package doc for where it resolves)
	FileList             // comma-separated file names
)

// String returns the name used in documentation.
func (k Kind) String() string {
	switch k {
	case Bool:
		return "bool"
	case Int:
		return "int"
	case Duration:
		return "duration"
	case String:
		return "string"
	case Mode:
		return "octal mode"
	case List:
		return "list"
	case File:
		return "file"
	case FileList:
		return "file list"
	}
	return "unknown"
}

// Scope says where an option may be used. It is also the Scope of an Env,
// saying who is parsing: ScopeCLI for `sftpfs mount`, ScopeVolume for the
// Docker plugin.
type Scope int

// Scopes.
const (
	ScopeBoth   Scope = iota // `sftpfs mount` and Docker volumes
	ScopeCLI                 // only `sftpfs mount`
	ScopeVolume              // only Docker volumes
)

// String returns the name used in documentation.
func (s Scope) String() string {
	switch s {
	case ScopeCLI:
		return "mount"
	case ScopeVolume:
		return "volume"
	}
	return "both"
}

// Groups, in the order Markdown renders them.
const (
	GroupConnection = "connection"
	GroupAuth       = "auth"
	GroupHostKey    = "hostkey"
	GroupFS         = "fs"
	GroupLocal      = "local"
	GroupDebug      = "debug"
)

// Option describes one mount option.
type Option struct {
	// Name is the canonical snake_case name.
	Name string
	// Aliases are other accepted names (matched like Name).
	Aliases []string
	Kind    Kind
	// Default is the value used when the option is not given, in the
	// option's own syntax; "" means unset.
	Default string
	// DefaultVolume, when not "", is the default for Docker volumes
	// (ScopeVolume) instead of Default, for options whose safe choice
	// differs between the host and a container (see OptSymlinks).
	DefaultVolume string
	// Values, when not nil, are the only accepted values of a String
	// option (matched case-insensitively).
	Values []string
	// Help is a one-sentence description for the README and `sftpfs help`.
	Help  string
	Scope Scope
	// Secret options carry secret material inline: their values never
	// appear in errors, logs or Redact output.
	Secret bool
	Group  string
}

// Option names, for callers that build option maps in code.
const (
	OptHost                  = "host"
	OptPort                  = "port"
	OptUser                  = "user"
	OptPath                  = "path"
	OptCreatePath            = "create_path"
	OptSSHCmd                = "sshcmd"
	OptConnectTimeout        = "connect_timeout"
	OptOpTimeout             = "op_timeout"
	OptKeepalive             = "keepalive"
	OptKeepaliveCount        = "keepalive_count"
	OptCiphers               = "ciphers"
	OptMaxPacket             = "max_packet"
	OptConns                 = "conns"
	OptIdentity              = "identity"
	OptIdentityB64           = "identity_b64"
	OptCertificate           = "certificate"
	OptPassphraseFile        = "passphrase_file"
	OptPasswordFile          = "password_file"
	OptPassword              = "password"
	OptSSHAgent              = "ssh_agent"
	OptIdentitiesOnly        = "identities_only"
	OptKnownHosts            = "known_hosts"
	OptHostKey               = "hostkey"
	OptInsecureIgnoreHostKey = "insecure_ignore_host_key"
	OptProxyJump             = "proxy_jump"
	OptJumpHostKey           = "jump_hostkey"
	OptUID                   = "uid"
	OptGID                   = "gid"
	OptUmask                 = "umask"
	OptRO                    = "ro"
	OptNoExec                = "noexec"
	OptAllowOther            = "allow_other"
	OptDefaultPermissions    = "default_permissions"
	OptAttrTimeout           = "attr_timeout"
	OptEntryTimeout          = "entry_timeout"
	OptNegativeTimeout       = "negative_timeout"
	OptMaxWrite              = "max_write"
	OptSymlinks              = "symlinks"
	OptLocal                 = "local"
	OptDebug                 = "debug"
	OptFUSEDebug             = "fuse_debug"
	OptMetrics               = "metrics"
)

// Table returns every option, in documentation order. It returns a fresh
// slice on every call so callers cannot change the table for others.
func Table() []Option {
	return []Option{
		// connection
		{Name: OptHost, Kind: String, Group: GroupConnection,
			Help: "SSH server host name or IP address. Required for SFTP (or give sshcmd)."},
		{Name: OptPort, Kind: Int, Default: "22", Group: GroupConnection,
			Help: "SSH server port (1-65535)."},
		{Name: OptUser, Kind: String, Group: GroupConnection,
			Help: "Login user. Required for volumes; `sftpfs mount` defaults to the current user."},
		{Name: OptPath, Kind: String, Group: GroupConnection,
			Help: "Remote directory to mount; relative paths are relative to the login directory, empty means the login directory."},
		{Name: OptCreatePath, Kind: Bool, Default: "false", Group: GroupConnection,
			Help: "Create the remote directory (and parents) if it is missing instead of failing."},
		{Name: OptSSHCmd, Kind: String, Group: GroupConnection,
			Help: "vieux/sshfs compatibility: `[user@]host:[path]`, sets user, host and path (so it conflicts with them)."},
		{Name: OptConnectTimeout, Kind: Duration, Default: "10s", Group: GroupConnection,
			Help: "Limit for TCP connect plus SSH handshake and authentication."},
		{Name: OptOpTimeout, Kind: Duration, Default: "30s", Group: GroupConnection,
			Help: "Limit for every remote operation; when it expires the operation fails (EIO) and the connection is re-established. While the server stays unreachable, operations fail at once after the first op_timeout of the outage instead of each waiting again."},
		{Name: OptKeepalive, Kind: Duration, Default: "15s", Group: GroupConnection,
			Help: "Interval of SSH keepalive requests that detect a dead server."},
		{Name: OptKeepaliveCount, Kind: Int, Default: "3", Group: GroupConnection,
			Help: "Unanswered keepalives after which the connection is dropped and re-established."},
		{Name: OptCiphers, Kind: List, Group: GroupConnection,
			Help: "SSH ciphers in order of preference (default: AEAD ciphers first)."},
		{Name: OptMaxPacket, Kind: Int, Default: "0", Group: GroupConnection,
			Help: "SFTP read/write request size in bytes: 0 picks the largest the server announces (OpenSSH: 261120, about 25% faster and cheaper in CPU than 32768), else 32768, which every server accepts; or 512-261120."},
		{Name: OptConns, Kind: Int, Default: "1", Group: GroupConnection,
			Help: "SSH connections per mount (1-8; sshfs's max_conns). Files open at the same time are spread over them, the extra ones opened when a second, third, ... file is open at once; lookups and listings always use the first, so `find` and `ls` are not slowed. Each is an sshd and sftp-server process on the server; more help several files read or written at once on a server with cores to spare (docs/perf.md)."},

		{Name: OptProxyJump, Kind: List, Group: GroupConnection,
			Help: "Jump host(s) `[user@]host[:port]`, comma-separated, as OpenSSH's `-J`: the connection goes through each in turn, in-process (no ssh binary). Every hop checks its host key (jump_hostkey, known_hosts) and logs in with the same identity, agent or password; the user defaults to user. Keepalives and reconnects cover the whole chain."},

		// auth
		{Name: OptIdentity, Aliases: []string{"IdentityFile"}, Kind: FileList, Group: GroupAuth,
			Help: "Private key file(s) (OpenSSH, PEM or PKCS#8). Re-read on every reconnect, so a rotated key takes effect without a remount."},
		{Name: OptIdentityB64, Kind: String, Secret: true, Group: GroupAuth,
			Help: "Private key file content, base64-encoded (`base64 -w0 id_ed25519`). Inline secret: prefer identity."},
		{Name: OptCertificate, Kind: File, Group: GroupAuth,
			Help: "OpenSSH user certificate (`id_ed25519-cert.pub`) for the key."},
		{Name: OptPassphraseFile, Kind: File, Group: GroupAuth,
			Help: "File holding the passphrase of an encrypted private key."},
		{Name: OptPasswordFile, Kind: File, Group: GroupAuth,
			Help: "File holding the login password."},
		{Name: OptPassword, Kind: String, Secret: true, Group: GroupAuth,
			Help: "Login password inline. For migration from vieux/sshfs only: it is visible to anyone who can run `docker volume inspect`; use password_file."},
		{Name: OptSSHAgent, Kind: File, Scope: ScopeCLI, Group: GroupAuth,
			Help: "ssh-agent socket (`sftpfs mount` defaults to $SSH_AUTH_SOCK). Its keys are offered after the identity keys, and only as many as leave the identity keys and password room within the server's default MaxAuthTries (6)."},
		{Name: OptIdentitiesOnly, Kind: Bool, Default: "false", Group: GroupAuth,
			Help: "Offer only the identity keys, none of the agent's other keys (OpenSSH's IdentitiesOnly), for servers whose MaxAuthTries an agent full of keys would use up."},

		// hostkey
		{Name: OptKnownHosts, Kind: FileList, Group: GroupHostKey,
			Help: "OpenSSH known_hosts file(s) to verify the server and the jump hosts (`sftpfs mount` defaults to ~/.ssh/known_hosts, then /etc/ssh/ssh_known_hosts, those that exist). The server is asked for a host key of a type listed for it."},
		{Name: OptHostKey, Kind: List, Group: GroupHostKey,
			Help: "Pinned server key(s): `SHA256:...` fingerprints (as `ssh-keygen -lf` prints) or public key lines (`ssh-ed25519 AAAA...`). A fingerprint of any of the server's host keys works: the server is asked for each of its key types in turn."},
		{Name: OptInsecureIgnoreHostKey, Kind: Bool, Default: "false", Group: GroupHostKey,
			Help: "Accept any server key. Allows man-in-the-middle attacks: pin the key with hostkey instead."},
		{Name: OptJumpHostKey, Kind: List, Group: GroupHostKey,
			Help: "Pinned host key(s) of the proxy_jump hosts, written like hostkey."},

		// fs
		{Name: OptUID, Kind: Int, Default: "-1", Group: GroupFS,
			Help: "Present every file as owned by this uid (-1: as the server reports). Set it to the container user so it can write."},
		{Name: OptGID, Kind: Int, Default: "-1", Group: GroupFS,
			Help: "Present every file as owned by this gid (-1: as the server reports)."},
		{Name: OptUmask, Kind: Mode, Default: "000", Group: GroupFS,
			Help: "Permission bits cleared from every presented mode and from new files."},
		{Name: OptRO, Aliases: []string{"readonly"}, Kind: Bool, Default: "false", Group: GroupFS,
			Help: "Read-only: every change fails with EROFS."},
		{Name: OptNoExec, Kind: Bool, Default: "false", Group: GroupFS,
			Help: "Mount with noexec: programs on the mount cannot be run (mount(8)'s noexec; `exec` turns it off)."},
		{Name: OptAllowOther, Kind: Bool, Default: "false", Group: GroupFS,
			Help: "Let users other than the mounting one access the mount. Always on for volumes (containers need it)."},
		{Name: OptDefaultPermissions, Kind: Bool, Default: "true", Group: GroupFS,
			Help: "Let the kernel enforce the presented permission bits."},
		{Name: OptAttrTimeout, Kind: Duration, Default: "1s", Group: GroupFS,
			Help: "How long the kernel caches file attributes (`stat`, `ls -l`). Opening a file always asks the server, so what another client wrote and closed before the open is read in full (close-to-open, as NFS)."},
		{Name: OptEntryTimeout, Kind: Duration, Default: "1s", Group: GroupFS,
			Help: "How long the kernel caches name lookups. A directory listing also answers lookups in that directory (found or missing), and another listing of it, for the smaller of entry_timeout and attr_timeout, so other clients' new or removed names can show that much later; 0 for either turns listing reuse off (docs/perf.md)."},
		{Name: OptNegativeTimeout, Kind: Duration, Default: "0s", Group: GroupFS,
			Help: "How long the kernel caches missing names."},
		{Name: OptMaxWrite, Kind: Int, Default: "1048576", Group: GroupFS,
			Help: "Largest write request in bytes (4096-16777216)."},
		{Name: OptSymlinks, Kind: String, Default: "contain", DefaultVolume: "keep", Group: GroupFS,
			Values: []string{"keep", "contain", "refuse"},
			Help:   "How readlink shows targets that lead out of the mount (absolute, or climbing above the root with `..`): `keep` shows them verbatim, `contain` rewrites them relative to the mount root as if it were `/`, `refuse` fails readlink with EACCES. Links are followed in the client's root, so `keep` lets a server point host programs at host files; in a container that root is the container's own."},

		// local
		{Name: OptLocal, Kind: File, Group: GroupLocal,
			Help: "Serve this local directory instead of SFTP (`sftpfs mount local:/dir` sets it). For volumes it must be an absolute path inside the plugin; meant for tests."},

		// debug
		{Name: OptDebug, Kind: Bool, Default: "false", Group: GroupDebug,
			Help: "Log at debug level."},
		{Name: OptFUSEDebug, Kind: Bool, Default: "false", Group: GroupDebug,
			Help: "Log every FUSE request (very verbose)."},
		{Name: OptMetrics, Kind: String, Scope: ScopeCLI, Group: GroupDebug,
			Help: "Serve Prometheus metrics at http://ADDR/metrics and the log level at http://ADDR/loglevel (GET, or PUT debug/info/warn/error), e.g. `127.0.0.1:9464`. Off by default; no authentication, so keep it on loopback. The Docker plugin has the SFTPFS_METRICS_ADDR setting instead (docs/metrics.md)."},
	}
}

// replaced lists sshfs and ssh option names that sftpfs does not accept,
// with the advice shown to the user. Keys are normalized names.
func replaced() map[string]string {
	unsupported := "is not supported by sftpfs; remove it"
	return map[string]string{
		"reconnect":                "reconnecting is always on in sftpfs; remove it",
		"serveraliveinterval":      "use keepalive (e.g. keepalive=15s) instead",
		"serveralivecountmax":      "use keepalive_count instead",
		"stricthostkeychecking":    "sftpfs always verifies host keys: pin the key with hostkey=SHA256:... or give known_hosts; insecure_ignore_host_key=true turns checking off (strongly discouraged)",
		"userknownhostsfile":       "use known_hosts instead (for volumes: a file name in the secrets directory)",
		"idmap":                    "use uid and gid to choose the presented owner",
		"cache":                    "sftpfs uses the kernel cache; tune attr_timeout and entry_timeout instead",
		"kernelcache":              "sftpfs uses the kernel cache; tune attr_timeout and entry_timeout instead",
		"autocache":                "sftpfs uses the kernel cache; tune attr_timeout and entry_timeout instead",
		"dircache":                 "sftpfs uses the kernel cache; tune attr_timeout and entry_timeout instead",
		"cachetimeout":             "use attr_timeout and entry_timeout instead",
		"compression":              unsupported,
		"workaround":               unsupported,
		"followsymlinks":           "symlinks are shown as symlinks; " + unsupported,
		"transformsymlinks":        "use symlinks=contain (the default for sftpfs mount) to rewrite absolute targets into the mount",
		"sshcommand":               "sftpfs never runs external commands (it speaks SSH itself); remove it",
		"proxycommand":             "not supported: it would run an arbitrary command as root in the plugin; use proxy_jump=[user@]host[:port] for jump hosts",
		"sshfsdebug":               "use debug instead",
		"loglevel":                 "use debug instead",
		"passwordstdin":            "use password_file instead",
		"sftpserver":               unsupported,
		"directport":               unsupported,
		"sshprotocol":              unsupported,
		"allowroot":                "use allow_other instead",
		"nonempty":                 unsupported,
		"bigwrites":                "large writes are always on; see max_write",
		"maxread":                  unsupported,
		"batchmode":                "sftpfs never prompts; remove it",
		"preferredauthentications": "sftpfs tries identity keys, ssh_agent keys, then password; remove it",
		"passwordauthentication":   "give password_file to use password authentication; remove it",
		"pubkeyauthentication":     "give identity to use key authentication; remove it",
		"rw":                       "mounts are read-write unless ro is given; remove it",
	}
}

// normalize turns a user-written option name into its matching key:
// lower case without "-" and "_".
func normalize(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(name)) {
		if r == '-' || r == '_' {
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// DefaultFor returns the option's default when parsing for scope.
func (o Option) DefaultFor(scope Scope) string {
	if scope == ScopeVolume && o.DefaultVolume != "" {
		return o.DefaultVolume
	}
	return o.Default
}

// Lookup finds the option for a user-written name or alias.
func Lookup(name string) (Option, bool) {
	n := normalize(name)
	if n == "" {
		return Option{}, false
	}
	for _, o := range Table() {
		if normalize(o.Name) == n {
			return o, true
		}
		for _, a := range o.Aliases {
			if normalize(a) == n {
				return o, true
			}
		}
	}
	return Option{}, false
}
