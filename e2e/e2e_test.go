package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/sftpfs/sftpfs/internal/faultproxy"
	"github.com/sftpfs/sftpfs/internal/mountinfo"
	"github.com/sftpfs/sftpfs/internal/sshdtest"
	"github.com/sftpfs/sftpfs/internal/testenv"
	"github.com/sftpfs/sftpfs/sftpserver"
)

const (
	plugin    = "sftpfs-e2e:latest"
	image     = "sftpfs-e2e-busybox"
	dockerLog = "/var/log/sftpfs-dockerd.log"
)

// harness is what every subtest shares: the installed plugin, a real
// OpenSSH server on loopback (the plugin uses the host network, so
// 127.0.0.1 is the same place for it), and a key in the plugin's
// secrets directory.
type harness struct {
	t       *testing.T
	repo    string
	sshd    *sshdtest.Server
	remote  string // the directory sshd's volumes point at
	secrets string // the plugin's secrets directory on the host
	suffix  string
	volumes []string
	// nonRootFP is the host key fingerprint of the server started by
	// startNonRootServer.
	nonRootFP string
}

// docker runs the docker CLI; the error includes its output.
func docker(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

func (h *harness) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	return docker(ctx, args...)
}

func (h *harness) must(args ...string) string {
	h.t.Helper()
	out, err := h.run(args...)
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// mustFail runs a docker command that must fail with all of want in its
// output (the driver's message reaches the CLI verbatim).
func (h *harness) mustFail(args []string, want ...string) string {
	h.t.Helper()
	out, err := h.run(args...)
	if err == nil {
		h.t.Fatalf("docker %s succeeded, want failure mentioning %q", strings.Join(args, " "), want)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			h.t.Fatalf("docker %s: output %q does not mention %q", strings.Join(args, " "), out, w)
		}
	}
	return out
}

func (h *harness) name(base string) string {
	n := "e2e-" + base + "-" + h.suffix
	h.volumes = append(h.volumes, n)
	return n
}

// sshOpts are the volume options for a volume of the sshd in dir (a path
// on this machine, which is the server).
func (h *harness) sshOpts(dir string) []string {
	return []string{
		"-o", "host=127.0.0.1", "-o", "port=" + strconv.Itoa(h.sshd.Port), "-o", "user=" + h.sshd.User,
		"-o", "path=" + dir, "-o", "identity=e2e_key", "-o", "hostkey=" + h.sshd.HostKeyFingerprint,
	}
}

func (h *harness) create(name string, opts ...string) {
	h.t.Helper()
	h.must(append([]string{"volume", "create", "-d", plugin}, append(opts, name)...)...)
}

// runIn runs busybox in a throwaway container.
func (h *harness) runIn(args ...string) (string, error) {
	return h.run(append([]string{"run", "--rm"}, args...)...)
}

func (h *harness) inspect(name string) map[string]any {
	h.t.Helper()
	var v []map[string]any
	if err := json.Unmarshal([]byte(h.must("volume", "inspect", name)), &v); err != nil || len(v) != 1 {
		h.t.Fatalf("volume inspect %s: %v", name, err)
	}
	return v[0]
}

func repoRoot(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

// requireDocker skips (fails under CI=true) unless this is root with
// FUSE, a running Docker engine and Debian's static busybox.
func requireDocker(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.LookPath(t, "docker")
	testenv.RequireFUSE(t)
	_, err := docker(context.Background(), "info")
	testenv.Require(t, "a running Docker engine (`docker info` failed; scripts/deps.sh starts one)", err == nil)
	testenv.Require(t, "/bin/busybox (Debian package busybox-static)", fileExists("/bin/busybox"))
}

// buildImage builds tag: a FROM-scratch image with Debian's static
// busybox as entrypoint; its /data/seed.txt exercises Docker's copy-up
// into empty volumes.
func (h *harness) buildImage(tag string) {
	h.t.Helper()
	ctxDir := h.t.TempDir()
	if out, err := exec.Command("cp", "/bin/busybox", filepath.Join(ctxDir, "busybox")).CombinedOutput(); err != nil {
		h.t.Fatalf("cp busybox: %v %s", err, out)
	}
	os.MkdirAll(filepath.Join(ctxDir, "data"), 0o755)
	os.WriteFile(filepath.Join(ctxDir, "data", "seed.txt"), []byte("from the image\n"), 0o644)
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM scratch\nCOPY busybox /bin/busybox\nCOPY data /data\nENTRYPOINT [\"/bin/busybox\"]\n"), 0o644)
	h.must("build", "-q", "-t", tag, ctxDir)
}

