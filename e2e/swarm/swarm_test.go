package swarm

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sftpfs/sftpfs/options"
)

// volOpts are the options of a volume on the fixture's sshd at the server
// directory dir: a key by reference (in each node's secrets directory), a
// pinned host key and short timeouts so a dead link is noticed quickly.
func (c *cluster) volOpts(dir string) []string {
	return []string{
		"host=" + hostAddr, "port=" + strconv.Itoa(c.sshd.Port), "user=" + c.sshd.User, "path=" + dir,
		"identity=" + keyName, "hostkey=" + c.sshd.HostKeyFingerprint,
		"connect_timeout=3s", "op_timeout=4s", "keepalive=1s", "keepalive_count=2",
	}
}

// mountSpec is a --mount value that creates the volume on whichever node
// runs a task, with the options from the service definition.
func (c *cluster) mountSpec(vol, dir string) string {
	s := "type=volume,src=" + vol + ",dst=/data,volume-driver=" + pluginName
	for _, o := range c.volOpts(dir) {
		s += ",volume-opt=" + o // no option value here contains a comma
	}
	return s
}

// serverDir makes a fresh directory on the SFTP server.
func (c *cluster) serverDir(t *testing.T, name string) string {
	d := filepath.Join(c.remote, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// service creates a service that stops fast and is removed when the test
// ends.
func (c *cluster) service(t *testing.T, name string, args ...string) {
	t.Helper()
	mgr := c.manager()
	base := []string{"service", "create", "-d", "--no-resolve-image", "--name", name, "--stop-grace-period", "1s"}
	mgr.must(t, append(base, args...)...)
	t.Cleanup(func() { mgr.run("service", "rm", name) })
}

// running maps node hostname to the number of the service's tasks that
// are running there.
func (c *cluster) running(svc string) map[string]int {
	out, err := c.manager().run("service", "ps", "--filter", "desired-state=running", "--format", "{{.Node}}|{{.CurrentState}}", svc)
	m := map[string]int{}
	if err != nil {
		return m
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		node, state, ok := strings.Cut(l, "|")
		if ok && strings.HasPrefix(state, "Running") {
			m[node]++
		}
	}
	return m
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last state: %s", what, timeout, state)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// waitSpread waits until the service has one running task on each of the
// nodes named.
func (c *cluster) waitSpread(t *testing.T, svc string, nodes ...string) {
	t.Helper()
	waitFor(t, 90*time.Second, svc+" running once on each of "+strings.Join(nodes, ","), func() (bool, string) {
		m := c.running(svc)
		if len(m) != len(nodes) {
			return false, fmt.Sprint(m)
		}
		for _, n := range nodes {
			if m[n] != 1 {
				return false, fmt.Sprint(m)
			}
		}
		return true, ""
	})
}

func (c *cluster) names() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.name)
	}
	return out
}

// volStatus is the driver's Status of vol as `docker volume inspect` on
// node n shows it.
func volStatus(t *testing.T, n *node, vol string) map[string]any {
	t.Helper()
	out, err := n.run("volume", "inspect", "-f", "{{json .Status}}", vol)
	if err != nil {
		return nil
	}
	var st map[string]any
	json.Unmarshal([]byte(out), &st)
	return st
}

func mountCount(t *testing.T, n *node, vol string) int {
	st := volStatus(t, n, vol)
	if st == nil {
		return -1
	}
	f, _ := st["mounts"].(float64)
	return int(f)
}

// counterFile checks that a file the counting tasks write holds 1..N, one
// per line, and returns N: a lost acknowledged write shows as a gap.
func counterFile(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	for i, l := range lines {
		if l != strconv.Itoa(i+1) {
			t.Fatalf("%s line %d is %q, want %d (lost or reordered data):\n%s", path, i+1, l, i+1, b)
		}
	}
	return len(lines)
}

// counter is a task command that appends 1, 2, 3, ... to
// /data/<prefix>-<task name>.log; any failed write ends the task.
func counter(prefix string) []string {
	return []string{"sh", "-c", `i=0; while :; do i=$((i+1)); echo $i >> /data/` + prefix + `-$TASK.log || exit 1; sleep 0.3; done`}
}

func logFiles(t *testing.T, dir, prefix string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, prefix+"-*.log"))
	sort.Strings(m)
	return m
}

