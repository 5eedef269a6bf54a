package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sftpfs/sftpfs/internal/sshdtest"
	"github.com/sftpfs/sftpfs/internal/testenv"

	"github.com/sftpfs/sftpfs/internal/mountinfo"
)

// buildBinary builds this command into a temporary directory. The tests
// run the real binary so that the mount is served by another process:
// exec'ing tools on a mount served by the test process itself deadlocks.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sftpfs")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// isMounted reports whether mp appears in /proc/self/mountinfo.
func isMounted(t *testing.T, mp string) bool {
	t.Helper()
	ps, err := mountinfo.Points()
	if err != nil {
		t.Fatal(err)
	}
	return slices.Contains(ps, mp)
}

// mountProc is a running `sftpfs mount`.
type mountProc struct {
	cmd    *exec.Cmd
	mp     string
	stderr *bytes.Buffer
	exited chan struct{}
	err    error // cmd.Wait's result, valid after exited
}

// startMount runs `sftpfs mount ARGS... MOUNTPOINT` and waits for the
// ready line. Cleanup kills the process and detaches the mount if a test
// left it behind, and fails the test if anything stays mounted.
func startMount(t *testing.T, bin string, mp string, args ...string) *mountProc {
	t.Helper()
	return startMountEnv(t, nil, bin, mp, args...)
}

// startMountEnv is startMount with env added to the environment.
func startMountEnv(t *testing.T, env []string, bin string, mp string, args ...string) *mountProc {
	t.Helper()
	cmd := exec.Command(bin, append(append([]string{"mount"}, args...), mp)...)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &mountProc{cmd: cmd, mp: mp, stderr: &bytes.Buffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
				t.Errorf("more than one line on stdout: %q", sc.Text())
			}
		}
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			// A test that stopped early: unmount cleanly if possible.
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
				<-p.exited
			}
		}
		if isMounted(t, mp) {
			t.Errorf("%s left mounted", mp)
			unix.Unmount(mp, unix.MNT_DETACH)
		}
		if t.Failed() {
			t.Logf("sftpfs stderr:\n%s", p.stderr)
		}
	})
	select {
	case l := <-lines:
		if !strings.HasPrefix(l, "sftpfs: mounted ") || !strings.HasSuffix(l, " on "+mp) {
			t.Fatalf("ready line = %q", l)
		}
	case <-p.exited:
		t.Fatalf("sftpfs mount exited early: %v\n%s", p.err, p.stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("no ready line after 60s\n%s", p.stderr)
	}
	if !isMounted(t, mp) {
		t.Fatalf("ready line printed but %s is not mounted", mp)
	}
	return p
}

// stop sends sig and checks a clean exit (status 0, nothing mounted).
func (p *mountProc) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("sftpfs did not exit within 30s of %v", sig)
	}
	if p.err != nil {
		t.Errorf("exit after %v: %v\n%s", sig, p.err, p.stderr)
	}
	if isMounted(t, p.mp) {
		t.Errorf("%s still mounted after exit", p.mp)
	}
}

