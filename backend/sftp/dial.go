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

	var agentSigners []namedSigner
	if c.AgentSocket != "" && !c.IdentitiesOnly {
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
				agentSigners = append(agentSigners, namedSigner{s, "agent key " + ssh.FingerprintSHA256(s.PublicKey())})
			}
		}
	}

	if c.CertificateFile != "" {
		certSigners, err := certify(c.CertificateFile, append(append([]namedSigner(nil), signers...), agentSigners...))
		if err != nil {
			problems = append(problems, err.Error())
		} else {
			// Certificates first: a server trusting the CA accepts them
			// without an authorized_keys entry.
			signers = append(certSigners, signers...)
		}
	}
	offerAgent, agentNote := capAgentKeys(signers, agentSigners, c.PasswordFile != "" || len(c.Password) > 0)
	signers = append(signers, offerAgent...)

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

	if agentNote != "" {
		as.tried = append(as.tried, agentNote)
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

// defaultMaxAuthTries is OpenSSH sshd's MaxAuthTries: the server
// disconnects after that many failed attempts (a key it refuses counts).
const defaultMaxAuthTries = 6

// capAgentKeys returns the agent keys to offer after the named ones:
// none that duplicates a named key, and, when a key is named or a
// password is configured, only as many as leave room for them within
// the server's default MaxAuthTries (an agent full of keys would
// otherwise spend every try before the password is reached). Keys left
// out are counted in note.
func capAgentKeys(named, agentKeys []namedSigner, password bool) (keys []namedSigner, note string) {
	var out []namedSigner
	for _, a := range agentKeys {
		dup := false
		for _, n := range named {
			if bytes.Equal(n.PublicKey().Marshal(), a.PublicKey().Marshal()) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, a)
		}
	}
	if len(named) == 0 && !password {
		return out, ""
	}
	room := defaultMaxAuthTries - len(named)
	if password {
		room--
	}
	room = max(room, 0)
	if len(out) > room {
		note = fmt.Sprintf("%d more agent keys not offered, so that the named keys and password fit in the server's default MaxAuthTries (%d)", len(out)-room, defaultMaxAuthTries)
		out = out[:room]
	}
	return out, note
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
	if strings.Contains(msg, "Too many authentication failures") {
		return &AuthError{
			msg: fmt.Sprintf("authentication as user %q failed: the server disconnected after too many refused attempts (its MaxAuthTries); configured: %s. "+
				"Name the right key with identity (it is offered before agent keys) and set identities_only=true to keep other agent keys out",
				user, strings.Join(as.tried, "; ")),
		}
	}
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

// dialSSH connects (through the jump hosts of proxy_jump, if any),
// verifies every host key, authenticates and starts the SFTP subsystem.
// The whole exchange is bounded by ConnectTimeout. The io.Closer closes
// every connection of the chain.
func (c Config) dialSSH(ctx context.Context, seen *seenHostKey) (*psftp.Client, io.Closer, error) {
	log := c.Logger
	addr := net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	as, err := c.buildAuth(log)
	if err != nil {
		return nil, nil, err
	}
	defer as.cleanup()

	ctx, cancel := context.WithTimeout(ctx, c.ConnectTimeout)
	defer cancel()
	// The SSH handshakes and SFTP init do not take a context: a deadline
	// on the first TCP connection bounds them, and cancelling ctx closes
	// every connection opened so far (tunnelled ones take no deadline).
	var conns connSet
	stop := context.AfterFunc(ctx, conns.closeAll)
	chain := &sshChain{}
	fail := func(err error) (*psftp.Client, io.Closer, error) {
		stop()
		chain.Close()
		conns.closeAll()
		return nil, nil, err
	}

	hops := append(append([]JumpHost(nil), c.JumpHosts...), JumpHost{User: c.User, Host: c.Host, Port: c.Port})
	for i, hop := range hops {
		target := i == len(hops)-1
		hopAddr := hop.Addr()
		user, pins, pinOpt, hopSeen := hop.User, c.JumpHostKeys, "jump_hostkey", &seenHostKey{}
		if user == "" {
			user = c.User
		}
		if target {
			pins, pinOpt, hopSeen = c.HostKeys, "hostkey", seen
		}
		var prev *ssh.Client
		if i > 0 {
			prev = chain.clients[i-1]
		}
		dial := func() (net.Conn, error) {
			if prev != nil {
				conn, err := prev.DialContext(ctx, "tcp", hopAddr)
				if err != nil {
					return nil, fmt.Errorf("connecting to %s through %s: %w", hopAddr, hops[i-1].Addr(), err)
				}
				conns.add(conn)
				return conn, nil
			}
			d := net.Dialer{Timeout: c.ConnectTimeout}
			conn, err := d.DialContext(ctx, "tcp", hopAddr)
			if err != nil {
				return nil, fmt.Errorf("connecting to %s: %w", hopAddr, err)
			}
			deadline, _ := ctx.Deadline()
			_ = conn.SetDeadline(deadline)
			conns.add(conn)
			return conn, nil
		}
		hkcb, algos, err := c.hostKeyPolicyFor(hopAddr, pins, pinOpt, log, hopSeen)
		if err == nil {
			var client *ssh.Client
			client, err = c.handshake(ctx, dial, hopAddr, user, as, hkcb, algos)
			if err == nil {
				chain.clients = append(chain.clients, client)
				continue
			}
		}
		if !target {
			err = &JumpError{Hop: i + 1, Hops: len(c.JumpHosts), Addr: hopAddr, Err: err}
		} else if len(c.JumpHosts) > 0 {
			err = fmt.Errorf("%w (target reached through proxy_jump %s)", err, joinHops(c.JumpHosts))
		}
		return fail(err)
	}

	client := chain.target()
	packet := c.MaxPacket
	if packet == 0 {
		packet = DefaultMaxPacket
	}
	sftpClient, err := newSFTPClient(client, c.sftpOptions(packet)...)
	if err != nil {
		if expired(ctx) {
			// The deadline closed the connection under the SFTP
			// init, which then reads as the server hanging up: say
			// what really happened.
			return fail(fmt.Errorf("the sftp subsystem on %s did not start within connect_timeout %v (a busy server or machine; raise connect_timeout): %w", addr, c.ConnectTimeout, err))
		}
		return fail(fmt.Errorf("starting the sftp subsystem on %s (is SFTP enabled in sshd_config?): %w", addr, err))
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
		chain.Close()
		return nil, nil, fmt.Errorf("connecting to %s: %w", addr, ctx.Err())
	}
	conns.clearDeadlines()
	return sftpClient, chain, nil
}

// expired reports whether ctx is done or its deadline has passed. The TCP
// deadline set from ctx's deadline fails a read the moment it passes,
// and the error can reach the caller before ctx's own timer has marked
// ctx done.
func expired(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// JumpError says which jump host of proxy_jump a dial failed at.
type JumpError struct {
	Hop, Hops int // 1-based position, and the number of jump hosts
	Addr      string
	Err       error
}

func (e *JumpError) Error() string {
	return fmt.Sprintf("jump host %d of %d (%s): %v", e.Hop, e.Hops, e.Addr, e.Err)
}

func (e *JumpError) Unwrap() error { return e.Err }

func joinHops(hops []JumpHost) string {
	s := make([]string, len(hops))
	for i, h := range hops {
		s[i] = h.String()
	}
	return strings.Join(s, ",")
}

// connSet remembers the network connections of one dial so that a
// cancelled or timed-out dial can close them all.
type connSet struct {
	mu    sync.Mutex
	conns []net.Conn
	done  bool
}

func (s *connSet) add(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		c.Close()
		return
	}
	s.conns = append(s.conns, c)
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = true
	for _, c := range s.conns {
		c.Close()
	}
}

// clearDeadlines lifts the dial deadline from the TCP connection; the
// session lives on.
func (s *connSet) clearDeadlines() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		if _, ok := c.(*net.TCPConn); ok {
			_ = c.SetDeadline(time.Time{})
		}
	}
}

