package driver

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/volume"
)

func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	d := e.driver(t)
	c := serve(t, d)

	var caps volume.CapabilitiesResponse
	c.mustOK("Capabilities", struct{}{}, &caps)
	if caps.Capabilities.Scope != "local" {
		t.Fatalf("scope = %q, want local", caps.Capabilities.Scope)
	}

	c.mustOK("Create", volume.CreateRequest{Name: "v1", Options: map[string]string{"host": "srv", "path": "data", "password": "hunter2-secret"}}, nil)
	v := c.get("v1")
	if v.Mountpoint != "" {
		t.Errorf("unmounted volume reports mountpoint %q", v.Mountpoint)
	}
	if v.Status["state"] != "unmounted" || v.Status["remote"] != "u@srv:22/data" || v.Status["host_key"] != "SHA256:fake" || v.Status["backend"] != "sftp" {
		t.Errorf("status = %v", v.Status)
	}
	raw, _ := json.Marshal(v)
	if strings.Contains(string(raw), "hunter2") {
		t.Errorf("Get leaks the password: %s", raw)
	}

	mp := filepath.Join(e.root, "v1")
	var mr volume.MountResponse
	c.mustOK("Mount", volume.MountRequest{Name: "v1", ID: "a"}, &mr)
	if mr.Mountpoint != mp {
		t.Fatalf("mountpoint = %q, want %q (named after the volume)", mr.Mountpoint, mp)
	}
	c.mustOK("Mount", volume.MountRequest{Name: "v1", ID: "b"}, &mr)
	if e.fm.mounts != 1 || e.fm.liveCount() != 1 {
		t.Fatalf("second caller did not reuse the mount: mounts=%d live=%d", e.fm.mounts, e.fm.liveCount())
	}
	v = c.get("v1")
	if v.Mountpoint != mp || v.Status["state"] != "connected" || v.Status["mounts"] != float64(2) || v.Status["reconnects"] != float64(2) {
		t.Errorf("mounted status = %+v", v)
	}
	var pr volume.PathResponse
	c.mustOK("Path", volume.PathRequest{Name: "v1"}, &pr)
	if pr.Mountpoint != mp {
		t.Errorf("Path = %q", pr.Mountpoint)
	}

	c.mustFail("Remove", volume.RemoveRequest{Name: "v1"}, "in use by 2")

	c.mustOK("Unmount", volume.UnmountRequest{Name: "v1", ID: "a"}, nil)
	if e.fm.liveCount() != 1 {
		t.Fatal("unmount of one caller tore the mount down while another holds it")
	}
	c.mustOK("Unmount", volume.UnmountRequest{Name: "v1", ID: "b"}, nil)
	if e.fm.liveCount() != 0 {
		t.Fatal("last unmount left the mount up")
	}
	if c.get("v1").Status["state"] != "unmounted" {
		t.Error("state after last unmount is not unmounted")
	}

	var lr volume.ListResponse
	c.mustOK("List", struct{}{}, &lr)
	if len(lr.Volumes) != 1 || lr.Volumes[0].Name != "v1" {
		t.Fatalf("List = %+v", lr.Volumes)
	}

	// The mountpoint directory exists (it was mounted on) and Remove
	// deletes it because it is empty.
	if _, err := os.Stat(mp); err != nil {
		t.Fatal(err)
	}
	c.mustOK("Remove", volume.RemoveRequest{Name: "v1"}, nil)
	if _, err := os.Stat(mp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("empty mountpoint dir not removed: %v", err)
	}
	c.mustFail("Get", volume.GetRequest{Name: "v1"}, `"v1" does not exist`)
	c.mustFail("Mount", volume.MountRequest{Name: "v1", ID: "a"}, `"v1" does not exist`)
}

