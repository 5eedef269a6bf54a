package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/crypto/ssh"

	"github.com/sftpfs/sftpfs/backend/metered"
	"github.com/sftpfs/sftpfs/internal/admin"
	"github.com/sftpfs/sftpfs/internal/mountinfo"
	"github.com/sftpfs/sftpfs/internal/sdnotify"
	"github.com/sftpfs/sftpfs/mounter"
	"github.com/sftpfs/sftpfs/options"
	"github.com/sftpfs/sftpfs/sshcompat"
)

const mountUsage = `usage: sftpfs mount [flags] [-o name=value[,name=value...]]... SOURCE MOUNTPOINT
       sftpfs SOURCE MOUNTPOINT [flags] [-o ...]      (sshfs and mount.fuse3 form)

SOURCE is [user@]host:[path] for SFTP, where host may be a Host alias of
~/.ssh/config, or local:/dir (or an absolute directory) to serve a local
directory. Flags and options may come before or after SOURCE and
MOUNTPOINT. Inside an -o value write \, for a comma (or repeat -o for list
options). sshfs, ssh and mount(8) option names are accepted where they mean
something here (README "Coming from sshfs").

flags:
  -o OPTS   options, comma-separated
  -p PORT   SSH port (as -o port=PORT)
  -F FILE   ssh_config file instead of ~/.ssh/config; -F none reads none
  -f        stay in the foreground
  -d        debug logging; implies -f

sftpfs mount stays in the foreground, prints one line when the mount is
ready, and unmounts on SIGINT or SIGTERM. The sshfs form goes to the
background once the mount is ready and exits 0 (non-zero with the error
otherwise), as mount(8) expects. SIGHUP is ignored: options are fixed at
mount time and keys are re-read on every reconnect anyway.
`

// readyFDEnv names the file descriptor on which a background child
// reports to its parent: everything written before the final readyByte is
// output for the user; readyByte means mounted.
const (
	readyFDEnv = "SFTPFS_READY_FD"
	readyByte  = 0
)

// localEnv describes the user running the command.
func localEnv() sshcompat.Local {
	l := sshcompat.Local{UID: os.Getuid(), GID: os.Getgid()}
	l.Home, _ = os.UserHomeDir()
	if u, err := user.Current(); err == nil {
		l.User = u.Username
		if l.Home == "" {
			// mount(8) and systemd may run us without $HOME.
			l.Home = u.HomeDir
		}
	}
	l.Hostname, _ = os.Hostname()
	return l
}

// cliEnv is the options environment of the current user.
func cliEnv(l sshcompat.Local) options.Env {
	env := options.Env{Scope: options.ScopeCLI, AgentSocket: os.Getenv("SSH_AUTH_SOCK"), Home: l.Home, DefaultUser: l.User,
		SystemKnownHosts: "/etc/ssh/ssh_known_hosts"}
	if wd, err := os.Getwd(); err == nil {
		env.BaseDir = wd
	}
	return env
}

// runMount is `sftpfs mount`: foreground unless asked otherwise.
func runMount(args []string, stdout, stderr io.Writer) int {
	return mountMain([]string{"mount"}, args, false, stdout, stderr)
}

// runHelper is the sshfs / mount.fuse3 form `sftpfs SOURCE MOUNTPOINT`:
// background by default.
func runHelper(args []string, stdout, stderr io.Writer) int {
	return mountMain(nil, args, true, stdout, stderr)
}

