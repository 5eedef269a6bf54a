package sftp

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
)

// JumpHost is one hop of proxy_jump: an SSH server the connection to the
// next hop (or the target) is tunnelled through, as OpenSSH's ProxyJump
// (-J) does, but in-process: no ssh binary runs.
type JumpHost struct {
	// User is the login user on the jump host; empty means Config.User.
	User string
	Host string
	// Port is 22 when 0.
	Port int
}

// Addr is "host:port" as dialled.
func (j JumpHost) Addr() string {
	port := j.Port
	if port == 0 {
		port = DefaultPort
	}
	return net.JoinHostPort(j.Host, strconv.Itoa(port))
}

// String is the proxy_jump spelling of the hop.
func (j JumpHost) String() string {
	s := j.Addr()
	if j.User != "" {
		s = j.User + "@" + s
	}
	return s
}

// ParseProxyJump parses proxy_jump's value: comma-separated hops
// "[user@]host[:port]" (IPv6 addresses in brackets, "ssh://" prefixes
// allowed as in OpenSSH), dialled in order, the first one directly.
// Errors say which hop is wrong and how to write it.
func ParseProxyJump(s string) ([]JumpHost, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	var out []JumpHost
	for i, part := range parts {
		j, err := parseJumpHost(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("proxy_jump: hop %d of %d (%q): %w; write each hop as [user@]host[:port], separated by commas, e.g. proxy_jump=alice@bastion.example.com:2222",
				i+1, len(parts), strings.TrimSpace(part), err)
		}
		out = append(out, j)
	}
	return out, nil
}

func parseJumpHost(s string) (JumpHost, error) {
	if s == "" {
		return JumpHost{}, errors.New("it is empty (a stray comma?)")
	}
	if strings.ContainsAny(s, " \t\n|;&$`%<>(){}'\"") {
		return JumpHost{}, errors.New("it looks like a command; proxy_jump takes host names only (sftpfs never runs commands, so ProxyCommand is not supported)")
	}
	if rest, ok := strings.CutPrefix(s, "ssh://"); ok {
		s = strings.TrimSuffix(rest, "/")
	} else if strings.Contains(s, "://") {
		return JumpHost{}, errors.New("only ssh:// URLs are jump hosts")
	}
	var j JumpHost
	if at := strings.LastIndex(s, "@"); at >= 0 {
		j.User, s = s[:at], s[at+1:]
		if j.User == "" {
			return JumpHost{}, errors.New("the user before @ is empty")
		}
		if strings.Contains(j.User, "@") {
			return JumpHost{}, errors.New("more than one @")
		}
	}
	host, port := s, ""
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.Index(s, "]")
		if end < 0 {
			return JumpHost{}, errors.New("missing ] after an IPv6 address")
		}
		host, port = s[1:end], s[end+1:]
		if port != "" {
			if !strings.HasPrefix(port, ":") {
				return JumpHost{}, errors.New("expected :port after ]")
			}
			port = port[1:]
			if port == "" {
				return JumpHost{}, errors.New("the port after : is empty")
			}
		}
	case strings.Count(s, ":") == 1:
		host, port, _ = strings.Cut(s, ":")
		if port == "" {
			return JumpHost{}, errors.New("the port after : is empty")
		}
	case strings.Count(s, ":") > 1:
		if net.ParseIP(s) == nil {
			return JumpHost{}, errors.New("too many colons; put an IPv6 address in brackets: [2001:db8::1]:22")
		}
	}
	if host == "" {
		return JumpHost{}, errors.New("the host is empty")
	}
	if strings.ContainsAny(host, "/[]@") {
		return JumpHost{}, fmt.Errorf("%q is not a host name or address", host)
	}
	j.Host = host
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return JumpHost{}, fmt.Errorf("port %q is not a number from 1 to 65535", port)
		}
		j.Port = n
	}
	return j, nil
}

// sshChain is the SSH connections of one dial: the jump hosts in order,
// then the target, each tunnelled through the one before. Closing it
// closes them all, last first, so no hop outlives the session it carried.
type sshChain struct {
	clients []*ssh.Client // jump hosts in order, then the target
	once    sync.Once
}

// target is the connection to the SFTP server.
func (ch *sshChain) target() *ssh.Client { return ch.clients[len(ch.clients)-1] }

// SendRequest sends keepalives to the target: its answer crosses every
// hop, so a dead jump host is noticed too.
func (ch *sshChain) SendRequest(name string, wantReply bool, payload []byte) (bool, []byte, error) {
	return ch.target().SendRequest(name, wantReply, payload)
}

// NewSession opens a session on the target (the listing session uses it).
func (ch *sshChain) NewSession() (*ssh.Session, error) { return ch.target().NewSession() }

// Close closes every connection of the chain.
func (ch *sshChain) Close() error {
	var err error
	ch.once.Do(func() {
		for i := len(ch.clients) - 1; i >= 0; i-- {
			if e := ch.clients[i].Close(); e != nil && err == nil && !errors.Is(e, net.ErrClosed) {
				err = e
			}
		}
	})
	return err
}
