package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sftpfs/sftpfs/internal/sshdtest"
	"github.com/sftpfs/sftpfs/internal/testenv"
)

// TestPluginUpgrade is `docker plugin upgrade` on the real engine: the
// plugin is pushed as :v1 and :v2 (binaries with different version
// strings) to a throwaway local registry, v1 is installed under an alias
// and given volumes and data, then disabled, upgraded to v2 and enabled.
// Every volume, its options (Docker's copy and the plugin's state) and the
// plugin's settings must survive, v2 must be the process serving, the
// volumes must mount and show the data, and the remote data must not
// have been touched by the upgrade.
func TestPluginUpgrade(t *testing.T) {
	requireDocker(t)
	registryBin, err := exec.LookPath("docker-registry")
	testenv.Require(t, "docker-registry (Debian package docker-registry; scripts/deps.sh installs it)", err == nil)
	h := &harness{t: t, repo: repoRoot(t), suffix: strconv.FormatUint(rand.Uint64()%1e6, 36)}
	start := time.Now()
	defer func() { t.Logf("upgrade e2e took %s", time.Since(start).Round(time.Second)) }()
	t.Cleanup(func() {
		if t.Failed() {
			tail, _ := exec.Command("tail", "-n", "60", dockerLog).CombinedOutput()
			t.Logf("tail of %s:\n%s", dockerLog, tail)
		}
	})

	img := image + "-upgrade-" + h.suffix
	h.buildImage(img)
	t.Cleanup(func() { docker(context.Background(), "rmi", img) })

	// Two builds that differ only in the version they report.
	vers := []string{"e2e-upgrade-v1-" + h.suffix, "e2e-upgrade-v2-" + h.suffix}
	bins := make([]string, len(vers))
	for i, v := range vers {
		bins[i] = buildSftpfs(t, h.repo, v)
	}

	reg := startRegistry(t, registryBin)
	repo := reg + "/sftpfs-e2e-upgrade"
	refs := []string{repo + ":v1", repo + ":v2"}
	for i, ref := range refs {
		// The same script as `make plugin`, without enabling: the tree
		// is created as a plugin named after the registry reference,
		// pushed, and removed again (install pulls it back).
		build := exec.Command(filepath.Join(h.repo, "scripts/build-plugin.sh"), "--no-enable")
		build.Dir = h.repo
		build.Env = append(os.Environ(), "PLUGIN_NAME="+ref, "SFTPFS_BINARY="+bins[i])
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("scripts/build-plugin.sh for %s: %v\n%s", ref, err, out)
		}
		t.Cleanup(func() { docker(context.Background(), "plugin", "rm", "-f", ref) })
		h.must("plugin", "push", ref)
		h.must("plugin", "rm", "-f", ref)
	}

	// Installed as users do, from a registry under an alias; the alias
	// is the driver name volumes refer to.
	alias := "sftpfs-e2e-upgrade:latest"
	docker(context.Background(), "plugin", "rm", "-f", alias) // a leftover of an aborted run
	h.must("plugin", "install", "--grant-all-permissions", "--disable", "--alias", alias, refs[0])
	t.Cleanup(func() { docker(context.Background(), "plugin", "rm", "-f", alias) })
	// A setting, to see Docker keep it across the upgrade.
	h.must("plugin", "set", alias, "LOG_LEVEL=debug")
	h.must("plugin", "enable", alias)
	id := strings.TrimSpace(h.must("plugin", "inspect", "-f", "{{.Id}}", alias))
	if got := servingVersion(t, id); !strings.Contains(got, vers[0]) {
		t.Fatalf("after installing %s the plugin process reports %q, want version %s", refs[0], got, vers[0])
	}

	root := strings.TrimSpace(h.must("info", "-f", "{{.DockerRootDir}}"))
	propagated := filepath.Join(root, "plugins", id, "propagated-mount")
	h.sshd = sshdtest.Start(t, sshdtest.Options{})
	key, err := os.ReadFile(h.sshd.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(propagated, ".secrets", "e2e_key"), key, 0o600); err != nil {
		t.Fatalf("installing the key in the plugin's secrets dir: %v", err)
	}

	// Three volumes: SFTP with extra options, SFTP never mounted before
	// the upgrade, and local (a directory in the propagated mount, the
	// only plugin directory on the host that an upgrade keeps).
	remote := t.TempDir()
	dirS, dirIdle := filepath.Join(remote, "s"), filepath.Join(remote, "idle")
	os.MkdirAll(dirS, 0o755)
	os.MkdirAll(dirIdle, 0o755)
	os.WriteFile(filepath.Join(dirIdle, "pre.txt"), []byte("there before\n"), 0o644)
	localIn := "/mnt/volumes/.e2e-upgrade-local-" + h.suffix
	dirL := filepath.Join(propagated, filepath.Base(localIn))
	os.MkdirAll(dirL, 0o755)
	vs, vi, vl := "e2e-up-sftp-"+h.suffix, "e2e-up-idle-"+h.suffix, "e2e-up-local-"+h.suffix
	vols := []string{vs, vi, vl}
	t.Cleanup(func() {
		for _, v := range vols {
			docker(context.Background(), "volume", "rm", "-f", v)
		}
	})
	create := func(name string, opts ...string) {
		t.Helper()
		h.must(append(append([]string{"volume", "create", "-d", alias}, opts...), name)...)
	}
	create(vs, append(h.sshOpts(dirS), "-o", "uid=1000", "-o", "gid=1000", "-o", "op_timeout=7s")...)
	create(vi, append(h.sshOpts(dirIdle), "-o", "umask=027")...)
	create(vl, "-o", "local="+localIn)

	// Data written through a container, checked on the server.
	out := h.must("run", "--rm", "-v", vs+":/s", "-v", vl+":/l", img, "sh", "-c",
		"dd if=/dev/urandom of=/s/big bs=64k count=24 2>/dev/null && mkdir /s/sub && echo hello > /s/sub/hello.txt && "+
			"cp /s/big /l/big && echo local > /l/hello.txt && sha256sum /s/big && ls -ln /s/big")
	if !strings.Contains(out, " 1000 ") {
		t.Fatalf("uid=1000 not in effect before the upgrade: %s", out)
	}
	bigSum := strings.Fields(out)[0]
	for _, p := range []string{filepath.Join(dirS, "big"), filepath.Join(dirL, "big")} {
		if got := fileSHA(t, p); got != bigSum {
			t.Fatalf("%s on the server: sha256 %s, the container wrote %s", p, got, bigSum)
		}
	}
	h.requireNoMount(vols)

	before := map[string]volumeFacts{}
	for _, v := range vols {
		before[v] = h.volumeFacts(v)
	}
	stateBefore := readPluginState(t, filepath.Join(propagated, ".state"))
	for _, v := range vols {
		if _, ok := stateBefore[v]; !ok {
			t.Fatalf("the plugin's state file has no %s before the upgrade: %v", v, slices.Sorted(maps.Keys(stateBefore)))
		}
	}
	treeBefore := map[string]map[string]fileFact{dirS: snapshot(t, dirS), dirIdle: snapshot(t, dirIdle), dirL: snapshot(t, dirL)}

	// Docker refuses to upgrade an enabled plugin.
	if out, err := h.run("plugin", "upgrade", "--grant-all-permissions", "--skip-remote-check", alias, refs[1]); err == nil {
		t.Fatalf("upgrade of an enabled plugin succeeded: %s", out)
	}
	// With volumes of the plugin present, Docker 20.10 refuses a plain
	// disable ("in use") even with no container running; -f is needed.
	if out, err := h.run("plugin", "disable", alias); err != nil {
		t.Logf("plain disable refused (volumes exist): %s; using -f", strings.TrimSpace(out))
		h.must("plugin", "disable", "-f", alias)
	} else {
		t.Logf("plain disable succeeded with %d volumes and no container", len(vols))
	}
	// --skip-remote-check: v2 is a different image than v1 (the CLI would
	// otherwise ask "Plugin images do not match, are you sure?").
	t.Log(strings.TrimSpace(h.must("plugin", "upgrade", "--grant-all-permissions", "--skip-remote-check", alias, refs[1])))
	h.must("plugin", "enable", alias)

	// The same plugin (ID, so the same propagated mount), now v2 with
	// its settings, serving.
	var pi []struct {
		ID              string `json:"Id"`
		PluginReference string
		Settings        struct{ Env []string }
	}
	if err := json.Unmarshal([]byte(h.must("plugin", "inspect", alias)), &pi); err != nil || len(pi) != 1 {
		t.Fatalf("plugin inspect %s: %v", alias, err)
	}
	if pi[0].ID != id || pi[0].PluginReference != refs[1] {
		t.Fatalf("after the upgrade: id %s reference %s, want id %s reference %s", pi[0].ID, pi[0].PluginReference, id, refs[1])
	}
	if !slices.Contains(pi[0].Settings.Env, "LOG_LEVEL=debug") {
		t.Fatalf("the LOG_LEVEL setting did not survive the upgrade: %v", pi[0].Settings.Env)
	}
	if got := servingVersion(t, id); !strings.Contains(got, vers[1]) {
		t.Fatalf("after the upgrade the plugin process reports %q, want version %s", got, vers[1])
	}

	// Every volume and its options, as Docker and the plugin see them.
	ls := h.must("volume", "ls", "-q", "-f", "driver="+alias)
	for _, v := range vols {
		if !slices.Contains(strings.Fields(ls), v) {
			t.Fatalf("after the upgrade volume ls lacks %s: %q", v, ls)
		}
		if got := h.volumeFacts(v); !got.equal(before[v]) {
			t.Fatalf("volume %s changed across the upgrade:\nbefore %+v\nafter  %+v", v, before[v], got)
		}
	}
	stateAfter := readPluginState(t, filepath.Join(propagated, ".state"))
	for _, v := range vols {
		a, b := stateAfter[v], stateBefore[v]
		if !maps.Equal(a.Options, b.Options) || !a.CreatedAt.Equal(b.CreatedAt) || a.Backend != b.Backend || a.Remote != b.Remote || a.HostKey != b.HostKey {
			t.Fatalf("the plugin's state of %s changed across the upgrade:\nbefore %+v\nafter  %+v", v, b, a)
		}
	}
	// Nothing was written to the remote by the upgrade.
	for dir, want := range treeBefore {
		if got := snapshot(t, dir); !maps.Equal(got, want) {
			t.Fatalf("the upgrade touched the remote %s:\nbefore %v\nafter  %v", dir, want, got)
		}
	}

	// The volumes mount under v2 with their options and the data intact.
	out = h.must("run", "--rm", "-v", vs+":/s", "-v", vl+":/l", "-v", vi+":/i", img, "sh", "-c",
		"sha256sum /s/big /l/big && cat /s/sub/hello.txt /l/hello.txt /i/pre.txt && ls -ln /s/big && "+
			"echo after > /s/after.txt && echo after > /l/after.txt && echo first > /i/first.txt && stat -c %a /i/first.txt")
	for _, want := range []string{bigSum + "  /s/big", bigSum + "  /l/big", "hello\nlocal\nthere before\n", " 1000 ", "640\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("after the upgrade the container output lacks %q:\n%s", want, out)
		}
	}
	for p, want := range map[string]string{
		filepath.Join(dirS, "after.txt"): "after\n", filepath.Join(dirL, "after.txt"): "after\n", filepath.Join(dirIdle, "first.txt"): "first\n",
	} {
		if got := readFile(t, p); got != want {
			t.Fatalf("after the upgrade the server's %s = %q", p, got)
		}
	}
	// Earlier files still untouched after the new writes (directories
	// got new entries).
	for dir, want := range treeBefore {
		got := snapshot(t, dir)
		for name, f := range want {
			if !f.Mode.IsDir() && got[name] != f {
				t.Fatalf("%s/%s changed: before %+v, after %+v", dir, name, f, got[name])
			}
		}
	}
	h.requireNoMount(vols)

	// The project's remove refuses, naming what docker plugin rm would
	// delete: the volumes, the key and the state in the propagated mount.
	rm := func(env ...string) (string, error) {
		cmd := exec.Command(filepath.Join(h.repo, "scripts/plugin-rm.sh"), alias)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	keyFile := filepath.Join(propagated, ".secrets", "e2e_key")
	stateFile := filepath.Join(propagated, ".state", "state.json")
	out, err = rm()
	for _, want := range append([]string{"refusing to remove", "secrets file " + keyFile, "state file " + stateFile, "FORCE=1"}, vols...) {
		if err == nil || !strings.Contains(out, want) {
			t.Fatalf("plugin-rm.sh with volumes: err %v, output lacks %q:\n%s", err, want, out)
		}
	}
	if _, err := os.Stat(keyFile); err != nil {
		t.Fatalf("after the refusal: %v", err)
	}

	// Removing the volumes and the plugin leaves the remote files.
	for _, v := range vols {
		h.must("volume", "rm", v)
	}
	// With no volume left a plain disable works.
	h.must("plugin", "disable", alias)
	// The key is still there: only FORCE=1 removes, saying what goes.
	if out, err := rm(); err == nil || !strings.Contains(out, keyFile) {
		t.Fatalf("plugin-rm.sh with a secret left: err %v, want a refusal naming %s:\n%s", err, keyFile, out)
	}
	if out, err := rm("FORCE=1"); err != nil || !strings.Contains(out, keyFile) {
		t.Fatalf("FORCE=1 plugin-rm.sh: err %v, want success naming the lost %s:\n%s", err, keyFile, out)
	}
	if _, err := h.run("plugin", "inspect", alias); err == nil {
		t.Fatal("FORCE=1 plugin-rm.sh left the plugin installed")
	}
	if got := fileSHA(t, filepath.Join(dirS, "big")); got != bigSum {
		t.Fatalf("after volume and plugin rm the server's big has sha256 %s, want %s", got, bigSum)
	}
}

