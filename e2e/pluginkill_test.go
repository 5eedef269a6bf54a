package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pluginPID returns the pid of the plugin's running `/sftpfs serve`
// process (found by the plugin ID in its cgroup), or 0. It reads only the
// cgroup and cmdline files, which never block on a process's state.
func pluginPID(id string) int {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		cg, err := os.ReadFile(filepath.Join(p, "cgroup"))
		if err != nil || !bytes.Contains(cg, []byte(id)) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join(p, "cmdline"))
		if args := strings.Split(string(cmdline), "\x00"); len(args) < 2 || args[0] != "/sftpfs" || args[1] != "serve" {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(p)); err == nil {
			return pid
		}
	}
	return 0
}

// TestPluginKilled: `kill -9` of the plugin process under Docker, while a
// container writes through a volume. dockerd restarts the plugin; the
// killed process is gone for good (it never waits on its own mounts, so
// it cannot linger as a zombie holding them); volumes and their options
// are still there; what was fsync'ed before the kill is on the server;
// new containers mount the volume and write through it; the container
// that was running when the plugin died gets errors (never a hang, never
// writes to the host disk), and once it is removed the driver counts no
// mount and nothing is left mounted.
func TestPluginKilled(t *testing.T) {
	h := setup(t)
	id := strings.TrimSpace(h.must("plugin", "inspect", "-f", "{{.Id}}", plugin))
	d := filepath.Join(h.remote, "pluginkill")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	v := h.name("pluginkill")
	h.create(v, h.sshOpts(d)...)
	cid := strings.TrimSpace(h.must("run", "-d", "-v", v+":/data", image, "sh", "-c",
		"echo durable > /data/before.txt && sync && i=0; while true; do i=$((i+1)); echo $i >> /data/loop.txt 2>/dev/null || echo fail >> /errors; done"))
	defer h.run("rm", "-f", cid)
	h.waitServerFile(cid, filepath.Join(d, "loop.txt"))

	old := pluginPID(id)
	if old == 0 {
		t.Fatalf("no `/sftpfs serve` process of plugin %s found", id)
	}
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	// The killed process must be gone (reaped), not stuck exiting.
	for {
		if _, err := os.Stat("/proc/" + strconv.Itoa(old)); os.IsNotExist(err) {
			break
		}
		if time.Since(killed) > 10*time.Second {
			t.Fatalf("killed plugin process %d still exists 10s after SIGKILL (stuck on its own mount?)", old)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// dockerd restarts a plugin whose process exited while enabled.
	var restarted int
	for {
		if p := pluginPID(id); p != 0 && p != old {
			restarted = p
			break
		}
		if time.Since(killed) > 30*time.Second {
			t.Fatalf("dockerd did not restart the plugin within 30s of the kill; tail of %s shows why", dockerLog)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("plugin pid %d killed, dockerd restarted it as pid %d after %s", old, restarted, time.Since(killed).Round(time.Millisecond))

	// The volume and its options survived; its data is on the server.
	if out := h.must("volume", "ls", "-q", "--filter", "driver="+plugin); !strings.Contains(out, v) {
		t.Fatalf("volume %s missing after the plugin was killed: %q", v, out)
	}
	if got := readFile(t, filepath.Join(d, "before.txt")); got != "durable\n" {
		t.Fatalf("server before.txt after the kill = %q", got)
	}
	// A new container works through the restarted plugin.
	out, err := h.runIn("-v", v+":/data", image, "sh", "-c", "cat /data/before.txt && echo after > /data/after.txt && sync")
	if err != nil || out != "durable\n" {
		t.Fatalf("new container after the restart: %q, %v", out, err)
	}
	if got := readFile(t, filepath.Join(d, "after.txt")); got != "after\n" {
		t.Fatalf("server after.txt = %q", got)
	}
	// The container that was running: its view of the volume is the
	// killed plugin's mount. Whatever it gets, it must answer (no hang);
	// appends that reached the server are whole and in order (failed
	// appends leave gaps in the numbers, never torn lines).
	ctxOut, err := h.run("exec", cid, "/bin/busybox", "sh", "-c", "cat /data/before.txt; echo x >> /data/loop.txt; echo rc=$?; wc -l < /errors")
	t.Logf("the container running across the kill reads/writes: %q (err %v)", ctxOut, err)
	lines := strings.Split(strings.TrimSuffix(readFile(t, filepath.Join(d, "loop.txt")), "\n"), "\n")
	last := 0
	for i, l := range lines {
		if l == "x" {
			continue
		}
		n, err := strconv.Atoi(l)
		if err != nil || n <= last {
			t.Fatalf("loop.txt line %d = %q after %d: torn or out of order (of %d lines)", i+1, l, last, len(lines))
		}
		last = n
	}
	t.Logf("%d appends on the server, the last numbered %d", len(lines), last)
	// No silent loss: an append the orphaned container saw succeed is on
	// the server; otherwise it failed with ENOTCONN (the killed plugin's
	// FUSE connection is gone), not with a write to the host's disk.
	switch {
	case strings.Contains(ctxOut, "rc=0"):
		if !strings.Contains(readFile(t, filepath.Join(d, "loop.txt")), "\nx\n") {
			t.Fatalf("an append the orphaned container saw succeed is not on the server")
		}
	case !strings.Contains(ctxOut, "not connected"):
		t.Fatalf("the orphaned container's append failed with something other than ENOTCONN: %q", ctxOut)
	}
	h.must("rm", "-f", cid)
	h.requireIdle(v)
	// Nothing of the volume's data landed on the host: the writes of the
	// orphaned container went nowhere but the server.
	h.must("volume", "rm", v)
	if got := readFile(t, filepath.Join(d, "before.txt")); got != "durable\n" {
		t.Fatalf("volume rm touched remote data: before.txt = %q", got)
	}
}
