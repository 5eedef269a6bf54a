package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sftpfs/sftpfs/internal/sshdtest"
	"github.com/sftpfs/sftpfs/internal/testenv"
)

// buildBinary builds cmd/sftpfs into a temporary directory, so the test
// runs the code of this checkout rather than whatever bin/sftpfs is.
func buildBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	testenv.Require(t, "the go tool (to build cmd/sftpfs)", err == nil)
	out := filepath.Join(t.TempDir(), "sftpfs")
	cmd := exec.Command(goTool, "build", "-o", out, "../cmd/sftpfs")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building cmd/sftpfs: %v\n%s", err, b)
	}
	return out
}

// plugin is one `sftpfs serve` process and an HTTP client on its socket.
type plugin struct {
	cmd       *exec.Cmd
	mountRoot string
	socket    string
	client    *http.Client
	logs      *tailBuffer
}

func startPlugin(t *testing.T, bin, socket, mountRoot, stateDir, secrets string, logs *tailBuffer) *plugin {
	t.Helper()
	cmd := exec.Command(bin, "serve", "-socket", socket, "-mount-root", mountRoot, "-state-dir", stateDir,
		"-secrets-dir", secrets, "-log-level", "debug")
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting sftpfs serve: %v", err)
	}
	p := &plugin{cmd: cmd, mountRoot: mountRoot, socket: socket, logs: logs, client: &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}},
	}}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := p.call("/VolumeDriver.Capabilities", struct{}{}); err == nil {
			return p
		}
		if time.Now().After(deadline) {
			p.kill(t)
			t.Fatalf("sftpfs serve did not answer on %s within 15s; log:\n%s", socket, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// call posts req to the plugin API and returns the decoded response; a
// non-empty "Err" is returned as an error.
func (p *plugin) call(path string, req any) (map[string]any, error) {
	body, _ := json.Marshal(req)
	resp, err := p.client.Post("http://plugin"+path, "application/vnd.docker.plugins.v1.2+json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("%s: status %d, undecodable answer %q", path, resp.StatusCode, raw)
	}
	if e, _ := out["Err"].(string); e != "" {
		return out, errors.New(e)
	}
	return out, nil
}

// kill sends SIGKILL, as a crash or an OOM kill would, and returns a
// channel closed once the process is reaped.
//
// A FUSE server killed while one of its own threads waits for a request
// to its own mount cannot finish exiting: the kernel waits
// uninterruptibly for an answer only the dying process could give, and
// the connection stays open, so everything using the mount hangs. The
// plugin never makes such a request (no mount-time probe:
// fusefs.Options.ServeOnly; liveness checks without system calls on its
// mounts), so a killed plugin must be reaped within 5s; that it is not is
// a test failure. The restarted plugin's startup cleanup (fusectl abort)
// still has to release such an instance (see waitReaped), so the rounds
// go on and show that too.
func (p *plugin) kill(t *testing.T) <-chan struct{} {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Errorf("killed plugin (pid %d) not reaped after 5s: one of its threads waits on its own mount; the next start must release it", p.cmd.Process.Pid)
	}
	return done
}

// waitReaped fails the test unless a killed plugin is reaped within 30s
// (called after the next plugin has started and cleaned up).
func waitReaped(t *testing.T, pid int, reaped <-chan struct{}) {
	t.Helper()
	select {
	case <-reaped:
	case <-time.After(30 * time.Second):
		t.Fatalf("killed plugin (pid %d) still not reaped 30s after the restarted plugin's startup cleanup", pid)
	}
}

func (p *plugin) list(t *testing.T) []string {
	t.Helper()
	out, err := p.call("/VolumeDriver.List", struct{}{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var names []string
	vols, _ := out["Volumes"].([]any)
	for _, v := range vols {
		m, _ := v.(map[string]any)
		n, _ := m["Name"].(string)
		names = append(names, n)
	}
	return names
}

// fuseMountsBelow lists FUSE mounts under root from /proc/self/mountinfo.
func fuseMountsBelow(root string) []string { return mountsOf(root, true) }

// mountsBelow lists all mounts under root, in mount order.
func mountsBelow(root string) []string { return mountsOf(root, false) }

func mountsOf(root string, fuseOnly bool) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		f := strings.Fields(pre)
		if !ok || len(f) < 5 || fuseOnly && !strings.HasPrefix(post, "fuse") {
			continue
		}
		if strings.HasPrefix(f[4], root+"/") {
			out = append(out, f[4])
		}
	}
	return out
}

// TestPluginCrash kills `sftpfs serve` with SIGKILL at random moments
// while Create, Mount, Unmount, Remove and fsync'ed writes run
// concurrently, then restarts it: every acknowledged volume must still be
// listed exactly once, no acknowledged removal may come back, dead mounts
// must be gone, new mounts must work, and every fsync'ed file must be on
// the server.
func TestPluginCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("plugin crash test skipped in -short mode")
	}
	testenv.RequireRoot(t)
	testenv.RequireFUSE(t)
	rounds := envIntOr(t, "SOAK_CRASH_ROUNDS", 5)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 7))
	t.Logf("plugin crash test: %d rounds, seed %d", rounds, seed)

	bin := buildBinary(t)
	srv := sshdtest.Start(t, sshdtest.Options{ExtraConfig: []string{"LogLevel ERROR"}})
	secrets, base, serverRoot := t.TempDir(), t.TempDir(), t.TempDir()
	key, err := os.ReadFile(srv.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secrets, "id"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	mountRoot, stateDir := filepath.Join(base, "mnt"), filepath.Join(base, "state")
	socket := filepath.Join(base, "sftpfs.sock")
	logs := &tailBuffer{max: 400}
	var cur *plugin
	t.Cleanup(func() {
		if cur != nil {
			// SIGTERM: the plugin unmounts what it serves.
			_ = cur.cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = cur.cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Errorf("plugin (pid %d) did not stop within 30s of SIGTERM", cur.cmd.Process.Pid)
				_ = cur.cmd.Process.Kill()
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					// A plugin must never wait on its own mount, so
					// this is a failure; abort its connections so the
					// machine and this process are released.
					t.Errorf("plugin (pid %d) not reaped 10s after SIGKILL", cur.cmd.Process.Pid)
					abortFUSEBelow(t, mountRoot)
					<-done
				}
			}
		}
		// Whatever is left (guards, mounts of killed runs) goes, deepest
		// first.
		for i := 0; i < 8; i++ {
			left := mountsBelow(mountRoot)
			if len(left) == 0 {
				break
			}
			for j := len(left) - 1; j >= 0; j-- {
				_ = unix.Unmount(left[j], unix.MNT_DETACH)
			}
		}
		if left := mountsBelow(mountRoot); len(left) > 0 {
			t.Errorf("mounts left behind: %v", left)
		}
		if t.Failed() {
			t.Logf("plugin log (last lines):\n%s", logs)
		}
	})
	opts := func(name string) map[string]string {
		return map[string]string{
			"host": "127.0.0.1", "port": fmt.Sprint(srv.Port), "user": srv.User, "identity": "id",
			"hostkey": srv.HostKeyFingerprint, "path": filepath.Join(serverRoot, name), "create_path": "true",
			"op_timeout": "5s",
		}
	}

	var mu sync.Mutex
	created := map[string]bool{}  // Create acknowledged, no Remove acknowledged since
	removed := map[string]bool{}  // Remove acknowledged, no Create acknowledged since
	synced := map[string][]byte{} // server path -> content written and fsync'ed
	next := 0
	stats := map[string]int{}

	// settle waits, once the next plugin has started, for what the kill
	// left: the killed process reaped and its clients released. A
	// plugin killed while it waited on its own mount (go-fuse's mount
	// handshake opens a file in the new mount) is released only by the
	// next start's cleanup, and so are clients blocked on its mounts.
	var settle func()
	for round := 0; round < rounds; round++ {
		cur = startPlugin(t, bin, socket, mountRoot, stateDir, secrets, logs)
		if settle != nil {
			settle()
			settle = nil
		}
		names := cur.list(t)
		seen := map[string]int{}
		for _, n := range names {
			seen[n]++
		}
		for n, c := range seen {
			if c > 1 {
				t.Errorf("round %d: volume %s listed %d times", round, n, c)
			}
			if removed[n] {
				t.Errorf("round %d: volume %s came back after an acknowledged Remove", round, n)
			}
		}
		for n := range created {
			if seen[n] == 0 {
				t.Errorf("round %d: acknowledged volume %s lost by the crash", round, n)
			}
		}
		// Leftover mounts of the killed process must be gone or
		// replaced by live ones: each must answer.
		for _, mp := range fuseMountsBelow(mountRoot) {
			res := make(chan error, 1)
			go func() { var st unix.Statfs_t; res <- unix.Statfs(mp, &st) }()
			select {
			case err := <-res:
				if err != nil {
					t.Errorf("round %d: %s is a dead mount after restart: %v", round, mp, err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("round %d: %s hangs after restart", round, mp)
			}
		}

		// Concurrent operations, killed part way.
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func(g int, p *plugin) {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					mu.Lock()
					next++
					name := fmt.Sprintf("v%d", next)
					mu.Unlock()
					if _, err := p.call("/VolumeDriver.Create", map[string]any{"Name": name, "Opts": opts(name)}); err != nil {
						mu.Lock()
						stats["create failed"]++
						mu.Unlock()
						continue
					}
					mu.Lock()
					created[name], removed[name] = true, false
					stats["created"]++
					mu.Unlock()
					id := fmt.Sprintf("c%d-%d", g, i)
					out, err := p.call("/VolumeDriver.Mount", map[string]any{"Name": name, "ID": id})
					if err != nil {
						continue
					}
					mp, _ := out["Mountpoint"].(string)
					data := make([]byte, 64<<10+rand.IntN(1<<20))
					for j := range data {
						data[j] = byte(i + j*7)
					}
					if f, err := os.Create(filepath.Join(mp, "data")); err == nil {
						_, werr := f.Write(data)
						if werr == nil {
							werr = f.Sync()
						}
						cerr := f.Close()
						if werr == nil && cerr == nil {
							mu.Lock()
							synced[filepath.Join(serverRoot, name, "data")] = data
							stats["files fsynced"]++
							mu.Unlock()
						}
					}
					if _, err := p.call("/VolumeDriver.Unmount", map[string]any{"Name": name, "ID": id}); err != nil {
						continue
					}
					if i%2 == 0 {
						_, err := p.call("/VolumeDriver.Remove", map[string]any{"Name": name})
						mu.Lock()
						// A Remove whose answer the kill cut off may or may not
						// have been carried out: the volume is no longer
						// acknowledged either way (neither "lost" nor "came back").
						delete(created, name)
						if err == nil {
							removed[name] = true
							stats["removed"]++
						}
						mu.Unlock()
					}
				}
			}(g, cur)
		}
		time.Sleep(time.Duration(300+rng.IntN(2000)) * time.Millisecond)
		pid, reaped := cur.cmd.Process.Pid, cur.kill(t)
		mu.Lock()
		stats["kills"]++
		mu.Unlock()
		close(stop)
		clients := make(chan struct{})
		go func() { wg.Wait(); close(clients) }()
		killedRound := round
		settle = func() {
			select {
			case <-clients:
			case <-time.After(90 * time.Second):
				// Failing: free the machine so the test process
				// can exit, then report.
				abortFUSEBelow(t, mountRoot)
				t.Fatalf("round %d: clients still blocked 90s after the plugin was killed and restarted", killedRound)
			}
			waitReaped(t, pid, reaped)
		}
		cur = nil
	}

	// Fsync'ed data survived every crash.
	for p, want := range synced {
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("fsync'ed file %s: got %d bytes (err %v), want %d", p, len(got), err, len(want))
		}
	}
	// A wedged instance: the plugin is frozen (SIGSTOP) with a volume
	// mounted and a process blocked on that mount, which is what the
	// kernel sees of a SIGKILLed plugin stuck on its own mount. The
	// restarted plugin must release the process (its startup cleanup
	// aborts stale FUSE connections), with no help from the test.
	statBin := testenv.LookPath(t, "stat")
	frozen := startPlugin(t, bin, socket, mountRoot, stateDir, secrets, logs)
	if settle != nil {
		settle()
	}
	t.Cleanup(func() { _ = frozen.cmd.Process.Kill() })
	if _, err := frozen.call("/VolumeDriver.Create", map[string]any{"Name": "frozen", "Opts": opts("frozen")}); err != nil {
		t.Fatalf("Create on the instance to freeze: %v", err)
	}
	out, err := frozen.call("/VolumeDriver.Mount", map[string]any{"Name": "frozen", "ID": "frozen"})
	if err != nil {
		t.Fatalf("Mount on the instance to freeze: %v", err)
	}
	created["frozen"] = true
	frozenMp, _ := out["Mountpoint"].(string)
	if err := frozen.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var blockedOut strings.Builder
	blocked := exec.Command(statBin, filepath.Join(frozenMp, "lookup-never-answered"))
	blocked.Stdout, blocked.Stderr = &blockedOut, &blockedOut
	if err := blocked.Start(); err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	var blockedErr error
	go func() { blockedErr = blocked.Wait(); close(released) }()
	t.Cleanup(func() { _ = blocked.Process.Kill(); <-released })
	select {
	case <-released:
		t.Fatalf("stat on the frozen plugin's mount returned at once (%v: %s)", blockedErr, blockedOut.String())
	case <-time.After(time.Second):
	}

	// A final start: stale mounts released, state intact, a new mount
	// works end to end. The frozen instance still accepts connections
	// on the socket file it created (it never answers them); the new
	// instance replaces the file, but a probe made before that would
	// wait on the frozen one, so the file goes first.
	if err := os.Remove(socket); err != nil {
		t.Fatal(err)
	}
	cur = startPlugin(t, bin, socket, mountRoot, stateDir, secrets, logs)
	select {
	case <-released:
		o := blockedOut.String()
		if blockedErr == nil || !strings.Contains(o, "connection abort") && !strings.Contains(o, "not connected") {
			t.Errorf("process blocked on the frozen plugin's mount released with %v, %q; want ECONNABORTED or ENOTCONN", blockedErr, o)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("process blocked on the frozen plugin's mount %s still blocked 15s after the restarted plugin came up", frozenMp)
	}
	frozenPid := frozen.cmd.Process.Pid
	waitReaped(t, frozenPid, frozen.kill(t))
	stats["blocked processes released by the restart"]++
	names := cur.list(t)
	for n := range created {
		if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+n+" ") {
			t.Errorf("final: acknowledged volume %s missing", n)
		}
	}
	if _, err := cur.call("/VolumeDriver.Create", map[string]any{"Name": "final", "Opts": opts("final")}); err != nil {
		t.Fatalf("final Create: %v", err)
	}
	out, err = cur.call("/VolumeDriver.Mount", map[string]any{"Name": "final", "ID": "final"})
	if err != nil {
		t.Fatalf("final Mount: %v", err)
	}
	mp, _ := out["Mountpoint"].(string)
	if err := os.WriteFile(filepath.Join(mp, "ok"), []byte("after crashes"), 0o644); err != nil {
		t.Fatalf("write through the final mount: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(serverRoot, "final", "ok")); err != nil || string(got) != "after crashes" {
		t.Errorf("final file on the server: %q, %v", got, err)
	}
	if _, err := cur.call("/VolumeDriver.Unmount", map[string]any{"Name": "final", "ID": "final"}); err != nil {
		t.Errorf("final Unmount: %v", err)
	}
	if left := fuseMountsBelow(mountRoot); len(left) > 0 {
		t.Logf("mounts still live (volumes remounted for callers the crashes left behind): %v", left)
	}
	t.Logf("plugin crash report (seed %d): %v, fsync'ed files verified on the server: %d, volumes listed at the end: %d",
		seed, stats, len(synced), len(names))
}

// abortFUSEBelow aborts every FUSE connection mounted below root. Only
// used when the test already fails, so that threads stuck on a dead
// plugin's mount do not keep the test process from exiting.
func abortFUSEBelow(t *testing.T, root string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	for _, l := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		f := strings.Fields(pre)
		if !ok || len(f) < 5 || !strings.HasPrefix(post, "fuse") || !strings.HasPrefix(f[4], root+"/") {
			continue
		}
		_, minor, _ := strings.Cut(f[2], ":")
		err := os.WriteFile("/sys/fs/fuse/connections/"+minor+"/abort", []byte("1"), 0)
		t.Logf("test failing: aborted FUSE connection %s of %s (err=%v)", minor, f[4], err)
	}
}

func unixDetach(mp string) error { return unix.Unmount(mp, unix.MNT_DETACH) }
