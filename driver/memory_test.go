package driver

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/volume"

	"github.com/sftpfs/sftpfs/internal/testenv"
)

// heldMiB is the heap memory the process holds from the kernel: the
// heap's spans minus what the runtime already returned.
func heldMiB() (held, inuse float64) {
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	return float64(s.HeapSys-s.HeapReleased) / (1 << 20), float64(s.HeapInuse) / (1 << 20)
}

// churnDriver creates n local volumes, mounts them all concurrently,
// writes and reads a file in each (so the FUSE request buffers are
// used), unmounts them all and removes them.
func churnDriver(t *testing.T, d *Driver, dir string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 10)
	errs := make(chan error, 2*n)
	each := func(f func(i int) error) {
		for i := range n {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				if err := f(i); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
	}
	each(func(i int) error {
		data := filepath.Join(dir, fmt.Sprintf("data%d", i))
		if err := os.MkdirAll(data, 0o755); err != nil {
			return err
		}
		name := fmt.Sprintf("churn%d", i)
		if err := d.Create(&volume.CreateRequest{Name: name, Options: map[string]string{"local": data}}); err != nil {
			return err
		}
		r, err := d.Mount(&volume.MountRequest{Name: name, ID: "c"})
		if err != nil {
			return err
		}
		p := filepath.Join(r.Mountpoint, "f")
		if err := os.WriteFile(p, make([]byte, 256<<10), 0o644); err != nil {
			return err
		}
		_, err = os.ReadFile(p)
		return err
	})
	each(func(i int) error {
		name := fmt.Sprintf("churn%d", i)
		if err := d.Unmount(&volume.UnmountRequest{Name: name, ID: "c"}); err != nil {
			return err
		}
		return d.Remove(&volume.RemoveRequest{Name: name})
	})
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestMemoryReleasedAfterMountChurn: after many volumes were mounted and
// unmounted, the plugin gives the freed per-mount buffers back to the
// kernel within ReleaseMemoryDelay instead of holding hundreds of MiB
// until some later GC and the runtime's slow scavenger get to it, and no
// goroutine of any mount is left behind. The same churn with the release
// off is logged for comparison.
func TestMemoryReleasedAfterMountChurn(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireFUSE(t)
	const n = 40
	const delay = 300 * time.Millisecond
	for _, release := range []bool{false, true} {
		t.Run(fmt.Sprintf("release=%v", release), func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "volumes")
			cleanupMounts(t, root)
			cfg := Config{MountRoot: root, Mounter: selfAccessMounter(filepath.Join(dir, "secrets"), nil), Guard: true, ReleaseMemoryDelay: delay}
			if !release {
				cfg.ReleaseMemoryDelay = -1
			}
			d, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(d.Shutdown)
			churnDriver(t, d, dir, 2) // warm-up: process-wide goroutines and caches
			time.Sleep(2 * delay)
			debug.FreeOSMemory()
			baseG := runtime.NumGoroutine()
			baseHeld, _ := heldMiB()

			churnDriver(t, d, dir, n)
			noMountsBelow(t, root)
			peakHeld, peakInuse := heldMiB()
			time.Sleep(delay + time.Second)
			held, inuse := heldMiB()
			t.Logf("%d volumes mounted and unmounted: heap held from the kernel %.1f MiB before, %.1f MiB (%.1f in use) right after, %.1f MiB (%.1f in use) %v later",
				n, baseHeld, peakHeld, peakInuse, held, inuse, delay+time.Second)
			deadline := time.Now().Add(10 * time.Second)
			for runtime.NumGoroutine() > baseG && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if g := runtime.NumGoroutine(); g > baseG {
				buf := make([]byte, 1<<20)
				t.Errorf("%d goroutines after the churn, %d before: unmounted volumes left goroutines\n%s", g, baseG, buf[:runtime.Stack(buf, true)])
			}
			// Live data after the churn is a few MiB; one retained
			// mount buffer set per volume would be far above this.
			if release && held > baseHeld+24 {
				t.Errorf("heap held from the kernel is %.1f MiB %v after the last unmount (%.1f MiB before the churn); want the freed mount buffers returned",
					held, delay+time.Second, baseHeld)
			}
		})
	}
}
