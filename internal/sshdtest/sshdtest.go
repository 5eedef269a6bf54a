package sshdtest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sftpfs/sftpfs/internal/testenv"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHDPath is where Debian installs the OpenSSH server. sshd refuses to
// re-exec itself unless started with an absolute path.
const SSHDPath = "/usr/sbin/sshd"

// readyTimeout bounds how long Start and Restart wait for sshd to answer
// with its banner; sshd starts in milliseconds, so hitting it means sshd is
// broken, and the logs say why.
const readyTimeout = 15 * time.Second

// Options customise the sshd that Start runs. The zero value gives key
// authentication for the current user with one ed25519 client key and
// internal-sftp as the sftp subsystem.
type Options struct {
	// ExtraConfig holds sshd_config lines. Lines before the first
	// "Match" line are placed before the defaults, and a keyword given
	// here replaces the default line for that keyword (sshd keeps the
	// first value it sees, and rejects a second "Subsystem sftp"); so
	// for example "Subsystem sftp /usr/lib/openssh/sftp-server" or
	// "PasswordAuthentication yes" work. "Match" blocks go last.
	ExtraConfig []string
	// AuthorizedKeys are extra lines for the authorized_keys file, after
	// the line for the generated client key.
	AuthorizedKeys []string
	// TrustedUserCAKeys is the path of a file of CA public keys for
	// certificate login (sshd's TrustedUserCAKeys); empty means none.
	TrustedUserCAKeys string
	// HostKeyType is "ed25519" (default), "ecdsa" (P-256) or "rsa"
	// (3072 bits).
	HostKeyType string
	// HostKeyTypes, when set, gives the server one host key of each
	// type, like a stock server (`ssh-keygen -A` makes rsa, ecdsa and
	// ed25519); it replaces HostKeyType. The first is HostSigner.
	HostKeyTypes []string
	// NetNS runs sshd inside that network namespace (`ip netns exec`),
	// listening on ListenHost there; see NewNetNS. Readiness is then
	// taken from sshd's "Server listening" log line, since the address
	// may not be reachable from the test's namespace.
	NetNS string
	// ListenHost is the address sshd listens on, default 127.0.0.1.
	// Tests whose clients live in other network namespaces (the Swarm
	// nodes) give an address of a bridge they created.
	ListenHost string
}

// Server is a running sshd. The fields do not change after Start,
// Restart included.
type Server struct {
	// Addr is "HOST:PORT" (HOST is Options.ListenHost, default
	// 127.0.0.1); Host and Port are its parts.
	Addr string
	Host string
	Port int
	// User is the name of the user the test runs as; the generated
	// client key logs in as that user.
	User string
	// KeyFile is the client's private key (OpenSSH format, 0600, no
	// passphrase); ClientSigner is the same key in memory and
	// PublicKeyLine its authorized_keys line.
	KeyFile       string
	ClientSigner  ssh.Signer
	PublicKeyLine string
	// KnownHostsFile holds one line for Addr ("[127.0.0.1]:PORT type
	// key"), and HostKeyLine is that line. HostKeyFingerprint is
	// "SHA256:..." of the host key and HostSigner its private half, so
	// tests can sign host certificates or build @cert-authority setups.
	KnownHostsFile     string
	HostKeyLine        string
	HostKeyFingerprint string
	HostSigner         ssh.Signer
	// HostKeys are all host keys, in the order of Options.HostKeyTypes
	// (one entry without HostKeyTypes); KnownHostsFile lists them all.
	HostKeys []HostKey
	// Dir is the directory holding the configuration, keys and pid file.
	Dir string

	t          testing.TB
	configFile string
	netns      string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	logs   *testenv.Buffer
}