// handshake runs the SSH handshake and authentication with one server
// over connections from dial. When the server presents a host key that
// nothing vouches for, it asks again for the server's other key types, a
// new connection each time, until one verifies or the server has no more
// (OpenSSH would fail at once, but it does not have to guess the type of
// a bare SHA256 pin); every key is checked by hkcb, and the final error
// lists every key the server presented.
func (c Config) handshake(ctx context.Context, dial func() (net.Conn, error), addr, user string, as *authSet, hkcb ssh.HostKeyCallback, algos []string) (*ssh.Client, error) {
	var last *HostKeyError
	for {
		conn, err := dial()
		if err != nil {
			return nil, err
		}
		var mu sync.Mutex
		var offered []string
		cfg := &ssh.ClientConfig{
			User:              user,
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
		sc, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
		if err == nil {
			return ssh.NewClient(sc, chans, reqs), nil
		}
		conn.Close()
		var hk *HostKeyError
		if errors.As(err, &hk) {
			if last != nil {
				hk.Seen = append(append([]string(nil), last.Seen...), hk.Seen...)
			}
			if hk.Problem != HostKeyUnknown {
				return nil, hk
			}
			next := algos
			for _, t := range hk.rejected {
				next = withoutKeyType(next, t)
			}
			if len(next) == 0 || len(next) == len(algos) {
				return nil, hk
			}
			last, algos = hk, next
			continue
		}
		var neg *ssh.AlgorithmNegotiationError
		if last != nil && errors.As(err, &neg) && neg.What == "host key" {
			// The server has no key of the types not tried yet.
			return nil, last
		}
		mu.Lock()
		off := offered
		mu.Unlock()
		if ae := authError(user, err, off, as); ae != err {
			return nil, ae
		}
		if expired(ctx) {
			return nil, fmt.Errorf("SSH handshake with %s did not finish within connect_timeout %v: %w", addr, c.ConnectTimeout, err)
		}
		return nil, fmt.Errorf("SSH handshake with %s: %w", addr, err)
	}
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
