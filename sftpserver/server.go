package sftpserver

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/backend/local"
)

// DefaultAddr is where the server listens when Config.Addr is empty: a
// free port on loopback, so nothing is exposed by accident.
const DefaultAddr = "127.0.0.1:0"

// handshakeTimeout bounds an SSH handshake and authentication, so that a
// client that connects and stays silent cannot hold a goroutine forever.
const handshakeTimeout = 30 * time.Second

// Config configures a Server. At least one of AuthorizedKeys, Password and
// TrustedUserCAKeys must be set.
type Config struct {
	// Root is the directory served; clients cannot reach outside it.
	// Ignored when Backend is set.
	Root string
	// Backend, if not nil, is served instead of a local directory at
	// Root. The server does not close it.
	Backend backend.Backend
	// Addr is the TCP listen address; empty means DefaultAddr.
	Addr string
	// HostKey is the server's host key; nil generates an ed25519 key for
	// this Server only.
	HostKey ssh.Signer
	// AuthorizedKeys are the public keys allowed to log in, for any
	// user name.
	AuthorizedKeys []ssh.PublicKey
	// Password, if not empty, allows password login with it for any
	// user name. It is compared in constant time and never logged.
	Password []byte
	// TrustedUserCAKeys are certificate authorities: a user certificate
	// signed by one of them, valid now and listing the login user name
	// among its principals, is accepted.
	TrustedUserCAKeys []ssh.PublicKey
	// ReadOnly refuses every request that would change something, with
	// SSH_FX_PERMISSION_DENIED.
	ReadOnly bool
	// Logger receives connection and authentication events; nil
	// discards them.
	Logger *slog.Logger
}

// Server is an SFTP server for one directory. Create it with New, run it
// with Serve, stop it with Close.
type Server struct {
	ln      net.Listener
	sshCfg  *ssh.ServerConfig
	hostKey ssh.Signer
	h       *handlers
	log     *slog.Logger
	closeB  func() error
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	closed  bool
	// closeDone is closed when the first Close has finished; closeErr
	// is its result, written before closeDone is closed.
	closeDone chan struct{}
	closeErr  error
}

// New checks cfg, opens the backend and starts listening (so Addr is
// known at once); Serve then accepts connections.
func New(cfg Config) (*Server, error) {
	if len(cfg.AuthorizedKeys) == 0 && len(cfg.Password) == 0 && len(cfg.TrustedUserCAKeys) == 0 {
		return nil, errors.New("sftpserver: no way to log in is configured: set AuthorizedKeys, Password or TrustedUserCAKeys")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{log: log, conns: map[net.Conn]struct{}{}, closeDone: make(chan struct{}), closeB: func() error { return nil }}

	b := cfg.Backend
	if b == nil {
		if cfg.Root == "" {
			return nil, errors.New("sftpserver: Config.Root is empty: set the directory to serve (or Config.Backend)")
		}
		lb, err := local.New(cfg.Root)
		if err != nil {
			return nil, fmt.Errorf("sftpserver: %w", err)
		}
		b, s.closeB = lb, lb.Close
	}
	s.h = &handlers{b: b, readOnly: cfg.ReadOnly}

	s.hostKey = cfg.HostKey
	if s.hostKey == nil {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			s.closeB()
			return nil, fmt.Errorf("sftpserver: generating a host key: %w", err)
		}
		if s.hostKey, err = ssh.NewSignerFromKey(priv); err != nil {
			s.closeB()
			return nil, fmt.Errorf("sftpserver: generating a host key: %w", err)
		}
	}
	s.sshCfg = s.serverConfig(cfg)
	s.sshCfg.AddHostKey(s.hostKey)

	addr := cfg.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		s.closeB()
		return nil, fmt.Errorf("sftpserver: cannot listen on %s (is the port in use? pick another, or port 0 for a free one): %w", addr, err)
	}
	s.ln = ln
	return s, nil
}

