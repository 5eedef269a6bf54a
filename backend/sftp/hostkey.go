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
}

func (e *HostKeyError) Error() string {
	switch e.Problem {
	case HostKeyMismatch:
		return fmt.Sprintf("HOST KEY MISMATCH for %s: the server presented %s %s but the configured known_hosts expects %s; "+
			"this can mean someone is doing something nasty (possible man-in-the-middle attack), or the server's host key was changed. "+
			"If you know the key was changed, update known_hosts or hostkey",
			e.Host, e.KeyType, e.Fingerprint, strings.Join(e.Want, ", "))
	case HostKeyRevoked:
		return fmt.Sprintf("host key %s %s of %s is marked @revoked in known_hosts (%s); refusing to connect",
			e.KeyType, e.Fingerprint, e.Host, e.Detail)
	case HostKeyInvalid:
		return fmt.Sprintf("host key %s %s of %s was refused: %s", e.KeyType, e.Fingerprint, e.Host, e.Detail)
	default:
		return fmt.Sprintf("host key for %s is not known: %s %s ; to trust it, add -o hostkey=%s (or add it to known_hosts)",
			e.Host, e.KeyType, e.Fingerprint, e.Fingerprint)
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

// hostKeyPolicy builds the host key callback and the preferred host key
// algorithms for one dial. known_hosts files are read here, at every dial,
// so edits take effect on the next reconnect.
func (c Config) hostKeyPolicy(addr string, log *slog.Logger, seen *seenHostKey) (ssh.HostKeyCallback, []string, error) {
	if c.InsecureIgnoreHostKey {
		var warn sync.Once
		return func(hostname string, _ net.Addr, key ssh.PublicKey) error {
			typ, fp := describeKey(key)
			seen.set(fp)
			warn.Do(func() {
				log.Warn("host key NOT verified (insecure_ignore_host_key is set)", "host", hostname, "key_type", typ, "fingerprint", fp)
			})
			return nil
		}, nil, nil
	}

	var pins []pinnedKey
	for _, s := range c.HostKeys {
		p, err := parsePinnedKey(s)
		if err != nil {
			return nil, nil, fmt.Errorf("hostkey %q: %w", s, err)
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

	caLines := readCALines(c.KnownHostsFiles)
	cb := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		typ, fp := describeKey(key)
		seen.set(fp)
		hkErr := &HostKeyError{Problem: HostKeyUnknown, Host: hostname, KeyType: typ, Fingerprint: fp}
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
			for _, w := range keyErr.Want {
				if caLines.isCA(w) {
					// knownhosts lists @cert-authority keys too; they are
					// not keys the host should have presented.
					continue
				}
				hkErr.Problem = HostKeyMismatch
				wt, wfp := describeKey(w.Key)
				hkErr.Want = append(hkErr.Want, fmt.Sprintf("%s:%d: %s %s", w.Filename, w.Line, wt, wfp))
			}
		default:
			// A certificate that no @cert-authority line vouches for, or
			// one that is expired or has the wrong principals.
			hkErr.Problem = HostKeyInvalid
			hkErr.Detail = khErr.Error()
		}
		return hkErr
	}
	return cb, c.hostKeyAlgorithms(addr, kh, pins, caLines), nil
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

// hostKeyAlgorithms restricts the host key algorithms to the types of the
// keys we already know for addr, so that a server offering several host
// keys presents one we can verify (OpenSSH does the same). It returns nil
// (library defaults) when the types are not known.
func (c Config) hostKeyAlgorithms(addr string, kh ssh.HostKeyCallback, pins []pinnedKey, caLines caLineSet) []string {
	var types []string
	for _, p := range pins {
		if p.key == nil {
			// A bare fingerprint does not say which type it is for.
			return nil
		}
		types = append(types, p.key.Type())
	}
	if kh != nil {
		// knownhosts has no lookup API, but checking a throwaway key makes
		// it list the keys it knows for the host in a KeyError.
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err == nil {
			probe, err := ssh.NewPublicKey(pub)
			if err == nil {
				var keyErr *knownhosts.KeyError
				remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: c.Port}
				if errors.As(kh(addr, remote, probe), &keyErr) {
					for _, w := range keyErr.Want {
						if caLines.isCA(w) {
							// A host certificate may be of any type.
							return nil
						}
						types = append(types, w.Key.Type())
					}
				}
			}
		}
	}
	var algos []string
	for _, t := range types {
		for _, a := range algorithmsForKeyType(t) {
			if !contains(algos, a) {
				algos = append(algos, a)
			}
		}
	}
	return algos
}

func algorithmsForKeyType(t string) []string {
	if t == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{t}
}

// describeKey returns the type and SHA256 fingerprint users know the key
// by: for a host certificate, those of the certified key.
func describeKey(key ssh.PublicKey) (typ, fp string) {
	if cert, ok := key.(*ssh.Certificate); ok {
		return cert.Type(), ssh.FingerprintSHA256(cert.Key)
	}
	return key.Type(), ssh.FingerprintSHA256(key)
}