// Start generates keys and configuration in a fresh temporary directory,
// runs sshd on a free port of Options.ListenHost (default 127.0.0.1) and waits until it sends its SSH
// banner. It stops the test (skip or, in CI, fail) when not root or when
// sshd is missing, and fails it when sshd does not come up. t.Cleanup
// stops the server, and logs its output when the test failed.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	testenv.Require(t, "root (to run sshd, whose privilege separation needs it)", os.Geteuid() == 0)
	_, err := os.Stat(SSHDPath)
	testenv.Require(t, "OpenSSH server "+SSHDPath+" (Debian package openssh-server)", err == nil)
	// sshd checks its privilege separation directory at start.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("sshdtest: creating sshd's privilege separation directory /run/sshd: %v", err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatalf("sshdtest: looking up the current user: %v", err)
	}
	host := o.ListenHost
	if host == "" {
		host = "127.0.0.1"
	}
	s := &Server{t: t, Dir: t.TempDir(), Host: host, User: u.Username, logs: &testenv.Buffer{}, netns: o.NetNS}
	s.configFile = filepath.Join(s.Dir, "sshd_config")
	if err := s.writeKeys(o); err != nil {
		t.Fatalf("sshdtest: %v", err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("sshd output (%s):\n%s", s.Addr, s.Logs())
		}
	})

	// A port found free may be taken before sshd binds it; then sshd
	// exits with "Address already in use" and we try another.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort(s.Host)
		if o.NetNS != "" {
			// The address lives in another namespace, where every port
			// is free but for the few other sshds a test starts there.
			port, err = 20000+int(randUint32()%40000), nil
		}
		if err != nil {
			t.Fatalf("sshdtest: finding a free port: %v", err)
		}
		s.setPort(port)
		if err := s.writeConfig(o); err != nil {
			t.Fatalf("sshdtest: %v", err)
		}
		lastErr = s.startOnce()
		if lastErr == nil {
			return s
		}
		if !strings.Contains(s.Logs(), "Address already in use") {
			break
		}
	}
	t.Fatalf("sshdtest: starting sshd: %v\nsshd output:\n%s", lastErr, s.Logs())
	return nil
}

func (s *Server) setPort(port int) {
	s.Port = port
	s.Addr = net.JoinHostPort(s.Host, strconv.Itoa(port))
}

// ClientConfig returns an ssh.ClientConfig that logs in as User with the
// generated client key and accepts only the generated host key.
func (s *Server) ClientConfig() *ssh.ClientConfig {
	return &ssh.ClientConfig{
		User:            s.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(s.ClientSigner)},
		HostKeyCallback: ssh.FixedHostKey(s.HostSigner.PublicKey()),
		Timeout:         10 * time.Second,
	}
}

// Logs returns everything sshd (and the per-connection processes it
// forked) wrote to stderr so far, across restarts.
func (s *Server) Logs() string { return s.logs.String() }

// Stop kills sshd and every connection process it forked, so clients see
// their connections drop. It is safe to call more than once.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

// Restart stops sshd and starts it again on the same port with the same
// keys and configuration, waiting until it answers again. Existing
// connections are dropped.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	s.stopLocked()
	s.mu.Unlock()
	// The old listener is gone, but a just-killed socket can linger
	// briefly; retry for a few seconds.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := s.startOnce()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || !strings.Contains(s.Logs(), "Address already in use") {
			s.t.Fatalf("sshdtest: restarting sshd on %s: %v\nsshd output:\n%s", s.Addr, err, s.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *Server) startOnce() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("sshd is already running")
	}
	fmt.Fprintf(s.logs, "--- sshdtest: starting sshd on %s\n", s.Addr)
	listening := strings.Count(s.logs.String(), s.listeningLine())
	cmd := exec.Command(SSHDPath, "-D", "-e", "-f", s.configFile)
	if s.netns != "" {
		// ip execs sshd after entering the namespace: same pid.
		cmd = exec.Command("ip", "netns", "exec", s.netns, SSHDPath, "-D", "-e", "-f", s.configFile)
	}
	cmd.Stdout = s.logs
	cmd.Stderr = s.logs
	// Own process group, so no terminal signal reaches it, and a bound
	// wait for the output pipe, which forked children keep open.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("running %s: %w", SSHDPath, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	ready := func() error { return probeBanner(s.Addr) }
	if s.netns != "" {
		ready = func() error {
			if strings.Count(s.logs.String(), s.listeningLine()) > listening {
				return nil
			}
			return errors.New("no \"" + s.listeningLine() + "\" in sshd's log yet")
		}
	}
	if err := waitReady(s.Addr, exited, ready); err != nil {
		s.stopLocked()
		return err
	}
	return nil
}

// listeningLine is what sshd logs once it listens (LogLevel VERBOSE).
func (s *Server) listeningLine() string {
	return fmt.Sprintf("Server listening on %s port %d", s.Host, s.Port)
}

// waitReady waits until ready succeeds (addr sends an SSH banner), or
// sshd exits.
func waitReady(addr string, exited <-chan struct{}, ready func() error) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-exited:
			return errors.New("sshd exited before accepting connections")
		default:
		}
		if err := ready(); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("sshd did not send an SSH banner on %s within %v: %w", addr, readyTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func probeBanner(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading banner: %w", err)
	}
	if !strings.HasPrefix(line, "SSH-") {
		return fmt.Errorf("unexpected banner %q", line)
	}
	return nil
}

