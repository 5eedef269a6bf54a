package soak

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sftpfs/sftpfs/internal/sshdtest"
	"github.com/sftpfs/sftpfs/internal/testenv"
)

// envContainers is the number of busybox containers per volume that write
// through the sftpfs Docker plugin during the soak (default 1; 0 turns
// the container part off).
const envContainers = "SOAK_CONTAINERS"

// containerScript is the body of a soak container (busybox sh). It writes
// files of random size into $SOAK_DIR of its volume with cp (which closes
// the file and checks the close), reads some back, deletes some, and
// appends one journal line per outcome to /j/journal (a host directory,
// not the volume) in the format Verify reads. Each line is one append
// write, so a killed container leaves whole lines. Durations are timed in
// whole seconds; anything above $HANG seconds is recorded as a hang.
// With MAXOPS it stops after that many files (short-lived containers);
// PREFIX keeps their file names apart.
const containerScript = `
j=/j/journal
d=/data/$SOAK_DIR
rec() { echo "$*" >> $j; }
# err OP: the last error line's reason (after the last ": "), one field.
err() { m=$(tail -n 1 /tmp/err | sed 's/.*: //' | tr ' ' _); rec E "container-$1" "${m:-unknown}"; }
slow() { el=$(( $(date +%s) - $2 )); [ $el -gt $HANG ] && rec H "container-$1" $((el*1000)); true; }
mkdir -p /tmp
until t0=$(date +%s); mkdir -p "$d" 2>/tmp/err; do
	slow mkdir $t0; err mkdir
	[ "$(date +%s)" -ge "$UNTIL" ] && exit 0
	sleep 1
done
ops=0; i=0; last=
while [ "$(date +%s)" -lt "$UNTIL" ]; do
	[ -n "$MAXOPS" ] && [ $ops -ge "$MAXOPS" ] && break
	ops=$((ops+1)); i=$((i+1)); f=${PREFIX}f$i
	kb=$((RANDOM % MAXKB + 1))
	dd if=/dev/urandom of=/tmp/src bs=1024 count=$kb 2>/dev/null
	sum=$(sha256sum /tmp/src); sum=${sum%% *}
	t0=$(date +%s)
	if cp /tmp/src "$d/$f" 2>/tmp/err; then
		slow cp $t0
		rec W $f $((kb*1024)) $sum
		if [ $((RANDOM % 2)) = 0 ]; then
			t0=$(date +%s)
			if got=$(sha256sum "$d/$f" 2>/tmp/err); then
				got=${got%% *}
				if [ "$got" = "$sum" ]; then rec V $f $((kb*1024)); else rec C $f "container_read_sha256_${got}_want_${sum}"; fi
			else
				err read
			fi
			slow read $t0
		fi
		if [ -n "$last" ] && [ $((RANDOM % 4)) = 0 ]; then
			t0=$(date +%s)
			if rm "$d/$last" 2>/tmp/err; then rec D $last; else err unlink; rec A $last; fi
			slow unlink $t0
		fi
		last=$f
	else
		# Not acknowledged: whatever is at $f is never checked. Back off
		# a little, as the Go workers do, so outages are not counted at
		# the speed of the loop.
		slow cp $t0
		err cp
		sleep 0.2
	fi
	[ $((ops % 10)) = 0 ] && rec O $ops
done
rec O $ops
`

// dockerSoak is the container part of the soak: the sftpfs plugin
// installed in the local Docker engine with one volume per soak volume
// (through the same fault proxy), and the containers writing through
// them.
type dockerSoak struct {
	t      *testing.T
	plugin string
	image  string
	suffix string
	perVol int
	// volumes are the plugin volumes, one per soak volume, in order.
	volumes []string
	conts   []*soakContainer
	// runErrors counts `docker run` failures (a Mount refused under
	// faults), by message; churned are the short-lived containers that
	// ran (their journals are verified with the others).
	mu        sync.Mutex
	runErrors map[string]int
	churned   []*soakContainer
	churnRuns int
	// churnSlowest is the longest `docker run` of a short-lived one.
	churnSlowest time.Duration
}

type soakContainer struct {
	name, volume    string
	journal, srvDir string
}

