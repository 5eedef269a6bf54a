package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/pem"
	"fmt"
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

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/sftpfs/sftpfs/internal/mountinfo"
	"github.com/sftpfs/sftpfs/internal/sshdtest"
	"github.com/sftpfs/sftpfs/internal/testenv"
)

// tempHome makes a HOME with ~/.ssh (0700) holding a copy of the
// server's client key as ~/.ssh/id_test, and a known_hosts file for the
// server as ~/.ssh/kh_test, and returns it.
func tempHome(t *testing.T, srv *sshdtest.Server) string {
	t.Helper()
	home := t.TempDir()
	if err := os.Mkdir(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{srv.KeyFile: "id_test", srv.KnownHostsFile: "kh_test"} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, ".ssh", dst), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return home
}

// runBin runs bin with args and env added, and returns its combined
// output and exit status.
func runBin(t *testing.T, env []string, bin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return out.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), 0
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("%s %q did not return within 90s\n%s", bin, args, out.String())
		return "", -1
	}
}

// mountPID finds the process serving mp: the one running bin with mp
// among its arguments.
func mountPID(t *testing.T, bin, mp string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); exe != bin {
			continue
		}
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if slices.Contains(strings.Split(string(b), "\x00"), mp) {
			return pid
		}
	}
	return 0
}

