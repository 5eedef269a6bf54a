package sftp

import (
	"log/slog"
	"time"
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

	// Authentication, tried in this order: agent, keys, password.
	IdentityFiles   []string // private key files (OpenSSH, PEM, PKCS#8)
	IdentityInline  [][]byte // private key file contents (identity_b64)
	CertificateFile string   // OpenSSH user certificate for the key
	PassphraseFile  string   // passphrase for encrypted keys
	PasswordFile    string
	Password        []byte // inline password (migration only)
	AgentSocket     string // ssh-agent socket path

	// Host key verification: at least one of KnownHostsFiles or HostKeys,
	// unless InsecureIgnoreHostKey.
	KnownHostsFiles       []string
	HostKeys              []string // "SHA256:..." fingerprints or authorized_keys-format lines
	InsecureIgnoreHostKey bool

	ConnectTimeout    time.Duration // TCP + SSH handshake
	OpTimeout         time.Duration // every remote call
	KeepaliveInterval time.Duration
	KeepaliveCountMax int
	Ciphers           []string // empty: AEAD ciphers first

	// Logger receives connection events; nil discards them.
	Logger *slog.Logger
}
