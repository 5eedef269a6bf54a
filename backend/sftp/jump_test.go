package sftp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sftpfs/sftpfs/internal/sshdtest"
)

// jumpConfig is a Config for j.Target through j.Bastion, pinning both
// host keys.
func jumpConfig(j *sshdtest.Jump, dir string) Config {
	c := sshdConfig(j.Target, dir)
	c.KnownHostsFiles = nil
	c.HostKeys = []string{j.Target.HostKeyFingerprint}
	c.JumpHosts = []JumpHost{{Host: j.Bastion.Host, Port: j.Bastion.Port}}
	c.JumpHostKeys = []string{j.Bastion.HostKeyFingerprint}
	c.KeepaliveInterval = time.Second
	c.KeepaliveCountMax = 2
	c.OpTimeout = 5 * time.Second
	return c
}

// establishedTo counts this process's (this namespace's) established TCP
// connections to addr, from /proc/net/tcp.
func establishedTo(t *testing.T, addr string) int {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	ip := net.ParseIP(host).To4()
	p, _ := strconv.Atoi(port)
	want := fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], p)
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) > 3 && f[2] == want && f[3] == "01" {
			n++
		}
	}
	return n
}

// readEventually reads name until it has want, within a minute: after a
// server restart the first operations fail while the chain is redialled.
func readEventually(t *testing.T, b *Backend, name, want string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	var lastErr error
	for time.Now().Before(deadline) {
		f, err := b.OpenFile(context.Background(), name, os.O_RDONLY, 0)
		if err == nil {
			buf := make([]byte, 64)
			n, rerr := f.ReadAt(buf, 0)
			f.Close()
			if string(buf[:n]) == want {
				return
			}
			err = rerr
		}
		lastErr = err
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("reading %s through the jump host never worked again: %v", name, lastErr)
}

// TestProxyJump: a target reachable only through a bastion (both real
// sshds in a network namespace) works through proxy_jump, survives a
// restart of either server, refuses a wrong jump host key naming the hop,
// and Close leaves no connection or goroutine behind.
func TestProxyJump(t *testing.T) {
	j := sshdtest.StartJump(t, sshdtest.Options{})
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "hello"), []byte("through the bastion"), 0o644)

	t.Run("DirectFails", func(t *testing.T) {
		c := jumpConfig(j, dir)
		c.JumpHosts, c.JumpHostKeys = nil, nil
		c.ConnectTimeout = 3 * time.Second
		if b, err := New(context.Background(), c); err == nil {
			b.Close()
			t.Fatal("the target is reachable without the jump host; the test proves nothing")
		}
	})

	t.Run("ReadWriteRestart", func(t *testing.T) {
		goroutines := runtime.NumGoroutine()
		b, err := New(context.Background(), jumpConfig(j, dir))
		if err != nil {
			t.Fatalf("New through %s: %v", j.Bastion.Addr, err)
		}
		readEventually(t, b, "hello", "through the bastion")
		f, err := b.OpenFile(context.Background(), "written", os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte("via jump"), 0); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if got, _ := os.ReadFile(filepath.Join(dir, "written")); string(got) != "via jump" {
			t.Fatalf("server has %q", got)
		}
		if n := establishedTo(t, j.Bastion.Addr); n != 1 {
			t.Errorf("%d connections to the bastion, want 1", n)
		}

		j.Bastion.Restart()
		readEventually(t, b, "hello", "through the bastion")
		j.Target.Restart()
		readEventually(t, b, "hello", "through the bastion")
		if st := b.Status(); st.Reconnects < 2 {
			t.Errorf("Reconnects = %d after two restarts", st.Reconnects)
		}
		if st := b.Status(); st.HostKeyFingerprint != j.Target.HostKeyFingerprint {
			t.Errorf("Status host key %q, want the target's %q", st.HostKeyFingerprint, j.Target.HostKeyFingerprint)
		}

		b.Close()
		deadline := time.Now().Add(10 * time.Second)
		for establishedTo(t, j.Bastion.Addr) != 0 || runtime.NumGoroutine() > goroutines {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Fatalf("after Close: %d connections to the bastion, %d goroutines (before New: %d)\n%s",
					establishedTo(t, j.Bastion.Addr), runtime.NumGoroutine(), goroutines, buf[:runtime.Stack(buf, true)])
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("WrongJumpHostKey", func(t *testing.T) {
		c := jumpConfig(j, dir)
		c.JumpHostKeys = []string{j.Target.HostKeyFingerprint} // the target's, not the bastion's
		_, err := New(context.Background(), c)
		var je *JumpError
		if !errors.As(err, &je) || je.Hop != 1 {
			t.Fatalf("error %v is not a JumpError for hop 1", err)
		}
		for _, w := range []string{"jump host 1 of 1 (" + j.Bastion.Addr + ")", j.Bastion.HostKeyFingerprint, "jump_hostkey"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not mention %q", err, w)
			}
		}
	})

	t.Run("WrongTargetKey", func(t *testing.T) {
		c := jumpConfig(j, dir)
		c.HostKeys = []string{j.Bastion.HostKeyFingerprint}
		_, err := New(context.Background(), c)
		var je *JumpError
		if err == nil || errors.As(err, &je) || !strings.Contains(err.Error(), j.Target.HostKeyFingerprint) || !strings.Contains(err.Error(), "through proxy_jump") {
			t.Fatalf("error %v: want a target host key error naming %s", err, j.Target.HostKeyFingerprint)
		}
	})

	t.Run("TwoHops", func(t *testing.T) {
		// The bastion twice: hop 2 is dialled through hop 1 (to the
		// bastion's own address, which it can reach).
		c := jumpConfig(j, dir)
		c.JumpHosts = append(c.JumpHosts, c.JumpHosts[0])
		b, err := New(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		readEventually(t, b, "hello", "through the bastion")
		b.Close()
		// A wrong user on hop 2 names hop 2.
		c.JumpHosts[1].User = "nobody-such-user"
		_, err = New(context.Background(), c)
		if err == nil || !strings.Contains(err.Error(), "jump host 2 of 2 ("+j.Bastion.Addr+")") {
			t.Fatalf("error %v does not name hop 2", err)
		}
	})

	t.Run("KnownHostsForJump", func(t *testing.T) {
		// One known_hosts file with both servers' lines verifies both.
		kh := filepath.Join(t.TempDir(), "known_hosts")
		a, _ := os.ReadFile(j.Bastion.KnownHostsFile)
		b2, _ := os.ReadFile(j.Target.KnownHostsFile)
		os.WriteFile(kh, append(a, b2...), 0o644)
		c := jumpConfig(j, dir)
		c.HostKeys, c.JumpHostKeys = nil, nil
		c.KnownHostsFiles = []string{kh}
		b, err := New(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		b.Close()
	})
}
