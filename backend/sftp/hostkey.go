package sftp

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyProblem says why a host key was refused.
type HostKeyProblem int

// Reasons a host key is refused.
const (
	// HostKeyUnknown: nothing configured vouches for the key.
	HostKeyUnknown HostKeyProblem = iota + 1
	// HostKeyMismatch: known_hosts has other keys for this host.
	HostKeyMismatch
	// HostKeyRevoked: known_hosts marks the key @revoked.
	HostKeyRevoked
	// HostKeyInvalid: a certificate or the known_hosts data was unusable.
	HostKeyInvalid
)

// HostKeyError is returned (wrapped) by New and by reconnects when the
// server's host key is refused. It carries only public data.
type HostKeyError struct {
	Problem HostKeyProblem
	// Host is the address as dialled, "host:port".
	Host string
	// KeyType and Fingerprint describe the key the server presented (for a
	// certificate: the certified key).
	KeyType     string
	Fingerprint string
	// Want lists "file:line: type SHA256:..." for known keys on a mismatch.
	Want []string
	// Detail is extra text, e.g. why a certificate was refused.
	Detail string
	// Seen lists "type SHA256:..." for every key the server presented
	// during the dial, one per key type tried, this one included (a
	// server with several host keys is asked for each in turn).
	Seen []string
	// Pinned lists the fingerprints the user pinned for this host (with
	// PinOption); a key that matches none of them is a changed key, not
	// one to start trusting.
	Pinned []string
	// PinOption is the option the pins came from ("hostkey", or
	// "jump_hostkey" for a jump host), for the advice in the message.
	PinOption string
	// rejected are the key types to ask the server for no more.
	rejected []string
}

func (e *HostKeyError) Error() string {
	opt := e.PinOption
	if opt == "" {
		opt = "hostkey"
	}
	switch e.Problem {
	case HostKeyMismatch:
		return fmt.Sprintf("HOST KEY MISMATCH for %s: the server presented %s %s but the configured known_hosts expects %s; "+
			"this can mean someone is doing something nasty (possible man-in-the-middle attack), or the server's host key was changed. "+
			"If you know the key was changed, update known_hosts or %s",
			e.Host, e.KeyType, e.Fingerprint, strings.Join(e.Want, ", "), opt)
	case HostKeyRevoked:
		return fmt.Sprintf("host key %s %s of %s is marked @revoked in known_hosts (%s); refusing to connect",
			e.KeyType, e.Fingerprint, e.Host, e.Detail)
	case HostKeyInvalid:
		return fmt.Sprintf("host key %s %s of %s was refused: %s", e.KeyType, e.Fingerprint, e.Host, e.Detail)
	default:
		detail := ""
		if e.Detail != "" {
			detail = " (" + e.Detail + ")"
		}
		if len(e.Pinned) > 0 {
			// Advising to pin what the server presents would invite
			// trusting a man in the middle.
			return fmt.Sprintf("host key of %s does not match %s %s: the server presented %s%s. "+
				"This can mean someone is doing something nasty (possible man-in-the-middle attack), or the server's host key was changed; "+
				"only after checking the new key out of band (e.g. `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the server) replace %s",
				e.Host, opt, strings.Join(e.Pinned, ","), strings.Join(e.Seen, ", "), detail, opt)
		}
		if len(e.Seen) > 1 {
			return fmt.Sprintf("host key for %s is not known: the server presented %s, and none matches %s or known_hosts%s; "+
				"to trust the server, add -o %s=FINGERPRINT with one of them (check it out of band, e.g. `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the server)",
				e.Host, strings.Join(e.Seen, ", "), opt, detail, opt)
		}
		return fmt.Sprintf("host key for %s is not known: %s %s%s; to trust it, add -o %s=%s (or add it to known_hosts)",
			e.Host, e.KeyType, e.Fingerprint, detail, opt, e.Fingerprint)
	}
}

