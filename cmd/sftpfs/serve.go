package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/docker/go-plugins-helpers/volume"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sys/unix"

	"github.com/sftpfs/sftpfs/backend/metered"
	"github.com/sftpfs/sftpfs/driver"
	"github.com/sftpfs/sftpfs/internal/admin"
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
		"directory for the persisted volume state (env SFTPFS_STATE_DIR; default /state when a host directory is bound there, else MOUNT_ROOT/.state)")
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
	levelVar, err := parseLevel(*logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "sftpfs serve: %v\n", err)
		return 2
	}
	// dockerd copies the plugin's stderr into its own log at level info;
	// the text handler keeps the real level in the message.
	log := levelLogger(stderr, levelVar)

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
		*secretsDir = defaultDir("/secrets", *mountRoot, ".secrets")
	}
	if *stateDir == "" {
		*stateDir = defaultDir("/state", *mountRoot, ".state")
	}
	if err := os.MkdirAll(*secretsDir, 0o700); err != nil {
		log.Warn("could not create the secrets directory; file options will fail until it exists", "dir", *secretsDir, "error", err)
	}

	var d servedDriver
	autoState := os.Getenv("SFTPFS_STATE_DIR") == "" && !flagSet(fl, "state-dir")
	if names, err := checkStateLocation(*stateDir, *mountRoot, autoState); err != nil {
		// Serving (with errors) instead of exiting: Docker 20.10 restarts
		// a plugin that exits at start, fails the enable after a timeout
		// and can leave its container behind, so that the next enable
		// fails too ("id already in use"). Served, the message reaches
		// `docker volume create`, `inspect` and `run`, and the fix is a
		// plain disable, set, enable.
		log.Error("serving no volumes", "error", err)
		d = refusingDriver{err: err, names: names}
	} else {
		real, err := driver.New(driver.Config{
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
		d = real
		if autoState && *stateDir != filepath.Join(*mountRoot, ".state") {
			recordStateOnHost(*mountRoot, real, log)
			defer recordStateOnHost(*mountRoot, real, log)
		}
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
	log.Info("serving the Docker volume API", "socket", *socket, "mount_root", *mountRoot, "secrets_dir", *secretsDir, "state_dir", *stateDir)
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

// defaultDir is bound (/secrets or /state) when the user bound a host
// directory there (docker plugin set sftpfs secrets.source=DIR or
// state.source=DIR), else name inside the propagated mount, which exists
// on every install without any host setup and survives `docker plugin
// upgrade` (but not `docker plugin rm`).
//
// The settable mounts cannot default to a directory the user has to
// create: Docker refuses to enable a plugin whose mount source is missing.
// So their default source is /sys/fs/fuse/connections, which exists
// wherever FUSE does and is recognized here by its filesystem type
// (sysfs, or fusectl when that is mounted there).
func defaultDir(bound, mountRoot, name string) string {
	var st unix.Statfs_t
	if fi, err := os.Stat(bound); err == nil && fi.IsDir() && unix.Statfs(bound, &st) == nil &&
		st.Type != unix.SYSFS_MAGIC && st.Type != fuseCtlSuperMagic {
		return bound
	}
	return filepath.Join(mountRoot, name)
}

// stateOnHostMarker, in the propagated mount, says that the state was
// last kept in a host directory bound at /state (state.source), and
// lists the volume names it had.
const stateOnHostMarker = ".state-on-host"

// recordStateOnHost writes the marker with the volumes d has; at start and
// at stop (a `docker plugin upgrade` always follows a disable, so the list
// is current when it matters). Best effort: without it the guard is off.
func recordStateOnHost(mountRoot string, d volume.Driver, log *slog.Logger) {
	var doc struct {
		Note    string   `json:"note"`
		Volumes []string `json:"volumes"`
	}
	doc.Note = "the state is in the host directory bound at /state (docker plugin set PLUGIN state.source=DIR)"
	if l, err := d.List(); err == nil {
		for _, v := range l.Volumes {
			doc.Volumes = append(doc.Volumes, v.Name)
		}
	}
	b, _ := json.Marshal(doc)
	if err := os.WriteFile(filepath.Join(mountRoot, stateOnHostMarker), b, 0o600); err != nil {
		log.Warn("cannot record that the state is on the host", "error", err)
	}
}

// checkStateLocation guards against serving an empty state because the
// state.source setting was lost: `docker plugin upgrade` replaces the
// plugin's config and with it every mount source set with `docker plugin
// set`, so a plugin whose state lived in a host directory comes back with
// the placeholder and would serve the (empty) default state, showing none
// of its volumes, and Docker deletes its own record (options, labels) of
// every volume whose Get fails. While the state is on the host, a marker
// in the propagated mount (which upgrades keep) records it and the volume
// names; starting with the default state while the marker exists returns
// the names and an error saying how to fix it.
//
// auto is false when the state directory was given explicitly
// (SFTPFS_STATE_DIR, -state-dir): then it is what the user asked for.
func checkStateLocation(stateDir, mountRoot string, auto bool) ([]string, error) {
	if !auto || stateDir != filepath.Join(mountRoot, ".state") {
		return nil, nil
	}
	b, err := os.ReadFile(filepath.Join(mountRoot, stateOnHostMarker))
	if err != nil {
		return nil, nil
	}
	var doc struct{ Volumes []string }
	json.Unmarshal(b, &doc) // a damaged marker still means the state was on the host
	return doc.Volumes, fmt.Errorf("this plugin kept its volumes in a host directory (setting state.source), " +
		"but state.source is not set now (docker plugin upgrade resets mount settings), so it serves no volume until it is set again: " +
		"docker plugin disable -f PLUGIN; docker plugin set PLUGIN state.source=DIR (the same directory as before; " +
		"scripts/plugin-upgrade.sh does this); docker plugin enable PLUGIN. To use the default state in the propagated mount " +
		"deliberately, delete propagated-mount/" + stateOnHostMarker + " of the plugin on the host")
}

// servedDriver is what runServe serves: the volume driver, or
// refusingDriver when it must not serve the state it would find.
type servedDriver interface {
	volume.Driver
	Start()
	Shutdown()
}

// refusingDriver answers every volume request with err and touches
// nothing: no state is read or written, nothing is mounted. The volumes it
// knows by name (from the marker) exist for Get and List, with err in
// their Status, because Docker deletes its record of a volume whose Get
// fails.
type refusingDriver struct {
	err   error
	names []string
}

func (r refusingDriver) status() map[string]any {
	return map[string]any{"state": "unavailable", "last_error": r.err.Error()}
}

func (r refusingDriver) Create(*volume.CreateRequest) error { return r.err }
func (r refusingDriver) List() (*volume.ListResponse, error) {
	l := &volume.ListResponse{}
	for _, n := range r.names {
		l.Volumes = append(l.Volumes, &volume.Volume{Name: n, Status: r.status()})
	}
	return l, nil
}
func (r refusingDriver) Get(req *volume.GetRequest) (*volume.GetResponse, error) {
	if !slices.Contains(r.names, req.Name) {
		return nil, fmt.Errorf("no volume %s: %w", req.Name, r.err)
	}
	return &volume.GetResponse{Volume: &volume.Volume{Name: req.Name, Status: r.status()}}, nil
}
func (r refusingDriver) Remove(*volume.RemoveRequest) error { return r.err }
func (r refusingDriver) Path(*volume.PathRequest) (*volume.PathResponse, error) {
	return nil, r.err
}
func (r refusingDriver) Mount(*volume.MountRequest) (*volume.MountResponse, error) {
	return nil, r.err
}
func (r refusingDriver) Unmount(*volume.UnmountRequest) error { return r.err }
func (r refusingDriver) Capabilities() *volume.CapabilitiesResponse {
	return &volume.CapabilitiesResponse{Capabilities: volume.Capability{Scope: "local"}}
}
func (refusingDriver) Start()    {}
func (refusingDriver) Shutdown() {}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fl *flag.FlagSet, name string) bool {
	set := false
	fl.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
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