// buildSftpfs builds a static sftpfs reporting version into a temp dir.
func buildSftpfs(t *testing.T, repo, version string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "sftpfs")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+version, "-o", out, "./cmd/sftpfs")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/sftpfs (version %s): %v\n%s", version, err, b)
	}
	return out
}

// startRegistry runs `docker-registry serve` (Docker Distribution) on a
// free loopback port with its storage in a temp dir until the test ends,
// and returns its host:port. dockerd treats 127.0.0.0/8 as an insecure
// registry, so plain HTTP works without configuring the engine.
func startRegistry(t *testing.T, bin string) string {
	t.Helper()
	var lastErr error
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		dir := t.TempDir()
		cfg := filepath.Join(dir, "config.yml")
		os.WriteFile(cfg, []byte("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: "+
			filepath.Join(dir, "storage")+"\n  delete:\n    enabled: true\nhttp:\n  addr: "+addr+"\n"), 0o644)
		var logs testenv.Buffer
		cmd := exec.Command(bin, "serve", cfg)
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting %s: %v", bin, err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		stop := func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
		}
		if err := waitRegistry(addr, exited); err != nil {
			stop()
			lastErr = fmt.Errorf("%v; registry output: %s", err, logs.String())
			continue
		}
		t.Cleanup(func() {
			stop()
			if t.Failed() {
				t.Logf("registry output:\n%s", logs.String())
			}
		})
		return addr
	}
	t.Fatalf("the local registry did not start: %v", lastErr)
	return ""
}

