package driver

import (
	"strings"
	"testing"

	"github.com/docker/go-plugins-helpers/volume"
)

// The options hash in Status is how an operator (and the Swarm e2e test)
// tells that one volume name has different options on different nodes.
func TestStatusOptionsHash(t *testing.T) {
	e := newEnv(t)
	c := serve(t, e.driver(t))
	c.mustOK("Create", volume.CreateRequest{Name: "a", Options: map[string]string{"host": "srv", "path": "data", "password": "first-secret"}}, nil)
	// Same options, other spelling of a name (the fake canonicalizes
	// case) and another secret value: the same volume as far as data goes.
	c.mustOK("Create", volume.CreateRequest{Name: "b", Options: map[string]string{"HOST": "srv", "path": "data", "password": "other-secret"}}, nil)
	c.mustOK("Create", volume.CreateRequest{Name: "c", Options: map[string]string{"host": "srv", "path": "elsewhere"}}, nil)
	ha, _ := c.get("a").Status["options_hash"].(string)
	hb, _ := c.get("b").Status["options_hash"].(string)
	hc, _ := c.get("c").Status["options_hash"].(string)
	if !strings.HasPrefix(ha, "sha256:") || len(ha) != len("sha256:")+16 {
		t.Fatalf("options_hash = %q, want sha256:<16 hex>", ha)
	}
	if ha != hb {
		t.Errorf("equal options (other spelling, other secret) hash differently: %s vs %s", ha, hb)
	}
	if ha == hc {
		t.Errorf("different paths hash the same: %s", ha)
	}
}

// After a restart, callers recorded before it that Docker never released
// (containers lost with a crashed engine) must not keep the volume from
// being removed once Docker, which only calls Remove for a volume none of
// its containers uses, asks for it; callers seen since the restart still
// block it.
func TestRemoveDropsCallersLostInACrash(t *testing.T) {
	e := newEnv(t)
	c := serve(t, e.driver(t))
	c.mustOK("Create", volume.CreateRequest{Name: "v", Options: map[string]string{"host": "h"}}, nil)
	c.mustOK("Mount", volume.MountRequest{Name: "v", ID: "lost"}, nil)
	c.mustOK("Mount", volume.MountRequest{Name: "v", ID: "back"}, nil)

	// Crash: a new driver from the same state, remounting for both.
	e.fm = newFakeMounter()
	d2 := e.driver(t)
	d2.Start()
	d2.Wait()
	c2 := serve(t, d2)
	// "back" is mounted again after the restart (a restarted container).
	c2.mustOK("Mount", volume.MountRequest{Name: "v", ID: "back"}, nil)
	c2.mustFail("Remove", volume.RemoveRequest{Name: "v"}, "in use by 1 mount")
	c2.mustOK("Unmount", volume.UnmountRequest{Name: "v", ID: "back"}, nil)
	// Only the lost caller is left: still counted, but Remove succeeds.
	if st := c2.get("v").Status; st["mounts"] != float64(1) {
		t.Fatalf("status = %v, want the lost caller still counted", st)
	}
	c2.mustOK("Remove", volume.RemoveRequest{Name: "v"}, nil)
	if e.fm.liveCount() != 0 {
		t.Fatalf("Remove left %d live mount(s)", e.fm.liveCount())
	}
}
