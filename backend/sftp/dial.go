package sftp

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	psftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// authSet is the authentication material for one dial.
type authSet struct {
	methods []ssh.AuthMethod
	// tried describes, without secrets, what each method will offer, for
	// the error message when authentication fails.
	tried   []string
	cleanup func()
}

// namedSigner is a signer plus a description (file name or "agent key")
// used in messages; never key material.
type namedSigner struct {
	ssh.Signer
	desc string
}

// buildAuth reads every configured secret (files are re-read at every
// dial so rotated keys and passwords take effect on reconnect). It fails
// only when no method at all is usable; problems with individual sources
// are logged and reported when authentication then fails.
func (c Config) buildAuth(log *slog.Logger) (*authSet, error) {
	as := &authSet{cleanup: func() {}}
	var problems []string
	var signers []namedSigner

	if c.AgentSocket != "" {
		conn, err := net.DialTimeout("unix", c.AgentSocket, c.ConnectTimeout)
		if err != nil {
			problems = append(problems, fmt.Sprintf("ssh_agent %s: cannot connect: %v", c.AgentSocket, err))
		} else {
			as.cleanup = func() { conn.Close() }
			ss, err := agent.NewClient(conn).Signers()
			switch {
			case err != nil:
				problems = append(problems, fmt.Sprintf("ssh_agent %s: listing keys failed: %v", c.AgentSocket, err))
			case len(ss) == 0:
				problems = append(problems, fmt.Sprintf("ssh_agent %s: the agent holds no keys", c.AgentSocket))
			}
			for _, s := range ss {
				signers = append(signers, namedSigner{s, "agent key " + ssh.FingerprintSHA256(s.PublicKey())})
			}
		}
	}

	var passphrase []byte
	passphraseRead := false
	getPassphrase := func() ([]byte, error) {
		if !passphraseRead {
			passphraseRead = true
			if c.PassphraseFile != "" {
				b, err := os.ReadFile(c.PassphraseFile)
				if err != nil {
					return nil, fmt.Errorf("passphrase_file %s: cannot read: %w", c.PassphraseFile, pathErrOnly(err))
				}
				passphrase = trimNewline(b)
			}
		}
		return passphrase, nil
	}
	addKey := func(desc string, data []byte) {
		s, err := parseKey(desc, data, getPassphrase)
		if err != nil {
			problems = append(problems, err.Error())
			return
		}
		signers = append(signers, namedSigner{s, desc + " (" + ssh.FingerprintSHA256(s.PublicKey()) + ")"})
	}
	for _, f := range c.IdentityFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			problems = append(problems, fmt.Sprintf("identity %s: cannot read: %v", f, pathErrOnly(err)))
			continue
		}
		addKey("identity "+f, data)
	}
	for i, data := range c.IdentityInline {
		addKey(fmt.Sprintf("identity_b64 #%d", i+1), data)
	}

	if c.CertificateFile != "" {
		certSigners, err := certify(c.CertificateFile, signers)
		if err != nil {
			problems = append(problems, err.Error())
		} else {
			// Certificates first: a server trusting the CA accepts them
			// without an authorized_keys entry.
			signers = append(certSigners, signers...)
		}
	}

	if len(signers) > 0 {
		ss := make([]ssh.Signer, len(signers))
		descs := make([]string, len(signers))
		for i, s := range signers {
			ss[i] = s.Signer
			descs[i] = s.desc
		}
		as.methods = append(as.methods, ssh.PublicKeys(ss...))
		as.tried = append(as.tried, "publickey ["+strings.Join(descs, ", ")+"]")
	}

	var password []byte
	switch {
	case c.PasswordFile != "":
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			problems = append(problems, fmt.Sprintf("password_file %s: cannot read: %v", c.PasswordFile, pathErrOnly(err)))
		} else {
			password = trimNewline(b)
		}
	case len(c.Password) > 0:
		password = c.Password
	}
	if password != nil {
		pw := string(password)
		as.methods = append(as.methods,
			ssh.Password(pw),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, echos []bool) ([]string, error) {
				// Answer hidden prompts with the password; echoed prompts
				// are not password questions.
				answers := make([]string, len(questions))
				for i := range questions {
					if !echos[i] {
						answers[i] = pw
					}
				}
				return answers, nil
			}))
		src := "password"
		if c.PasswordFile != "" {
			src = "password_file " + c.PasswordFile
		}
		as.tried = append(as.tried, "password ("+src+")", "keyboard-interactive ("+src+")")
	}

	for _, p := range problems {
		log.Warn("authentication source unusable", "problem", p)
	}
	if len(as.methods) == 0 {
		as.cleanup()
		if len(problems) == 0 {
			return nil, errors.New("no authentication configured: set identity, identity_b64, password_file or ssh_agent")
		}
		return nil, fmt.Errorf("no usable authentication method: %s", strings.Join(problems, "; "))
	}
	if len(problems) > 0 {
		as.tried = append(as.tried, "unusable: "+strings.Join(problems, "; "))
	}
	return as, nil
}

