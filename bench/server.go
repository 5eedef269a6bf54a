package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// cipher is the only cipher the server offers, so every contender uses
// the same one (the fastest on AES-NI hardware).
const cipher = "aes128-gcm@openssh.com"

// server is a loopback OpenSSH sshd with internal-sftp, run as the
// current user (root), with its own keys under dir.
type server struct {
	dir        string
	port       int
	keyFile    string
	knownHosts string
	cmd        *exec.Cmd
	logs       *bytes.Buffer
}

func startServer(dir, sshd string) (*server, error) {
	s := &server{dir: dir, logs: &bytes.Buffer{}}
	hostPub, err := writeKey(filepath.Join(dir, "host_key"))
	if err != nil {
		return nil, err
	}
	s.keyFile = filepath.Join(dir, "id_ed25519")
	userPub, err := writeKey(s.keyFile)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(userPub), 0o600); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s.knownHosts = filepath.Join(dir, "known_hosts")
	line := knownhosts.Line([]string{s.addr()}, hostPub)
	if err := os.WriteFile(s.knownHosts, []byte(line+"\n"), 0o644); err != nil {
		return nil, err
	}
	cfg := strings.Join([]string{
		"ListenAddress " + s.addr(),
		"HostKey " + filepath.Join(dir, "host_key"),
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"StrictModes no", "UsePAM no", "PermitRootLogin yes",
		"PasswordAuthentication no", "KbdInteractiveAuthentication no",
		"Subsystem sftp internal-sftp",
		"Ciphers " + cipher,
		"MaxStartups 100", "MaxSessions 100", "LogLevel ERROR",
	}, "\n") + "\n"
	cfgFile := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	s.cmd = exec.Command(sshd, "-D", "-e", "-f", cfgFile)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	// Own process group, so a Ctrl-C of the benchmark does not race
	// with our orderly shutdown.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", sshd, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr(), time.Second)
		if err == nil {
			buf := make([]byte, 4)
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, err = c.Read(buf)
			c.Close()
			if err == nil && string(buf) == "SSH-" {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("sshd did not come up on %s: %v; its log:\n%s", s.addr(), err, s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *server) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// sshOptions are the ssh(1) options for the OpenSSH-based contenders.
func (s *server) sshOptions() []string {
	return []string{
		"-F", "/dev/null",
		"-o", "Port=" + strconv.Itoa(s.port),
		"-o", "IdentityFile=" + s.keyFile, "-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + s.knownHosts, "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
		"-o", "Ciphers=" + cipher,
	}
}

func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	// sshd's listener exits on SIGTERM; its per-connection children end
	// with their clients, which are all gone by now.
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// writeKey writes a new ed25519 private key in OpenSSH format and
// returns its public key.
func writeKey(path string) (ssh.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	blk, err := ssh.MarshalPrivateKey(priv, "sftpfs-bench")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		return nil, err
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, errors.New("public key: " + err.Error())
	}
	return sp, nil
}
