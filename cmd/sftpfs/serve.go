package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/docker/go-plugins-helpers/volume"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sys/unix"

	"github.com/sftpfs/sftpfs/backend/metered"
	"github.com/sftpfs/sftpfs/driver"
	"github.com/sftpfs/sftpfs/internal/admin"
	"github.com/sftpfs/sftpfs/internal/logx"
)

// runServe is `sftpfs serve`: the Docker volume plugin's entrypoint. It
// listens on the plugin socket, serves the volume API and runs until
// SIGTERM (Docker's way of stopping a plugin), then unmounts what it
// mounted. Every setting also has an environment variable so that it can
// be changed with `docker plugin set`.
func runServe(args []string, stdout, stderr io.Writer) int {
	tuneGC(os.Getenv)
	fl := flag.NewFlagSet("serve", flag.ContinueOnError)
	fl.SetOutput(stderr)
	socket := fl.String("socket", envOr("SFTPFS_SOCKET", "/run/docker/plugins/sftpfs.sock"),
		"unix socket to serve the Docker volume API on (env SFTPFS_SOCKET)")
	mountRoot := fl.String("mount-root", envOr("SFTPFS_MOUNT_ROOT", "/mnt/volumes"),
		"directory volumes are mounted under, as MOUNT_ROOT/NAME: the plugin's propagated mount (env SFTPFS_MOUNT_ROOT)")
	stateDir := fl.String("state-dir", os.Getenv("SFTPFS_STATE_DIR"),
		"directory for the persisted volume state (env SFTPFS_STATE_DIR; default MOUNT_ROOT/.state)")
	secretsDir := fl.String("secrets-dir", os.Getenv("SFTPFS_SECRETS_DIR"),
		"directory that file options (identity, password_file, known_hosts, ...) name files in (env SFTPFS_SECRETS_DIR; default /secrets when it is a directory, else MOUNT_ROOT/.secrets)")
	logLevel := fl.String("log-level", envOr("LOG_LEVEL", "info"), "debug, info, warn or error (env LOG_LEVEL); changed at run time with PUT /loglevel on the metrics address")
	metricsAddr := fl.String("metrics-addr", os.Getenv("SFTPFS_METRICS_ADDR"),
		"serve Prometheus metrics (/metrics) and the log level (/loglevel) on this HOST:PORT, e.g. 127.0.0.1:9464 (env SFTPFS_METRICS_ADDR; default off)")
	guard := fl.Bool("guard", true, "mount a read-only tmpfs under each volume so writes fail if the filesystem dies (needs CAP_SYS_ADMIN)")
	fl.Usage = func() {
		fmt.Fprintf(stderr, "usage: sftpfs serve [flags]\n\nServes the Docker volume plugin API (the plugin's entrypoint).\n\n")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(stderr, "sftpfs serve: unexpected argument %q\n", fl.Arg(0))
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.TrimSpace(*logLevel))); err != nil {
		fmt.Fprintf(stderr, "sftpfs serve: invalid log level %q: use debug, info, warn or error\n", *logLevel)
		return 2
	}
	// dockerd copies the plugin's stderr into its own log at level info;
	// the text handler keeps the real level in the message. The level is
	// a variable (PUT /loglevel), and a volume with debug=true logs its
	// own debug lines whatever it is (logx.WithFloor).
	levelVar := new(slog.LevelVar)
	levelVar.Set(level)
	log := slog.New(logx.NewHandler(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}), levelVar))

	// Metrics cost a few counter updates per storage call: only when
	// someone asked for them.
	var metrics *metered.Metrics
	if *metricsAddr != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		metrics = metered.New(reg)
		srv, err := admin.Listen(*metricsAddr, admin.Handler(reg, levelVar, log), log)
		if err != nil {
			log.Error("cannot serve metrics; fix or clear SFTPFS_METRICS_ADDR (docker plugin set sftpfs SFTPFS_METRICS_ADDR=)", "error", err)
			return 1
		}
		defer srv.Close()
	}

	// Catch signals before the socket exists, so a stop request that
	// arrives as soon as Docker sees the socket is handled cleanly.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)

	if *secretsDir == "" {
		*secretsDir = defaultSecretsDir(*mountRoot)
	}
	if err := os.MkdirAll(*secretsDir, 0o700); err != nil {
		log.Warn("could not create the secrets directory; file options will fail until it exists", "dir", *secretsDir, "error", err)
	}

	d, err := driver.New(driver.Config{
		MountRoot: *mountRoot,
		StateDir:  *stateDir,
		Mounter:   driver.NewMounter(*secretsDir, metrics),
		Guard:     *guard,
		Logger:    log,
		Metrics:   metrics,
	})
	if err != nil {
		log.Error("cannot start the volume driver", "error", err)
		return 1
	}

	if err := os.MkdirAll(filepath.Dir(*socket), 0o755); err != nil {
		log.Error("cannot create the socket directory", "error", err)
		return 1
	}
	// A socket left by a previous run would make Listen fail.
	if err := os.Remove(*socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		log.Error("cannot remove the old socket", "socket", *socket, "error", err)
		return 1
	}
	l, err := net.Listen("unix", *socket)
	if err != nil {
		log.Error("cannot listen on the plugin socket", "socket", *socket, "error", err)
		return 1
	}
	served := make(chan error, 1)
	go func() { served <- volume.NewHandler(d).Serve(l) }()
	log.Info("serving the Docker volume API", "socket", *socket, "mount_root", *mountRoot, "secrets_dir", *secretsDir)
	// Socket first, then remounts in the background: Docker gives a
	// plugin limited time to come up and must not wait on slow servers.
	d.Start()

	code := 0
	select {
	case s := <-sig:
		log.Info("stopping", "signal", s.String())
	case err := <-served:
		log.Error("the plugin socket stopped serving", "error", err)
		code = 1
	}
	l.Close()
	d.Shutdown()
	os.Remove(*socket)
	log.Info("stopped; volumes in use are remounted on the next start")
	return code
}

// defaultSecretsDir is /secrets when the user bound a host directory there
// (docker plugin set sftpfs secrets.source=DIR), else .secrets inside the
// propagated mount, which exists on every install without any host setup.
//
// The secrets mount cannot default to a directory the user has to create:
// Docker refuses to enable a plugin whose mount source is missing. So its
// default source is /sys/fs/fuse/connections, which exists wherever FUSE
// does and is recognized here by its filesystem type (sysfs, or fusectl
// when that is mounted there).
func defaultSecretsDir(mountRoot string) string {
	var st unix.Statfs_t
	if fi, err := os.Stat("/secrets"); err == nil && fi.IsDir() && unix.Statfs("/secrets", &st) == nil &&
		st.Type != unix.SYSFS_MAGIC && st.Type != fuseCtlSuperMagic {
		return "/secrets"
	}
	return filepath.Join(mountRoot, ".secrets")
}

// fuseCtlSuperMagic is f_type of fusectl (linux/magic.h); x/sys/unix
// does not define it.
const fuseCtlSuperMagic = 0x65735543

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