func TestSwarm(t *testing.T) {
	c := setup(t)
	start := time.Now()
	defer func() { t.Logf("swarm scenarios took %s", time.Since(start).Round(time.Second)) }()

	t.Run("Capabilities", func(t *testing.T) {
		// The plugin says scope "local": each node's plugin keeps its own
		// volumes, and Swarm creates a service's volume on every node
		// that runs one of its tasks (SpreadShare proves that works). A
		// "global" plugin would make Docker assume one Create is seen by
		// every node, which is false here: check Docker's view agrees.
		for _, n := range c.nodes {
			out := c.manager().must(t, "node", "inspect", n.name, "-f", "{{range .Description.Engine.Plugins}}{{.Type}}={{.Name}} {{end}}")
			if !strings.Contains(out, "Volume="+pluginName) {
				t.Fatalf("node %s description lists %q, not Volume=%s", n.name, out, pluginName)
			}
		}
		one, other := c.nodes[1], c.nodes[2]
		args := []string{"volume", "create", "-d", pluginName}
		for _, o := range c.volOpts(c.serverDir(t, "scope")) {
			args = append(args, "-o", o)
		}
		one.must(t, append(args, "swt-scope")...)
		defer one.run("volume", "rm", "swt-scope")
		if sc := one.must(t, "volume", "inspect", "-f", "{{.Scope}}", "swt-scope"); sc != "local" {
			t.Fatalf("volume scope on %s is %q, want local", one.name, sc)
		}
		if out, err := other.run("volume", "inspect", "swt-scope"); err == nil {
			t.Fatalf("a local-scope volume created on %s is visible on %s: %s", one.name, other.name, out)
		}
	})

	t.Run("SpreadShare", func(t *testing.T) {
		dir := c.serverDir(t, "spread")
		svc := svcPrefix + "spread"
		c.service(t, svc, "--replicas", "3", "--placement-pref", "spread=node.id",
			"--env", "NODE={{.Node.Hostname}}", "--mount", c.mountSpec("swt-spread", dir), image,
			// Each task's file appears under its name only once
			// written and closed (rename), so that a task that sees three
			// names may expect three complete files: a file read while
			// its writer still has it open may be empty on any
			// filesystem. (Files written and closed before the open are
			// read in full even when listed empty: fusefs TestCloseToOpen.)
			"sh", "-c", `echo $NODE > /data/w-$NODE.tmp && mv /data/w-$NODE.tmp /data/w-$NODE.txt
until [ $(ls /data | grep -c '^w-.*\.txt$') -ge 3 ]; do sleep 0.3; done
cat /data/w-*.txt > /data/r-$NODE.tmp && mv /data/r-$NODE.tmp /data/r-$NODE.txt
exec sleep 600`)
		c.waitSpread(t, svc, c.names()...)
		want := slices.Clone(c.names())
		sort.Strings(want)
		for _, n := range c.names() {
			p := filepath.Join(dir, "r-"+n+".txt")
			waitFor(t, 60*time.Second, "task on "+n+" read all three files", func() (bool, string) {
				b, err := os.ReadFile(p)
				return err == nil && strings.Fields(string(b)) != nil && slices.Equal(strings.Fields(string(b)), want), string(b)
			})
		}
		// Each node mounted the volume through its own plugin.
		for _, n := range c.nodes {
			if got := mountCount(t, n, "swt-spread"); got != 1 {
				t.Fatalf("node %s: volume mount count %d, want 1 (its own task)", n.name, got)
			}
		}
	})

	t.Run("RollingUpdateAndDrain", func(t *testing.T) {
		dir := c.serverDir(t, "roll")
		svc := svcPrefix + "roll"
		vol := "swt-roll"
		c.service(t, svc, append([]string{"--replicas", "3", "--placement-pref", "spread=node.id", "--update-parallelism", "1", "--update-delay", "1s",
			"--env", "TASK={{.Task.Name}}", "--mount", c.mountSpec(vol, dir), image}, counter("roll")...)...)
		c.waitSpread(t, svc, c.names()...)
		waitFor(t, 30*time.Second, "three tasks writing", func() (bool, string) {
			return len(logFiles(t, dir, "roll")) == 3, fmt.Sprint(logFiles(t, dir, "roll"))
		})
		old := logFiles(t, dir, "roll")

		c.manager().must(t, "service", "update", "-d", "--env-add", "GEN=2", svc)
		waitFor(t, 120*time.Second, "rolling update completed", func() (bool, string) {
			st, _ := c.manager().run("service", "inspect", "-f", "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}", svc)
			return strings.TrimSpace(st) == "completed" && len(c.running(svc)) == 3, st
		})
		waitFor(t, 30*time.Second, "three new tasks writing", func() (bool, string) {
			return len(logFiles(t, dir, "roll")) == 6, fmt.Sprint(logFiles(t, dir, "roll"))
		})
		for _, f := range old {
			if n := counterFile(t, f); n < 1 {
				t.Fatalf("%s is empty", f)
			}
		}

		drained := c.nodes[2]
		c.manager().must(t, "node", "update", "--availability", "drain", drained.name)
		defer c.manager().run("node", "update", "--availability", "active", drained.name)
		waitFor(t, 60*time.Second, "tasks moved off "+drained.name, func() (bool, string) {
			m := c.running(svc)
			total := 0
			for _, v := range m {
				total += v
			}
			return m[drained.name] == 0 && total == 3, fmt.Sprint(m)
		})
		waitFor(t, 30*time.Second, "the drained node's plugin unmounted the volume", func() (bool, string) {
			st := volStatus(t, drained, vol)
			f, _ := st["mounts"].(float64)
			return st != nil && f == 0, fmt.Sprint(st)
		})
		if live, dead := fuseMountsUnder(dataRoot(drained.ns)); len(live)+len(dead) > 0 {
			t.Fatalf("drained node still has FUSE mounts: live %v dead %v", live, dead)
		}
		// The replacement task writes through its node's mount; the
		// mount counts on the others add up to the three tasks.
		waitFor(t, 30*time.Second, "replacement task writing", func() (bool, string) {
			return len(logFiles(t, dir, "roll")) == 7, fmt.Sprint(logFiles(t, dir, "roll"))
		})
		total := 0
		for _, n := range c.nodes[:2] {
			total += mountCount(t, n, vol)
		}
		if total != 3 {
			t.Fatalf("mount counts on the active nodes add up to %d, want 3", total)
		}
		c.manager().must(t, "service", "rm", svc)
		time.Sleep(2 * time.Second)
		for _, f := range logFiles(t, dir, "roll") {
			counterFile(t, f)
		}
	})

	t.Run("NodeLoss", func(t *testing.T) {
		dir := c.serverDir(t, "loss")
		svc := svcPrefix + "loss"
		vol := "swt-loss"
		c.service(t, svc, append([]string{"--replicas", "3", "--placement-pref", "spread=node.id",
			"--env", "TASK={{.Task.Name}}", "--mount", c.mountSpec(vol, dir), image}, counter("loss")...)...)
		c.waitSpread(t, svc, c.names()...)
		waitFor(t, 30*time.Second, "three tasks writing", func() (bool, string) {
			return len(logFiles(t, dir, "loss")) == 3, fmt.Sprint(logFiles(t, dir, "loss"))
		})

		lost := c.nodes[1]
		pm := c.propagatedMount(t, lost)
		pids := killEngine(lost.ns)
		t.Logf("killed %d processes of %s (engine, containerd, shims, tasks, plugin)", len(pids), lost.name)
		waitFor(t, 90*time.Second, "swarm rescheduled the lost node's task", func() (bool, string) {
			m := c.running(svc)
			st, _ := c.manager().run("node", "inspect", lost.name, "-f", "{{.Status.State}}")
			return m[lost.name] == 0 && m[c.nodes[0].name]+m[c.nodes[2].name] == 3, fmt.Sprint(m, " lost node ", strings.TrimSpace(st))
		})
		waitFor(t, 30*time.Second, "replacement task writing", func() (bool, string) {
			return len(logFiles(t, dir, "loss")) == 4, fmt.Sprint(logFiles(t, dir, "loss"))
		})

		// The engine comes back: dockerd restarts the plugin, which
		// detaches the dead mount left by the killed one.
		c.startEngine(lost)
		waitFor(t, 60*time.Second, lost.name+" ready again", func() (bool, string) {
			st, _ := c.manager().run("node", "inspect", lost.name, "-f", "{{.Status.State}}")
			return strings.TrimSpace(st) == "ready", st
		})
		waitFor(t, 60*time.Second, "plugin on "+lost.name+" detached the dead mount", func() (bool, string) {
			st, _ := lost.run("plugin", "inspect", "-f", "{{.Enabled}}", pluginName)
			live, dead := fuseMountsUnder(pm)
			return strings.TrimSpace(st) == "true" && len(dead) == 0, fmt.Sprintf("enabled %s live %v dead %v", st, live, dead)
		})
		// And mounts again when asked: a container on that node sees what
		// the other nodes' tasks wrote while it was gone.
		out := lost.must(t, "run", "--rm", "-v", vol+":/data", image, "sh", "-c", "ls /data | wc -l")
		if n, _ := strconv.Atoi(out); n < 4 {
			t.Fatalf("remounted volume on %s lists %s files, want 4", lost.name, out)
		}
		c.manager().must(t, "service", "rm", svc)
		time.Sleep(2 * time.Second)
		for _, f := range logFiles(t, dir, "loss") {
			// A killed task's last write may be cut short: only earlier
			// lines must be intact, which counterFile checks.
			counterFile(t, f)
		}
		// Docker never sends Unmount for the killed task's container, so
		// the plugin still counts it (and remounted for it at start).
		// Once the service, and with it the dead task's container, is
		// gone, Docker lets the volume be removed on that node, and the
		// plugin drops the stale caller and unmounts.
		t.Logf("%s's plugin counts %d mount(s) of %s after the service is gone (the task that died with the engine)",
			lost.name, mountCount(t, lost, vol), vol)
		waitFor(t, 30*time.Second, "volume rm on "+lost.name, func() (bool, string) {
			out, err := lost.run("volume", "rm", vol)
			return err == nil, out
		})
		if live, dead := fuseMountsUnder(pm); len(live)+len(dead) > 0 {
			t.Fatalf("after volume rm on %s FUSE mounts remain: live %v dead %v", lost.name, live, dead)
		}
	})

	t.Run("NetworkCut", func(t *testing.T) {
		// A longer heartbeat keeps the manager from declaring the cut node
		// down (and moving its task) while the link is away: the point is
		// that the same task survives.
		c.manager().must(t, "swarm", "update", "--dispatcher-heartbeat", "30s")
		defer c.manager().run("swarm", "update", "--dispatcher-heartbeat", "5s")
		// The manager arms each node's expiry timer at that node's next
		// heartbeat, with the period it hands out then: until every
		// node has heartbeated once more, the old 5s period (node down
		// after 3 missed periods, 15s) still applies, and a 12s cut
		// that starts a few seconds after the last heartbeat outlives
		// it (seen in CI: the node was marked down and its task
		// replaced). Two old periods after the update every node runs
		// on the new timer.
		heartbeatSettled := time.Now().Add(11 * time.Second)
		dir := c.serverDir(t, "cut")
		svc := svcPrefix + "cut"
		cut := c.nodes[2]
		c.service(t, svc, "--constraint", "node.hostname=="+cut.name, "--mount", c.mountSpec("swt-cut", dir), image,
			"sh", "-c", `i=0; while :; do i=$((i+1)); s=$(date +%s); if echo $i >> /data/cut.log; then r=ok; else r=err; fi; echo "$r $i $s $(date +%s)"; sleep 0.2; done`)
		waitFor(t, 60*time.Second, "cut task writing", func() (bool, string) {
			b, _ := os.ReadFile(filepath.Join(dir, "cut.log"))
			return strings.Count(string(b), "\n") >= 5, string(b)
		})
		cid := cut.must(t, "ps", "-q", "--filter", "label=com.docker.swarm.service.name="+svc)

		// The cut drops every packet to and from the node, like a
		// pulled cable between routers. (Setting the veth down instead
		// makes every connect fail at once with "no route to host"; the
		// node's Swarm agent then re-registers and the manager replaces
		// the task when the link returns, so the same task cannot be
		// watched recovering.)
		time.Sleep(time.Until(heartbeatSettled))
		down := time.Now()
		blackhole(t, cut.addr, true)
		defer blackhole(t, cut.addr, false)
		// Far longer than the keepalive timeout (1s x 2) and longer than
		// any write may take (writeBound), so a write that waits for the
		// link instead of timing out shows; short enough that the node's
		// Swarm agent keeps its session (at 16s it sometimes timed out,
		// re-registered, and the manager replaced the task).
		time.Sleep(12 * time.Second)
		blackhole(t, cut.addr, false)
		up := time.Now()
		t.Logf("network of %s cut for %s", cut.name, up.Sub(down).Round(100*time.Millisecond))

		type attempt struct {
			ok         bool
			i          int
			start, end int64
		}
		var atts []attempt
		read := func() {
			atts = nil
			out, _ := cut.run("logs", cid)
			for _, l := range strings.Split(out, "\n") {
				f := strings.Fields(l)
				if len(f) != 4 {
					continue
				}
				i, _ := strconv.Atoi(f[1])
				s, _ := strconv.ParseInt(f[2], 10, 64)
				e, _ := strconv.ParseInt(f[3], 10, 64)
				atts = append(atts, attempt{f[0] == "ok", i, s, e})
			}
		}
		waitFor(t, 60*time.Second, "writes succeed again after the link came back", func() (bool, string) {
			read()
			n := 0
			for _, a := range atts {
				if a.ok && a.start > up.Unix()+1 {
					n++
				}
			}
			return n >= 5, fmt.Sprint(atts[max(0, len(atts)-5):])
		})
		// Same container, never restarted.
		if got := cut.must(t, "ps", "-q", "--filter", "label=com.docker.swarm.service.name="+svc); got != cid {
			t.Fatalf("task container changed from %s to %q: the task was restarted", cid, got)
		}
		if rc := cut.must(t, "inspect", "-f", "{{.RestartCount}} {{.State.Running}}", cid); rc != "0 true" {
			t.Fatalf("container restart count/running = %s", rc)
		}
		b, err := os.ReadFile(filepath.Join(dir, "cut.log"))
		if err != nil {
			t.Fatal(err)
		}
		onServer := map[string]bool{}
		for _, l := range strings.Fields(string(b)) {
			onServer[l] = true
		}
		var longest int64
		failed, during := 0, 0
		var slow []attempt
		for _, a := range atts {
			longest = max(longest, a.end-a.start)
			if a.end-a.start > 1 {
				slow = append(slow, a)
			}
			if a.start >= down.Unix() && a.start <= up.Unix() {
				during++
			}
			if !a.ok {
				failed++
				continue
			}
			if !onServer[strconv.Itoa(a.i)] {
				t.Errorf("write %d was acknowledged (echo succeeded) but is not on the server", a.i)
			}
		}
		t.Logf("%d writes, %d failed, %d started during the cut, longest took %ds; slow ones (ok, i, start, end): %v",
			len(atts), failed, during, longest, slow)
		// Each backend call ends within about twice op_timeout (4s; doc of
		// backend/sftp); writeBound adds the 1s clock granularity and is
		// shorter than the cut, so a write that waited for the network to
		// come back fails the test. (Seen: failed writes take 4s.)
		const writeBound = 10
		if longest > writeBound {
			t.Fatalf("a write took %ds during the cut: writes must fail or finish within the configured timeouts (bound %ds)", longest, writeBound)
		}
		if failed == 0 {
			t.Fatalf("no write failed during a %s cut: the cut did not reach the mount, or writes waited for the link", up.Sub(down))
		}
	})

	t.Run("DivergentOptions", func(t *testing.T) {
		// The same name on several nodes with different options: each
		// node's plugin only knows its own volume, and Docker does not
		// call Create again for a service whose volume already exists on
		// a node, so the service's volume-opt are silently ignored there.
		a, b := c.serverDir(t, "div-a"), c.serverDir(t, "div-b")
		vol := "swt-div"
		create := func(n *node, opts []string) {
			args := []string{"volume", "create", "-d", pluginName}
			for _, o := range opts {
				args = append(args, "-o", o)
			}
			n.must(t, append(args, vol)...)
		}
		// The manager spells the same options differently (an alias and
		// another duration spelling): that is not a divergence.
		same := slices.Clone(c.volOpts(a))
		for i, o := range same {
			switch {
			case strings.HasPrefix(o, "identity="):
				same[i] = "IdentityFile=" + keyName
			case strings.HasPrefix(o, "keepalive="):
				same[i] = "keepalive=1000ms"
			}
		}
		create(c.nodes[0], same)
		create(c.nodes[1], c.volOpts(a))
		create(c.nodes[2], c.volOpts(b))

		svc := svcPrefix + "div"
		c.service(t, svc, "--replicas", "3", "--placement-pref", "spread=node.id", "--env", "NODE={{.Node.Hostname}}",
			"--mount", c.mountSpec(vol, a), image, "sh", "-c", "echo $NODE > /data/$NODE.txt; exec sleep 600")
		c.waitSpread(t, svc, c.names()...)
		waitFor(t, 30*time.Second, "three tasks wrote", func() (bool, string) {
			ma, _ := filepath.Glob(filepath.Join(a, "*.txt"))
			mb, _ := filepath.Glob(filepath.Join(b, "*.txt"))
			return len(ma)+len(mb) == 3, fmt.Sprint(ma, mb)
		})
		// Silent divergence, as Docker does it: swn2's task wrote to b.
		if _, err := os.Stat(filepath.Join(b, c.nodes[2].name+".txt")); err != nil {
			t.Fatalf("expected %s's task to use its own volume (path b): %v", c.nodes[2].name, err)
		}

		// Detection: every node's view compared.
		report := c.divergence(t, vol)
		t.Logf("divergence report:\n%s", report)
		if !strings.Contains(report, c.nodes[2].name) || !strings.Contains(report, "path") {
			t.Fatalf("divergence report does not name node %s and option path:\n%s", c.nodes[2].name, report)
		}
		for _, n := range c.nodes[:2] {
			if strings.Contains(report, "node "+n.name+":") {
				t.Fatalf("node %s has the same options (spelled differently) but is reported:\n%s", n.name, report)
			}
		}
		if hashes := c.optionHashes(t, vol); hashes[c.nodes[0].name] != hashes[c.nodes[1].name] || hashes[c.nodes[1].name] == hashes[c.nodes[2].name] {
			t.Fatalf("Status options_hash per node %v: want equal for %s and %s, different for %s",
				hashes, c.nodes[0].name, c.nodes[1].name, c.nodes[2].name)
		}
	})
}

