package driver

import (
	"os"
	"testing"

	"github.com/docker/go-plugins-helpers/volume"
)

// A Mount whose state save fails is answered with an error, so Docker
// never sends the Unmount for that caller: the caller must not stay
// recorded (it used to, and Remove was then refused until a restart),
// and a mount made only for it must not stay either.
func TestMountSaveFailureRollsBackCaller(t *testing.T) {
	e := newEnv(t)
	d := e.driver(t)
	if err := d.Create(&volume.CreateRequest{Name: "v", Options: map[string]string{"host": "h"}}); err != nil {
		t.Fatal(err)
	}
	// An unwritable state directory, even for root: a file where the
	// directory was (creating the temporary file fails with ENOTDIR).
	away := e.state + ".away"
	if err := os.Rename(e.state, away); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.state, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := d.Mount(&volume.MountRequest{Name: "v", ID: "ctr1"})
	if err == nil {
		t.Fatal("Mount succeeded although the state could not be saved")
	}
	t.Logf("Mount: %v", err)
	d.mu.Lock()
	ids := d.vols["v"].rec.MountIDs
	d.mu.Unlock()
	if len(ids) != 0 {
		t.Errorf("caller IDs after the failed save: %v, want none", ids)
	}
	if n := e.fm.liveCount(); n != 0 {
		t.Errorf("%d mounts left live for a caller that got an error", n)
	}
	if err := os.Remove(e.state); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(away, e.state); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(&volume.RemoveRequest{Name: "v"}); err != nil {
		t.Fatalf("Remove after the failed Mount: %v", err)
	}
}
