package mounter

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sftpfs/sftpfs/internal/sshdtest"
	"github.com/sftpfs/sftpfs/internal/testenv"
	"github.com/sftpfs/sftpfs/options"
)

// churn mounts n file systems made by cfg, `parallel` at a time, touches
// each (a write and a read, so the FUSE read loops fill their buffers),
// unmounts them all, and returns once every mount is gone.
func churn(t *testing.T, n, parallel int, cfg func(i int) *options.Config) {
	t.Helper()
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	ms := make([]*Mounted, n)
	mps := make([]string, n)
	for i := range n {
		mps[i] = t.TempDir()
	}
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			m, err := Mount(context.Background(), cfg(i), mps[i], nil)
			if err != nil {
				errs <- err
				return
			}
			ms[i] = m
			p := filepath.Join(mps[i], "f")
			if err := os.WriteFile(p, make([]byte, 256<<10), 0o644); err != nil {
				errs <- err
			} else if _, err := os.ReadFile(p); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	for i := range n {
		if ms[i] == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := ms[i].Unmount(); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, mp := range mps {
		if mounted(t, mp) {
			t.Errorf("%s still mounted after Unmount", mp)
		}
	}
}

// settledGoroutines waits for the goroutine count to fall to at most
// want (unmounts end go-fuse's loops and backend goroutines
// asynchronously) and returns the last count seen.
func settledGoroutines(want int) int {
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		n := runtime.NumGoroutine()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func memLine(what string) string {
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	const mib = 1 << 20
	return fmt.Sprintf("%s: HeapAlloc %.1f MiB, HeapInuse %.1f MiB, HeapIdle %.1f MiB, HeapReleased %.1f MiB, Sys %.1f MiB, RSS %d KiB",
		what, float64(s.HeapAlloc)/mib, float64(s.HeapInuse)/mib, float64(s.HeapIdle)/mib, float64(s.HeapReleased)/mib, float64(s.Sys)/mib, selfRSSKiB())
}

func selfRSSKiB() int {
	b, _ := os.ReadFile("/proc/self/status")
	var n int
	for _, l := range strings.Split(string(b), "\n") {
		if _, err := fmt.Sscanf(l, "VmRSS: %d kB", &n); err == nil {
			return n
		}
	}
	return 0
}

// checkChurn runs churn and requires that neither goroutines nor live
// heap stay behind: every mount's read loops, workers and (for SFTP)
// connection goroutines must end with its Unmount.
func checkChurn(t *testing.T, n, parallel int, cfg func(i int) *options.Config) {
	// A warm-up round, so lazily started process-wide goroutines and
	// caches are part of the baseline.
	churn(t, 2, 2, cfg)
	base := settledGoroutines(0)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	t.Log(memLine("before churn"))

	churn(t, n, parallel, cfg)
	t.Log(memLine("after churn, before GC"))
	got := settledGoroutines(base)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	t.Log(memLine("after churn and GC"))
	if w, _ := time.ParseDuration(os.Getenv("SFTPFS_CHURN_IDLE")); w > 0 {
		// Optional: how much the runtime's background scavenger
		// returns on its own while the process is idle.
		for waited := time.Duration(0); waited < w; waited += 10 * time.Second {
			time.Sleep(10 * time.Second)
			t.Log(memLine(fmt.Sprintf("idle %v after churn", waited+10*time.Second)))
		}
	}
	debug.FreeOSMemory()
	t.Log(memLine("after debug.FreeOSMemory"))
	if p := os.Getenv("SFTPFS_HEAP_PROFILE"); p != "" {
		f, err := os.Create(p)
		if err == nil {
			_ = pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	if got > base {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("%d goroutines after %d mount/unmount cycles, %d before: a mount leaves goroutines behind\n%s", got, n, base, buf)
	}
	// Each mount holds MiBs (go-fuse's request buffers are MaxWrite
	// sized); a leak of even one per mount would exceed this.
	const slack = 8 << 20
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > slack {
		t.Errorf("live heap grew by %d KiB over %d mount/unmount cycles: mounts are retained after Unmount", grown>>10, n)
	}
}

// TestChurnLocalNoLeak mounts and unmounts many local-backend file
// systems concurrently and checks that goroutines and heap return to
// their baseline.
func TestChurnLocalNoLeak(t *testing.T) {
	testenv.RequireFUSE(t)
	n := 60
	if testing.Short() {
		n = 12
	}
	srcs := make([]string, n)
	for i := range srcs {
		srcs[i] = t.TempDir()
	}
	checkChurn(t, n, 20, func(i int) *options.Config {
		cfg, err := options.Parse(map[string]string{"local": srcs[i%n]}, options.Env{Scope: options.ScopeCLI})
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	})
}

// TestChurnSFTPNoLeak does the same over real OpenSSH, where each mount
// also owns an SSH connection, its keepalive loop and SFTP workers.
func TestChurnSFTPNoLeak(t *testing.T) {
	testenv.RequireFUSE(t)
	srv := sshdtest.Start(t, sshdtest.Options{})
	n := 40
	if testing.Short() {
		n = 8
	}
	remotes := make([]string, n)
	for i := range remotes {
		remotes[i] = t.TempDir()
	}
	secrets := filepath.Dir(srv.KeyFile)
	checkChurn(t, n, 10, func(i int) *options.Config {
		cfg, err := options.Parse(map[string]string{
			"host": srv.Host, "port": strconv.Itoa(srv.Port), "user": srv.User, "path": remotes[i%n],
			"identity": filepath.Base(srv.KeyFile), "hostkey": srv.HostKeyFingerprint,
		}, options.Env{Scope: options.ScopeVolume, SecretsDir: secrets})
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	})
}
