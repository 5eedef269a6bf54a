package soak

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sftpfs/sftpfs/internal/faultproxy"
	"github.com/sftpfs/sftpfs/internal/sshdtest"
	"github.com/sftpfs/sftpfs/internal/testenv"
	"github.com/sftpfs/sftpfs/mounter"
	"github.com/sftpfs/sftpfs/options"
)

// Environment knobs. `make soak` sets a short budget for CI; longer runs
// by hand, e.g. SOAK_DURATION=10m SOAK_VOLUMES=4 SOAK_WORKERS=6.
const (
	envWorker   = "SFTPFS_SOAK_WORKER" // set in worker processes: JSON-free "k=v;..." config
	envDuration = "SOAK_DURATION"      // fault phase length (default 20s)
	envVolumes  = "SOAK_VOLUMES"       // number of mounts (default 3)
	envWorkers  = "SOAK_WORKERS"       // worker processes per mount (default 3)
	envOpTO     = "SOAK_OP_TIMEOUT"    // op_timeout of the mounts (default 3s)
	envSeed     = "SOAK_SEED"          // random seed (default: time based, logged)
	envMaxFile  = "SOAK_MAX_FILE"      // largest file in bytes (default 1 MiB)
)

// TestMain turns the test binary into a worker when envWorker is set, so
// the I/O runs in processes other than the one serving the mounts.
func TestMain(m *testing.M) {
	if spec := os.Getenv(envWorker); spec != "" {
		cfg, err := parseWorkerSpec(spec)
		if err == nil {
			err = RunWorker(cfg)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func workerSpec(c WorkerConfig) string {
	return fmt.Sprintf("dir=%s;journal=%s;until=%d;seed=%d;hang=%d;max=%d",
		c.Dir, c.Journal, c.Until.UnixNano(), c.Seed, c.HangLimit, c.MaxFileSize)
}

func parseWorkerSpec(s string) (WorkerConfig, error) {
	var c WorkerConfig
	for _, kv := range strings.Split(s, ";") {
		k, v, _ := strings.Cut(kv, "=")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "dir":
			c.Dir = v
		case "journal":
			c.Journal = v
		case "until":
			c.Until = time.Unix(0, n)
		case "seed":
			u, _ := strconv.ParseUint(v, 10, 64)
			c.Seed = u
		case "hang":
			c.HangLimit = time.Duration(n)
		case "max":
			c.MaxFileSize = int(n)
		default:
			return c, fmt.Errorf("soak worker: unknown spec field %q in %q", k, s)
		}
	}
	return c, nil
}

func envDurationOr(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s=%q: want a Go duration like 90s or 10m: %v", name, v, err)
	}
	return d
}

func envIntOr(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// volume is one mount behind its own fault proxy.
type volume struct {
	name      string
	serverDir string // the remote directory, read directly for Verify
	mp        string
	px        *faultproxy.Proxy
	m         *mounter.Mounted
}

func isMounted(mp string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fl := strings.Fields(sc.Text()); len(fl) > 4 && fl[4] == mp {
			return true
		}
	}
	return false
}

// faultStats counts the faults injected.
type faultStats struct {
	drops, stalls, refusals, restarts int
}

func (f faultStats) total() int { return f.drops + f.stalls + f.refusals + f.restarts }

func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test skipped in -short mode (run `make soak`)")
	}
	testenv.RequireRoot(t)
	testenv.RequireFUSE(t)
	duration := envDurationOr(t, envDuration, 20*time.Second)
	nVol := envIntOr(t, envVolumes, 3)
	nWork := envIntOr(t, envWorkers, 3)
	opTimeout := envDurationOr(t, envOpTO, 3*time.Second)
	maxFile := envIntOr(t, envMaxFile, 1<<20)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(envSeed); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: want an unsigned integer", envSeed, v)
		}
		seed = s
	}
	// One FUSE system call may need a few backend calls (lookup, open,
	// chmod), each bounded by about 2*op_timeout (waiting for a
	// reconnect, then running); anything slower is a hang.
	hangLimit := 4*opTimeout + 5*time.Second
	t.Logf("soak: duration=%v volumes=%d workers/volume=%d op_timeout=%v hang limit=%v max file=%d seed=%d",
		duration, nVol, nWork, opTimeout, hangLimit, maxFile, seed)
	rng := rand.New(rand.NewPCG(seed, seed+1))

	srv := sshdtest.Start(t, sshdtest.Options{ExtraConfig: []string{"LogLevel ERROR"}})
	serverRoot := t.TempDir()
	// The mounts' warnings (reconnects, timeouts) are expected by the
	// hundred; keep them for a failure report only.
	logs := &tailBuffer{max: 300}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last mount log lines:\n%s", logs)
		}
	})

	vols := make([]*volume, nVol)
	for i := range vols {
		v := &volume{name: fmt.Sprintf("vol%d", i), mp: t.TempDir()}
		v.serverDir = filepath.Join(serverRoot, v.name)
		if err := os.Mkdir(v.serverDir, 0o755); err != nil {
			t.Fatal(err)
		}
		px, err := faultproxy.New(srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { px.Close() })
		v.px = px
		cfg, err := options.Parse(map[string]string{
			"host": "127.0.0.1", "port": strconv.Itoa(px.Port()), "user": srv.User,
			"identity": srv.KeyFile, "hostkey": srv.HostKeyFingerprint, "path": v.serverDir,
			"op_timeout": opTimeout.String(), "connect_timeout": opTimeout.String(),
			"keepalive": "1s", "keepalive_count": "2",
		}, options.Env{Scope: options.ScopeCLI})
		if err != nil {
			t.Fatalf("options: %v", err)
		}
		// As the driver does: every line of a volume's mount names it.
		m, err := mounter.Mount(context.Background(), cfg, v.mp, log.With("volume", v.name))
		if err != nil {
			t.Fatalf("mount %s: %v", v.name, err)
		}
		v.m = m
		t.Cleanup(func() {
			if err := m.Unmount(); err != nil {
				t.Errorf("unmount %s: %v", v.mp, err)
			}
			if isMounted(v.mp) {
				t.Errorf("%s still mounted after cleanup; detaching", v.mp)
				_ = unix.Unmount(v.mp, unix.MNT_DETACH)
			}
		})
		vols[i] = v
	}

	// Busybox containers writing through the sftpfs Docker plugin, with
	// volumes behind the same fault proxies (nil without Docker).
	ds := startDockerSoak(t, srv, vols, opTimeout)

	// Workers.
	journals := t.TempDir()
	until := time.Now().Add(duration)
	type job struct {
		cmd             *exec.Cmd
		journal, srvDir string
		done            chan error
	}
	var jobs []*job
	for _, v := range vols {
		for w := 0; w < nWork; w++ {
			wc := WorkerConfig{
				Dir: filepath.Join(v.mp, fmt.Sprintf("w%d", w)), Journal: filepath.Join(journals, fmt.Sprintf("%s-w%d", v.name, w)),
				Until: until, Seed: rng.Uint64(), HangLimit: hangLimit, MaxFileSize: maxFile,
			}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), envWorker+"="+workerSpec(wc))
			var stderr strings.Builder
			cmd.Stderr = &stderr
			cmd.Stdout = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatalf("starting worker: %v", err)
			}
			j := &job{cmd: cmd, journal: wc.Journal, srvDir: filepath.Join(v.serverDir, fmt.Sprintf("w%d", w)), done: make(chan error, 1)}
			go func() {
				err := cmd.Wait()
				if err != nil {
					err = fmt.Errorf("%w: %s", err, stderr.String())
				}
				j.done <- err
			}()
			jobs = append(jobs, j)
		}
	}

	var churned <-chan struct{}
	if ds != nil {
		ds.start(vols, journals, until, hangLimit, maxFile)
		churned = ds.churn(vols, journals, until, hangLimit, maxFile, rng.Uint64())
	}

	// Faults, from this goroutine (sshd restarts may fail the test).
	var fs faultStats
	var stalled sync.WaitGroup
	for time.Now().Before(until) {
		time.Sleep(time.Duration(500+rng.IntN(2500)) * time.Millisecond)
		if !time.Now().Before(until) {
			break
		}
		v := vols[rng.IntN(len(vols))]
		switch p := rng.IntN(100); {
		case p < 40:
			v.px.DropAll()
			fs.drops++
		case p < 70:
			// Short stalls are absorbed; long ones trip op_timeout or
			// keepalives and force a reconnect.
			d := time.Duration(rng.Int64N(int64(2 * opTimeout)))
			v.px.SetStall(true)
			fs.stalls++
			stalled.Add(1)
			time.AfterFunc(d, func() { v.px.SetStall(false); stalled.Done() })
		case p < 85:
			// The server is unreachable for a while: drop and refuse.
			v.px.SetRefuse(true)
			v.px.DropAll()
			fs.refusals++
			stalled.Add(1)
			time.AfterFunc(time.Duration(rng.Int64N(int64(2*opTimeout))), func() { v.px.SetRefuse(false); stalled.Done() })
		default:
			srv.Restart()
			fs.restarts++
		}
	}
	stalled.Wait()
	for _, v := range vols {
		v.px.SetStall(false)
		v.px.SetRefuse(false)
	}
	t.Logf("faults injected: %d (%d drops, %d stalls, %d refused periods, %d sshd restarts)",
		fs.total(), fs.drops, fs.stalls, fs.refusals, fs.restarts)
	if n, bad := logs.untagged(); n > 0 {
		t.Errorf("%d mount log lines (warn and above) do not name their volume, e.g.: %s", n, bad)
	}
	t.Logf("mount log lines (warn and above) during the faults: %d", logs.count())

	// Workers stop starting operations at until; one in flight may take
	// up to the hang limit.
	for _, j := range jobs {
		select {
		case err := <-j.done:
			if err != nil {
				t.Errorf("worker %s failed: %v", j.journal, err)
			}
		case <-time.After(time.Until(until) + hangLimit + 10*time.Second):
			_ = j.cmd.Process.Kill()
			t.Errorf("worker %s still running %v after the end: a hang; killed it", j.journal, hangLimit+10*time.Second)
			<-j.done
		}
	}

	if ds != nil {
		// A container's last iteration (cp, read, rm) may start just
		// before until, each step bounded by the hang limit.
		ds.wait(until.Add(3*hangLimit + 20*time.Second))
		<-churned // bounded: each run has its own hang limit
	}

	// Each mount must recover now that the network is good.
	for _, v := range vols {
		if err := recovered(v.mp, 30*time.Second); err != nil {
			t.Errorf("%s did not recover after the faults stopped: %v (status %+v)", v.name, err, v.m.Status())
		}
	}
	if ds != nil {
		ds.recovered(30 * time.Second)
	}

	var r Report
	for _, j := range jobs {
		if err := Verify(j.journal, j.srvDir, &r); err != nil {
			t.Errorf("verify %s: %v", j.journal, err)
		}
	}
	if ds != nil {
		rc := ds.verify()
		t.Logf("containers' part of the report: %d long-running and %d short-lived containers (slowest run %v) on %d plugin volumes\n%s",
			len(ds.conts), ds.churnRuns, ds.churnSlowest.Round(100*time.Millisecond), len(ds.volumes), rc)
		if rc.FilesAcked == 0 && duration >= 5*time.Second {
			t.Errorf("no file written by a container was acknowledged: the containers could not write through the plugin volumes")
		}
		r.Add(rc)
	}
	reconnects := 0
	for _, v := range vols {
		reconnects += v.m.Status().Reconnects
	}
	t.Logf("soak report (seed %d):\nvolumes: %d, worker processes: %d, fault phase: %v\nfaults injected: %d (%d drops, %d stalls, %d refused periods, %d sshd restarts), reconnects: %d\n%s",
		seed, nVol, len(jobs), duration, fs.total(), fs.drops, fs.stalls, fs.refusals, fs.restarts, reconnects, r)
	if r.Failed() {
		t.Errorf("soak found broken promises (see report; rerun with %s=%d)", envSeed, seed)
	}
	if r.FilesAcked == 0 {
		t.Errorf("no file was acknowledged at all: the workers could not write through the mounts")
	}
	if fs.total() == 0 && duration >= 5*time.Second {
		t.Errorf("no fault was injected")
	}
}

