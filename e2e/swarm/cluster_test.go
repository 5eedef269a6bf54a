package swarm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sftpfs/sftpfs/internal/sshdtest"
	"github.com/sftpfs/sftpfs/internal/testenv"

	"github.com/sftpfs/sftpfs/internal/mountinfo"
)

const (
	bridge     = "swbr0"
	netPrefix  = "10.77.0"
	hostAddr   = netPrefix + ".1"
	varRoot    = "/var/lib/swarmnodes" // data roots: NOT /var/lib/docker-*, see doc.go
	runRoot    = "/run/swarmnodes"     // exec roots, sockets, logs, secrets
	pluginName = "sftpfs-swarm:latest"
	image      = "sftpfs-swarm-bb:1"
	keyName    = "swarm_key"
	// svcPrefix names every service the tests create, so a sweep can
	// find a crashed run's services.
	svcPrefix = "swt-"
)

// nsNodes are the network namespaces of the extra engines. swn0 exists
// only with SFTPFS_SWARM_MANAGER=netns, where it replaces the default
// engine as the manager (for working on the tests while something else
// uses the default engine).
var nsNodes = []string{"swn0", "swn1", "swn2"}

// node is one Docker engine of the swarm.
type node struct {
	label   string // directory name under runRoot: "manager" or the namespace
	ns      string // network namespace; "" for the default engine
	addr    string // address on the bridge
	sock    string // docker -H value; "" for the default engine
	name    string // node hostname as Swarm shows it
	secrets string // host directory bound into the plugin as /secrets
}

