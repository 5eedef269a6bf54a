package sshcompat

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// PrepareKnownHosts makes sure file exists (with its directory, 0700, and
// the file 0600, as ssh creates them), so that accept-new can record a key
// in it and options.Parse accepts it.
func PrepareKnownHosts(file string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("known_hosts %s: %v", file, unwrapPath(err))
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("known_hosts %s: %v", file, unwrapPath(err))
	}
	return f.Close()
}

// HostKnown reports whether any of files has a key (or a revocation) for
// host:port, whichever key it is.
func HostKnown(files []string, host string, port int) (bool, error) {
	if len(files) == 0 {
		return false, nil
	}
	cb, err := knownhosts.New(files...)
	if err != nil {
		return false, fmt.Errorf("known_hosts: %v", err)
	}
	// knownhosts has no lookup: checking a key that cannot be listed
	// tells "unknown host" (no wanted keys) from "known host".
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return false, err
	}
	probe, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return false, err
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	err = cb(addr, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}, probe.PublicKey())
	var keyErr *knownhosts.KeyError
	if errors.As(err, &keyErr) && len(keyErr.Want) == 0 {
		return false, nil
	}
	return true, nil
}

// errGotKey stops the handshake once the host key is known.
var errGotKey = errors.New("host key received")

// FetchHostKey connects to host:port and returns the key the server
// proves it holds in the SSH handshake, without logging in.
func FetchHostKey(ctx context.Context, host string, port int, timeout time.Duration) (ssh.PublicKey, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("accept-new: connect %s: %v", addr, err)
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	var key ssh.PublicKey
	cfg := &ssh.ClientConfig{
		User: "sftpfs-hostkey",
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			key = k
			return errGotKey
		},
	}
	_, _, _, err = ssh.NewClientConn(conn, addr, cfg)
	if key == nil {
		return nil, fmt.Errorf("accept-new: SSH handshake with %s: %v", addr, err)
	}
	return key, nil
}

// KnownHostsLine is the known_hosts line OpenSSH writes for key: the host
// as "host" on port 22 and "[host]:port" otherwise, hashed when hash is
// set (HashKnownHosts yes).
func KnownHostsLine(host string, port int, key ssh.PublicKey, hash bool) string {
	name := knownhosts.Normalize(net.JoinHostPort(host, strconv.Itoa(port)))
	if hash {
		name = knownhosts.HashHostname(name)
	}
	return knownhosts.Line([]string{name}, key)
}

// AppendKnownHost appends line to file, starting on a new line.
func AppendKnownHost(file, line string) error {
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("known_hosts %s: %v", file, unwrapPath(err))
	}
	prefix := ""
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			prefix = "\n"
		}
	}
	_, err = f.WriteString(prefix + line + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("known_hosts %s: %v", file, err)
	}
	return nil
}