func TestRemoveKeepsNonEmptyDir(t *testing.T) {
	e := newEnv(t)
	c := serve(t, e.driver(t))
	c.mustOK("Create", volume.CreateRequest{Name: "v", Options: map[string]string{"host": "h"}}, nil)
	c.mustOK("Mount", volume.MountRequest{Name: "v", ID: "a"}, nil)
	c.mustOK("Unmount", volume.UnmountRequest{Name: "v", ID: "a"}, nil)
	stray := filepath.Join(e.root, "v", "stray")
	if err := os.WriteFile(stray, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.mustOK("Remove", volume.RemoveRequest{Name: "v"}, nil)
	if _, err := os.Stat(stray); err != nil {
		t.Fatalf("Remove deleted a file it does not own: %v", err)
	}
}

func TestCreateErrors(t *testing.T) {
	e := newEnv(t)
	c := serve(t, e.driver(t))
	c.mustFail("Create", volume.CreateRequest{Name: "v", Options: map[string]string{"host": "h", "bogus": "1"}}, `volume "v"`, `unknown option "bogus"`)
	c.mustFail("Create", volume.CreateRequest{Name: "v", Options: map[string]string{}}, "host is required")
	c.mustFail("Create", volume.CreateRequest{Name: "v", Options: map[string]string{"host": "unreachable"}}, "connection refused")
	c.mustFail("Create", volume.CreateRequest{Name: "../x", Options: map[string]string{"host": "h"}}, "invalid volume name")
	c.mustFail("Create", volume.CreateRequest{Name: ".state", Options: map[string]string{"host": "h"}}, "invalid volume name")
	var lr volume.ListResponse
	c.mustOK("List", struct{}{}, &lr)
	if len(lr.Volumes) != 0 {
		t.Fatalf("failed creates left volumes: %+v", lr.Volumes)
	}

	c.mustOK("Create", volume.CreateRequest{Name: "v", Options: map[string]string{"host": "h"}}, nil)
	checks := e.fm.checks
	// Identical (after canonicalization) options: fine, and no network.
	c.mustOK("Create", volume.CreateRequest{Name: "v", Options: map[string]string{"HOST": "h"}}, nil)
	if e.fm.checks != checks {
		t.Error("re-create with identical options connected to the server again")
	}
	c.mustFail("Create", volume.CreateRequest{Name: "v", Options: map[string]string{"host": "other"}}, "already exists with different options")
}

func TestConcurrentMountUnmount(t *testing.T) {
	e := newEnv(t)
	c := serve(t, e.driver(t))
	for _, n := range []string{"x", "y"} {
		c.mustOK("Create", volume.CreateRequest{Name: n, Options: map[string]string{"host": "h"}}, nil)
	}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := []string{"x", "y"}[i%2]
			for j := range 5 {
				id := fmt.Sprintf("c%d-%d", i, j)
				c.mustOK("Mount", volume.MountRequest{Name: name, ID: id}, nil)
				c.get(name)
				c.mustOK("Unmount", volume.UnmountRequest{Name: name, ID: id}, nil)
			}
		}()
	}
	wg.Wait()
	if n := e.fm.liveCount(); n != 0 {
		t.Fatalf("%d mounts left after every caller unmounted", n)
	}
	if e.fm.maxLive > 2 {
		t.Fatalf("up to %d mounts were live for 2 volumes: a volume was mounted twice", e.fm.maxLive)
	}
	for _, n := range []string{"x", "y"} {
		if m := c.get(n).Status["mounts"]; m != float64(0) {
			t.Errorf("%s: mounts = %v", n, m)
		}
	}
}

func TestDeadMountIsReplaced(t *testing.T) {
	e := newEnv(t)
	c := serve(t, e.driver(t))
	c.mustOK("Create", volume.CreateRequest{Name: "v", Options: map[string]string{"host": "h"}}, nil)
	c.mustOK("Mount", volume.MountRequest{Name: "v", ID: "a"}, nil)
	e.fm.mu.Lock()
	m := e.fm.live[filepath.Join(e.root, "v")]
	e.fm.mu.Unlock()
	m.kill()
	if st := c.get("v").Status["state"]; st != "dead" {
		t.Errorf("state of a dead mount = %v", st)
	}
	c.mustOK("Mount", volume.MountRequest{Name: "v", ID: "b"}, nil)
	if e.fm.mounts != 2 || e.fm.liveCount() != 1 {
		t.Fatalf("dead mount not replaced: mounts=%d live=%d", e.fm.mounts, e.fm.liveCount())
	}
	if st := c.get("v").Status; st["state"] != "connected" || st["mounts"] != float64(2) {
		t.Errorf("status after remount = %v", st)
	}
}

// A server that hangs must not block List/Get or other volumes.
func TestHungMountDoesNotBlockOthers(t *testing.T) {
	e := newEnv(t)
	c := serve(t, e.driver(t))
	c.mustOK("Create", volume.CreateRequest{Name: "slow", Options: map[string]string{"host": "h"}}, nil)
	c.mustOK("Create", volume.CreateRequest{Name: "fast", Options: map[string]string{"host": "h"}}, nil)
	block := make(chan struct{})
	e.fm.mu.Lock()
	e.fm.block = block
	e.fm.mu.Unlock()
	done := make(chan string)
	go func() { done <- c.call("Mount", volume.MountRequest{Name: "slow", ID: "a"}, nil) }()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	var lr volume.ListResponse
	c.mustOK("List", struct{}{}, &lr)
	if st := c.get("slow").Status["state"]; st != "mounting" {
		t.Errorf("state while mounting = %v", st)
	}
	c.mustOK("Create", volume.CreateRequest{Name: "third", Options: map[string]string{"host": "h"}}, nil)
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("List/Get/Create took %s while another volume's mount hung", el)
	}
	close(block)
	if e := <-done; e != "" {
		t.Fatal(e)
	}
	c.mustOK("Mount", volume.MountRequest{Name: "fast", ID: "b"}, nil)
}