// parseKey parses one private key. Messages name desc (a file name or
// "identity_b64 #n") and never include key material.
func parseKey(desc string, data []byte, passphrase func() ([]byte, error)) (ssh.Signer, error) {
	s, err := ssh.ParsePrivateKey(data)
	if err == nil {
		return s, nil
	}
	var missing *ssh.PassphraseMissingError
	if !errors.As(err, &missing) {
		return nil, fmt.Errorf("%s: not a private key in OpenSSH, PEM or PKCS#8 format (%s)", desc, safeParseError(err))
	}
	pp, perr := passphrase()
	if perr != nil {
		return nil, fmt.Errorf("%s: encrypted key: %w", desc, perr)
	}
	if len(pp) == 0 {
		return nil, fmt.Errorf("%s: the key is encrypted and needs passphrase_file", desc)
	}
	s, err = ssh.ParsePrivateKeyWithPassphrase(data, pp)
	if err != nil {
		if errors.Is(err, x509.IncorrectPasswordError) || strings.Contains(err.Error(), "decryption password incorrect") {
			return nil, fmt.Errorf("%s: the passphrase in passphrase_file does not decrypt the key", desc)
		}
		return nil, fmt.Errorf("%s: cannot decrypt the key (%s)", desc, safeParseError(err))
	}
	return s, nil
}

// safeParseError keeps a parse error's text only when it is one of
// x/crypto's fixed messages; anything else is replaced, because a future
// library version could quote input.
func safeParseError(err error) string {
	msg := err.Error()
	if len(msg) > 120 || strings.ContainsAny(msg, "\n") || strings.Contains(msg, "-----") {
		return "unrecognised key data"
	}
	return msg
}

// certify builds certificate signers for the signers whose public key the
// certificate in file certifies.
func certify(file string, signers []namedSigner) ([]namedSigner, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: cannot read: %v", file, pathErrOnly(err))
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: not an OpenSSH certificate (%v)", file, err)
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		return nil, fmt.Errorf("certificate %s: is a plain public key, not a certificate (expected a *-cert.pub file from ssh-keygen -s)", file)
	}
	var out []namedSigner
	for _, s := range signers {
		if !bytes.Equal(s.PublicKey().Marshal(), cert.Key.Marshal()) {
			continue
		}
		cs, err := ssh.NewCertSigner(cert, s.Signer)
		if err != nil {
			return nil, fmt.Errorf("certificate %s: %v", file, err)
		}
		out = append(out, namedSigner{cs, "certificate " + file})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("certificate %s: certifies key %s, which is none of the configured identity keys",
			file, ssh.FingerprintSHA256(cert.Key))
	}
	return out, nil
}