// pinnedKey is one entry of Config.HostKeys.
type pinnedKey struct {
	fingerprint string        // "SHA256:..."
	key         ssh.PublicKey // nil when only the fingerprint was given
}

// parsePinnedKey accepts "SHA256:<base64>" or an authorized_keys /
// known_hosts style line ("ssh-ed25519 AAAA... [comment]").
func parsePinnedKey(s string) (pinnedKey, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "SHA256:"); ok {
		raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(rest, "="))
		if err != nil || len(raw) != 32 {
			return pinnedKey{}, errors.New("not a valid SHA256 fingerprint: expected SHA256: followed by 43 base64 characters, as printed by ssh-keygen -lf")
		}
		return pinnedKey{fingerprint: "SHA256:" + base64.RawStdEncoding.EncodeToString(raw)}, nil
	}
	if k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s)); err == nil {
		return pinnedKey{fingerprint: ssh.FingerprintSHA256(k), key: k}, nil
	}
	if _, _, k, _, _, err := ssh.ParseKnownHosts([]byte(s)); err == nil {
		return pinnedKey{fingerprint: ssh.FingerprintSHA256(k), key: k}, nil
	}
	return pinnedKey{}, errors.New("expected SHA256:... or a public key line like \"ssh-ed25519 AAAA...\"")
}

// seenHostKey records the key the server presented during the last
// handshake, for Status and error messages.
type seenHostKey struct {
	mu          sync.Mutex
	fingerprint string
}

func (s *seenHostKey) set(fp string) {
	s.mu.Lock()
	s.fingerprint = fp
	s.mu.Unlock()
}

func (s *seenHostKey) get() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fingerprint
}

// hostKeyPolicy builds the host key callback and the host key algorithms,
// in order of preference, for one dial of the target server (pins:
// Config.HostKeys).
func (c Config) hostKeyPolicy(addr string, log *slog.Logger, seen *seenHostKey) (ssh.HostKeyCallback, []string, error) {
	return c.hostKeyPolicyFor(addr, c.HostKeys, "hostkey", log, seen)
}