// stopLocked kills the sshd process tree. sshd's per-connection children
// call setsid, so killing the process group is not enough. Killing a
// process whose parent is gone leaves a zombie that nobody reaps (pid 1 in
// containers often does not), so the tree is killed from the leaves up:
// everything is frozen with SIGSTOP (so nothing forks meanwhile), then the
// deepest processes are killed and their parents resumed to reap them,
// level by level, and the listener, whose parent is us, goes last. A
// frozen process whose parent exits on its own meanwhile is reparented out
// of the tree; every process seen in the tree is therefore remembered and
// killed at the end, or it would stay frozen (state T) for good.
func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	pid := s.cmd.Process.Pid
	seen := map[int]bool{}
	snapshot := func(root int) []proc {
		t := processTree(root)
		for _, p := range t {
			seen[p.pid] = true
		}
		return t
	}
	defer func() {
		for p := range seen {
			// Only sshd's own processes: the pid of one that is gone
			// may have been reused.
			if b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/comm"); err == nil && strings.TrimSpace(string(b)) == "sshd" {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
	}()
	for i := 0; i < 10; i++ {
		tree := snapshot(pid)
		for _, p := range tree {
			_ = syscall.Kill(p.pid, syscall.SIGSTOP)
		}
		if len(tree) == len(snapshot(pid)) {
			break
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		tree := snapshot(pid)
		if len(tree) <= 1 {
			break
		}
		maxDepth := 0
		for _, p := range tree {
			maxDepth = max(maxDepth, p.depth)
		}
		var killed []int
		parents := map[int]bool{}
		for _, p := range tree {
			if p.depth == maxDepth {
				_ = syscall.Kill(p.pid, syscall.SIGKILL)
				killed = append(killed, p.pid)
				parents[p.ppid] = true
			}
		}
		for p := range parents {
			_ = syscall.Kill(p, syscall.SIGCONT)
		}
		waitGone(killed, time.Second)
	}
	// Anything left (a parent that did not reap in time) goes now.
	for _, p := range snapshot(pid) {
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.t.Errorf("sshdtest: sshd (pid %d) did not exit after SIGKILL", pid)
	}
	s.cmd, s.exited = nil, nil
}

// waitGone waits until none of pids exists any more (reaped, not just
// dead), or timeout passes.
func waitGone(pids []int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		alive := false
		for _, p := range pids {
			if _, err := os.Stat("/proc/" + strconv.Itoa(p)); err == nil {
				alive = true
				break
			}
		}
		if !alive {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type proc struct{ pid, ppid, depth int }

// processTree returns root (depth 0) and all its descendants, parents
// before children. It follows /proc/<pid>/task/<tid>/children from root
// down instead of reading every process's /proc/<pid>/stat: reading the
// stat of an unrelated process can block forever (a killed FUSE server
// whose thread still waits on its own mount), and a test helper must
// never hang on someone else's process.
func processTree(root int) []proc {
	out := []proc{{pid: root}}
	for i := 0; i < len(out); i++ {
		for _, c := range childrenOf(out[i].pid) {
			out = append(out, proc{pid: c, ppid: out[i].pid, depth: out[i].depth + 1})
		}
	}
	return out
}

// childrenOf lists the children of pid's threads (procfs
// CONFIG_PROC_CHILDREN, present in every distribution kernel).
func childrenOf(pid int) []int {
	tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	var kids []int
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + task.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				kids = append(kids, c)
			}
		}
	}
	return kids
}

func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// HostKey is one of the server's host keys.
type HostKey struct {
	// Type is the Options.HostKeyTypes entry ("ed25519", "ecdsa", "rsa").
	Type        string
	Signer      ssh.Signer
	Fingerprint string // "SHA256:..."
	// File is the private key file sshd reads.
	File string
}

