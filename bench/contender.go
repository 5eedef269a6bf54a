package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/sftpfs/sftpfs/internal/mountinfo"
)

// Contender names, also the table columns.
const (
	cSFTPFS = "sftpfs"
	cSSHFS  = "sshfs"
	cRaw    = "raw sftp"
)

// sshfsOptions is sshfs tuned as its users run it for throughput (the
// baseline of issue 5).
const sshfsOptions = "max_read=65536,max_write=65536,kernel_cache"

// mounted is one running FUSE client process serving dir.
type mounted struct {
	name string
	dir  string
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
	// firstStat is how long the first stat of the root took.
	firstStat time.Duration
}

// mountCmd builds the command that mounts remote on dir for contender c.
func (e *env) mountCmd(c, remote, dir string) *exec.Cmd {
	switch c {
	case cSFTPFS:
		opts := fmt.Sprintf("port=%d,identity=%s,known_hosts=%s", e.srv.port, e.srv.keyFile, e.srv.knownHosts)
		if e.cfg.sftpfsOpts != "" {
			opts += "," + e.cfg.sftpfsOpts
		}
		return exec.Command(e.cfg.sftpfsBin, "mount", "-o", opts, "root@127.0.0.1:"+remote, dir)
	case cSSHFS:
		args := []string{"-f", "root@127.0.0.1:" + remote, dir, "-o", e.sshfsOpts()}
		for _, o := range e.srv.sshOptions() {
			if o == "-F" || o == "/dev/null" {
				continue // sshfs takes ssh options only as -o
			}
			if o != "-o" {
				args = append(args, "-o", o)
			}
		}
		args = append(args, "-F", "/dev/null")
		return exec.Command(e.cfg.sshfsBin, args...)
	}
	panic("not a mount contender: " + c)
}

// mount starts contender c on dir and waits until the kernel shows the
// mount.
func (e *env) mount(c, dir string) (*mounted, error) {
	m := &mounted{name: c, dir: dir, out: &bytes.Buffer{}, done: make(chan struct{})}
	m.cmd = e.mountCmd(c, e.remote, dir)
	m.cmd.Stdout, m.cmd.Stderr = m.out, m.out
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start: %w", c, err)
	}
	go func() { _ = m.cmd.Wait(); close(m.done) }()
	deadline := time.Now().Add(20 * time.Second)
	for !mountinfo.IsMounted(dir) {
		select {
		case <-m.done:
			return nil, fmt.Errorf("%s: exited before mounting (%v): %s", c, m.cmd.ProcessState, strings.TrimSpace(m.out.String()))
		default:
		}
		if time.Now().After(deadline) {
			m.unmount()
			return nil, fmt.Errorf("%s: not mounted after 20s: %s", c, strings.TrimSpace(m.out.String()))
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The first request may still wait for the client to finish its
	// setup (sshfs answers it only after its SFTP session is up); that
	// is mount time, not part of any workload.
	t0 := time.Now()
	if _, err := os.Stat(dir); err != nil {
		m.unmount()
		return nil, fmt.Errorf("%s: first stat of the mount: %w", c, err)
	}
	m.firstStat = time.Since(t0)
	return m, nil
}

func (m *mounted) pid() int { return m.cmd.Process.Pid }

// unmount unmounts and waits for the client to exit (both exit when
// their mount goes away); a client that hangs is killed.
func (m *mounted) unmount() error {
	var err error
	for i := 0; i < 50 && mountinfo.IsMounted(m.dir); i++ {
		if err = syscall.Unmount(m.dir, 0); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if mountinfo.IsMounted(m.dir) {
		_ = syscall.Unmount(m.dir, syscall.MNT_DETACH)
	}
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-m.pid(), syscall.SIGKILL)
		<-m.done
		return fmt.Errorf("%s: did not exit after unmount; killed", m.name)
	}
	if err != nil {
		return fmt.Errorf("%s: unmount %s: %w", m.name, m.dir, err)
	}
	return nil
}

// sftpBatch runs OpenSSH's sftp client with the given batch commands and
// returns its wall time and CPU time (sftp plus the ssh it spawns: wait4
// accounts reaped children to their parent).
func (e *env) sftpBatch(batch string) (wall, cpu float64, err error) {
	bf, err := os.CreateTemp(e.work, "batch")
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(bf.Name())
	if _, err := bf.WriteString(batch); err != nil {
		return 0, 0, err
	}
	bf.Close()
	args := append(e.srv.sshOptions(), "-q", "-b", bf.Name(), "root@127.0.0.1")
	cmd := exec.Command(e.cfg.sftpBin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	wall = time.Since(start).Seconds()
	if err != nil {
		return 0, 0, fmt.Errorf("sftp -b (%q): %v: %s", batch, err, strings.TrimSpace(out.String()))
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if ok {
		cpu = tv(ru.Utime) + tv(ru.Stime)
	}
	return wall, cpu, nil
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