func TestMountTimeout(t *testing.T) {
	e := newEnv(t)
	d, err := New(Config{MountRoot: e.root, Mounter: e.fm, Logger: testLogger(t), MountTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c := serve(t, d)
	c.mustOK("Create", volume.CreateRequest{Name: "v", Options: map[string]string{"host": "h"}}, nil)
	e.fm.block = make(chan struct{}) // never closed
	msg := c.mustFail("Mount", volume.MountRequest{Name: "v", ID: "a"}, "within 200ms")
	if st := c.get("v").Status; st["last_error"] == nil || st["mounts"] != float64(0) {
		t.Errorf("status after failed mount = %v (%s)", st, msg)
	}
}

func TestRestartKeepsVolumesAndRemounts(t *testing.T) {
	e := newEnv(t)
	d1 := e.driver(t)
	c := serve(t, d1)
	c.mustOK("Create", volume.CreateRequest{Name: "used", Options: map[string]string{"host": "h", "password": "pw-secret"}}, nil)
	c.mustOK("Create", volume.CreateRequest{Name: "idle", Options: map[string]string{"host": "h"}}, nil)
	c.mustOK("Mount", volume.MountRequest{Name: "used", ID: "ctr1"}, nil)

	fi, err := os.Stat(filepath.Join(e.state, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode = %v, want 0600 (it may hold inline secrets)", fi.Mode().Perm())
	}
	if di, _ := os.Stat(e.state); di.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode = %v, want 0700", di.Mode().Perm())
	}

	// Simulated crash: the first driver is dropped without Shutdown and
	// a new one starts from the same directories with a fresh mounter.
	e.fm = newFakeMounter()
	d2 := e.driver(t)
	d2.Start()
	d2.Wait()
	c2 := serve(t, d2)
	if e.fm.liveCount() != 1 {
		t.Fatalf("volume in use before the restart was not remounted (live=%d)", e.fm.liveCount())
	}
	var lr volume.ListResponse
	c2.mustOK("List", struct{}{}, &lr)
	if len(lr.Volumes) != 2 {
		t.Fatalf("volumes after restart: %+v", lr.Volumes)
	}
	if st := c2.get("used").Status; st["mounts"] != float64(1) || st["state"] != "connected" {
		t.Errorf("status after restart = %v", st)
	}
	c2.mustOK("Unmount", volume.UnmountRequest{Name: "used", ID: "ctr1"}, nil)
	if e.fm.liveCount() != 0 {
		t.Fatal("unmount after restart left the mount")
	}
	// Shutdown keeps callers for the next start.
	c2.mustOK("Mount", volume.MountRequest{Name: "idle", ID: "ctr2"}, nil)
	d2.Shutdown()
	if e.fm.liveCount() != 0 {
		t.Fatal("Shutdown left mounts")
	}
	e.fm = newFakeMounter()
	d3 := e.driver(t)
	d3.Start()
	d3.Wait()
	if e.fm.liveCount() != 1 {
		t.Fatal("volume held at Shutdown was not remounted on start")
	}
	d3.Shutdown()
}

func TestCorruptState(t *testing.T) {
	e := newEnv(t)
	d := e.driver(t)
	c := serve(t, d)
	for _, n := range []string{"a", "b", "c"} {
		c.mustOK("Create", volume.CreateRequest{Name: n, Options: map[string]string{"host": n}}, nil)
	}
	stPath := filepath.Join(e.state, "state.json")
	good, err := os.ReadFile(stPath)
	if err != nil {
		t.Fatal(err)
	}

	count := func() int {
		d := e.driver(t)
		var lr volume.ListResponse
		serve(t, d).mustOK("List", struct{}{}, &lr)
		return len(lr.Volumes)
	}

	// Truncated after the second volume's entry: a and b are salvaged
	// from the prefix, c comes from the backup (which holds a and b: the
	// state before c was created), so c is lost only if neither has it.
	cut := strings.Index(string(good), `"c":`)
	if cut < 0 {
		t.Fatalf("unexpected state layout: %s", good)
	}
	if err := os.WriteFile(stPath, good[:cut+10], 0o600); err != nil {
		t.Fatal(err)
	}
	if n := count(); n < 2 {
		t.Fatalf("truncated state: %d volumes survived, want at least the 2 complete entries", n)
	}

	// Garbage: everything comes from the backup.
	if err := os.WriteFile(stPath, []byte("\x00\x00garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n := count(); n < 2 {
		t.Fatalf("garbage state: %d volumes from the backup, want 2", n)
	}
	matches, _ := filepath.Glob(filepath.Join(e.state, "state.json.corrupt-*"))
	if len(matches) == 0 {
		t.Error("damaged state file was not kept for inspection")
	}

	// One bad entry costs only that entry.
	doc := strings.Replace(string(good), `"options": {`, `"options": 7, "x": {`, 1)
	if err := os.WriteFile(stPath, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 3 {
		t.Fatalf("state with one bad entry: %d volumes, want 3 (2 intact + 1 from backup)", n)
	}

	// Missing state, backup present.
	os.Remove(stPath)
	if n := count(); n < 2 {
		t.Fatalf("missing state: %d volumes from the backup", n)
	}
}