func waitRegistry(addr string, exited <-chan struct{}) error {
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("docker-registry on %s exited", addr)
		default:
		}
		if resp, err := c.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("docker-registry on %s did not answer /v2/ within 15s", addr)
}

// servingVersion is the `sftpfs version` output of the binary that the
// plugin's running `/sftpfs serve` process executes (found by the plugin
// ID in its cgroup), so it tells which build serves, not which is on disk.
func servingVersion(t *testing.T, id string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if pid := pluginPID(id); pid != 0 {
			out, err := exec.Command("/proc/"+strconv.Itoa(pid)+"/exe", "version").Output()
			if err == nil {
				return strings.TrimSpace(string(out))
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no running `/sftpfs serve` process of plugin %s found", id)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// volumeFacts is what must not change about a volume across an upgrade.
type volumeFacts struct {
	Driver  string
	Options map[string]string
	// From the plugin's Status: its own persisted record.
	Backend, Remote, HostKey, OptionsHash string
	Mounts                                float64
}

func (a volumeFacts) equal(b volumeFacts) bool {
	return a.Driver == b.Driver && maps.Equal(a.Options, b.Options) && a.Backend == b.Backend && a.Remote == b.Remote &&
		a.HostKey == b.HostKey && a.OptionsHash == b.OptionsHash && a.Mounts == b.Mounts
}

func (h *harness) volumeFacts(name string) volumeFacts {
	h.t.Helper()
	var v []struct {
		Driver  string
		Options map[string]string
		Status  struct {
			Backend     string  `json:"backend"`
			Remote      string  `json:"remote"`
			HostKey     string  `json:"host_key"`
			OptionsHash string  `json:"options_hash"`
			Mounts      float64 `json:"mounts"`
		}
	}
	if err := json.Unmarshal([]byte(h.must("volume", "inspect", name)), &v); err != nil || len(v) != 1 {
		h.t.Fatalf("volume inspect %s: %v", name, err)
	}
	s := v[0].Status
	if s.Backend == "" || s.Remote == "" || s.OptionsHash == "" {
		h.t.Fatalf("volume %s: Status lacks backend, remote or options_hash: %+v", name, s)
	}
	return volumeFacts{Driver: v[0].Driver, Options: v[0].Options, Backend: s.Backend, Remote: s.Remote, HostKey: s.HostKey, OptionsHash: s.OptionsHash, Mounts: s.Mounts}
}

// requireNoMount waits for Docker's Unmounts after `run --rm` and fails
// if any of the volumes is still mounted on the host.
func (h *harness) requireNoMount(vols []string) {
	h.t.Helper()
	for _, v := range vols {
		h.requireIdle(v)
	}
}

// pluginVolume is the part of the plugin's state file (driver/state.go)
// the test compares.
type pluginVolume struct {
	Options   map[string]string `json:"options"`
	CreatedAt time.Time         `json:"created_at"`
	Backend   string            `json:"backend"`
	Remote    string            `json:"remote"`
	HostKey   string            `json:"host_key"`
}

func readPluginState(t *testing.T, stateDir string) map[string]pluginVolume {
	t.Helper()
	var doc struct {
		Volumes map[string]pluginVolume `json:"volumes"`
	}
	b, err := os.ReadFile(filepath.Join(stateDir, "state.json"))
	if err != nil {
		t.Fatalf("reading the plugin's state: %v", err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("the plugin's state file does not parse: %v", err)
	}
	return doc.Volumes
}

// fileFact is what snapshot records per file.
type fileFact struct {
	Mode  fs.FileMode
	Size  int64
	MTime time.Time
	SHA   string
}

// snapshot records every file and directory below dir (read directly on
// the server) with its mode, size, modification time and content hash.
func snapshot(t *testing.T, dir string) map[string]fileFact {
	t.Helper()
	out := map[string]fileFact{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		f := fileFact{Mode: info.Mode(), Size: info.Size(), MTime: info.ModTime()}
		if info.Mode().IsRegular() {
			f.SHA = fileSHA(t, p)
		}
		if d.IsDir() {
			f.Size = 0 // directory sizes are file system bookkeeping
		}
		out[rel] = f
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot of %s: %v", dir, err)
	}
	return out
}

func fileSHA(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