// mountMain mounts. prefix is the subcommand (for re-executing self);
// background says whether to detach once mounted unless -f or -d.
func mountMain(prefix, args []string, background bool, stdout, stderr io.Writer) int {
	tuneGC(os.Getenv)
	// SIGHUP (a closed terminal, or `systemctl reload`) must never take
	// a mount down and leave "Transport endpoint is not connected":
	// caught from the start, including while connecting, and ignored.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	// A background child reports through the ready pipe until mounted.
	var ready *os.File
	if fd := os.Getenv(readyFDEnv); fd != "" {
		n, err := strconv.Atoi(fd)
		if err != nil {
			fmt.Fprintf(stderr, "sftpfs: bad %s=%q\n", readyFDEnv, fd)
			return 1
		}
		ready = os.NewFile(uintptr(n), "ready")
		os.Unsetenv(readyFDEnv)
		stderr = ready
		background = false
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "sftpfs: "+format+"\n", a...)
		return code
	}
	a, help, err := sshcompat.ParseArgs(args)
	if help {
		fmt.Fprint(stdout, mountUsage+"\nRun `sftpfs help` for all options.\n")
		return 0
	}
	if err != nil {
		return fail(2, "%v\n\n%s", err, mountUsage)
	}
	local := localEnv()
	res, err := sshcompat.Resolve(a, local)
	if err != nil {
		return fail(2, "%v", err)
	}
	if res.AcceptNew {
		if err := sshcompat.PrepareKnownHosts(res.KnownHosts); err != nil {
			return fail(1, "StrictHostKeyChecking=accept-new: %v", err)
		}
	}
	cfg, err := options.Parse(res.Opts, cliEnv(local))
	if err != nil {
		return fail(2, "%v", err)
	}
	if res.Debug {
		cfg.LogLevel = slog.LevelDebug
	}
	// The level can change at run time (PUT /loglevel on -o metrics).
	levelVar := new(slog.LevelVar)
	levelVar.Set(cfg.LogLevel)
	newLog := func(w io.Writer) *slog.Logger { return levelLogger(w, levelVar) }
	mp, err := filepath.Abs(a.Mountpoint)
	if err != nil {
		return fail(2, "mountpoint %q: %v", a.Mountpoint, err)
	}
	// Checked in the mount table first: a stat of a path with a dead
	// FUSE mount on it fails with a confusing ENOTCONN, and with a
	// wedged one it hangs.
	if fstype := fuseMountedOn(mp); fstype != "" {
		return fail(1, "mountpoint %s already has a FUSE filesystem (%s) mounted on it, perhaps from an sftpfs mount that crashed; "+
			"unmount it first (fusermount -u %s, or umount -l %s as root)", mp, fstype, mp, mp)
	}
	if st, err := os.Stat(mp); err != nil || !st.IsDir() {
		return fail(1, "mountpoint %s must be an existing directory", mp)
	}
	if background && !res.Foreground {
		return detach(append(prefix, args...), stdout, stderr)
	}

	log := newLog(stderr)
	for _, w := range append(res.Warnings, cfg.Warnings...) {
		log.Warn(w)
	}

	// Signals are delivered to both: sigs for the wait below, ctx to
	// abort connecting (up to connect_timeout) when one arrives early.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	if res.AcceptNew && cfg.Backend == options.BackendSFTP {
		if err := acceptNew(ctx, cfg, res, log); err != nil {
			stop()
			return fail(1, "%v", err)
		}
	}
	// This process only serves the mount; it never opens files in it.
	cfg.FS.ServeOnly = true
	obs := mounter.Observe{Log: log, Name: mp}
	if cfg.MetricsAddr != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		obs.Metrics = metered.New(reg)
		srv, err := admin.Listen(cfg.MetricsAddr, admin.Handler(reg, levelVar, log), log)
		if err != nil {
			stop()
			return fail(2, "-o metrics: %v", err)
		}
		defer srv.Close()
	}
	m, err := mounter.MountObserved(ctx, cfg, mp, obs)
	interrupted := ctx.Err() != nil
	stop()
	if err != nil {
		if interrupted {
			return fail(1, "interrupted while mounting %s", cfg.Remote())
		}
		return fail(1, "%v", err)
	}
	if interrupted { // the signal came just as the mount completed
		return unmountAndExit(m, log, stderr)
	}
	if ready != nil {
		// The parent exits now; later logs would go to a closed pipe,
		// so they go where the child's stderr points (/dev/null).
		ready.Write([]byte{readyByte})
		ready.Close()
		stderr = os.Stderr
		log = newLog(stderr)
		// A daemon keeps no directory busy.
		_ = os.Chdir("/")
	} else {
		fmt.Fprintf(stdout, "sftpfs: mounted %s on %s\n", a.Source, mp)
	}
	if err := sdnotify.Ready(os.Getenv("NOTIFY_SOCKET")); err != nil {
		log.Warn("telling systemd the mount is ready", "err", err)
	}
	log.Debug("mounted", "remote", cfg.Remote(), "mountpoint", mp)

	for {
		select {
		case <-hup:
			log.Info("SIGHUP ignored: options are fixed at mount time; keys and known_hosts are re-read on every reconnect", "mountpoint", mp)
		case s := <-sigs:
			log.Info("unmounting", "signal", s.String(), "mountpoint", mp)
			return unmountAndExit(m, log, stderr)
		case <-m.Done():
			log.Info("unmounted from outside", "mountpoint", mp)
			return 0
		}
	}
}