func dockerCLI(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

func (d *dockerSoak) must(args ...string) string {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := dockerCLI(ctx, args...)
	if err != nil {
		d.t.Fatal(err)
	}
	return out
}

// startDockerSoak installs the plugin and creates its volumes, or returns
// nil when there is no usable Docker engine (a failure under CI=true).
// Volume i points at vols[i]'s fault proxy and server directory, with the
// same timeouts as the soak's own mounts.
func startDockerSoak(t *testing.T, srv *sshdtest.Server, vols []*volume, opTimeout time.Duration) *dockerSoak {
	perVol := 1
	if v := os.Getenv(envContainers); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			t.Fatalf("%s=%q: want a number of containers per volume (0 turns them off)", envContainers, v)
		}
		perVol = n
	}
	if perVol == 0 {
		t.Logf("containers: off (%s=0)", envContainers)
		return nil
	}
	missing := ""
	if _, err := exec.LookPath("docker"); err != nil {
		missing = "the docker CLI (Debian package docker.io)"
	} else if _, err := dockerCLI(context.Background(), "info"); err != nil {
		missing = "a running Docker engine (`docker info` failed; scripts/deps.sh starts one)"
	} else if _, err := os.Stat("/bin/busybox"); err != nil {
		missing = "/bin/busybox (Debian package busybox-static)"
	}
	if missing != "" {
		if testenv.InCI() {
			t.Fatalf("soak containers need %s (CI=true: a missing requirement is a failure)", missing)
		}
		t.Logf("containers: SKIPPED, missing %s; the soak runs with worker processes only", missing)
		return nil
	}

	d := &dockerSoak{t: t, suffix: strconv.FormatUint(rand.Uint64()%1e6, 36), perVol: perVol, runErrors: map[string]int{}}
	d.plugin = "sftpfs-soak:latest"
	d.image = "sftpfs-soak-busybox-" + d.suffix
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	repo := filepath.Dir(wd)
	build := exec.Command(filepath.Join(repo, "scripts/build-plugin.sh"))
	build.Dir = repo
	build.Env = append(os.Environ(), "PLUGIN_NAME="+d.plugin)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("scripts/build-plugin.sh: %v\n%s", err, out)
	}
	t.Cleanup(func() { dockerCLI(context.Background(), "plugin", "rm", "-f", d.plugin) })

	ctxDir := t.TempDir()
	if out, err := exec.Command("cp", "/bin/busybox", filepath.Join(ctxDir, "busybox")).CombinedOutput(); err != nil {
		t.Fatalf("cp busybox: %v %s", err, out)
	}
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\n"), 0o644)
	d.must("build", "-q", "-t", d.image, ctxDir)
	t.Cleanup(func() { dockerCLI(context.Background(), "rmi", "-f", d.image) })

	id := strings.TrimSpace(d.must("plugin", "inspect", "-f", "{{.Id}}", d.plugin))
	root := strings.TrimSpace(d.must("info", "-f", "{{.DockerRootDir}}"))
	key, err := os.ReadFile(srv.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	secrets := filepath.Join(root, "plugins", id, "propagated-mount", ".secrets", "soak_key")
	if err := os.WriteFile(secrets, key, 0o600); err != nil {
		t.Fatalf("installing the key in the plugin's secrets directory: %v", err)
	}
	t.Cleanup(func() {
		for _, v := range d.volumes {
			if _, err := dockerCLI(context.Background(), "volume", "rm", v); err != nil {
				t.Errorf("removing plugin volume after the soak: %v", err)
				// Forget it in Docker anyway, while the plugin still
				// exists (after it is gone Docker cannot look it up).
				dockerCLI(context.Background(), "volume", "rm", "-f", v)
			}
		}
	})
	for _, v := range vols {
		name := "soak-" + v.name + "-" + d.suffix
		d.must("volume", "create", "-d", d.plugin,
			"-o", "host=127.0.0.1", "-o", "port="+strconv.Itoa(v.px.Port()), "-o", "user="+srv.User,
			"-o", "identity=soak_key", "-o", "hostkey="+srv.HostKeyFingerprint, "-o", "path="+v.serverDir,
			"-o", "op_timeout="+opTimeout.String(), "-o", "connect_timeout="+opTimeout.String(),
			"-o", "keepalive=1s", "-o", "keepalive_count=2", name)
		d.volumes = append(d.volumes, name)
	}
	return d
}

