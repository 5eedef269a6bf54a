package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/sftpfs/sftpfs/sftpserver"
)

const sftpServerUsage = `usage: sftpfs sftp-server -root DIR [-listen ADDR] [-authorized-keys FILE] [-password-file FILE] [-host-key FILE] [-read-only]

A small SFTP server for one directory, as a development and test aid (try
sftpfs without setting up OpenSSH). Clients cannot reach outside DIR. Any
user name is accepted; what authenticates is the key, certificate or
password. Only SFTP is offered: no shell, no commands, no forwarding.

When ready it prints on stdout:
  sftp-server listening on ADDR host key TYPE SHA256:...
  [HOST]:PORT TYPE KEY          (a line for known_hosts)
and runs until SIGINT or SIGTERM (exit status 0).

flags:
`

// sftpServerArgs are the parsed flags of `sftpfs sftp-server`.
type sftpServerArgs struct {
	root, listen, authorizedKeys, passwordFile, hostKey string
	readOnly                                            bool
}

func parseSFTPServerArgs(args []string, stderr io.Writer) (sftpServerArgs, error) {
	var a sftpServerArgs
	fl := flag.NewFlagSet("sftp-server", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() {
		fmt.Fprint(stderr, sftpServerUsage)
		fl.PrintDefaults()
	}
	fl.StringVar(&a.root, "root", "", "directory to serve (required)")
	fl.StringVar(&a.listen, "listen", sftpserver.DefaultAddr, "TCP address to listen on; port 0 picks a free port")
	fl.StringVar(&a.authorizedKeys, "authorized-keys", "", "OpenSSH authorized_keys `file`; keys marked cert-authority are trusted user CAs")
	fl.StringVar(&a.passwordFile, "password-file", "", "`file` holding the login password (one trailing newline is ignored)")
	fl.StringVar(&a.hostKey, "host-key", "", "host private key `file` (OpenSSH or PEM, unencrypted); generated there (ed25519, mode 0600) if missing; default: a new key each run")
	fl.BoolVar(&a.readOnly, "read-only", false, "refuse every change")
	if err := fl.Parse(args); err != nil {
		return a, err
	}
	if fl.NArg() > 0 {
		return a, fmt.Errorf("unexpected argument %q: sftp-server takes flags only", fl.Arg(0))
	}
	if a.root == "" {
		return a, errors.New("-root DIR is required: the directory to serve")
	}
	if a.authorizedKeys == "" && a.passwordFile == "" {
		return a, errors.New("no way to log in: give -authorized-keys FILE, -password-file FILE, or both")
	}
	return a, nil
}

func runSFTPServer(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return serveSFTP(ctx, args, stdout, stderr)
}

// serveSFTP is runSFTPServer with the stop signal as a context, so tests
// can stop it without signals.
func serveSFTP(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "sftpfs sftp-server: "+format+"\n", a...)
		return code
	}
	a, err := parseSFTPServerArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return fail(2, "%v", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if st, err := os.Stat(a.root); err != nil || !st.IsDir() {
		return fail(1, "-root %s must be an existing directory", a.root)
	}
	cfg := sftpserver.Config{Root: a.root, Addr: a.listen, ReadOnly: a.readOnly, Logger: log}
	if a.authorizedKeys != "" {
		cfg.AuthorizedKeys, cfg.TrustedUserCAKeys, err = readAuthorizedKeys(a.authorizedKeys)
		if err != nil {
			return fail(1, "%v", err)
		}
	}
	if a.passwordFile != "" {
		if cfg.Password, err = readPasswordFile(a.passwordFile, log); err != nil {
			return fail(1, "%v", err)
		}
	}
	if a.hostKey != "" {
		if cfg.HostKey, err = loadOrCreateHostKey(a.hostKey, log); err != nil {
			return fail(1, "%v", err)
		}
	}
	if !isLoopback(a.listen) {
		log.Warn("listening on a non-loopback address: other machines can reach this development server", "listen", a.listen)
	}
	srv, err := sftpserver.New(cfg)
	if err != nil {
		return fail(1, "%v", err)
	}
	hk := srv.HostKey()
	fmt.Fprintf(stdout, "sftp-server listening on %s host key %s %s\n%s\n",
		srv.Addr(), hk.Type(), ssh.FingerprintSHA256(hk), knownhosts.Line([]string{srv.Addr()}, hk))
	if err := srv.Serve(ctx); err != nil {
		return fail(1, "%v", err)
	}
	return 0
}

// isLoopback reports whether a listen address only accepts local
// connections. An empty host means all interfaces.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// readAuthorizedKeys parses an OpenSSH authorized_keys file. Keys with the
// cert-authority option are CAs whose user certificates are accepted.
func readAuthorizedKeys(path string) (keys, cas []ssh.PublicKey, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading -authorized-keys: %w", err)
	}
	for line, rest := 1, b; len(bytes.TrimSpace(rest)) > 0; line++ {
		var l []byte
		l, rest, _ = bytes.Cut(rest, []byte("\n"))
		l = bytes.TrimSpace(l)
		if len(l) == 0 || l[0] == '#' {
			continue
		}
		k, _, opts, _, err := ssh.ParseAuthorizedKey(l)
		if err != nil {
			return nil, nil, fmt.Errorf("-authorized-keys %s line %d is not an OpenSSH public key line (%v)", path, line, err)
		}
		isCA := false
		for _, o := range opts {
			if strings.EqualFold(o, "cert-authority") {
				isCA = true
			}
		}
		if isCA {
			cas = append(cas, k)
		} else {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 && len(cas) == 0 {
		return nil, nil, fmt.Errorf("-authorized-keys %s holds no public key", path)
	}
	return keys, cas, nil
}

// readPasswordFile reads the password, dropping one trailing newline (as
// left by `echo secret > file`). The content never appears in errors.
func readPasswordFile(path string, log *slog.Logger) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading -password-file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		log.Warn("the password file is readable by other users; chmod 600 it", "file", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading -password-file: %w", err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return nil, fmt.Errorf("-password-file %s is empty; put the password in it", path)
	}
	return b, nil
}

// loadOrCreateHostKey reads the host key at path or, when the file does
// not exist, generates an ed25519 key and writes it there with mode 0600,
// so the server keeps its identity across restarts.
func loadOrCreateHostKey(path string, log *slog.Logger) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		s, err := ssh.ParsePrivateKey(b)
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, fmt.Errorf("-host-key %s is encrypted with a passphrase; give an unencrypted key (ssh-keygen -p -N '' -f FILE removes it)", path)
		}
		if err != nil {
			return nil, fmt.Errorf("-host-key %s is not a private key in OpenSSH or PEM format: %v", path, err)
		}
		return s, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading -host-key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating a host key: %w", err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "sftpfs sftp-server host key")
	if err != nil {
		return nil, fmt.Errorf("encoding the host key: %w", err)
	}
	// O_EXCL: never overwrite a key that appeared meanwhile.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("writing the new host key: %w", err)
	}
	if _, err := f.Write(pem.EncodeToMemory(blk)); err != nil {
		f.Close()
		return nil, fmt.Errorf("writing the new host key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("writing the new host key %s: %w", path, err)
	}
	log.Info("generated a new host key", "file", path)
	return ssh.NewSignerFromKey(priv)
}