// hostKeyPolicyFor builds the policy for addr trusting the pinned keys
// pinStrings (named by option pinOpt in messages) and the known_hosts
// files. known_hosts files are read here, at every dial, so edits take
// effect on the next reconnect.
func (c Config) hostKeyPolicyFor(addr string, pinStrings []string, pinOpt string, log *slog.Logger, seen *seenHostKey) (ssh.HostKeyCallback, []string, error) {
	if c.InsecureIgnoreHostKey {
		var warn sync.Once
		return func(hostname string, _ net.Addr, key ssh.PublicKey) error {
			typ, fp := describeKey(key)
			seen.set(fp)
			warn.Do(func() {
				log.Warn("host key NOT verified (insecure_ignore_host_key is set)", "host", hostname, "key_type", typ, "fingerprint", fp)
			})
			return nil
		}, defaultHostKeyAlgorithms(), nil
	}

	var pins []pinnedKey
	for _, s := range pinStrings {
		p, err := parsePinnedKey(s)
		if err != nil {
			return nil, nil, fmt.Errorf("%s %q: %w", pinOpt, s, err)
		}
		pins = append(pins, p)
	}
	var kh ssh.HostKeyCallback
	if len(c.KnownHostsFiles) > 0 {
		var err error
		kh, err = knownhosts.New(c.KnownHostsFiles...)
		if err != nil {
			return nil, nil, fmt.Errorf("known_hosts: %w (check the known_hosts option)", err)
		}
	}

	pinned := make([]string, 0, len(pins))
	for _, p := range pins {
		pinned = append(pinned, p.fingerprint)
	}
	caLines := readCALines(c.KnownHostsFiles)
	cb := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		typ, fp := describeKey(key)
		seen.set(fp)
		hkErr := &HostKeyError{Problem: HostKeyUnknown, Host: hostname, KeyType: typ, Fingerprint: fp, PinOption: pinOpt,
			Seen: []string{typ + " " + fp}, rejected: []string{key.Type()}, Pinned: pinned}
		if cert, ok := key.(*ssh.Certificate); ok {
			hkErr.rejected = append(hkErr.rejected, cert.Key.Type())
		}
		var khErr error
		if kh != nil {
			khErr = kh(hostname, remote, key)
			if khErr == nil {
				return nil
			}
			var revoked *knownhosts.RevokedError
			var keyErr *knownhosts.KeyError
			if cert, ok := key.(*ssh.Certificate); ok && !errors.As(khErr, &revoked) && !errors.As(khErr, &keyErr) {
				// No @cert-authority vouches for the certificate: judge the
				// certified key itself, as a plain known_hosts entry or
				// @revoked line would (the server proved it holds it).
				plainErr := kh(hostname, remote, cert.Key)
				if plainErr == nil {
					return nil
				}
				if errors.As(plainErr, &revoked) || errors.As(plainErr, &keyErr) {
					khErr = plainErr
				}
			}
			if errors.As(khErr, &revoked) {
				hkErr.Problem = HostKeyRevoked
				hkErr.Detail = fmt.Sprintf("%s:%d", revoked.Revoked.Filename, revoked.Revoked.Line)
				return hkErr
			}
		}
		plain := key
		if cert, ok := key.(*ssh.Certificate); ok {
			plain = cert.Key
		}
		for _, p := range pins {
			if p.key != nil && bytes.Equal(p.key.Marshal(), plain.Marshal()) {
				return nil
			}
			if p.key == nil && p.fingerprint == fp {
				return nil
			}
		}
		var keyErr *knownhosts.KeyError
		switch {
		case khErr == nil:
		case errors.As(khErr, &keyErr):
			var otherTypes []string
			for _, w := range keyErr.Want {
				if caLines.isCA(w) {
					// knownhosts lists @cert-authority keys too; they are
					// not keys the host should have presented.
					continue
				}
				wt, wfp := describeKey(w.Key)
				if w.Key.Type() != plain.Type() {
					// A key of another type is no mismatch: like OpenSSH,
					// treat the presented key as unknown (the dial then
					// asks the server for the known types).
					if !contains(otherTypes, wt) {
						otherTypes = append(otherTypes, wt)
					}
					continue
				}
				hkErr.Problem = HostKeyMismatch
				hkErr.Want = append(hkErr.Want, fmt.Sprintf("%s:%d: %s %s", w.Filename, w.Line, wt, wfp))
			}
			if hkErr.Problem == HostKeyUnknown && len(otherTypes) > 0 {
				hkErr.Detail = "known_hosts has only " + strings.Join(otherTypes, ", ") + " keys for this host"
			}
		default:
			// A certificate that no @cert-authority line vouches for, or
			// one that is expired or has the wrong principals.
			hkErr.Problem = HostKeyInvalid
			hkErr.Detail = khErr.Error()
		}
		return hkErr
	}
	return cb, hostKeyAlgorithms(addr, kh, pins, caLines), nil
}

// caLineSet holds the positions of @cert-authority lines, because
// knownhosts.KeyError does not say which known keys are CAs.
type caLineSet map[string]map[int]bool

func readCALines(files []string) caLineSet {
	set := caLineSet{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for i, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "@cert-authority") {
				if set[f] == nil {
					set[f] = map[int]bool{}
				}
				set[f][i+1] = true
			}
		}
	}
	return set
}

func (s caLineSet) isCA(k knownhosts.KnownKey) bool { return s[k.Filename][k.Line] }

