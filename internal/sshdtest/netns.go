package sshdtest

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/sftpfs/sftpfs/internal/testenv"
)

// NetNS is a network namespace made for one test: only loopback inside,
// plus one veth pair to the test's namespace, so a server started in it
// (Options.NetNS) on 127.0.0.1 is unreachable from outside while one
// listening on NSAddr is reachable at NSAddr from outside. Nothing
// leaves the machine.
type NetNS struct {
	Name string
	// HostAddr is the test namespace's end of the veth pair, NSAddr the
	// namespace's end (a /30 of 10.250.0.0/16, picked at random).
	HostAddr, NSAddr string
}

// NewNetNS creates the namespace and veth pair; t.Cleanup deletes both
// (deleting the namespace deletes its veth end, and with it the peer),
// also when the test fails half-way. It needs root and ip (iproute2):
// skip outside CI, fail in CI.
func NewNetNS(t testing.TB) *NetNS {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.LookPath(t, "ip")
	r := randUint32()
	id := fmt.Sprintf("%06x", r&0xffffff)
	n := &NetNS{Name: "sftpfs-test-" + id}
	// A /30 inside 10.250.0.0/16: 2^14 subnets, so parallel tests rarely
	// collide; a collision makes "ip addr add" fail loudly.
	sub := (r >> 8) & 0x3fff
	base := 10<<24 | 250<<16 | sub<<2
	n.HostAddr = ipString(base + 1)
	n.NSAddr = ipString(base + 2)
	hostIf, nsIf := "sfh"+id, "sfn"+id

	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("sshdtest: ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", n.Name)
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", hostIf).Run()
		if out, err := exec.Command("ip", "netns", "del", n.Name).CombinedOutput(); err != nil {
			t.Errorf("sshdtest: deleting network namespace %s: %v: %s", n.Name, err, out)
		}
	})
	run("link", "add", hostIf, "type", "veth", "peer", "name", nsIf)
	run("link", "set", nsIf, "netns", n.Name)
	run("addr", "add", n.HostAddr+"/30", "dev", hostIf)
	run("link", "set", hostIf, "up")
	run("netns", "exec", n.Name, "ip", "addr", "add", n.NSAddr+"/30", "dev", nsIf)
	run("netns", "exec", n.Name, "ip", "link", "set", nsIf, "up")
	run("netns", "exec", n.Name, "ip", "link", "set", "lo", "up")
	return n
}

func ipString(v uint32) string {
	return fmt.Sprintf("%d.%d.%d.%d", v>>24, v>>16&0xff, v>>8&0xff, v&0xff)
}

func randUint32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

// Jump is a target sshd reachable only through a bastion sshd, for
// proxy_jump tests: both run in a fresh network namespace, the target on
// its 127.0.0.1, the bastion on NS.NSAddr, the one address the test's
// namespace can reach. The bastion accepts the target's client key
// (Target.KeyFile), so one identity logs in on both.
type Jump struct {
	NS      *NetNS
	Bastion *Server
	Target  *Server
}

// StartJump starts the pair; target configures the target server.
func StartJump(t testing.TB, target Options) *Jump {
	t.Helper()
	ns := NewNetNS(t)
	target.NetNS = ns.Name
	tg := Start(t, target)
	b := Start(t, Options{NetNS: ns.Name, ListenHost: ns.NSAddr, AuthorizedKeys: []string{tg.PublicKeyLine}})
	return &Jump{NS: ns, Bastion: b, Target: tg}
}