// watchBackground registers a cleanup for a background mount on mp:
// it unmounts if a test left it mounted and makes sure the serving
// process is gone.
func watchBackground(t *testing.T, bin, mp string) {
	t.Cleanup(func() {
		if isMounted(t, mp) {
			t.Errorf("%s left mounted", mp)
			if out, err := exec.Command("umount", mp).CombinedOutput(); err != nil {
				t.Logf("umount %s: %v %s", mp, err, out)
				unix.Unmount(mp, unix.MNT_DETACH)
			}
		}
		deadline := time.Now().Add(15 * time.Second)
		for pid := mountPID(t, bin, mp); pid != 0; pid = mountPID(t, bin, mp) {
			if time.Now().After(deadline) {
				t.Errorf("sftpfs (pid %d) still runs after its mount is gone", pid)
				syscall.Kill(pid, syscall.SIGKILL)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// checkServed checks that mp is a FUSE mount right now, without waiting,
// and that it shows the server's file hello.txt.
func checkServed(t *testing.T, mp, remote string) {
	t.Helper()
	ms, err := mountinfo.Read()
	if err != nil {
		t.Fatal(err)
	}
	fstype := ""
	for _, m := range ms {
		if m.Mountpoint == mp {
			fstype = m.FSType
		}
	}
	if !strings.HasPrefix(fstype, "fuse") {
		t.Fatalf("%s is not a FUSE mount right after the mount command returned (type %q)", mp, fstype)
	}
	want, err := os.ReadFile(filepath.Join(remote, "hello.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(mp, "hello.txt")); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("hello.txt on the mount: %q, %v; want %q", got, err, want)
	}
}

// newRemote makes a server directory with hello.txt.
func newRemote(t *testing.T) string {
	t.Helper()
	remote := t.TempDir()
	if err := os.WriteFile(filepath.Join(remote, "hello.txt"), []byte("hello "+t.Name()), 0o644); err != nil {
		t.Fatal(err)
	}
	return remote
}

// TestMountSSHConfig: `sftpfs mount ALIAS:/path` uses ~/.ssh/config
// (HostName, Port, User, IdentityFile, UserKnownHostsFile), -F FILE
// names another file, an explicit option beats the file, ProxyCommand is
// refused with what to use. The foreground mount tells systemd it is
// ready and survives SIGHUP.
func TestMountSSHConfig(t *testing.T) {
	testenv.RequireFUSE(t)
	srv := sshdtest.Start(t, sshdtest.Options{})
	bin := buildBinary(t)
	home := tempHome(t, srv)
	remote := newRemote(t)
	closed := func() int { // a port nobody listens on
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}()
	config := fmt.Sprintf(`Host myalias
  HostName 127.0.0.1
  Port %d
  User %s
  IdentityFile ~/.ssh/id_test
  UserKnownHostsFile ~/.ssh/kh_test

Host wrongport
  HostName 127.0.0.1
  Port %d
  User %s
  IdentityFile %%d/.ssh/id_test
  UserKnownHostsFile ~/.ssh/kh_test

Host viaproxy
  HostName 127.0.0.1
  ProxyCommand ssh -W %%h:%%p jump
`, srv.Port, srv.User, closed, srv.User)
	if err := os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + home, "SSH_AUTH_SOCK="}

	t.Run("alias", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "notify")
		l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		mp := t.TempDir()
		p := startMountEnv(t, append(env, "NOTIFY_SOCKET="+sock), bin, mp, "myalias:"+remote)
		buf := make([]byte, 64)
		l.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := l.Read(buf); err != nil || string(buf[:n]) != "READY=1" {
			t.Errorf("NOTIFY_SOCKET got %q, %v; want READY=1", buf[:n], err)
		}
		checkServed(t, mp, remote)
		// SIGHUP neither kills the process nor the mount.
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		select {
		case <-p.exited:
			t.Fatalf("sftpfs exited on SIGHUP: %v\n%s", p.err, p.stderr)
		default:
		}
		if err := os.WriteFile(filepath.Join(mp, "after-hup"), []byte("x"), 0o644); err != nil {
			t.Errorf("write after SIGHUP: %v", err)
		}
		if _, err := os.Stat(filepath.Join(remote, "after-hup")); err != nil {
			t.Errorf("written file not on the server: %v", err)
		}
		p.stop(t, syscall.SIGTERM)
	})
	t.Run("explicit beats config", func(t *testing.T) {
		// The file says a closed port; -p says the server's.
		mp := t.TempDir()
		p := startMountEnv(t, env, bin, mp, "-p", strconv.Itoa(srv.Port), "wrongport:"+remote)
		checkServed(t, mp, remote)
		p.stop(t, syscall.SIGTERM)
		// Without -p the file's port is used, and refused.
		out, code := runBin(t, env, bin, "mount", "-o", "connect_timeout=5s", "wrongport:"+remote, mp)
		if code != 1 || !strings.Contains(out, "refused") {
			t.Errorf("port from the file: exit %d, %s", code, out)
		}
	})
	t.Run("-F FILE", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "cfg")
		c := strings.ReplaceAll(config, "Host myalias", "Host otheralias")
		if err := os.WriteFile(other, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
		mp := t.TempDir()
		p := startMountEnv(t, env, bin, mp, "-F", other, "otheralias:"+remote)
		checkServed(t, mp, remote)
		p.stop(t, syscall.SIGTERM)
		// -F none: ~/.ssh/config is not read, so myalias is just a
		// host name, which does not resolve.
		out, code := runBin(t, env, bin, "mount", "-F", "none", "-o", "connect_timeout=5s,identity="+srv.KeyFile+",known_hosts="+srv.KnownHostsFile, "myalias:"+remote, mp)
		if code != 1 || !strings.Contains(out, "myalias") || isMounted(t, mp) {
			t.Errorf("-F none: exit %d, %s", code, out)
		}
	})
	t.Run("ProxyCommand", func(t *testing.T) {
		out, code := runBin(t, env, bin, "mount", "viaproxy:/", t.TempDir())
		if code != 2 || !strings.Contains(out, "ProxyCommand is not supported") || !strings.Contains(out, "ProxyJump") {
			t.Errorf("exit %d, %s", code, out)
		}
	})
}

// otherKey writes an ed25519 private key the server does not know.
func otherKey(t *testing.T) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "other_key")
	if err := os.WriteFile(p, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSSHFSForm: the sshfs command line `sftpfs HOST:PATH MNT -p PORT -o
// sshfs-options` goes to the background and returns only once the mount
// is usable, fails with the error when the server refuses, survives
// SIGHUP, and ends when unmounted with umount.
func TestSSHFSForm(t *testing.T) {
	testenv.RequireFUSE(t)
	srv := sshdtest.Start(t, sshdtest.Options{})
	bin := buildBinary(t)
	home := tempHome(t, srv)
	env := []string{"HOME=" + home, "SSH_AUTH_SOCK="}
	remote := newRemote(t)
	if err := os.Chown(filepath.Join(remote, "hello.txt"), 4321, 4321); err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(srv.Port)

	mp := t.TempDir()
	watchBackground(t, bin, mp)
	out, code := runBin(t, env, bin, srv.User+"@"+srv.Host+":"+remote, mp, "-p", port,
		"-o", "IdentityFile="+srv.KeyFile+",UserKnownHostsFile="+srv.KnownHostsFile+",reconnect,ServerAliveInterval=15,ServerAliveCountMax=3,idmap=user,ConnectTimeout=10,connect_timeout=10s")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	checkServed(t, mp, remote)
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(mp, "hello.txt"), &st); err != nil || int(st.Uid) != os.Getuid() || int(st.Gid) != os.Getgid() {
		t.Errorf("idmap=user: owner %d:%d, %v; want %d:%d", st.Uid, st.Gid, err, os.Getuid(), os.Getgid())
	}
	pid := mountPID(t, bin, mp)
	if pid == 0 {
		t.Fatal("no background process serves the mount")
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if mountPID(t, bin, mp) != pid {
		t.Fatal("the background process died on SIGHUP")
	}
	checkServed(t, mp, remote)
	if out, err := exec.Command("umount", mp).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v %s", err, out)
	}

	t.Run("server refuses", func(t *testing.T) {
		mp := t.TempDir()
		watchBackground(t, bin, mp)
		start := time.Now()
		out, code := runBin(t, env, bin, srv.User+"@"+srv.Host+":"+remote, mp, "-p", port,
			"-o", "IdentityFile="+otherKey(t)+",UserKnownHostsFile="+srv.KnownHostsFile)
		if code == 0 || !strings.Contains(out, "authentication as user") {
			t.Errorf("exit %d after %v, output %q; want non-zero and the authentication error", code, time.Since(start), out)
		}
		if isMounted(t, mp) {
			t.Error("mounted after a refused login")
		}
	})
	t.Run("interrupted", func(t *testing.T) {
		// A server that accepts and never answers: Ctrl-C (SIGINT to
		// the waiting parent) must stop the background child too.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
			}
		}()
		mp := t.TempDir()
		watchBackground(t, bin, mp)
		cmd := exec.Command(bin, srv.User+"@127.0.0.1:/", mp, "-p", strconv.Itoa(l.Addr().(*net.TCPAddr).Port),
			"-o", "IdentityFile="+srv.KeyFile+",UserKnownHostsFile="+srv.KnownHostsFile+",connect_timeout=60s")
		cmd.Env = append(os.Environ(), env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		cmd.Process.Signal(syscall.SIGINT)
		start := time.Now()
		err = cmd.Wait()
		if err == nil || time.Since(start) > 10*time.Second || !strings.Contains(out.String(), "interrupted") {
			t.Errorf("after SIGINT: %v after %v, output %q; want a quick failure saying interrupted", err, time.Since(start), out.String())
		}
		if pid := mountPID(t, bin, mp); pid != 0 {
			time.Sleep(time.Second)
			if mountPID(t, bin, mp) != 0 {
				t.Errorf("background child (pid %d) still runs", pid)
			}
		}
	})
	t.Run("foreground", func(t *testing.T) {
		// -f keeps the sshfs form attached, printing the ready line.
		mp := t.TempDir()
		cmd := exec.Command(bin, srv.User+"@"+srv.Host+":"+remote, mp, "-f", "-p", port, "-o", "IdentityFile="+srv.KeyFile+",UserKnownHostsFile="+srv.KnownHostsFile)
		cmd.Env = append(os.Environ(), env...)
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line := make([]byte, 200)
		n, _ := stdout.Read(line)
		if !strings.HasPrefix(string(line[:n]), "sftpfs: mounted ") {
			t.Errorf("ready line %q", line[:n])
		}
		checkServed(t, mp, remote)
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil || isMounted(t, mp) {
			t.Errorf("after SIGTERM: %v, mounted %v", err, isMounted(t, mp))
		}
	})
}