func (s *Server) writeKeys(o Options) error {
	types := o.HostKeyTypes
	if len(types) == 0 {
		types = []string{o.HostKeyType}
	}
	for i, typ := range types {
		hostPriv, err := generateKey(typ)
		if err != nil {
			return err
		}
		signer, err := ssh.NewSignerFromKey(hostPriv)
		if err != nil {
			return fmt.Errorf("host key signer: %w", err)
		}
		file := filepath.Join(s.Dir, "host_key")
		if i > 0 {
			file += "_" + strconv.Itoa(i)
		}
		if err := writePrivateKey(file, hostPriv); err != nil {
			return err
		}
		if typ == "" {
			typ = "ed25519"
		}
		s.HostKeys = append(s.HostKeys, HostKey{Type: typ, Signer: signer, Fingerprint: ssh.FingerprintSHA256(signer.PublicKey()), File: file})
	}
	s.HostSigner = s.HostKeys[0].Signer
	s.HostKeyFingerprint = s.HostKeys[0].Fingerprint

	clientPriv, err := generateKey("ed25519")
	if err != nil {
		return err
	}
	if s.ClientSigner, err = ssh.NewSignerFromKey(clientPriv); err != nil {
		return fmt.Errorf("client key signer: %w", err)
	}
	s.KeyFile = filepath.Join(s.Dir, "id_ed25519")
	if err := writePrivateKey(s.KeyFile, clientPriv); err != nil {
		return err
	}
	s.PublicKeyLine = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.ClientSigner.PublicKey())))
	if err := os.WriteFile(s.KeyFile+".pub", []byte(s.PublicKeyLine+"\n"), 0o644); err != nil {
		return err
	}
	ak := s.PublicKeyLine + "\n"
	for _, l := range o.AuthorizedKeys {
		ak += l + "\n"
	}
	return os.WriteFile(filepath.Join(s.Dir, "authorized_keys"), []byte(ak), 0o600)
}

// writeConfig writes sshd_config and known_hosts for the current port.
func (s *Server) writeConfig(o Options) error {
	s.HostKeyLine = knownhosts.Line([]string{s.Addr}, s.HostSigner.PublicKey())
	s.KnownHostsFile = filepath.Join(s.Dir, "known_hosts")
	lines := ""
	for _, k := range s.HostKeys {
		lines += knownhosts.Line([]string{s.Addr}, k.Signer.PublicKey()) + "\n"
	}
	if err := os.WriteFile(s.KnownHostsFile, []byte(lines), 0o644); err != nil {
		return err
	}

	var head, match []string
	given := map[string]bool{}
	for i, l := range o.ExtraConfig {
		kw := strings.ToLower(firstWord(l))
		if kw == "match" {
			match = o.ExtraConfig[i:]
			break
		}
		head = append(head, l)
		if kw != "" {
			given[kw] = true
		}
	}
	defaults := [][2]string{
		{"ListenAddress", s.Addr},
		{"PidFile", filepath.Join(s.Dir, "sshd.pid")},
		{"AuthorizedKeysFile", filepath.Join(s.Dir, "authorized_keys")},
		{"StrictModes", "no"},
		{"UsePAM", "no"},
		{"PermitRootLogin", "yes"},
		{"PasswordAuthentication", "no"},
		{"KbdInteractiveAuthentication", "no"},
		{"Subsystem", "sftp internal-sftp"},
		{"LogLevel", "VERBOSE"},
		// Tests open many connections at once; the default
		// MaxStartups (10:30:100) would randomly refuse some.
		{"MaxStartups", "100"},
		{"MaxSessions", "100"},
	}
	if o.TrustedUserCAKeys != "" {
		defaults = append(defaults, [2]string{"TrustedUserCAKeys", o.TrustedUserCAKeys})
	}
	var b strings.Builder
	b.WriteString("# written by sshdtest\n")
	if !given["hostkey"] {
		// HostKey may repeat (one line per key), unlike the defaults.
		for _, k := range s.HostKeys {
			fmt.Fprintf(&b, "HostKey %s\n", k.File)
		}
	}
	for _, l := range head {
		b.WriteString(l + "\n")
	}
	for _, d := range defaults {
		if !given[strings.ToLower(d[0])] {
			fmt.Fprintf(&b, "%s %s\n", d[0], d[1])
		}
	}
	for _, l := range match {
		b.WriteString(l + "\n")
	}
	return os.WriteFile(s.configFile, []byte(b.String()), 0o644)
}

func firstWord(l string) string {
	l = strings.TrimSpace(l)
	if l == "" || l[0] == '#' {
		return ""
	}
	return strings.FieldsFunc(l, func(r rune) bool { return r == ' ' || r == '\t' || r == '=' })[0]
}

func generateKey(typ string) (any, error) {
	switch typ {
	case "", "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case "ecdsa":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		return rsa.GenerateKey(rand.Reader, 3072)
	}
	return nil, fmt.Errorf("unknown key type %q: use ed25519, ecdsa or rsa", typ)
}

// writePrivateKey writes key in OpenSSH format with mode 0600, as sshd and
// ssh demand for private keys.
func writePrivateKey(path string, key any) error {
	blk, err := ssh.MarshalPrivateKey(key, "sshdtest")
	if err != nil {
		return fmt.Errorf("encoding private key %s: %w", path, err)
	}
	return os.WriteFile(path, pem.EncodeToMemory(blk), 0o600)
}