func (n *node) docker(ctx context.Context, args ...string) (string, error) {
	if n.sock != "" {
		args = append([]string{"-H", n.sock}, args...)
	}
	cmd := exec.CommandContext(ctx, "docker", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("docker %s (on %s): %v: %s", strings.Join(args, " "), n.label, err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// run is docker with a 90s bound.
func (n *node) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	return n.docker(ctx, args...)
}

func (n *node) must(t testing.TB, args ...string) string {
	t.Helper()
	out, err := n.run(args...)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func dataRoot(ns string) string { return filepath.Join(varRoot, ns) }
func execRoot(ns string) string { return filepath.Join(runRoot, ns) }
func sockOf(ns string) string   { return "unix://" + filepath.Join(execRoot(ns), "docker.sock") }

// cluster is the running three-node swarm.
type cluster struct {
	t       *testing.T
	repo    string
	nodes   []*node // nodes[0] is the manager
	sshd    *sshdtest.Server
	sshdKey []byte // the client's private key, copied into every node's secrets
	remote  string // directory on this machine that volumes point into
	tmp     string
	stopped map[string]bool // namespaces whose engine a test killed
}

func (c *cluster) manager() *node { return c.nodes[0] }

// sh runs a host command; the error includes its output.
func sh(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func mustSh(t testing.TB, name string, args ...string) {
	t.Helper()
	if _, err := sh(name, args...); err != nil {
		t.Fatal(err)
	}
}

func managerInNetns() bool { return os.Getenv("SFTPFS_SWARM_MANAGER") == "netns" }

// setup brings the swarm up; t.Cleanup tears everything down, also when
// setup itself fails half way.
func setup(t *testing.T) *cluster {
	// Opt-in: the suite must not run beside the e2e package (both drive
	// the default engine's Swarm), so `make test-e2e` runs the e2e
	// packages one at a time with SFTPFS_E2E_SWARM=1. In CI a missing
	// opt-in is a failure, never a silent skip.
	if os.Getenv("SFTPFS_E2E_SWARM") != "1" {
		testenv.Require(t, "SFTPFS_E2E_SWARM=1 (set by make test-e2e / make e2e-swarm; the suite takes over the default Docker engine's Swarm)", false)
	}
	testenv.Require(t, "root (effective uid 0)", os.Geteuid() == 0)
	for _, tool := range []string{"docker", "dockerd", "nsenter", "unshare", "ip", "iptables"} {
		testenv.LookPath(t, tool)
	}
	_, err := os.Stat("/usr/sbin/sshd")
	testenv.Require(t, "OpenSSH server /usr/sbin/sshd (Debian package openssh-server)", err == nil)
	_, err = os.Stat("/bin/busybox")
	testenv.Require(t, "/bin/busybox (Debian package busybox-static)", err == nil)
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err == nil {
		f.Close()
	}
	testenv.Require(t, "/dev/fuse (openable read-write)", err == nil)
	mgr := &node{label: "manager", addr: hostAddr}
	if managerInNetns() {
		mgr = &node{label: "swn0", ns: "swn0", addr: netPrefix + ".10", sock: sockOf("swn0")}
	} else {
		_, err = mgr.run("info")
		testenv.Require(t, "a running default Docker engine (`docker info` failed; scripts/deps.sh starts one)", err == nil)
		if st, _ := mgr.run("info", "-f", "{{.Swarm.LocalNodeState}}"); strings.TrimSpace(st) != "inactive" && !ownSwarm(mgr) {
			t.Fatalf("the default Docker engine is already in a swarm (%s) that these tests did not make; leave it first", strings.TrimSpace(st))
		}
	}

	wd, _ := os.Getwd()
	c := &cluster{t: t, repo: filepath.Dir(filepath.Dir(wd)), tmp: t.TempDir(), stopped: map[string]bool{}}
	c.nodes = []*node{mgr}
	for i, ns := range []string{"swn1", "swn2"} {
		c.nodes = append(c.nodes, &node{label: ns, ns: ns, addr: fmt.Sprintf("%s.%d", netPrefix, 11+i), sock: sockOf(ns)})
	}

	// A crashed earlier run may have left everything behind.
	if errs := teardown(t.Logf, mgr); len(errs) > 0 {
		t.Fatalf("could not clean up an earlier run: %v", errs)
	}
	cleanup := func() {
		if t.Failed() {
			c.dumpLogs()
		}
		// Plugins first, so their SFTP sessions are gone before sshd.
		errs := teardown(t.Logf, mgr)
		if c.sshd != nil {
			c.sshd.Stop()
		}
		errs = append(errs, leftovers()...)
		if len(errs) > 0 {
			t.Errorf("teardown left things behind:\n%s", strings.Join(errs, "\n"))
		}
	}
	// Until sshd runs, this cleanup covers a setup that fails; after,
	// the one registered below runs first (cleanups run last-in
	// first-out) and before sshdtest's own, so sshd outlives the
	// plugins' sessions.
	t.Cleanup(func() {
		if c.sshd == nil {
			cleanup()
		}
	})

	start := time.Now()
	c.network()
	// The nodes live in their own network namespaces: sshd listens on
	// the bridge address of the root namespace, which they all reach.
	c.sshd = sshdtest.Start(t, sshdtest.Options{ListenHost: hostAddr})
	t.Cleanup(cleanup)
	key, err := os.ReadFile(c.sshd.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	c.sshdKey = key
	c.remote = filepath.Join(c.tmp, "remote")
	os.MkdirAll(c.remote, 0o755)
	pluginDir, imageDir := c.artifacts()
	for _, n := range c.nodes {
		if n.ns != "" {
			c.startEngine(n)
		}
		n.name = n.must(t, "info", "-f", "{{.Name}}")
		c.install(n, pluginDir, imageDir)
	}
	t.Logf("engines, plugin and image on %d nodes: %s", len(c.nodes), time.Since(start).Round(100*time.Millisecond))
	c.join()
	t.Logf("swarm of %d nodes ready after %s", len(c.nodes), time.Since(start).Round(100*time.Millisecond))
	return c
}

// ownSwarm reports whether the engine's swarm is one these tests made (a
// node called swn1 or swn2 is in it), which a sweep may then leave.
func ownSwarm(n *node) bool {
	out, err := n.run("node", "ls", "--format", "{{.Hostname}}")
	if err != nil {
		return false
	}
	f := strings.Fields(out)
	return slices.Contains(f, "swn1") || slices.Contains(f, "swn2")
}

// network makes the bridge, the namespaces and their veths.
func (c *cluster) network() {
	t := c.t
	mustSh(t, "ip", "link", "add", bridge, "type", "bridge")
	mustSh(t, "ip", "addr", "add", hostAddr+"/24", "dev", bridge)
	mustSh(t, "ip", "link", "set", bridge, "up")
	// br_netfilter sends bridged node-to-node traffic through FORWARD,
	// whose policy Docker sets to DROP.
	mustSh(t, "iptables", "-I", "FORWARD", "1", "-i", bridge, "-o", bridge, "-j", "ACCEPT")
	for _, n := range c.nodes {
		if n.ns == "" {
			continue
		}
		ns, veth := n.ns, "veth-"+n.ns
		mustSh(t, "ip", "netns", "add", ns)
		mustSh(t, "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
		mustSh(t, "ip", "link", "set", veth, "master", bridge, "up")
		mustSh(t, "ip", "-n", ns, "addr", "add", n.addr+"/24", "dev", "eth0")
		mustSh(t, "ip", "-n", ns, "link", "set", "eth0", "up")
		mustSh(t, "ip", "-n", ns, "link", "set", "lo", "up")
		mustSh(t, "ip", "-n", ns, "route", "add", "default", "via", hostAddr)
	}
}

// artifacts builds the plugin tree (the layout of scripts/build-plugin.sh,
// in a private directory so a concurrent `make plugin` cannot change it
// under us) and the busybox image context.
func (c *cluster) artifacts() (pluginDir, imageDir string) {
	t := c.t
	pluginDir = filepath.Join(c.tmp, "plugin")
	rootfs := filepath.Join(pluginDir, "rootfs")
	for _, d := range []string{"run/docker/plugins", "mnt/volumes", "secrets", "tmp", "proc", "dev", "sys", "etc"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(rootfs, "tmp"), 0o1777)
	os.WriteFile(filepath.Join(rootfs, "etc/hosts"), nil, 0o644)
	os.WriteFile(filepath.Join(rootfs, "etc/resolv.conf"), nil, 0o644)
	bin := filepath.Join(rootfs, "sftpfs")
	if pre := os.Getenv("SFTPFS_BINARY"); pre != "" {
		mustSh(t, "install", "-m", "0755", pre, bin)
	} else {
		cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/sftpfs")
		cmd.Dir = c.repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building the static sftpfs binary: %v\n%s", err, out)
		}
	}
	if out, err := exec.Command(bin, "serve", "-h").CombinedOutput(); err != nil {
		t.Fatalf("%s serve -h: %v (the binary has no working `serve` command, the plugin's entrypoint)\n%s", bin, err, out)
	}
	cfg, err := os.ReadFile(filepath.Join(c.repo, "plugin/config.json"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(pluginDir, "config.json"), cfg, 0o644)

	imageDir = filepath.Join(c.tmp, "image")
	os.MkdirAll(imageDir, 0o755)
	mustSh(t, "cp", "/bin/busybox", filepath.Join(imageDir, "busybox"))
	os.WriteFile(filepath.Join(imageDir, "Dockerfile"),
		[]byte("FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\n"), 0o644)
	return pluginDir, imageDir
}

// startEngine runs the node's dockerd in its network namespace and a new
// UTS namespace (so each node has its own hostname) and waits for it.
func (c *cluster) startEngine(n *node) {
	t := c.t
	for _, d := range []string{dataRoot(n.ns), execRoot(n.ns)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	logf, err := os.OpenFile(filepath.Join(execRoot(n.ns), "dockerd.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	script := fmt.Sprintf("hostname %s && exec dockerd --data-root %s --exec-root %s --pidfile %s/dockerd.pid -H %s --cgroup-parent /docker-%s",
		n.ns, dataRoot(n.ns), execRoot(n.ns), execRoot(n.ns), n.sock, n.ns)
	cmd := exec.Command("nsenter", "--net=/run/netns/"+n.ns, "unshare", "--uts", "sh", "-c", script)
	// The nodes have no registry; without this every task start first
	// tries a pull and only logs its failure.
	cmd.Env = append(os.Environ(), "DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	closeInheritedFDs()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting dockerd for %s: %v", n.ns, err)
	}
	go cmd.Wait()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := n.run("info"); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockerd of %s did not answer within 60s; log:\n%s", n.ns, tail(filepath.Join(execRoot(n.ns), "dockerd.log"), 40))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// closeInheritedFDs marks descriptors above stderr close-on-exec: a
// daemon must not inherit, say, flock(1)'s lock from `go test`'s parent.
func closeInheritedFDs() {
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}

// install puts the client key in the node's own secrets directory, and
// creates, configures and enables the plugin and builds the image. This
// is what an operator does on every node before it joins.
func (c *cluster) install(n *node, pluginDir, imageDir string) {
	t := c.t
	n.secrets = filepath.Join(runRoot, n.label, "secrets")
	if err := os.MkdirAll(n.secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.secrets, keyName), c.sshdKey, 0o600); err != nil {
		t.Fatal(err)
	}
	n.run("plugin", "rm", "-f", pluginName)
	n.must(t, "plugin", "create", pluginName, pluginDir)
	n.must(t, "plugin", "set", pluginName, "secrets.source="+n.secrets)
	n.must(t, "plugin", "enable", pluginName)
	n.must(t, "build", "-q", "-t", image, imageDir)
}

// join makes the swarm and waits until every node lists the plugin in
// its description (the scheduler skips nodes that do not).
func (c *cluster) join() {
	t := c.t
	mgr := c.manager()
	mgr.must(t, "swarm", "init", "--advertise-addr", mgr.addr, "--listen-addr", mgr.addr+":2377")
	tok := mgr.must(t, "swarm", "join-token", "-q", "worker")
	for _, n := range c.nodes[1:] {
		n.must(t, "swarm", "join", "--token", tok, mgr.addr+":2377")
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, n := range c.nodes {
		for {
			out, _ := mgr.run("node", "inspect", n.name, "--format", "{{.Status.State}} {{range .Description.Engine.Plugins}}{{.Name}} {{end}}")
			f := strings.Fields(out)
			if len(f) > 0 && f[0] == "ready" && slices.Contains(f[1:], pluginName) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s not ready with plugin %s listed within 60s: %q", n.name, pluginName, out)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
}

func tail(path string, n int) string {
	out, _ := exec.Command("tail", "-n", strconv.Itoa(n), path).CombinedOutput()
	return string(out)
}

func (c *cluster) dumpLogs() {
	for _, n := range c.nodes {
		if n.ns != "" {
			c.t.Logf("tail of dockerd log of %s:\n%s", n.ns, tail(filepath.Join(execRoot(n.ns), "dockerd.log"), 60))
		} else {
			c.t.Logf("tail of the default dockerd log:\n%s", tail("/var/log/sftpfs-dockerd.log", 60))
		}
	}
	if c.sshd != nil {
		l := c.sshd.Logs()
		if len(l) > 4000 {
			l = l[len(l)-4000:]
		}
		c.t.Logf("sshd log (end):\n%s", l)
	}
}

// killEngine SIGKILLs a node's dockerd, its containerd, the shims and
// everything under them (task containers and the plugin): the node is
// lost without any chance to clean up.
func killEngine(ns string) []int {
	pids := nodeProcs(ns)
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGKILL)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		alive := 0
		for _, p := range pids {
			if syscall.Kill(p, 0) == nil && !zombie(p) {
				alive++
			}
		}
		if alive == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return pids
}

func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// nodeProcs lists the processes of a namespace node: those whose command
// line names its exec or data root (dockerd, containerd, shims) and all
// their descendants (containers, the plugin).
func nodeProcs(ns string) []int {
	ents, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	var seeds []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		s := string(bytes.ReplaceAll(cl, []byte{0}, []byte{' '}))
		if strings.Contains(s, execRoot(ns)+"/") || strings.Contains(s, dataRoot(ns)+" ") || strings.Contains(s, "/docker-"+ns+" ") {
			seeds = append(seeds, pid)
		}
		st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if i := strings.LastIndexByte(string(st), ')'); i > 0 {
			f := strings.Fields(string(st)[i+1:])
			if len(f) > 1 {
				pp, _ := strconv.Atoi(f[1])
				parent[pid] = pp
			}
		}
	}
	in := map[int]bool{}
	for _, s := range seeds {
		in[s] = true
	}
	for changed := true; changed; {
		changed = false
		for p, pp := range parent {
			if !in[p] && in[pp] {
				in[p], changed = true, true
			}
		}
	}
	var out []int
	for p := range in {
		out = append(out, p)
	}
	sort.Ints(out)
	return out
}

// fuseMountsUnder lists the FUSE mounts at or below dir with whether they
// answer (a dead one fails stat with ENOTCONN).
func fuseMountsUnder(dir string) (live, dead []string) {
	ms, _ := mountinfo.Read()
	for _, m := range ms {
		mp := m.Mountpoint
		if !strings.HasPrefix(m.FSType, "fuse") || (mp != dir && !strings.HasPrefix(mp, dir+"/")) {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(mp, &st); errors.Is(err, unix.ENOTCONN) {
			dead = append(dead, mp)
		} else {
			live = append(live, mp)
		}
	}
	return live, dead
}

// teardown removes everything the fixture can have made, from this run
// or a crashed one. It is safe to run when nothing exists and returns
// what it could not do.
func teardown(logf func(string, ...any), mgr *node) []string {
	var errs []string
	bound := func(args ...string) (string, error) { return mgr.run(args...) }

	// The manager (default engine or swn0) first: its services and swarm.
	if mgr.ns == "" {
		if st, _ := bound("info", "-f", "{{.Swarm.LocalNodeState}}"); strings.TrimSpace(st) != "inactive" && ownSwarm(mgr) {
			if out, err := bound("service", "ls", "-q", "--filter", "name="+svcPrefix); err == nil {
				for _, s := range strings.Fields(out) {
					bound("service", "rm", s)
				}
			}
			if _, err := bound("swarm", "leave", "--force"); err != nil {
				errs = append(errs, err.Error())
			}
		}
		cleanEngine(mgr, &errs)
	}

	for _, ns := range nsNodes {
		n := &node{label: ns, ns: ns, sock: sockOf(ns)}
		if _, err := os.Stat(filepath.Join(execRoot(ns), "docker.sock")); err == nil {
			if _, err := n.run("info"); err == nil {
				n.run("swarm", "leave", "--force")
				cleanEngine(n, &errs)
				stopEngine(n)
			}
		}
		if pids := nodeProcs(ns); len(pids) > 0 {
			logf("killing %d leftover processes of %s", len(pids), ns)
			killEngine(ns)
		}
	}

	// Mounts: deepest first, lazily, then make sure none is left before
	// deleting anything (RemoveAll through a live FUSE mount would delete
	// remote data).
	for _, root := range []string{varRoot, runRoot} {
		for _, mp := range mountinfo.Under(root) {
			if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Sprintf("unmounting %s: %v", mp, err))
			}
		}
		if left := mountinfo.Under(root); len(left) > 0 {
			errs = append(errs, fmt.Sprintf("mounts still under %s, not deleting it: %v", root, left))
		} else if err := os.RemoveAll(root); err != nil {
			errs = append(errs, err.Error())
		}
	}

	for _, ns := range nsNodes {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			if _, err := sh("ip", "netns", "del", ns); err != nil {
				errs = append(errs, err.Error())
			}
		}
		if _, err := sh("ip", "link", "show", "veth-"+ns); err == nil {
			sh("ip", "link", "del", "veth-"+ns)
		}
	}
	for {
		if _, err := sh("iptables", "-C", "FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"); err != nil {
			break
		}
		if _, err := sh("iptables", "-D", "FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"); err != nil {
			errs = append(errs, err.Error())
			break
		}
	}
	for _, r := range blackholeRules("") {
		for {
			if _, err := sh("iptables", append([]string{"-C"}, r...)...); err != nil {
				break
			}
			if _, err := sh("iptables", append([]string{"-D"}, r...)...); err != nil {
				errs = append(errs, err.Error())
				break
			}
		}
	}
	if _, err := sh("ip", "link", "show", bridge); err == nil {
		if _, err := sh("ip", "link", "del", bridge); err != nil {
			errs = append(errs, err.Error())
		}
	}
	errs = append(errs, removeCgroups()...)
	return errs
}

// cleanEngine removes what the tests put on an engine: task containers,
// the plugin's volumes, the plugin and the image.
func cleanEngine(n *node, errs *[]string) {
	if out, err := n.run("ps", "-aq", "--filter", "label=com.docker.swarm.service.name"); err == nil {
		for _, id := range strings.Fields(out) {
			if name, _ := n.run("inspect", "-f", `{{index .Config.Labels "com.docker.swarm.service.name"}}`, id); strings.HasPrefix(strings.TrimSpace(name), svcPrefix) || n.ns != "" {
				n.run("rm", "-f", id)
			}
		}
	}
	if out, err := n.run("volume", "ls", "-q", "--filter", "driver="+pluginName); err == nil {
		for _, v := range strings.Fields(out) {
			// A namespace node's whole data root goes away anyway; only
			// the default engine must be left without our volumes.
			if _, err := n.run("volume", "rm", "-f", v); err != nil && n.ns == "" {
				*errs = append(*errs, err.Error())
			}
		}
	}
	if _, err := n.run("plugin", "inspect", pluginName); err == nil {
		n.run("plugin", "disable", "-f", pluginName)
		if _, err := n.run("plugin", "rm", "-f", pluginName); err != nil {
			*errs = append(*errs, err.Error())
		}
	}
	n.run("image", "rm", "-f", image)
}

// stopEngine stops a node's dockerd with SIGTERM (it stops its own
// containerd) and waits up to 30s; stragglers are killed by the caller.
func stopEngine(n *node) {
	b, err := os.ReadFile(filepath.Join(execRoot(n.ns), "dockerd.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || syscall.Kill(pid, syscall.SIGTERM) != nil {
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for syscall.Kill(pid, 0) == nil && !zombie(pid) && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
}

// removeCgroups removes the (empty) cgroups the nodes' --cgroup-parent
// made, deepest first.
func removeCgroups() []string {
	var errs []string
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/docker-swn*")
	more, _ := filepath.Glob("/sys/fs/cgroup/docker-swn*")
	dirs = append(dirs, more...)
	for _, top := range dirs {
		var all []string
		filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				all = append(all, p)
			}
			return nil
		})
		sort.Slice(all, func(i, j int) bool { return len(all[i]) > len(all[j]) })
		for _, d := range all {
			if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Sprintf("removing cgroup %s: %v", d, err))
			}
		}
	}
	return errs
}

// leftovers lists anything of the fixture that still exists.
func leftovers() []string {
	var out []string
	if b, _ := sh("ip", "netns", "list"); strings.Contains(b, "swn") {
		out = append(out, "network namespaces: "+strings.TrimSpace(b))
	}
	if b, _ := sh("ip", "-o", "link", "show"); strings.Contains(b, bridge) || strings.Contains(b, "veth-swn") {
		out = append(out, "links named "+bridge+" or veth-swn*")
	}
	if _, err := sh("iptables", "-C", "FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"); err == nil {
		out = append(out, "iptables FORWARD rule for "+bridge)
	}
	for _, r := range blackholeRules("") {
		if _, err := sh("iptables", append([]string{"-C"}, r...)...); err == nil {
			out = append(out, "iptables rule "+strings.Join(r, " "))
		}
	}
	for _, root := range []string{varRoot, runRoot} {
		if m := mountinfo.Under(root); len(m) > 0 {
			out = append(out, fmt.Sprintf("mounts under %s: %v", root, m))
		}
		if _, err := os.Stat(root); err == nil {
			out = append(out, "directory "+root)
		}
	}
	for _, ns := range nsNodes {
		if p := nodeProcs(ns); len(p) > 0 {
			out = append(out, fmt.Sprintf("processes of %s: %v", ns, p))
		}
	}
	if g, _ := filepath.Glob("/sys/fs/cgroup/*/docker-swn*"); len(g) > 0 {
		out = append(out, fmt.Sprintf("cgroups: %v", g))
	}
	return out
}

// propagatedMount is the host path of the plugin's propagated mount on
// node n, where its volumes are mounted.
func (c *cluster) propagatedMount(t *testing.T, n *node) string {
	id := n.must(t, "plugin", "inspect", "-f", "{{.Id}}", pluginName)
	root := n.must(t, "info", "-f", "{{.DockerRootDir}}")
	return filepath.Join(root, "plugins", id, "propagated-mount")
}

// blackholeRules are the iptables rules (without -I/-D) that cut the
// node at addr off; "" gives them for every node address the fixture
// uses, for the sweep.
func blackholeRules(addr string) [][]string {
	addrs := []string{addr}
	if addr == "" {
		addrs = nil
		for i := 10; i <= 12; i++ {
			addrs = append(addrs, fmt.Sprintf("%s.%d", netPrefix, i))
		}
	}
	var out [][]string
	for _, a := range addrs {
		out = append(out,
			[]string{"INPUT", "-s", a, "-j", "DROP"},
			[]string{"OUTPUT", "-d", a, "-j", "DROP"},
			[]string{"FORWARD", "-s", a, "-j", "DROP"},
			[]string{"FORWARD", "-d", a, "-j", "DROP"})
	}
	return out
}

// blackhole drops (on) or again passes (off) all traffic of the node at
// addr: to the root namespace (sshd, the manager) and to the other nodes.
func blackhole(t *testing.T, addr string, on bool) {
	for _, r := range blackholeRules(addr) {
		_, present := sh("iptables", append([]string{"-C"}, r...)...)
		switch {
		case on && present != nil:
			mustSh(t, "iptables", append([]string{"-I", r[0], "1"}, r[1:]...)...)
		case !on && present == nil:
			mustSh(t, "iptables", append([]string{"-D"}, r...)...)
		}
	}
}
