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