func setup(t *testing.T) *harness {
	requireDocker(t)
	h := &harness{t: t, repo: repoRoot(t), suffix: strconv.FormatUint(rand.Uint64()%1e6, 36)}
	t.Cleanup(func() {
		if t.Failed() {
			tail, _ := exec.Command("tail", "-n", "80", dockerLog).CombinedOutput()
			t.Logf("tail of %s:\n%s", dockerLog, tail)
		}
	})

	// The plugin, built and enabled by the same script `make plugin` runs.
	build := exec.Command(filepath.Join(h.repo, "scripts/build-plugin.sh"))
	build.Dir = h.repo
	build.Env = append(os.Environ(), "PLUGIN_NAME="+plugin)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("scripts/build-plugin.sh: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		for _, v := range h.volumes {
			docker(context.Background(), "volume", "rm", "-f", v)
		}
		docker(context.Background(), "plugin", "rm", "-f", plugin)
	})

	h.buildImage(image)

	h.sshd = sshdtest.Start(t, sshdtest.Options{})
	h.remote = t.TempDir()

	id := strings.TrimSpace(h.must("plugin", "inspect", "-f", "{{.Id}}", plugin))
	root := strings.TrimSpace(h.must("info", "-f", "{{.DockerRootDir}}"))
	h.secrets = filepath.Join(root, "plugins", id, "propagated-mount", ".secrets")
	key, err := os.ReadFile(h.sshd.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.secrets, "e2e_key"), key, 0o600); err != nil {
		t.Fatalf("installing the key in the plugin's default secrets dir (created by the plugin at start): %v", err)
	}
	return h
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPlugin(t *testing.T) {
	h := setup(t)
	start := time.Now()
	defer func() { t.Logf("plugin e2e took %s", time.Since(start).Round(time.Second)) }()

	// One volume most subtests share.
	dir := filepath.Join(h.remote, "main")
	os.MkdirAll(dir, 0o755)
	vol := h.name("main")
	h.create(vol, h.sshOpts(dir)...)

	t.Run("WriteThenRead", func(t *testing.T) {
		h.t = t
		h.must("run", "--rm", "-v", vol+":/data", image, "sh", "-c", "echo hello > /data/hello.txt")
		if got := readFile(t, filepath.Join(dir, "hello.txt")); got != "hello\n" {
			t.Fatalf("server has %q", got)
		}
		out := h.must("run", "--rm", "-v", vol+":/data", image, "cat", "/data/hello.txt")
		if out != "hello\n" {
			t.Fatalf("second container read %q", out)
		}
		// Docker copied the image's /data into the empty volume.
		if got := readFile(t, filepath.Join(dir, "seed.txt")); got != "from the image\n" {
			t.Fatalf("copy-up: server has %q", got)
		}
	})

	// The plugin raises its FUSE mounts' read-ahead (fusefs/bdi.go)
	// through the bdi mount of plugin/config.json; without it the kernel
	// keeps 128 KiB and sends sequential reads in 128 KiB requests.
	t.Run("KernelReadAhead", func(t *testing.T) {
		h.t = t
		cid := h.must("run", "-d", "-v", vol+":/data", image, "sleep", "60")
		defer h.run("rm", "-f", cid)
		// Docker's Mountpoint is the path inside the plugin; on the
		// host the volume is under the plugin's propagated mount.
		mp := ""
		for _, m := range mountedAt(t, vol) {
			if strings.HasPrefix(m.FSType, "fuse") {
				mp = m.Mountpoint
			}
		}
		if mp == "" {
			t.Fatalf("no FUSE mount of %s in the host mount table while a container uses it", vol)
		}
		if got := readAheadOf(t, mp); got != "1024" {
			t.Fatalf("read_ahead_kb of the volume's FUSE device = %s, want 1024", got)
		}
	})

	t.Run("ReadOnly", func(t *testing.T) {
		h.t = t
		out, err := h.runIn("-v", vol+":/data:ro", image, "sh", "-c", "echo x > /data/ro.txt")
		if err == nil || !strings.Contains(out, "Read-only file system") {
			t.Fatalf("write to a :ro mount: err=%v out=%q", err, out)
		}
		if fileExists(filepath.Join(dir, "ro.txt")) {
			t.Fatal("write through :ro reached the server")
		}
		if out := h.must("run", "--rm", "-v", vol+":/data:ro", image, "cat", "/data/hello.txt"); out != "hello\n" {
			t.Fatalf(":ro read %q", out)
		}
	})

	t.Run("NonRootUser", func(t *testing.T) {
		h.t = t
		d := filepath.Join(h.remote, "nonroot")
		os.MkdirAll(d, 0o755)
		v := h.name("nonroot")
		h.create(v, append(h.sshOpts(d), "-o", "uid=1000", "-o", "gid=1000")...)
		h.must("run", "--rm", "-u", "1000:1000", "-v", v+":/data", image, "sh", "-c", "echo me > /data/mine.txt && mkdir /data/sub && echo x > /data/sub/f && ls -ln /data")
		if got := readFile(t, filepath.Join(d, "sub", "f")); got != "x\n" {
			t.Fatalf("server has %q", got)
		}
		// Without uid/gid the remote owner (root here) shows through and
		// default_permissions makes the kernel refuse a non-root writer.
		out, err := h.runIn("-u", "1000:1000", "-v", vol+":/data", image, "sh", "-c", "echo x > /data/nope.txt")
		if err == nil {
			t.Fatalf("non-root write to a root-owned volume without uid mapping succeeded: %s", out)
		}
	})

	t.Run("BadOptions", func(t *testing.T) {
		h.t = t
		n := "e2e-bad-" + h.suffix
		base := h.sshOpts(h.remote)
		cases := []struct {
			opts []string
			want []string
		}{
			{append(base, "-o", "bogus=1"), []string{"bogus"}},
			{[]string{"-o", "user=x", "-o", "hostkey=" + h.sshd.HostKeyFingerprint, "-o", "identity=e2e_key"}, []string{"host"}},
			{append(base, "-o", "port=99999"), []string{"port"}},
			{append(base[:len(base)-4:len(base)-4], "-o", "identity=missing_key", "-o", "hostkey="+h.sshd.HostKeyFingerprint), []string{"identity", "missing_key"}},
			{append(base[:len(base)-2:len(base)-2], "-o", "hostkey=SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), []string{"host key"}},
		}
		for _, c := range cases {
			h.mustFail(append([]string{"volume", "create", "-d", plugin}, append(c.opts, n)...), c.want...)
			if _, err := h.run("volume", "inspect", n); err == nil {
				t.Fatalf("failed create %v left a volume", c.opts)
			}
		}
	})

	t.Run("InspectShowsStatusNoSecret", func(t *testing.T) {
		h.t = t
		st := h.inspect(vol)["Status"].(map[string]any)
		if st["host_key"] != h.sshd.HostKeyFingerprint || st["backend"] != "sftp" || !strings.Contains(fmt.Sprint(st["remote"]), "@127.0.0.1:"+strconv.Itoa(h.sshd.Port)) {
			t.Fatalf("status %v", st)
		}

		// An inline password (migration only) against the in-process
		// SFTP server: it must not show in the driver's Status. Docker
		// itself keeps and shows the create Options, which is why the
		// docs steer users to password_file.
		const password = "e2e-inline-Secret-4711"
		srvDir := t.TempDir()
		srv, err := sftpserver.New(sftpserver.Config{Root: srvDir, Password: []byte(password)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go srv.Serve(ctx)
		defer srv.Close()
		_, port, _ := strings.Cut(srv.Addr(), ":")
		v := h.name("password")
		h.create(v, "-o", "host=127.0.0.1", "-o", "port="+port, "-o", "user=demo", "-o", "password="+password,
			"-o", "hostkey="+ssh.FingerprintSHA256(srv.HostKey()))
		h.must("run", "--rm", "-v", v+":/data", image, "sh", "-c", "echo pw > /data/pw.txt")
		if got := readFile(t, filepath.Join(srvDir, "pw.txt")); got != "pw\n" {
			t.Fatalf("server has %q", got)
		}
		full := h.inspect(v)
		st2, _ := json.Marshal(full["Status"])
		if strings.Contains(string(st2), password) {
			t.Fatalf("Status leaks the password: %s", st2)
		}
		if !strings.Contains(string(st2), "demo@127.0.0.1") {
			t.Fatalf("status %s", st2)
		}
		t.Logf("docker volume inspect shows Options (Docker's own copy): %v", full["Options"] != nil)
		h.must("volume", "rm", v)
	})

	// Docker copies the image's /data into an empty volume and chowns it
	// to the image's owners (0:0). Against an account that may not chown
	// (any non-root SFTP user) that must not abort the container start.
	t.Run("CopyUpNonRootServer", func(t *testing.T) {
		h.t = t
		d := filepath.Join(h.remote, "nobody")
		os.MkdirAll(d, 0o755)
		os.Chown(d, 65534, 65534)
		os.Chmod(h.remote, 0o755)
		os.Chmod(filepath.Dir(h.remote), 0o755)
		port := startNonRootServer(t, h, d)
		v := h.name("copyup")
		h.create(v, "-o", "host=127.0.0.1", "-o", "port="+strconv.Itoa(port), "-o", "user=nobody",
			"-o", "identity=e2e_key", "-o", "hostkey="+h.nonRootFP)
		out := h.must("run", "--rm", "-v", v+":/data", image, "sh", "-c", "ls -ln /data && cat /data/seed.txt")
		if !strings.Contains(out, "from the image") {
			t.Fatalf("copy-up: %s", out)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(d, "seed.txt"), &st); err != nil || st.Uid != 65534 {
			t.Fatalf("seed.txt on the server: uid %d, %v", st.Uid, err)
		}
	})

	t.Run("RemoveKeepsRemoteData", func(t *testing.T) {
		h.t = t
		d := filepath.Join(h.remote, "keep")
		os.MkdirAll(d, 0o755)
		v := h.name("keep")
		h.create(v, h.sshOpts(d)...)
		h.must("run", "--rm", "-v", v+":/data", image, "sh", "-c", "echo keep > /data/k.txt")
		h.must("volume", "rm", v)
		if got := readFile(t, filepath.Join(d, "k.txt")); got != "keep\n" {
			t.Fatalf("after volume rm the server has %q", got)
		}
	})

	t.Run("TwoVolumesSameRemote", func(t *testing.T) {
		h.t = t
		a, b := h.name("twin-a"), h.name("twin-b")
		h.create(a, h.sshOpts(dir)...)
		h.create(b, h.sshOpts(dir)...)
		cid := strings.TrimSpace(h.must("run", "-d", "-v", a+":/data", image, "sleep", "300"))
		defer h.run("rm", "-f", cid)
		h.must("run", "--rm", "-v", b+":/data", image, "sh", "-c", "echo b > /data/b.txt")
		h.must("volume", "rm", b)
		// a is unaffected by b's unmount and removal.
		if out := h.must("exec", cid, "/bin/busybox", "cat", "/data/b.txt"); out != "b\n" {
			t.Fatalf("a reads %q", out)
		}
		if _, err := h.run("volume", "rm", a); err == nil {
			t.Fatal("removing a volume in use succeeded")
		}
	})

	// A server that stops answering must not block `docker volume ls`,
	// inspect, or other volumes.
	t.Run("StalledServerDoesNotBlockOthers", func(t *testing.T) {
		h.t = t
		px, err := faultproxy.New(h.sshd.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer px.Close()
		d := filepath.Join(h.remote, "stall")
		os.MkdirAll(d, 0o755)
		v := h.name("stall")
		h.create(v, "-o", "host=127.0.0.1", "-o", "port="+strconv.Itoa(px.Port()), "-o", "user="+h.sshd.User,
			"-o", "path="+d, "-o", "identity=e2e_key", "-o", "hostkey="+h.sshd.HostKeyFingerprint, "-o", "op_timeout=5s")
		cid := strings.TrimSpace(h.must("run", "-d", "-v", v+":/data", image, "sleep", "300"))
		defer h.run("rm", "-f", cid)
		px.SetStall(true)
		// Something in the container now hangs on the server.
		go h.run("exec", cid, "/bin/busybox", "ls", "-l", "/data")
		time.Sleep(time.Second)
		start := time.Now()
		h.must("volume", "ls")
		h.must("volume", "inspect", v)
		other := h.name("unstalled")
		h.create(other, h.sshOpts(dir)...)
		h.must("run", "--rm", "-v", other+":/data", image, "cat", "/data/hello.txt")
		if el := time.Since(start); el > 15*time.Second {
			t.Fatalf("ls/inspect/create/run of other volumes took %s while a server was stalled", el)
		}
		px.SetStall(false)
	})

	t.Run("MountFlagVolumeOpt", func(t *testing.T) {
		h.t = t
		d := filepath.Join(h.remote, "mountflag")
		os.MkdirAll(d, 0o755)
		v := h.name("mountflag")
		spec := "type=volume,src=" + v + ",dst=/data,volume-driver=" + plugin
		for i := 0; i < len(h.sshOpts(d)); i += 2 {
			spec += ",volume-opt=" + h.sshOpts(d)[i+1]
		}
		// hostkey values never contain commas; --mount splits on them.
		h.must("run", "--rm", "--mount", spec, image, "sh", "-c", "echo m > /data/m.txt")
		if got := readFile(t, filepath.Join(d, "m.txt")); got != "m\n" {
			t.Fatalf("server has %q", got)
		}
	})

	t.Run("DisableEnableKeepsVolumes", func(t *testing.T) {
		h.t = t
		// Docker refuses a plain disable while volumes of the plugin
		// exist ("in use"); -f is the documented way (no container
		// uses them now).
		h.must("run", "--rm", "-v", vol+":/data", image, "sh", "-c", "echo hello > /data/hello.txt")
		h.must("plugin", "disable", "-f", plugin)
		h.must("plugin", "enable", plugin)
		if out := h.must("run", "--rm", "-v", vol+":/data", image, "cat", "/data/hello.txt"); out != "hello\n" {
			t.Fatalf("after disable/enable read %q", out)
		}
	})

	t.Run("DockerdRestartKeepsVolumes", func(t *testing.T) {
		h.t = t
		h.must("run", "--rm", "-v", vol+":/data", image, "sh", "-c", "echo hello > /data/hello.txt")
		restartDockerd(t)
		if out := h.must("volume", "ls", "-q", "-f", "driver="+plugin); !strings.Contains(out, vol) {
			t.Fatalf("after dockerd restart volume ls = %q", out)
		}
		if out := h.must("run", "--rm", "-v", vol+":/data", image, "cat", "/data/hello.txt"); out != "hello\n" {
			t.Fatalf("after dockerd restart read %q", out)
		}
	})

	t.Run("Swarm", func(t *testing.T) {
		h.t = t
		if out, err := h.run("info", "-f", "{{.Swarm.LocalNodeState}}"); err != nil || strings.TrimSpace(out) != "inactive" {
			t.Skipf("this engine is already in a swarm (%q); not touching it", strings.TrimSpace(out))
		}
		h.must("swarm", "init", "--advertise-addr", "127.0.0.1")
		defer h.run("swarm", "leave", "--force")
		d := filepath.Join(h.remote, "swarm")
		os.MkdirAll(d, 0o755)
		v := h.name("swarm")
		spec := "type=volume,src=" + v + ",dst=/data,volume-driver=" + plugin
		for i := 0; i < len(h.sshOpts(d)); i += 2 {
			spec += ",volume-opt=" + h.sshOpts(d)[i+1]
		}
		svc := "e2e-svc-" + h.suffix
		h.must("service", "create", "--detach", "--no-resolve-image", "--name", svc, "--restart-condition", "none",
			"--mount", spec, image, "sh", "-c", "cat /data/seed.txt > /data/from-swarm.txt; sleep 300")
		defer h.run("service", "rm", svc)
		deadline := time.Now().Add(60 * time.Second)
		for !fileExists(filepath.Join(d, "from-swarm.txt")) {
			if time.Now().After(deadline) {
				ps, _ := h.run("service", "ps", "--no-trunc", svc)
				t.Fatalf("swarm task did not write through the volume:\n%s", ps)
			}
			time.Sleep(500 * time.Millisecond)
		}
		if got := readFile(t, filepath.Join(d, "from-swarm.txt")); got != "from the image\n" {
			t.Fatalf("swarm wrote %q", got)
		}
	})
}

// restartDockerd stops dockerd with SIGTERM, waits for it to exit and
// starts it again with its log appended to dockerLog, as scripts/deps.sh
// started it.
func restartDockerd(t *testing.T) {
	out, err := exec.Command("pidof", "dockerd").Output()
	if err != nil {
		t.Fatalf("pidof dockerd: %v (dockerd not running as a plain process; restart it by hand)", err)
	}
	pid, err := strconv.Atoi(strings.Fields(string(out))[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatal("dockerd did not exit within 60s of SIGTERM")
		}
		time.Sleep(200 * time.Millisecond)
	}
	logf, err := os.OpenFile(dockerLog, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	// dockerd outlives the test: it must not inherit descriptors the test
	// was started with, such as flock(1)'s lock, which it would then hold
	// for its whole life.
	closeInheritedFDs()
	cmd := exec.Command("dockerd")
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own session, so it outlives this test process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait()
	deadline = time.Now().Add(60 * time.Second)
	for {
		if _, err := docker(context.Background(), "info"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("dockerd did not come back within 60s")
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// closeInheritedFDs marks every descriptor above stderr close-on-exec.
// Go opens its own descriptors close-on-exec, but ones inherited from the
// parent (go test run under flock, say) stay open across exec.
func closeInheritedFDs() {
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}

// startNonRootServer runs `sftpfs sftp-server` as nobody (65534) serving
// dir, accepting the e2e key, and returns its port. The binary is
// $SFTPFS_E2E_CLI or the one scripts/build-plugin.sh built.
func startNonRootServer(t *testing.T, h *harness, dir string) int {
	bin := os.Getenv("SFTPFS_E2E_CLI")
	if bin == "" {
		bin = filepath.Join(h.repo, "bin", "sftpfs-linux-"+runtime.GOARCH)
	}
	setpriv := testenv.LookPath(t, "setpriv")
	tmp, err := os.MkdirTemp("", "sftpfs-e2e-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	os.Chmod(tmp, 0o755)
	pub := filepath.Join(tmp, "authorized_keys")
	os.WriteFile(pub, []byte(h.sshd.PublicKeyLine+"\n"), 0o644)
	hostKey := filepath.Join(tmp, "host_key")
	os.Chown(tmp, 65534, 65534)
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
		bin, "sftp-server", "-root", dir, "-listen", "127.0.0.1:0", "-authorized-keys", pub, "-host-key", hostKey)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s sftp-server: %v", bin, err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		b := make([]byte, 4096)
		n, _ := stdout.Read(b)
		line <- string(b[:n])
	}()
	var ready string
	select {
	case ready = <-line:
	case <-time.After(20 * time.Second):
	}
	// "sftp-server listening on 127.0.0.1:PORT host key TYPE SHA256:..."
	f := strings.Fields(ready)
	if len(f) < 8 || f[1] != "listening" {
		t.Fatalf("sftp-server did not start: %q %s", ready, stderr.String())
	}
	_, p, _ := strings.Cut(f[3], ":")
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("sftp-server ready line %q", ready)
	}
	h.nonRootFP = f[7]
	return port
}

// readAheadOf returns read_ahead_kb of the FUSE device mounted at path
// on the host (the topmost FUSE mount there).
func readAheadOf(t *testing.T, path string) string {
	t.Helper()
	ms, err := mountinfo.Read()
	if err != nil {
		t.Fatal(err)
	}
	dev := ""
	for _, m := range ms {
		if m.Mountpoint == path && strings.HasPrefix(m.FSType, "fuse") {
			dev = m.Dev
		}
	}
	if dev == "" {
		t.Fatalf("no FUSE mount at %s in the host mount table", path)
	}
	b, err := os.ReadFile(filepath.Join("/sys/class/bdi", dev, "read_ahead_kb"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