// sh runs a command (in dir, if set) and returns its output, failing the
// test on error.
func sh(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	out, err := tryCmd(t, dir, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// tryCmd runs a command and returns its combined output and error.
func tryCmd(t *testing.T, dir string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir(),
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// makeTree creates a small tree with modes, old mtimes, an empty
// directory, a file bigger than one FUSE write and, with symlinks, a
// relative and a dangling symlink.
func makeTree(t *testing.T, dir string, symlinks bool) {
	t.Helper()
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755))
	must(os.Mkdir(filepath.Join(dir, "empty"), 0o700))
	must(os.WriteFile(filepath.Join(dir, "a", "small.txt"), []byte("hello\n"), 0o640))
	must(os.WriteFile(filepath.Join(dir, "a", "b", "exec.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	big := bytes.Repeat([]byte("0123456789abcdef"), 200_000) // 3.2 MB
	must(os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o600))
	if symlinks {
		must(os.Symlink("a/small.txt", filepath.Join(dir, "link")))
		must(os.Symlink("../nowhere", filepath.Join(dir, "a", "dangling")))
	}
	for _, p := range []string{"a/small.txt", "a/b/exec.sh", "big.bin", "a/b", "empty"} {
		must(os.Chtimes(filepath.Join(dir, p), old, old))
	}
}

// compareTrees checks that got has the same entries, types, permission
// bits, mtimes (to the second; directories excluded when skipDirTimes),
// contents and symlink targets as want.
func compareTrees(t *testing.T, want, got string) {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		seen[rel] = true
		wi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		gi, err := os.Lstat(filepath.Join(got, rel))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		if wi.Mode() != gi.Mode() {
			t.Errorf("%s: mode %v, want %v", rel, gi.Mode(), wi.Mode())
		}
		if rel != "." && wi.Mode().Type() != fs.ModeSymlink && !wi.ModTime().Truncate(time.Second).Equal(gi.ModTime().Truncate(time.Second)) {
			t.Errorf("%s: mtime %v, want %v", rel, gi.ModTime(), wi.ModTime())
		}
		switch {
		case wi.Mode().Type() == fs.ModeSymlink:
			wl, _ := os.Readlink(p)
			gl, err := os.Readlink(filepath.Join(got, rel))
			if err != nil || gl != wl {
				t.Errorf("%s: link %q (%v), want %q", rel, gl, err, wl)
			}
		case wi.Mode().IsRegular():
			wb, _ := os.ReadFile(p)
			gb, err := os.ReadFile(filepath.Join(got, rel))
			if err != nil || !bytes.Equal(wb, gb) {
				t.Errorf("%s: content differs (%d vs %d bytes, %v)", rel, len(gb), len(wb), err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(got, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			if rel, _ := filepath.Rel(got, p); !seen[rel] {
				t.Errorf("unexpected %s", rel)
			}
		}
		return nil
	})
}

// exercise runs the file operations and tools every backend must
// support through the mount at mp, whose backing directory is backing.
func exercise(t *testing.T, mp, backing string) {
	// Plain operations.
	p := filepath.Join(mp, "note.txt")
	if err := os.WriteFile(p, []byte("first"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(backing, "note.txt")); err != nil || string(b) != "first" {
		t.Fatalf("backing note.txt = %q, %v", b, err)
	}
	if err := os.Rename(p, filepath.Join(mp, "renamed.txt")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(mp, "renamed.txt")); err != nil || string(b) != "first" {
		t.Fatalf("renamed.txt = %q, %v", b, err)
	}
	if err := os.Remove(filepath.Join(mp, "renamed.txt")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(backing, "renamed.txt")); !os.IsNotExist(err) {
		t.Errorf("removed file still in backing dir: %v", err)
	}
	if err := os.Symlink("target/x", filepath.Join(mp, "sl")); err != nil {
		t.Fatal(err)
	}
	if l, err := os.Readlink(filepath.Join(backing, "sl")); err != nil || l != "target/x" {
		t.Errorf("symlink in backing dir = %q, %v", l, err)
	}

	// cp -a preserves modes, times and symlinks.
	tree := filepath.Join(t.TempDir(), "tree")
	makeTree(t, tree, false)
	sh(t, "", "cp", "-a", tree, filepath.Join(mp, "copy"))
	compareTrees(t, tree, filepath.Join(mp, "copy"))
	compareTrees(t, tree, filepath.Join(backing, "copy"))

	// tar x.
	tarball := filepath.Join(t.TempDir(), "tree.tar")
	sh(t, tree, "tar", "cf", tarball, ".")
	if err := os.Mkdir(filepath.Join(mp, "untar"), 0o755); err != nil {
		t.Fatal(err)
	}
	sh(t, filepath.Join(mp, "untar"), "tar", "xf", tarball)
	compareTrees(t, tree, filepath.Join(mp, "untar"))

	// git init, add, commit, fsck.
	repo := filepath.Join(mp, "repo")
	sh(t, "", "git", "init", "-q", repo)
	if err := os.WriteFile(filepath.Join(repo, "README"), []byte("in a repo on a mount\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sh(t, repo, "git", "add", "README")
	sh(t, repo, "git", "commit", "-q", "-m", "first")
	if out := sh(t, repo, "git", "log", "--format=%s"); strings.TrimSpace(out) != "first" {
		t.Errorf("git log = %q", out)
	}
	sh(t, repo, "git", "fsck", "--strict")
	if out := sh(t, repo, "git", "status", "--porcelain"); out != "" {
		t.Errorf("git status not clean: %q", out)
	}

	// find sees what is there.
	out := sh(t, "", "find", filepath.Join(mp, "copy"), "-type", "f")
	if n := len(strings.Fields(out)); n != 3 {
		t.Errorf("find found %d files, want 3:\n%s", n, out)
	}

	// cp -a and tar x (as root) restore the owner and times of symlinks
	// with lchown/utimensat(AT_SYMLINK_NOFOLLOW); that must work for
	// relative and dangling links too.
	ltree := filepath.Join(t.TempDir(), "ltree")
	makeTree(t, ltree, true)
	if out, err := tryCmd(t, "", "cp", "-a", ltree, filepath.Join(mp, "lcopy")); err != nil {
		t.Errorf("cp -a of a tree with symlinks: %v\n%s", err, out)
	} else {
		compareTrees(t, ltree, filepath.Join(mp, "lcopy"))
	}
	ltar := filepath.Join(t.TempDir(), "ltree.tar")
	sh(t, ltree, "tar", "cf", ltar, ".")
	if err := os.Mkdir(filepath.Join(mp, "luntar"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := tryCmd(t, filepath.Join(mp, "luntar"), "tar", "xf", ltar); err != nil {
		t.Errorf("tar x of a tree with symlinks: %v\n%s", err, out)
	} else {
		compareTrees(t, ltree, filepath.Join(mp, "luntar"))
	}

	// rm -rf removes everything, also on the backing side.
	sh(t, "", "rm", "-rf", filepath.Join(mp, "copy"), filepath.Join(mp, "untar"), filepath.Join(mp, "lcopy"), filepath.Join(mp, "luntar"))
	for _, d := range []string{"copy", "untar", "lcopy", "luntar"} {
		if _, err := os.Lstat(filepath.Join(backing, d)); !os.IsNotExist(err) {
			t.Errorf("%s still in backing dir after rm -rf: %v", d, err)
		}
	}
}

func TestMountLocal(t *testing.T) {
	testenv.RequireFUSE(t)
	testenv.LookPath(t, "git")
	testenv.LookPath(t, "tar")
	bin := buildBinary(t)
	src, mp := t.TempDir(), t.TempDir()
	p := startMount(t, bin, mp, "local:"+src)
	exercise(t, mp, src)
	p.stop(t, syscall.SIGTERM)
}

func TestMountSFTP(t *testing.T) {
	testenv.RequireFUSE(t)
	testenv.LookPath(t, "git")
	srv := sshdtest.Start(t, sshdtest.Options{})
	bin := buildBinary(t)
	remote, mp := t.TempDir(), t.TempDir()
	p := startMount(t, bin, mp,
		"-o", "identity="+srv.KeyFile+",known_hosts="+srv.KnownHostsFile,
		"-o", "port="+strconv.Itoa(srv.Port),
		srv.User+"@"+srv.Host+":"+remote)
	exercise(t, mp, remote)

	// git clone of a local repository onto the mount.
	origin := filepath.Join(t.TempDir(), "origin")
	sh(t, "", "git", "init", "-q", origin)
	for i := range 3 {
		if err := os.WriteFile(filepath.Join(origin, fmt.Sprintf("f%d", i)), bytes.Repeat([]byte{byte('a' + i)}, 100_000*(i+1)), 0o644); err != nil {
			t.Fatal(err)
		}
		sh(t, origin, "git", "add", ".")
		sh(t, origin, "git", "commit", "-q", "-m", fmt.Sprintf("commit %d", i))
	}
	sh(t, "", "git", "clone", "-q", origin, filepath.Join(mp, "clone"))
	sh(t, filepath.Join(mp, "clone"), "git", "fsck", "--strict")
	if out := sh(t, filepath.Join(mp, "clone"), "git", "log", "--format=%s"); strings.Fields(out)[0] != "commit" || strings.Count(out, "\n") != 3 {
		t.Errorf("git log in clone = %q", out)
	}
	if b, err := os.ReadFile(filepath.Join(remote, "clone", "f2")); err != nil || len(b) != 300_000 {
		t.Errorf("cloned file on the server: %d bytes, %v", len(b), err)
	}
	p.stop(t, syscall.SIGINT)
}

// TestMountErrors: usage and option errors exit 2 with a message naming
// the problem, and never echo a secret.
func TestMountErrors(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"mount"}, 2, "want SOURCE and MOUNTPOINT"},
		{[]string{"mount", "-o", "hots=x,password=s3cr3t", "h:/p", dir}, 2, `did you mean "host"`},
		{[]string{"mount", "-o", "kernel_cache", "h:/p", dir}, 2, "attr_timeout"},
		{[]string{"h:/p", dir, "-o", "ProxyCommand=ssh -W %h:%p jump"}, 2, "ProxyJump"},
		{[]string{"h:/p", dir, "-o", "dev,suid,nofail,idmap=file"}, 2, "idmap=user"},
		{[]string{"mount", "-o", "port=0", "h:/p", dir}, 2, `"port"`},
		{[]string{"mount", "-x", "h:/p", dir}, 2, `unknown flag "-x"`},
		{[]string{"mount", "-o", "host=other", "h:/p", dir}, 2, "remove -o host"},
		{[]string{"mount", "justahost", dir}, 2, "neither"},
		{[]string{"mount", "local:" + dir, filepath.Join(dir, "missing")}, 1, "existing directory"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{}, 2, "usage"},
	} {
		cmd := exec.Command(bin, tc.args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code || !strings.Contains(out.String(), tc.want) {
			t.Errorf("sftpfs %q: exit %d, output %q; want exit %d and %q", tc.args, code, out.String(), tc.code, tc.want)
		}
		if strings.Contains(out.String(), "s3cr3t") {
			t.Errorf("sftpfs %q leaks the password: %q", tc.args, out.String())
		}
	}
}

func TestVersionAndHelp(t *testing.T) {
	bin := buildBinary(t)
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "sftpfs ") {
		t.Errorf("version: %q %v", out, err)
	}
	out, err = exec.Command(bin, "help").Output()
	if err != nil || !strings.Contains(string(out), "hostkey=") || !strings.Contains(string(out), "sftpfs mount") {
		t.Errorf("help: %v\n%s", err, out)
	}
	// -X main.version reaches the output.
	v := filepath.Join(t.TempDir(), "v")
	if b, err := exec.Command("go", "build", "-ldflags", "-X main.version=9.9.9-test", "-o", v, ".").CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if out, _ := exec.Command(v, "version").Output(); !strings.HasPrefix(string(out), "sftpfs 9.9.9-test ") {
		t.Errorf("version with ldflags = %q", out)
	}
}

// TestMountBusyExit: SIGTERM while a file on the mount is open still
// exits 0 and frees the mountpoint (the mount is detached lazily).
func TestMountBusyExit(t *testing.T) {
	testenv.RequireFUSE(t)
	bin := buildBinary(t)
	src, mp := t.TempDir(), t.TempDir()
	p := startMount(t, bin, mp, src)
	f, err := os.Create(filepath.Join(mp, "held-open"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cwd := exec.Command("sleep", "60")
	cwd.Dir = mp // a process whose working directory is the mount
	if err := cwd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cwd.Process.Kill(); cwd.Wait() }()
	p.stop(t, syscall.SIGTERM)
}

// TestMountSFTPFailures: a server that cannot be trusted or reached makes
// `sftpfs mount` exit 1 with a message that says what is wrong.
func TestMountSFTPFailures(t *testing.T) {
	testenv.RequireFUSE(t)
	srv := sshdtest.Start(t, sshdtest.Options{})
	bin := buildBinary(t)
	mp := t.TempDir()
	closed := func() string { // a port nobody listens on
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	}()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"wrong pinned key", []string{"-o", "identity=" + srv.KeyFile + ",port=" + strconv.Itoa(srv.Port) + ",hostkey=SHA256:" + strings.Repeat("A", 43)}, "host key"},
		{"unreachable", []string{"-o", "identity=" + srv.KeyFile + ",port=" + closed + ",hostkey=" + srv.HostKeyFingerprint + ",connect_timeout=5s"}, "refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, append(append([]string{"mount"}, tc.args...), srv.User+"@"+srv.Host+":/", mp)...)
			out, err := cmd.CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 1 {
				t.Fatalf("exit: %v, want status 1\n%s", err, out)
			}
			if !strings.Contains(strings.ToLower(string(out)), tc.want) {
				t.Errorf("output does not mention %q:\n%s", tc.want, out)
			}
			if isMounted(t, mp) {
				t.Errorf("%s mounted after a failed mount", mp)
			}
		})
	}
}