// hostKeyAlgorithms orders the host key algorithms as OpenSSH does: first
// those for the key types the user trusts for addr (pinned keys of a
// known type, known_hosts lines, certificate algorithms when an
// @cert-authority line matches), then every other algorithm. A server with
// several host keys then presents one that can be verified; a bare
// SHA256 pin says nothing about its type, and for it the dial tries the
// server's other key types in turn (see handshake).
func hostKeyAlgorithms(addr string, kh ssh.HostKeyCallback, pins []pinnedKey, caLines caLineSet) []string {
	var types []string
	certs := false
	for _, p := range pins {
		if p.key != nil {
			types = append(types, p.key.Type())
		}
	}
	if kh != nil {
		// knownhosts has no lookup API, but checking a throwaway key makes
		// it list the keys it knows for the host in a KeyError.
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err == nil {
			probe, err := ssh.NewPublicKey(pub)
			if err == nil {
				var keyErr *knownhosts.KeyError
				remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: portOf(addr)}
				if errors.As(kh(addr, remote, probe), &keyErr) {
					for _, w := range keyErr.Want {
						if caLines.isCA(w) {
							// A host certificate may certify a key of any type.
							certs = true
							continue
						}
						types = append(types, w.Key.Type())
					}
				}
			}
		}
	}
	return orderHostKeyAlgorithms(types, certs)
}

// orderHostKeyAlgorithms puts the certificate algorithms (when certs), then
// the algorithms for types, in front of the default list.
func orderHostKeyAlgorithms(types []string, certs bool) []string {
	var algos []string
	add := func(a ...string) {
		for _, x := range a {
			if !contains(algos, x) {
				algos = append(algos, x)
			}
		}
	}
	all := defaultHostKeyAlgorithms()
	if certs {
		for _, a := range all {
			if strings.Contains(a, "-cert-") {
				add(a)
			}
		}
	}
	for _, t := range types {
		for _, a := range algorithmsForKeyType(t) {
			// A known_hosts line of a type x/crypto cannot verify (ssh-dss)
			// must not make the server present that key.
			if contains(all, a) {
				add(a)
			}
		}
	}
	add(all...)
	return algos
}

// defaultHostKeyAlgorithms is OpenSSH's default order (ed25519 before
// ECDSA before RSA, certificates first), followed by anything else
// x/crypto supports, and last the SHA-1 ssh-rsa that old servers need.
// x/crypto's own default puts ECDSA first, so a server with several host
// keys would present its ECDSA key although users copy the ed25519
// fingerprint.
func defaultHostKeyAlgorithms() []string {
	algos := []string{
		ssh.CertAlgoED25519v01,
		ssh.CertAlgoECDSA256v01, ssh.CertAlgoECDSA384v01, ssh.CertAlgoECDSA521v01,
		ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01,
		ssh.KeyAlgoED25519,
		ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
		ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
	}
	for _, a := range ssh.SupportedAlgorithms().HostKeys {
		if !contains(algos, a) {
			algos = append(algos, a)
		}
	}
	for _, a := range []string{ssh.KeyAlgoRSA, ssh.CertAlgoRSAv01} {
		if !contains(algos, a) {
			algos = append(algos, a)
		}
	}
	return algos
}

// algorithmsForKeyType lists the host key algorithms that make a server
// present a key of type t (an RSA key signs with SHA-2 or SHA-1).
func algorithmsForKeyType(t string) []string {
	switch t {
	case ssh.KeyAlgoRSA:
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	case ssh.CertAlgoRSAv01:
		return []string{ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01, ssh.CertAlgoRSAv01}
	}
	return []string{t}
}

// withoutKeyType removes from algos those that would make the server
// present a key of type t again.
func withoutKeyType(algos []string, t string) []string {
	drop := algorithmsForKeyType(t)
	var out []string
	for _, a := range algos {
		if !contains(drop, a) {
			out = append(out, a)
		}
	}
	return out
}

func portOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// describeKey returns the type and SHA256 fingerprint users know the key
// by: for a host certificate, those of the certified key.
func describeKey(key ssh.PublicKey) (typ, fp string) {
	if cert, ok := key.(*ssh.Certificate); ok {
		return cert.Type(), ssh.FingerprintSHA256(cert.Key)
	}
	return key.Type(), ssh.FingerprintSHA256(key)
}
