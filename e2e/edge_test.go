package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sftpfs/sftpfs/internal/mountinfo"
	"github.com/sftpfs/sftpfs/internal/testenv"
)

// mountsOf is the driver's count of callers holding the volume mounted,
// as `docker volume inspect` reports it in Status.
func (h *harness) mountsOf(name string) int {
	h.t.Helper()
	st, ok := h.inspect(name)["Status"].(map[string]any)
	if !ok {
		h.t.Fatalf("volume %s has no Status", name)
	}
	n, ok := st["mounts"].(float64)
	if !ok {
		h.t.Fatalf("volume %s Status has no mounts count: %v", name, st)
	}
	return int(n)
}

// mountedAt lists the mount table entries (as seen from the host, where
// the plugin's propagated mounts show up) whose mountpoint is the
// volume's directory.
func mountedAt(t *testing.T, name string) []mountinfo.Mount {
	t.Helper()
	ms, err := mountinfo.Read()
	if err != nil {
		t.Fatal(err)
	}
	var out []mountinfo.Mount
	for _, m := range ms {
		if filepath.Base(m.Mountpoint) == name {
			out = append(out, m)
		}
	}
	return out
}

// waitServerFile waits up to 20 s until the container cid has written
// more than 100 bytes to path on the server (read directly, not through
// the plugin), and fails with the container's logs otherwise.
func (h *harness) waitServerFile(cid, path string) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if b, err := os.ReadFile(path); err == nil && len(b) > 100 {
			return
		}
		if time.Now().After(deadline) {
			logs, _ := h.run("logs", cid)
			h.t.Fatalf("the container did not start writing %s on the server: %s", filepath.Base(path), logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// requireIdle waits briefly for the volume to be released (Docker calls
// Unmount after the container is gone, asynchronously to the CLI for
// killed containers) and then fails unless the driver counts no mounts
// and nothing is mounted at the volume's directory.
func (h *harness) requireIdle(name string) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := h.mountsOf(name)
		left := mountedAt(h.t, name)
		if n == 0 && len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("volume %s: driver counts %d mounts, mount table has %v; want 0 and none", name, n, left)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestEdge(t *testing.T) {
	h := setup(t)
	start := time.Now()
	defer func() { t.Logf("edge e2e took %s", time.Since(start).Round(time.Second)) }()

	// Mount IDs churn: every `docker run --rm` mounts with a new ID and
	// unmounts it on exit. None may leak, sequential or concurrent.
	t.Run("RunRmChurn", func(t *testing.T) {
		h.t = t
		d := filepath.Join(h.remote, "churn")
		os.MkdirAll(d, 0o755)
		v := h.name("churn")
		h.create(v, h.sshOpts(d)...)
		const seq, conc = 30, 10
		for i := range seq {
			h.must("run", "--rm", "-v", v+":/data", image, "sh", "-c", fmt.Sprintf("echo %d >> /data/seq.txt", i))
		}
		var wg sync.WaitGroup
		errs := make(chan error, conc)
		for i := range conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := h.runIn("-v", v+":/data", image, "sh", "-c", fmt.Sprintf("echo %d > /data/c%d.txt", i, i)); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		var want strings.Builder
		for i := range seq {
			fmt.Fprintf(&want, "%d\n", i)
		}
		if got := readFile(t, filepath.Join(d, "seq.txt")); got != want.String() {
			t.Fatalf("server seq.txt = %q, want 0..%d one per line", got, seq-1)
		}
		for i := range conc {
			if got := readFile(t, filepath.Join(d, fmt.Sprintf("c%d.txt", i))); got != fmt.Sprintf("%d\n", i) {
				t.Fatalf("server c%d.txt = %q", i, got)
			}
		}
		h.requireIdle(v)
	})

	// SIGKILL of a container in the middle of writing: what it wrote and
	// closed before is on the server, and Docker's Unmount still comes.
	t.Run("KillDuringWrite", func(t *testing.T) {
		h.t = t
		d := filepath.Join(h.remote, "kill")
		os.MkdirAll(d, 0o755)
		v := h.name("kill")
		h.create(v, h.sshOpts(d)...)
		cid := strings.TrimSpace(h.must("run", "-d", "-v", v+":/data", image, "sh", "-c",
			"echo durable > /data/done.txt && sync && i=0; while true; do i=$((i+1)); echo $i >> /data/loop.txt; done"))
		defer h.run("rm", "-f", cid)
		h.waitServerFile(cid, filepath.Join(d, "loop.txt"))
		if n := h.mountsOf(v); n != 1 {
			t.Fatalf("while the writer runs the driver counts %d mounts, want 1", n)
		}
		// The mount-table check in requireIdle sees live mounts (else it
		// could not fail).
		live := mountedAt(t, v)
		if !slices.ContainsFunc(live, func(m mountinfo.Mount) bool { return strings.HasPrefix(m.FSType, "fuse") }) {
			t.Fatalf("no FUSE mount for %s in the host mount table while in use: %v", v, live)
		}
		h.must("kill", "-s", "KILL", cid)
		h.must("wait", cid)
		h.requireIdle(v)
		if got := readFile(t, filepath.Join(d, "done.txt")); got != "durable\n" {
			t.Fatalf("server done.txt after the kill = %q", got)
		}
		// Every line that reached the server is whole: appends of
		// closed files are not torn by the kill (the last one may be
		// missing, never half-written).
		lines := strings.Split(strings.TrimSuffix(readFile(t, filepath.Join(d, "loop.txt")), "\n"), "\n")
		t.Logf("killed after %d appends reached the server", len(lines))
		for i, l := range lines {
			if l != strconv.Itoa(i+1) {
				t.Fatalf("loop.txt line %d = %q, want %d (of %d lines)", i+1, l, i+1, len(lines))
			}
		}
		// The volume is usable again afterwards.
		if out := h.must("run", "--rm", "-v", v+":/data", image, "cat", "/data/done.txt"); out != "durable\n" {
			t.Fatalf("after the kill a new container reads %q", out)
		}
		h.requireIdle(v)
	})

	// `docker volume prune` only ever removes unused volumes. On Docker
	// 20.10 it also only considers volumes of the built-in "local" driver
	// created without options, so sftpfs volumes are never pruned there;
	// whatever an engine does, the remote files must stay and a volume in
	// use must stay. A label filter keeps the prune off volumes this test
	// does not own, and a plain local volume with the same label shows
	// the prune really ran.
	t.Run("Prune", func(t *testing.T) {
		h.t = t
		label := "sftpfs-e2e-edge=" + h.suffix
		unused, used := h.name("prune-unused"), h.name("prune-used")
		du, dv := filepath.Join(h.remote, "prune-unused"), filepath.Join(h.remote, "prune-used")
		os.MkdirAll(du, 0o755)
		os.MkdirAll(dv, 0o755)
		h.create(unused, append([]string{"--label", label}, h.sshOpts(du)...)...)
		h.create(used, append([]string{"--label", label}, h.sshOpts(dv)...)...)
		control := h.name("prune-local")
		h.must("volume", "create", "--label", label, control)
		h.must("run", "--rm", "-v", unused+":/data", image, "sh", "-c", "echo u > /data/u.txt")
		cid := strings.TrimSpace(h.must("run", "-d", "-v", used+":/data", image, "sh", "-c", "echo w > /data/w.txt; sleep 300"))
		defer h.run("rm", "-f", cid)
		deadline := time.Now().Add(10 * time.Second)
		for !fileExists(filepath.Join(dv, "w.txt")) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		out := h.must("volume", "prune", "-f", "--filter", "label="+label)
		t.Logf("docker volume prune: %s", strings.TrimSpace(out))
		if strings.Contains(out, used) {
			t.Fatalf("prune removed %s, which a running container uses: %s", used, out)
		}
		major, _, _ := strings.Cut(strings.TrimSpace(h.must("version", "-f", "{{.Server.Version}}")), ".")
		if m, err := strconv.Atoi(major); err == nil && m < 23 {
			// 20.10 prunes named local volumes, and only those.
			if !strings.Contains(out, control) {
				t.Fatalf("prune did not remove the unused local volume %s (the label filter matched nothing?): %s", control, out)
			}
			if strings.Contains(out, unused) {
				t.Fatalf("Docker %s pruned the sftpfs volume %s; it should only prune local volumes: %s", major, unused, out)
			}
		}
		if strings.Contains(out, unused) {
			if _, err := h.run("volume", "inspect", unused); err == nil {
				t.Fatalf("prune reported %s removed but it still exists", unused)
			}
		} else {
			// Kept, and still usable.
			if got := h.must("run", "--rm", "-v", unused+":/data", image, "cat", "/data/u.txt"); got != "u\n" {
				t.Fatalf("after prune %s reads %q", unused, got)
			}
			h.requireIdle(unused)
		}
		if got := readFile(t, filepath.Join(du, "u.txt")); got != "u\n" {
			t.Fatalf("after prune the server has %q", got)
		}
		if len(mountedAt(t, unused)) != 0 {
			t.Fatalf("unused volume mounted after prune: %v", mountedAt(t, unused))
		}
		if got := h.must("exec", cid, "/bin/busybox", "cat", "/data/w.txt"); got != "w\n" {
			t.Fatalf("the in-use volume reads %q after prune", got)
		}
		h.must("rm", "-f", cid)
		h.requireIdle(used)
		h.must("volume", "rm", used)
		if got := readFile(t, filepath.Join(dv, "w.txt")); got != "w\n" {
			t.Fatalf("after rm the server has %q", got)
		}
	})

	t.Run("ComposeDownV", func(t *testing.T) {
		h.t = t
		compose, err := exec.LookPath("docker-compose")
		testenv.Require(t, "docker-compose (Debian package docker-compose; scripts/deps.sh installs it)", err == nil)
		d := filepath.Join(h.remote, "compose")
		os.MkdirAll(d, 0o755)
		o := h.sshOpts(d)
		var opts strings.Builder
		for i := 1; i < len(o); i += 2 {
			k, val, _ := strings.Cut(o[i], "=")
			fmt.Fprintf(&opts, "      %s: %q\n", k, val)
		}
		dir := t.TempDir()
		yml := "version: \"2.4\"\nservices:\n  app:\n    image: " + image + "\n" +
			"    command: [\"sh\", \"-c\", \"echo composed > /data/c.txt\"]\n" +
			"    volumes:\n      - data:/data\n" +
			"volumes:\n  data:\n    driver: " + plugin + "\n    driver_opts:\n" + opts.String()
		os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(yml), 0o644)
		project := "e2eedge" + h.suffix
		v := project + "_data"
		h.volumes = append(h.volumes, v)
		dc := func(args ...string) string {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, compose, append([]string{"-p", project}, args...)...)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("docker-compose %s: %v\n%s\ncompose file:\n%s", strings.Join(args, " "), err, out, yml)
			}
			return string(out)
		}
		defer func() {
			if t.Failed() {
				cmd := exec.Command(compose, "-p", project, "down", "-v")
				cmd.Dir = dir
				cmd.Run()
			}
		}()
		dc("up", "--no-build", "--abort-on-container-exit")
		if got := readFile(t, filepath.Join(d, "c.txt")); got != "composed\n" {
			t.Fatalf("server c.txt = %q", got)
		}
		if drv := h.inspect(v)["Driver"]; drv != plugin {
			t.Fatalf("compose created %s with driver %v", v, drv)
		}
		dc("down", "-v")
		if _, err := h.run("volume", "inspect", v); err == nil {
			t.Fatalf("%s still exists after down -v", v)
		}
		if len(mountedAt(t, v)) != 0 {
			t.Fatalf("%s still mounted after down -v: %v", v, mountedAt(t, v))
		}
		if got := readFile(t, filepath.Join(d, "c.txt")); got != "composed\n" {
			t.Fatalf("after down -v the server has %q", got)
		}
	})

	// Two volumes on nested directories of one server see each other's
	// writes, and removing either leaves the files.
	t.Run("NestedPaths", func(t *testing.T) {
		h.t = t
		outer := filepath.Join(h.remote, "nest")
		inner := filepath.Join(outer, "b")
		os.MkdirAll(inner, 0o755)
		va, vb := h.name("nest-a"), h.name("nest-ab")
		h.create(va, h.sshOpts(outer)...)
		h.create(vb, h.sshOpts(inner)...)
		cid := strings.TrimSpace(h.must("run", "-d", "-v", va+":/data", image, "sleep", "300"))
		defer h.run("rm", "-f", cid)
		h.must("exec", cid, "/bin/busybox", "sh", "-c", "echo from-a > /data/b/x.txt")
		if out := h.must("run", "--rm", "-v", vb+":/data", image, "cat", "/data/x.txt"); out != "from-a\n" {
			t.Fatalf("inner volume reads %q", out)
		}
		h.must("run", "--rm", "-v", vb+":/data", image, "sh", "-c", "echo from-b > /data/y.txt")
		if out := h.must("exec", cid, "/bin/busybox", "cat", "/data/b/y.txt"); out != "from-b\n" {
			t.Fatalf("outer volume reads %q", out)
		}
		h.must("volume", "rm", vb)
		if out := h.must("exec", cid, "/bin/busybox", "cat", "/data/b/x.txt", "/data/b/y.txt"); out != "from-a\nfrom-b\n" {
			t.Fatalf("after removing the inner volume the outer reads %q", out)
		}
		h.must("rm", "-f", cid)
		h.requireIdle(va)
		h.must("volume", "rm", va)
		for f, want := range map[string]string{"x.txt": "from-a\n", "y.txt": "from-b\n"} {
			if got := readFile(t, filepath.Join(inner, f)); got != want {
				t.Fatalf("after removing both volumes the server %s = %q", f, got)
			}
		}
	})

	// Docker refuses to disable a plugin whose volumes are in use.
	t.Run("DisableInUse", func(t *testing.T) {
		h.t = t
		d := filepath.Join(h.remote, "disable")
		os.MkdirAll(d, 0o755)
		v := h.name("disable")
		h.create(v, h.sshOpts(d)...)
		cid := strings.TrimSpace(h.must("run", "-d", "-v", v+":/data", image, "sh", "-c", "echo busy > /data/busy.txt; sleep 300"))
		defer h.run("rm", "-f", cid)
		msg := h.mustFail([]string{"plugin", "disable", plugin}, "in use")
		t.Logf("refused: %s", strings.TrimSpace(msg))
		if out := h.must("plugin", "inspect", "-f", "{{.Enabled}}", plugin); strings.TrimSpace(out) != "true" {
			t.Fatalf("plugin enabled = %q after a refused disable", out)
		}
		if out := h.must("exec", cid, "/bin/busybox", "cat", "/data/busy.txt"); out != "busy\n" {
			t.Fatalf("after the refused disable the container reads %q", out)
		}
		h.must("rm", "-f", cid)
		h.requireIdle(v)
		h.must("volume", "rm", v)
		if got := readFile(t, filepath.Join(d, "busy.txt")); got != "busy\n" {
			t.Fatalf("after cleanup the server has %q", got)
		}
	})
}