// start runs the containers (docker run -d) until until. Container k of
// volume i works in directory c<k> of the volume and journals to a host
// file under journals.
func (d *dockerSoak) start(vols []*volume, journals string, until time.Time, hangLimit time.Duration, maxFile int) {
	maxKB := max(1, maxFile/8/1024)
	hang := int((hangLimit + time.Second - 1) / time.Second)
	for i, v := range vols {
		for k := range d.perVol {
			c := &soakContainer{
				name:   fmt.Sprintf("soak-%s-c%d-%s", v.name, k, d.suffix),
				volume: d.volumes[i],
				srvDir: filepath.Join(v.serverDir, fmt.Sprintf("c%d", k)),
			}
			jdir := filepath.Join(journals, c.name)
			if err := os.Mkdir(jdir, 0o755); err != nil {
				d.t.Fatal(err)
			}
			c.journal = filepath.Join(jdir, "journal")
			if err := os.WriteFile(c.journal, nil, 0o644); err != nil {
				d.t.Fatal(err)
			}
			d.t.Cleanup(func() { dockerCLI(context.Background(), "rm", "-f", c.name) })
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			out, err := dockerCLI(ctx, "run", "-d", "--name", c.name, "-v", c.volume+":/data", "-v", jdir+":/j",
				"-e", "UNTIL="+strconv.FormatInt(until.Unix(), 10), "-e", "SOAK_DIR="+filepath.Base(c.srvDir),
				"-e", "HANG="+strconv.Itoa(hang), "-e", "MAXKB="+strconv.Itoa(maxKB),
				d.image, "sh", "-c", containerScript)
			cancel()
			if err != nil {
				// The network may already be cut when the soak starts
				// the later containers; Docker's Mount then fails.
				d.countRunError(out)
				continue
			}
			d.conts = append(d.conts, c)
		}
	}
	if len(d.conts) == 0 {
		d.t.Errorf("no soak container started (docker run errors: %v)", d.runErrors)
	}
}

// churnOps is how many files a short-lived container writes.
const churnOps = 3

// churn runs short-lived `docker run --rm` containers one after another on
// random plugin volumes until until, each writing churnOps files into
// directory "churn" of its volume, so that Docker's Mount and Unmount
// calls (a new mount ID each time) reach the plugin while the network is
// faulty. The returned channel is closed when the last one has ended.
func (d *dockerSoak) churn(vols []*volume, journals string, until time.Time, hangLimit time.Duration, maxFile int, seed uint64) <-chan struct{} {
	done := make(chan struct{})
	rng := rand.New(rand.NewPCG(seed, seed^0x5bd1e995))
	maxKB := max(1, maxFile/8/1024)
	hang := int((hangLimit + time.Second - 1) / time.Second)
	// A run writes churnOps files, each bounded by the hang limit, plus
	// the Mount and start; anything slower is a hang.
	runLimit := time.Duration(churnOps+2)*hangLimit + 30*time.Second
	go func() {
		defer close(done)
		for n := 0; time.Now().Before(until); n++ {
			i := rng.IntN(len(vols))
			c := &soakContainer{
				name:   fmt.Sprintf("soak-churn%d-%s", n, d.suffix),
				volume: d.volumes[i],
				srvDir: filepath.Join(vols[i].serverDir, "churn"),
			}
			jdir := filepath.Join(journals, c.name)
			c.journal = filepath.Join(jdir, "journal")
			if err := os.Mkdir(jdir, 0o755); err != nil {
				d.t.Errorf("churn journal: %v", err)
				return
			}
			if err := os.WriteFile(c.journal, nil, 0o644); err != nil {
				d.t.Errorf("churn journal: %v", err)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), runLimit)
			start := time.Now()
			out, err := dockerCLI(ctx, "run", "--rm", "--name", c.name, "-v", c.volume+":/data", "-v", jdir+":/j",
				"-e", "UNTIL="+strconv.FormatInt(until.Add(runLimit).Unix(), 10), "-e", "SOAK_DIR=churn",
				"-e", "MAXOPS="+strconv.Itoa(churnOps), "-e", "PREFIX=r"+strconv.Itoa(n)+"-",
				"-e", "HANG="+strconv.Itoa(hang), "-e", "MAXKB="+strconv.Itoa(maxKB),
				d.image, "sh", "-c", containerScript)
			timedOut := ctx.Err() == context.DeadlineExceeded
			cancel()
			d.mu.Lock()
			d.churnRuns++
			d.churnSlowest = max(d.churnSlowest, time.Since(start))
			d.churned = append(d.churned, c)
			d.mu.Unlock()
			if timedOut {
				d.t.Errorf("short-lived container %s still running after %v: a hang; removing it", c.name, time.Since(start).Round(time.Second))
				dockerCLI(context.Background(), "rm", "-f", c.name)
			} else if err != nil {
				d.countRunError(out)
			}
		}
	}()
	return done
}