// TestAcceptNew: StrictHostKeyChecking=accept-new records a first-seen
// key as OpenSSH does ([host]:port off port 22) in the user's
// known_hosts and mounts; the recorded key then works without the
// option; a changed key is refused and not recorded.
func TestAcceptNew(t *testing.T) {
	testenv.RequireFUSE(t)
	srv := sshdtest.Start(t, sshdtest.Options{})
	bin := buildBinary(t)
	home := t.TempDir() // no ~/.ssh at all
	env := []string{"HOME=" + home, "SSH_AUTH_SOCK="}
	remote := newRemote(t)
	src := srv.User + "@" + srv.Host + ":" + remote
	port := strconv.Itoa(srv.Port)
	kh := filepath.Join(home, ".ssh", "known_hosts")

	mp := t.TempDir()
	p := startMountEnv(t, env, bin, mp, "-p", port, "-o", "IdentityFile="+srv.KeyFile+",StrictHostKeyChecking=accept-new", src)
	checkServed(t, mp, remote)
	p.stop(t, syscall.SIGTERM)
	b, err := os.ReadFile(kh)
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(srv.HostKeyLine) // "[127.0.0.1]:PORT type key"
	want := "[127.0.0.1]:" + port + " " + fields[1] + " " + fields[2] + "\n"
	if string(b) != want {
		t.Errorf("known_hosts = %q, want %q", b, want)
	}
	if st, err := os.Stat(kh); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("known_hosts mode: %v %v", st.Mode(), err)
	}

	// The recorded key is enough on its own (default known_hosts).
	p = startMountEnv(t, env, bin, mp, "-p", port, "-o", "IdentityFile="+srv.KeyFile, src)
	checkServed(t, mp, remote)
	p.stop(t, syscall.SIGTERM)

	// A changed key: accept-new does not overwrite it, the mount fails.
	_, priv, _ := ed25519.GenerateKey(nil)
	signer, _ := ssh.NewSignerFromKey(priv)
	changed := "[127.0.0.1]:" + port + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + "\n"
	if err := os.WriteFile(kh, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := runBin(t, env, bin, "mount", "-p", port, "-o", "IdentityFile="+srv.KeyFile+",StrictHostKeyChecking=accept-new", src, mp)
	if code != 1 || !strings.Contains(strings.ToLower(out), "host key") {
		t.Errorf("changed key: exit %d, %s", code, out)
	}
	if b, _ := os.ReadFile(kh); string(b) != changed {
		t.Errorf("known_hosts changed to %q", b)
	}
	if isMounted(t, mp) {
		t.Error("mounted with a changed host key")
	}
}