func (s *Server) serverConfig(cfg Config) *ssh.ServerConfig {
	keys := append([]ssh.PublicKey(nil), cfg.AuthorizedKeys...)
	cas := append([]ssh.PublicKey(nil), cfg.TrustedUserCAKeys...)
	// Hash the password once so the comparison below is constant-time
	// whatever the lengths involved.
	var pwHash [sha256.Size]byte
	hasPassword := len(cfg.Password) > 0
	if hasPassword {
		pwHash = sha256.Sum256(cfg.Password)
	}

	sc := &ssh.ServerConfig{}
	if len(keys) > 0 || len(cas) > 0 {
		checker := &ssh.CertChecker{
			IsUserAuthority: func(auth ssh.PublicKey) bool { return containsKey(cas, auth) },
			UserKeyFallback: func(conn ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
				if containsKey(keys, key) {
					return &ssh.Permissions{}, nil
				}
				return nil, errors.New("public key not authorized")
			},
		}
		sc.PublicKeyCallback = func(conn ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			p, err := checker.Authenticate(conn, key)
			if err != nil {
				s.log.Info("sftp login refused", "remote", conn.RemoteAddr().String(), "user", conn.User(),
					"method", "publickey", "key", ssh.FingerprintSHA256(key), "reason", err.Error())
				return nil, err
			}
			s.log.Info("sftp login", "remote", conn.RemoteAddr().String(), "user", conn.User(),
				"method", "publickey", "key", ssh.FingerprintSHA256(key))
			return p, nil
		}
	}
	if hasPassword {
		sc.PasswordCallback = func(conn ssh.ConnMetadata, password []byte) (*ssh.Permissions, error) {
			got := sha256.Sum256(password)
			if subtle.ConstantTimeCompare(got[:], pwHash[:]) != 1 {
				s.log.Info("sftp login refused", "remote", conn.RemoteAddr().String(), "user", conn.User(),
					"method", "password", "reason", "wrong password")
				return nil, errors.New("wrong password")
			}
			s.log.Info("sftp login", "remote", conn.RemoteAddr().String(), "user", conn.User(), "method", "password")
			return &ssh.Permissions{}, nil
		}
	}
	return sc
}

func containsKey(list []ssh.PublicKey, k ssh.PublicKey) bool {
	m := k.Marshal()
	for _, x := range list {
		if bytes.Equal(x.Marshal(), m) {
			return true
		}
	}
	return false
}

// Addr is the address the server listens on, with the real port when
// Config.Addr asked for port 0.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// HostKey is the public half of the server's host key.
func (s *Server) HostKey() ssh.PublicKey { return s.hostKey.PublicKey() }

// Serve accepts connections until ctx is done or Close is called, and
// returns nil once the server is completely shut down.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				// The listener is only closed by Close; wait
				// for it to finish.
				_ = s.Close()
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// For example out of file descriptors: back off rather
			// than spin, and keep serving.
			s.log.Warn("sftp accept failed", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			_ = s.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handleConn(c)
	}
}

// Close stops listening, drops every connection, waits for their
// goroutines and releases the backend (unless it came from
// Config.Backend). Further calls wait for the first and return its
// result.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.closeDone
		return s.closeErr
	}
	s.closed = true
	err := s.ln.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if berr := s.closeB(); err == nil {
		err = berr
	}
	s.closeErr = err
	close(s.closeDone)
	return err
}

func (s *Server) handleConn(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	sc, chans, reqs, err := ssh.NewServerConn(c, s.sshCfg)
	if err != nil {
		s.log.Debug("ssh handshake failed", "remote", c.RemoteAddr().String(), "err", err)
		return
	}
	_ = c.SetDeadline(time.Time{})
	defer sc.Close()
	go ssh.DiscardRequests(reqs)

	var wg sync.WaitGroup
	defer wg.Wait()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.Prohibited, "this server only offers the sftp subsystem")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.session(sc, ch, chReqs)
		}()
	}
}

// session waits for the "subsystem sftp" request and serves SFTP on the
// channel; shells, commands and everything else are refused.
func (s *Server) session(sc *ssh.ServerConn, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "subsystem" || !isSFTP(req.Payload) {
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
			continue
		}
		_ = req.Reply(true, nil)
		go ssh.DiscardRequests(reqs)
		rs := sftp.NewRequestServer(ch, s.h.sftpHandlers())
		err := rs.Serve()
		rs.Close()
		if !isClosedConn(err) {
			s.log.Warn("sftp session ended with an error", "remote", sc.RemoteAddr().String(), "user", sc.User(), "err", err)
		}
		return
	}
}

// isSFTP reports whether a subsystem request payload (an SSH string)
// names "sftp".
func isSFTP(payload []byte) bool {
	return len(payload) == 4+4 && string(payload[4:]) == "sftp" &&
		payload[0] == 0 && payload[1] == 0 && payload[2] == 0 && payload[3] == 4
}