// countRunError counts a failed `docker run` by the end of the first
// line of its output (the reason; the CLI adds "See 'docker run --help'").
func (d *dockerSoak) countRunError(out string) {
	msg, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	msg = strings.TrimSuffix(strings.TrimSpace(msg), ".")
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	d.mu.Lock()
	d.runErrors[msg]++
	d.mu.Unlock()
	// A Mount refused with the driver's own error is fine under faults;
	// dockerd giving up on the plugin is not: the driver must answer
	// every request within its budget (MountRequestTimeout), or Docker
	// loses track of what is mounted.
	if strings.Contains(out, "Client.Timeout exceeded") {
		d.t.Errorf("dockerd timed out waiting for the plugin: %s", strings.TrimSpace(out))
	}
}

// wait waits for every container to exit on its own by limit; one still
// running then is a hang (it is killed). A container exiting with an error
// fails the test: the script itself never fails.
func (d *dockerSoak) wait(limit time.Time) {
	for _, c := range d.conts {
		ctx, cancel := context.WithDeadline(context.Background(), limit)
		out, err := dockerCLI(ctx, "wait", c.name)
		cancel()
		if err != nil {
			d.t.Errorf("container %s still running at %s, past the end plus the hang limit: a hang; killing it (%v)", c.name, limit.Format(time.TimeOnly), err)
			dockerCLI(context.Background(), "rm", "-f", c.name)
			continue
		}
		if code := strings.TrimSpace(out); code != "0" {
			logs, _ := dockerCLI(context.Background(), "logs", "--tail", "20", c.name)
			d.t.Errorf("container %s exited with %s: %s", c.name, code, logs)
		}
		dockerCLI(context.Background(), "rm", c.name)
	}
}

// recovered checks within limit that a new container can write and read
// back through each plugin volume now that the network is good.
func (d *dockerSoak) recovered(limit time.Duration) {
	for _, v := range d.volumes {
		deadline := time.Now().Add(limit)
		var last error
		for {
			ctx, cancel := context.WithTimeout(context.Background(), limit)
			want := "probe " + strconv.FormatInt(time.Now().UnixNano(), 10)
			out, err := dockerCLI(ctx, "run", "--rm", "-v", v+":/data", d.image, "sh", "-c",
				"echo '"+want+"' > /data/probe-container && cat /data/probe-container")
			cancel()
			if err == nil && strings.TrimSpace(out) == want {
				break
			}
			if err == nil {
				err = fmt.Errorf("read back %q, want %q", out, want)
			}
			last = err
			if time.Now().After(deadline) {
				d.t.Errorf("plugin volume %s did not recover within %v after the faults stopped: %v", v, limit, last)
				break
			}
			time.Sleep(time.Second)
		}
	}
	// Every container is gone: every Mount Docker made under the faults
	// must have been matched by an Unmount the driver counted.
	for _, v := range d.volumes {
		deadline := time.Now().Add(10 * time.Second)
		for {
			out, err := dockerCLI(context.Background(), "volume", "inspect", "-f", "{{.Status.mounts}}", v)
			if err == nil && strings.TrimSpace(out) == "0" {
				break
			}
			if time.Now().After(deadline) {
				d.t.Errorf("plugin volume %s: with no container left the driver counts %q mounts (%v), want 0", v, strings.TrimSpace(out), err)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// verify checks every container journal against the server and returns
// the containers' own report.
func (d *dockerSoak) verify() Report {
	var r Report
	d.mu.Lock()
	all := append(append([]*soakContainer(nil), d.conts...), d.churned...)
	d.mu.Unlock()
	for _, c := range all {
		if err := Verify(c.journal, c.srvDir, &r); err != nil {
			d.t.Errorf("verify %s: %v", c.journal, err)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for msg, n := range d.runErrors {
		if r.Errors == nil {
			r.Errors = map[string]int{}
		}
		r.Errors["container-start "+strings.ReplaceAll(msg, " ", "_")] += n
	}
	return r
}
