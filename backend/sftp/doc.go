// Package sftp is the SFTP backend: a backend.Backend over SSH
// (golang.org/x/crypto/ssh) and the SFTP protocol (github.com/pkg/sftp).
// It never runs an ssh binary.
//
// # Authentication
//
// Every dial re-reads the key, passphrase, certificate, password and
// known_hosts files, so rotated secrets take effect at the next reconnect.
// Methods are offered in this order, as OpenSSH does: publickey (the
// certificate for a matching key, then identity files, then inline
// identities, then the ssh-agent's other keys), then password, then
// keyboard-interactive answered with the password. The server's
// MaxAuthTries (default 6) counts every refused key, so the named keys go
// before the agent's, and agent keys are capped to leave room for the
// named keys and the password; IdentitiesOnly offers none of them.
// Private keys may be OpenSSH, PEM (PKCS#1, SEC1) or PKCS#8; an encrypted
// key needs passphrase_file. Errors name the file or option and the
// method, never a secret or key material. When authentication fails the
// error says which methods the server offered and which were tried.
//
// # Host keys
//
// Verification is on unless InsecureIgnoreHostKey. A key is accepted when
// known_hosts accepts it (hashed names, [host]:port, patterns,
// @cert-authority host certificates) or when it matches a pinned HostKeys
// entry ("SHA256:..." or a public key line); a key marked @revoked is
// refused even when pinned. An unknown key gives an error that prints its
// fingerprint and the option that would trust it; a key that differs from
// the known one (of the same type) gives a loud HOST KEY MISMATCH error.
// Host key algorithms are ordered as OpenSSH orders them: the types the
// pins and known_hosts name for the host first (certificate algorithms
// when an @cert-authority line matches), then ed25519, ECDSA, RSA. A
// bare SHA256 pin says nothing of its type, so when the server presents
// a key nothing vouches for, the dial asks again, on a new connection,
// for each of the server's other key types, checking each; the final
// error lists every key seen. The fingerprint seen is reported by Status.
//
// # Jump hosts
//
// Config.JumpHosts (proxy_jump) are dialled in order, each through the
// previous one (ssh.Client.Dial then ssh.NewClientConn): no ssh binary,
// no ProxyCommand. Every hop has its own host key check (JumpHostKeys and
// the known_hosts files) and uses the same authentication. The chain is
// one transport: keepalives go to the target, so their answers cross
// every hop; a broken hop breaks the session and the reconnect redials
// the whole chain; closing it closes every hop. Errors name the hop
// (JumpError).
//
// A path "~" or "~/dir" means the login directory or dir in it
// (LoginRelative): SFTP servers do not expand "~".
//
// # Connection management
//
// Every remote call is bounded by OpTimeout. pkg/sftp calls cannot be
// cancelled one by one, so a call that times out closes the whole
// connection, which unblocks it and every other call on that connection.
// Keepalives (keepalive@openssh.com global requests) detect a silent
// peer: after KeepaliveCountMax unanswered ones the connection is closed.
//
// A closed or broken connection is replaced in the background with
// jittered exponential backoff (100ms doubling to 30s, each wait picked in
// [d/2, d] so volumes that lost one server do not return in lockstep)
// until Close; each connection has a generation, so all callers that saw
// the same broken connection cause a single reconnect. Callers wait for
// the reconnect up to OpTimeout and then fail; a call therefore returns
// within about twice OpTimeout (waiting plus running), never hangs.
//
// A refusal that retrying will not fix (host key mismatch, unknown or
// revoked; authentication refused; the root directory gone) makes the
// connection backend.StateFailed: calls fail at once with a FailedError
// carrying the reason, and attempts slow down to one every few minutes
// (ReconnectPolicy). The reconnect loop logs state changes and at most
// one line per LogEvery in between, never one line per attempt.
//
// Idempotent operations (stat, read, write at an offset, chmod, ...) are
// retried after a reconnect. Non-idempotent ones (mkdir, remove, rename,
// symlink, link, exclusive create) are retried at most once: if the first
// attempt reached the server before the connection broke, the retry
// reports what it finds, e.g. EEXIST for a Mkdir that did succeed or
// ENOENT for a Rename that did.
//
// Open files survive reconnects: a File re-opens its path with the
// original flags minus O_CREATE, O_EXCL and O_TRUNC on the new connection
// and retries the read or write. A file renamed or removed in between
// cannot be re-opened and its calls then fail.
//
// With Conns above 1 the backend has a pool of connections (pool.go):
// path calls use the first, open files go to the connection with the
// fewest open files, and the extra connections are dialled when first
// needed. Each reconnects on its own as above; a File stays on its
// connection and re-opens there. Status follows the first connection.
//
// # Errors
//
// OpenSSH speaks SFTP version 3, whose only specific statuses are "no
// such file" and "permission denied"; everything else is
// SSH_FX_FAILURE. Where the backend contract needs a precise errno
// (EEXIST, ENOTEMPTY, EISDIR, ENOTDIR, EINVAL for Readlink) a follow-up
// Lstat decides. Connection failures and timeouts are I/O errors whose
// chain never matches a syscall.Errno, not even the socket's (ECONNRESET,
// EPIPE, ...), which says nothing about the file: the FUSE layer reports
// them as EIO.
//
// # Limits
//
//   - Times have second precision (SFTP v3 attributes).
//   - Files and directories are created with the server's default mode and
//     then chmod'ed to the requested one (pkg/sftp sends no attributes with
//     OPEN and MKDIR), a short window with the server's umask.
//   - Remove checks that the name is not a directory before removing it;
//     a directory appearing in between is the one race left.
//   - RenameNoReplace checks the target with Lstat before a plain rename;
//     OpenSSH's plain rename refuses existing targets itself, other
//     servers may replace in that window.
//   - Without posix-rename@openssh.com, replacing rename is emulated by
//     remove then rename, which other clients can observe.
//   - Nlink and Ino are not reported by SFTP v3 (always 0).
//   - Capabilities are those of the first connection.
package sftp