// acceptNew is StrictHostKeyChecking=accept-new: when no known_hosts
// file knows the server, record the key it presents. A known server with
// a different key is left to the normal check, which refuses it.
func acceptNew(ctx context.Context, cfg *options.Config, res *sshcompat.Resolved, log *slog.Logger) error {
	c := cfg.SFTP
	port := c.Port
	if port == 0 {
		port = 22
	}
	known, err := sshcompat.HostKnown(c.KnownHostsFiles, c.Host, port)
	if err != nil || known {
		return err
	}
	if len(c.HostKeys) > 0 {
		return nil // pinned keys decide
	}
	if _, ok := res.Opts[sshcompat.OptProxyJump]; ok {
		return fmt.Errorf("StrictHostKeyChecking=accept-new cannot record the key of %s through a jump host; add it to %s first (ssh -J JUMP %s once)", c.Host, res.KnownHosts, c.Host)
	}
	key, err := sshcompat.FetchHostKey(ctx, c.Host, port, c.ConnectTimeout)
	if err != nil {
		return err
	}
	if err := sshcompat.AppendKnownHost(res.KnownHosts, sshcompat.KnownHostsLine(c.Host, port, key, res.HashKnownHosts)); err != nil {
		return err
	}
	log.Warn("permanently added the host key to known_hosts (StrictHostKeyChecking=accept-new)",
		"host", c.Host, "port", port, "key", ssh.FingerprintSHA256(key), "file", res.KnownHosts)
	return nil
}

// detach re-executes this command in the background with a pipe and
// returns once the child reports: 0 when it is mounted, else the child's
// error (printed) and exit status. Go cannot fork; re-executing is the
// way to daemonize. The child gets its own session, so the terminal's
// SIGHUP does not reach it, and /dev/null for stdio, so it outlives
// whoever reads our output (mount(8), a shell pipe).
func detach(args []string, stdout, stderr io.Writer) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "sftpfs: cannot find own executable to go to the background: %v (use -f)\n", err)
		return 1
	}
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(stderr, "sftpfs: %v\n", err)
		return 1
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), readyFDEnv+"=3")
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		fmt.Fprintf(stderr, "sftpfs: going to the background: %v (use -f)\n", err)
		return 1
	}
	w.Close()
	// Ctrl-C while connecting stops the child too (it has its own
	// session, so the terminal does not signal it), and it reports.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	out, _ := io.ReadAll(r)
	signal.Stop(sigs)
	close(done)
	r.Close()
	if n := len(out); n > 0 && out[n-1] == readyByte {
		stderr.Write(out[:n-1]) // warnings
		_ = cmd.Process.Release()
		return 0
	}
	stderr.Write(out)
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() > 0 {
		return ee.ExitCode()
	}
	fmt.Fprintf(stderr, "sftpfs: the background process ended before the mount was ready (%v)\n", err)
	return 1
}

// fuseMountedOn returns the filesystem type of the topmost mount on mp if
// it is a FUSE mount, else "". Only the parent directory is resolved
// (symlinks), never mp itself, so no request reaches a mount on mp.
func fuseMountedOn(mp string) string {
	p := mp
	if dir, err := filepath.EvalSymlinks(filepath.Dir(mp)); err == nil {
		p = filepath.Join(dir, filepath.Base(mp))
	}
	ms, err := mountinfo.Read()
	if err != nil {
		return ""
	}
	top := ""
	for _, m := range ms {
		if m.Mountpoint == p {
			top = m.FSType
		}
	}
	if top == "fuse" || strings.HasPrefix(top, "fuse.") {
		return top
	}
	return ""
}

func unmountAndExit(m *mounter.Mounted, log *slog.Logger, stderr io.Writer) int {
	if err := m.Unmount(); err != nil {
		fmt.Fprintf(stderr, "sftpfs mount: %v\n", err)
		return 1
	}
	log.Debug("unmounted", "mountpoint", m.Mountpoint())
	return 0
}