// optionHashes is each node's Status.options_hash of vol.
func (c *cluster) optionHashes(t *testing.T, vol string) map[string]string {
	m := map[string]string{}
	for _, n := range c.nodes {
		h, _ := volStatus(t, n, vol)["options_hash"].(string)
		m[n.name] = h
	}
	return m
}

// divergence compares the volume's options on every node (the options
// Docker stored at create, canonicalized so aliases and spellings do not
// count; secret values never printed) with the first node's and reports
// every difference, one node per paragraph. Empty means consistent.
func (c *cluster) divergence(t *testing.T, vol string) string {
	type view struct {
		name  string
		canon map[string]string
	}
	var views []view
	for _, n := range c.nodes {
		out := n.must(t, "volume", "inspect", "-f", "{{json .Options}}", vol)
		var o map[string]string
		if err := json.Unmarshal([]byte(out), &o); err != nil {
			t.Fatalf("options of %s on %s: %v", vol, n.name, err)
		}
		canon, err := options.Canonical(o)
		if err != nil {
			t.Fatalf("options of %s on %s: %v", vol, n.name, err)
		}
		views = append(views, view{n.name, canon})
	}
	var b strings.Builder
	ref := views[0]
	for _, v := range views[1:] {
		var diffs []string
		keys := slices.Sorted(maps.Keys(ref.canon))
		for k := range v.canon {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			if ref.canon[k] == v.canon[k] {
				continue
			}
			o, ok := options.Lookup(k)
			if !ok || o.Secret {
				diffs = append(diffs, k+" differs (secret, value not shown)")
				continue
			}
			diffs = append(diffs, fmt.Sprintf("%s=%q on %s but %q here", k, ref.canon[k], ref.name, v.canon[k]))
		}
		if len(diffs) > 0 {
			fmt.Fprintf(&b, "volume %s: node %s: %s\n", vol, v.name, strings.Join(diffs, "; "))
		}
	}
	return b.String()
}
