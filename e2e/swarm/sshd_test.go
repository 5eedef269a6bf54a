package swarm

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// sshd is a real OpenSSH server on the bridge address of the root
// namespace, the one SFTP server every node's plugin uses. The shared
// internal/sshdtest helper listens on 127.0.0.1 only, which the nodes,
// living in their own network namespaces, cannot reach.
type sshd struct {
	addr        string
	port        int
	fingerprint string
	key         []byte // the client's private key (OpenSSH PEM)
	cmd         *exec.Cmd
	done        chan struct{}
	logs        *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func pemKey(k ed25519.PrivateKey) ([]byte, error) {
	blk, err := ssh.MarshalPrivateKey(k, "")
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(blk), nil
}

// startSSHD runs sshd on host (an address of this machine) with a fresh
// host key and one client key for root, and waits for its banner. The
// caller stops it with stop.
func startSSHD(t *testing.T, host string) *sshd {
	t.Helper()
	dir := t.TempDir()
	_, hostKey, _ := ed25519.GenerateKey(rand.Reader)
	clientPub, clientKey, _ := ed25519.GenerateKey(rand.Reader)
	hostPEM, err := pemKey(hostKey)
	if err != nil {
		t.Fatal(err)
	}
	clientPEM, err := pemKey(clientKey)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(clientPub)
	if err != nil {
		t.Fatal(err)
	}
	hostSigner, err := ssh.NewSignerFromKey(hostKey)
	if err != nil {
		t.Fatal(err)
	}
	// sshd refuses group/world-readable host keys.
	if err := os.WriteFile(filepath.Join(dir, "host_key"), hostPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(sshPub), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // privilege separation directory
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("finding a free port on %s: %v", host, err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &sshd{
		addr: net.JoinHostPort(host, strconv.Itoa(port)), port: port,
		fingerprint: ssh.FingerprintSHA256(hostSigner.PublicKey()),
		key:         clientPEM, done: make(chan struct{}), logs: &lockedBuffer{},
	}
	conf := fmt.Sprintf(`ListenAddress %s
HostKey %s/host_key
PidFile %s/sshd.pid
AuthorizedKeysFile %s/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin yes
PasswordAuthentication no
KbdInteractiveAuthentication no
Subsystem sftp internal-sftp
LogLevel VERBOSE
MaxStartups 100
MaxSessions 100
`, s.addr, dir, dir, dir)
	if err := os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	// The per-connection children keep the output pipe open after sshd
	// itself is gone; Wait must not wait for them.
	s.cmd.WaitDelay = 2 * time.Second
	// Its own process group, so stop reaches the per-connection children.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting sshd: %v", err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			buf := make([]byte, 4)
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, err = c.Read(buf)
			c.Close()
			if err == nil && string(buf) == "SSH-" {
				return s
			}
		}
		select {
		case <-s.done:
			t.Fatalf("sshd exited at start:\n%s", s.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			s.stop()
			t.Fatalf("sshd on %s did not answer within 15s:\n%s", s.addr, s.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop kills sshd and its per-connection children and waits for sshd.
func (s *sshd) stop() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	// sshd's per-connection children start their own sessions, so the
	// process group does not reach them: find them by parent.
	kids := childrenOf(s.cmd.Process.Pid)
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	for _, k := range kids {
		syscall.Kill(k, syscall.SIGTERM)
	}
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if i := strings.LastIndexByte(string(st), ')'); i > 0 {
			if f := strings.Fields(string(st)[i+1:]); len(f) > 1 && f[1] == strconv.Itoa(pid) {
				out = append(out, p)
			}
		}
	}
	return out
}