// recovered checks within limit that mp takes a write, an fsync and a
// read back again. The probe runs in a goroutine so that a hung mount
// cannot hang the test; it only does plain I/O, never exec or mmap.
func recovered(mp string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		res := make(chan error, 1)
		go func() { res <- probe(mp) }()
		select {
		case err := <-res:
			if err == nil {
				return nil
			}
			last = err
		case <-time.After(time.Until(deadline)):
			return fmt.Errorf("probe still blocked after %v (last error %v)", limit, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return last
}

func probe(mp string) error {
	p := filepath.Join(mp, "probe")
	want := []byte("probe " + time.Now().String())
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(want)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	got, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if string(got) != string(want) {
		return fmt.Errorf("probe read back %q, want %q", got, want)
	}
	return nil
}

// tailBuffer keeps the last max lines written to it.
type tailBuffer struct {
	mu    sync.Mutex
	max   int
	lines []string
	// total counts every line; noVol those without volume=, and
	// firstNoVol is the first of them.
	total, noVol int
	firstNoVol   string
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ls := strings.Split(strings.TrimRight(string(p), "\n"), "\n")
	for _, l := range ls {
		b.total++
		if !strings.Contains(l, " volume=") {
			if b.noVol == 0 {
				b.firstNoVol = l
			}
			b.noVol++
		}
	}
	b.lines = append(b.lines, ls...)
	if len(b.lines) > b.max {
		b.lines = append([]string(nil), b.lines[len(b.lines)-b.max:]...)
	}
	return len(p), nil
}

// untagged returns the number of lines without volume= and the first.
func (b *tailBuffer) untagged() (int, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.noVol, b.firstNoVol
}

func (b *tailBuffer) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}