// pathErrOnly drops the operation prefix of a *fs.PathError, keeping the
// cause; the path is already in the message around it.
func pathErrOnly(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func trimNewline(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

var attemptedRe = regexp.MustCompile(`attempted methods \[([^\]]*)\]`)

// authError rewrites x/crypto's "unable to authenticate" error into a
// sentence saying what the server offered and what sftpfs tried.
func authError(user string, err error, offered []string, as *authSet) error {
	msg := err.Error()
	if !strings.Contains(msg, "unable to authenticate") {
		return err
	}
	attempted := "none"
	if m := attemptedRe.FindStringSubmatch(msg); m != nil {
		attempted = m[1]
	}
	off := "(unknown)"
	if offered != nil {
		off = "[" + strings.Join(offered, " ") + "]"
	}
	return &AuthError{
		msg: fmt.Sprintf("authentication as user %q failed: the server offered %s, the attempted methods were [%s]; configured: %s. "+
			"Check that the key is in the server's authorized_keys (or the password is right) and that user is correct",
			user, off, attempted, strings.Join(as.tried, "; ")),
	}
}

// AuthError reports an authentication failure. It never contains a
// secret.
type AuthError struct{ msg string }

func (e *AuthError) Error() string { return e.msg }

// dialSSH connects, verifies the host key, authenticates and starts the
// SFTP subsystem. The whole exchange is bounded by ConnectTimeout.
func (c Config) dialSSH(ctx context.Context, seen *seenHostKey) (*psftp.Client, io.Closer, error) {
	log := c.Logger
	addr := net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	hkcb, algos, err := c.hostKeyPolicy(addr, log, seen)
	if err != nil {
		return nil, nil, err
	}
	as, err := c.buildAuth(log)
	if err != nil {
		return nil, nil, err
	}
	defer as.cleanup()

	var mu sync.Mutex
	var offered []string
	cfg := &ssh.ClientConfig{
		User:              c.User,
		Auth:              as.methods,
		HostKeyCallback:   hkcb,
		HostKeyAlgorithms: algos,
		Timeout:           c.ConnectTimeout,
		AuthCallback: func(ac *ssh.ClientAuthContext) (ssh.AuthMethod, error) {
			// Only observes: remembers what the server allows so that a
			// failure can say so; (nil, nil) keeps the normal order.
			mu.Lock()
			offered = ac.AllowedMethods
			mu.Unlock()
			return nil, nil
		},
	}
	cfg.Ciphers = c.Ciphers

	ctx, cancel := context.WithTimeout(ctx, c.ConnectTimeout)
	defer cancel()
	d := net.Dialer{Timeout: c.ConnectTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to %s: %w", addr, err)
	}
	// The SSH handshake and SFTP init do not take a context: a deadline on
	// the socket bounds them, and cancelling ctx closes the socket.
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		stop()
		conn.Close()
		var hk *HostKeyError
		if errors.As(err, &hk) {
			return nil, nil, hk
		}
		mu.Lock()
		off := offered
		mu.Unlock()
		if ae := authError(c.User, err, off, as); ae != err {
			return nil, nil, ae
		}
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("SSH handshake with %s did not finish within connect_timeout %v: %w", addr, c.ConnectTimeout, err)
		}
		return nil, nil, fmt.Errorf("SSH handshake with %s: %w", addr, err)
	}
	client := ssh.NewClient(sc, chans, reqs)
	packet := c.MaxPacket
	if packet == 0 {
		packet = DefaultMaxPacket
	}
	sftpClient, err := newSFTPClient(client, c.sftpOptions(packet)...)
	if err != nil {
		stop()
		client.Close()
		return nil, nil, fmt.Errorf("starting the sftp subsystem on %s (is SFTP enabled in sshd_config?): %w", addr, err)
	}
	if _, ok := sftpClient.HasExtension("limits@openssh.com"); ok && c.MaxPacket == 0 {
		// The packet size is fixed when the client starts, and the
		// extensions are known only after; a second subsystem session
		// on the same connection costs one round trip.
		if big, err := newSFTPClient(client, c.sftpOptions(LargeMaxPacket)...); err == nil {
			sftpClient.Close()
			sftpClient = big
		}
	}
	if !stop() {
		sftpClient.Close()
		client.Close()
		return nil, nil, fmt.Errorf("connecting to %s: %w", addr, ctx.Err())
	}
	_ = conn.SetDeadline(time.Time{})
	return sftpClient, client, nil
}

// sftpOptions tunes pkg/sftp for throughput: many requests in flight per
// file hide the network round trip.
func (c Config) sftpOptions(packet int) []psftp.ClientOption {
	return []psftp.ClientOption{
		psftp.MaxPacketUnchecked(packet),
		psftp.UseConcurrentReads(true),
		psftp.UseConcurrentWrites(true),
		psftp.MaxConcurrentRequestsPerFile(64),
		psftp.UseFstat(true),
	}
}
