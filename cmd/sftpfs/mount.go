package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sftpfs/sftpfs/backend/metered"
	"github.com/sftpfs/sftpfs/internal/admin"
	"github.com/sftpfs/sftpfs/internal/logx"
	"github.com/sftpfs/sftpfs/internal/mountinfo"
	"github.com/sftpfs/sftpfs/mounter"
	"github.com/sftpfs/sftpfs/options"
)

const mountUsage = `usage: sftpfs mount [-o name=value[,name=value...]]... SOURCE MOUNTPOINT

SOURCE is [user@]host:[path] for SFTP, or local:/dir (or an absolute
directory) to serve a local directory. Options may come before or after
SOURCE and MOUNTPOINT. The command stays in the foreground, prints one line
when the mount is ready, and unmounts on SIGINT or SIGTERM. Inside an -o
value write \, for a comma (or repeat -o for list options).
`

// mountArgs are the parsed command line of `sftpfs mount`.
type mountArgs struct {
	opts       []string // raw -o arguments
	source     string
	mountpoint string
}

// parseMountArgs accepts -o VALUE, -oVALUE and --, in any position, like
// mount(8) and sshfs. help reports -h.
func parseMountArgs(args []string) (a mountArgs, help bool, err error) {
	var pos []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--":
			pos = append(pos, args[i+1:]...)
			i = len(args)
		case arg == "-o":
			if i+1 >= len(args) {
				return a, false, errors.New("-o needs a value: -o name=value")
			}
			i++
			a.opts = append(a.opts, args[i])
		case strings.HasPrefix(arg, "-o"):
			a.opts = append(a.opts, arg[2:])
		case arg == "-h" || arg == "-help" || arg == "--help":
			return a, true, nil
		case strings.HasPrefix(arg, "-") && arg != "-":
			return a, false, fmt.Errorf("unknown flag %q (options go in -o name=value)", arg)
		default:
			pos = append(pos, arg)
		}
	}
	if len(pos) != 2 {
		return a, false, fmt.Errorf("want SOURCE and MOUNTPOINT, got %d argument(s)", len(pos))
	}
	a.source, a.mountpoint = pos[0], pos[1]
	return a, false, nil
}

// sourceOptions turns SOURCE into options: local=DIR, or host/user/path.
func sourceOptions(source string) (map[string]string, error) {
	if dir, ok := strings.CutPrefix(source, "local:"); ok {
		if dir == "" {
			return nil, errors.New("local: needs a directory, like local:/srv/data")
		}
		return map[string]string{options.OptLocal: dir}, nil
	}
	if filepath.IsAbs(source) || source == "." || strings.HasPrefix(source, "./") || strings.HasPrefix(source, "../") {
		return map[string]string{options.OptLocal: source}, nil
	}
	if !strings.Contains(source, ":") {
		return nil, fmt.Errorf("SOURCE %q is neither [user@]host:[path] nor local:/dir (add a colon for a host: %s:)", source, source)
	}
	u, h, p, err := options.ParseRemote(source)
	if err != nil {
		return nil, fmt.Errorf("SOURCE: %v", err)
	}
	m := map[string]string{options.OptHost: h}
	if u != "" {
		m[options.OptUser] = u
	}
	if p != "" {
		m[options.OptPath] = p
	}
	return m, nil
}

// cliEnv is the options environment of the current user.
func cliEnv() options.Env {
	env := options.Env{Scope: options.ScopeCLI, AgentSocket: os.Getenv("SSH_AUTH_SOCK")}
	if wd, err := os.Getwd(); err == nil {
		env.BaseDir = wd
	}
	if home, err := os.UserHomeDir(); err == nil {
		env.Home = home
	}
	if u, err := user.Current(); err == nil {
		env.DefaultUser = u.Username
	}
	return env
}

func runMount(args []string, stdout, stderr io.Writer) int {
	tuneGC(os.Getenv)
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "sftpfs mount: "+format+"\n", a...)
		return code
	}
	a, help, err := parseMountArgs(args)
	if help {
		fmt.Fprint(stdout, mountUsage+"\nRun `sftpfs help` for all options.\n")
		return 0
	}
	if err != nil {
		return fail(2, "%v\n\n%s", err, mountUsage)
	}
	opts, err := options.ParseList(a.opts)
	if err != nil {
		return fail(2, "%v", err)
	}
	src, err := sourceOptions(a.source)
	if err != nil {
		return fail(2, "%v", err)
	}
	for k, v := range src {
		if _, dup := opts[k]; dup {
			return fail(2, "SOURCE %q already gives %s; remove -o %s", a.source, k, k)
		}
		opts[k] = v
	}
	cfg, err := options.Parse(opts, cliEnv())
	if err != nil {
		return fail(2, "%v", err)
	}
	levelVar := new(slog.LevelVar)
	levelVar.Set(cfg.LogLevel)
	log := slog.New(logx.NewHandler(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}), levelVar))
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	mp, err := filepath.Abs(a.mountpoint)
	if err != nil {
		return fail(2, "mountpoint %q: %v", a.mountpoint, err)
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

	// Signals are delivered to both: sigs for the wait below, ctx to
	// abort connecting (up to connect_timeout) when one arrives early.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
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
	fmt.Fprintf(stdout, "sftpfs: mounted %s on %s\n", a.source, mp)
	log.Debug("mounted", "remote", cfg.Remote(), "mountpoint", mp)

	select {
	case s := <-sigs:
		log.Info("unmounting", "signal", s.String(), "mountpoint", mp)
		return unmountAndExit(m, log, stderr)
	case <-m.Done():
		log.Info("unmounted from outside", "mountpoint", mp)
		return 0
	}
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