// helperType installs bin under a unique name in /usr/local/sbin (on the
// PATH that mount(8) gives helpers) and returns the name: `mount -t
// fuse.NAME` then runs it through mount.fuse3, as `mount -t fuse.sftpfs`
// runs an installed sftpfs.
func helperType(t *testing.T, bin string) string {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.LookPath(t, "mount.fuse3")
	name := fmt.Sprintf("sftpfs-test-%d", os.Getpid())
	link := filepath.Join("/usr/local/sbin", name)
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(link) })
	return name
}

// TestMountHelper: `mount -t fuse.sftpfs SOURCE MNT -o ...` and an fstab
// line (`mount -T FSTAB MNT`) with mount(8)'s and systemd's options; the
// mount is usable as soon as mount returns, umount ends it, and a
// refused login makes mount fail with the reason.
func TestMountHelper(t *testing.T) {
	testenv.RequireFUSE(t)
	srv := sshdtest.Start(t, sshdtest.Options{})
	bin := buildBinary(t)
	typ := helperType(t, bin)
	home := tempHome(t, srv)
	env := []string{"HOME=" + home, "SSH_AUTH_SOCK="}
	remote := newRemote(t)
	src := srv.User + "@" + srv.Host + ":" + remote
	auth := "port=" + strconv.Itoa(srv.Port) + ",IdentityFile=" + srv.KeyFile + ",UserKnownHostsFile=" + srv.KnownHostsFile

	mount := func(t *testing.T, args ...string) (string, int) {
		t.Helper()
		return runBin(t, env, "/usr/bin/mount", args...)
	}
	umount := func(t *testing.T, mp string) {
		t.Helper()
		if out, err := exec.Command("umount", mp).CombinedOutput(); err != nil {
			t.Fatalf("umount: %v %s", err, out)
		}
	}
	t.Run("mount -t", func(t *testing.T) {
		mp := t.TempDir()
		watchBackground(t, bin, mp)
		out, code := mount(t, "-t", "fuse."+typ, src, mp, "-o", auth+",_netdev,nofail,x-systemd.automount,rw,nodev,nosuid,comment=x")
		if code != 0 {
			t.Fatalf("mount: exit %d, %s", code, out)
		}
		checkServed(t, mp, remote)
		umount(t, mp)
	})
	t.Run("fstab", func(t *testing.T) {
		mp := t.TempDir()
		watchBackground(t, bin, mp)
		fstab := filepath.Join(t.TempDir(), "fstab")
		// "user" makes mount(8) add noexec,nosuid,nodev; "defaults"
		// makes mount.fuse3 pass dev,suid.
		line := fmt.Sprintf("%s %s fuse.%s defaults,_netdev,nofail,noauto,user,x-systemd.automount,x-systemd.idle-timeout=600,allow_other,%s 0 0\n", src, mp, typ, auth)
		if err := os.WriteFile(fstab, []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
		out, code := mount(t, "-T", fstab, mp)
		if code != 0 {
			t.Fatalf("mount -T: exit %d, %s", code, out)
		}
		checkServed(t, mp, remote)
		var sfs unix.Statfs_t
		if err := unix.Statfs(mp, &sfs); err != nil || sfs.Flags&unix.ST_NOEXEC == 0 || sfs.Flags&unix.ST_NOSUID == 0 || sfs.Flags&unix.ST_NODEV == 0 {
			t.Errorf("fstab \"user\" implies noexec (and sftpfs keeps nosuid,nodev); statfs flags %#x, %v", sfs.Flags, err)
		}
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		for _, l := range strings.Split(string(mi), "\n") {
			if f := strings.Fields(l); len(f) > 4 && f[4] == mp && !strings.Contains(l, "allow_other") {
				t.Errorf("allow_other from fstab not applied: %s", l)
			}
		}
		umount(t, mp)
	})
	t.Run("refused", func(t *testing.T) {
		mp := t.TempDir()
		watchBackground(t, bin, mp)
		out, code := mount(t, "-t", "fuse."+typ, src, mp, "-o", "port="+strconv.Itoa(srv.Port)+",IdentityFile="+otherKey(t)+",UserKnownHostsFile="+srv.KnownHostsFile)
		if code == 0 || !strings.Contains(out, "authentication as user") {
			t.Errorf("mount with an unknown key: exit %d, %q", code, out)
		}
		if isMounted(t, mp) {
			t.Error("mounted after a refused login")
		}
	})
}
