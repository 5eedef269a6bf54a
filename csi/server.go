package csi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// DefaultDriverName is the CSI driver name (GetPluginInfo): Kubernetes'
// CSIDriver object and StorageClass provisioner use it. Docker addresses
// the plugin by its plugin name (sftpfs-csi) instead.
const DefaultDriverName = "sftpfs.csi.sftpfs.dev"

// Config configures a Driver.
type Config struct {
	// Name is the CSI driver name (default DefaultDriverName).
	Name string
	// Version is reported by GetPluginInfo.
	Version string
	// NodeID identifies this node (NodeGetInfo); default the host name.
	NodeID string
	// StateDir, when set, keeps the controller's list of created volumes
	// (names and their non-secret options) in StateDir/volumes.json so
	// that CreateVolume stays idempotent across restarts. Empty: memory
	// only.
	StateDir string
	// CheckTimeout bounds the connection check of CreateVolume (30s).
	CheckTimeout time.Duration
	// MountTimeout bounds connecting and mounting in NodeStageVolume (60s).
	MountTimeout time.Duration
	// StatsTimeout bounds the liveness probe of NodeGetVolumeStats (5s).
	StatsTimeout time.Duration
	// SelfAccess is for tests that read and write the mounts from the
	// process that serves them; the plugin never does (see
	// fusefs.Options.ServeOnly).
	SelfAccess bool
	// Logger receives events; nil discards them. Requests are never
	// logged whole: they carry secrets.
	Logger *slog.Logger
}

// Driver implements the CSI Identity, Controller and Node services.
type Driver struct {
	csipb.UnimplementedIdentityServer
	csipb.UnimplementedControllerServer
	csipb.UnimplementedNodeServer

	cfg Config
	log *slog.Logger
	reg *registry

	// locks serializes operations per volume ID (CreateVolume per
	// name); mu guards it and the node tables and is never held across
	// I/O.
	mu     sync.Mutex
	locks  map[string]*volLock
	staged map[string]*stagedVolume // by volume ID
}

type volLock struct {
	mu   sync.Mutex
	refs int
}

// New returns a Driver; it loads the controller state from StateDir.
func New(cfg Config) (*Driver, error) {
	if cfg.Name == "" {
		cfg.Name = DefaultDriverName
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.NodeID == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("csi: no node ID given and no host name: %w", err)
		}
		cfg.NodeID = h
	}
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = 30 * time.Second
	}
	if cfg.MountTimeout <= 0 {
		cfg.MountTimeout = 60 * time.Second
	}
	if cfg.StatsTimeout <= 0 {
		cfg.StatsTimeout = 5 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	reg, err := loadRegistry(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	return &Driver{cfg: cfg, log: log, reg: reg, locks: map[string]*volLock{}, staged: map[string]*stagedVolume{}}, nil
}

// lock takes the operation lock of key and returns its release.
func (d *Driver) lock(key string) func() {
	d.mu.Lock()
	l := d.locks[key]
	if l == nil {
		l = &volLock{}
		d.locks[key] = l
	}
	l.refs++
	d.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		d.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(d.locks, key)
		}
		d.mu.Unlock()
	}
}

// ParseEndpoint turns CSI_ENDPOINT into a unix socket path. It accepts
// unix:///path (Kubernetes' sidecars), unix:/path and a bare /path (Docker's
// cluster_volumes.md example).
func ParseEndpoint(ep string) (string, error) {
	p := ep
	switch {
	case strings.HasPrefix(ep, "unix://"):
		p = strings.TrimPrefix(ep, "unix://")
	case strings.HasPrefix(ep, "unix:"):
		p = strings.TrimPrefix(ep, "unix:")
	case strings.Contains(ep, "://"):
		return "", fmt.Errorf("CSI endpoint %q: only unix sockets are supported (unix:///path/csi.sock)", ep)
	}
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("CSI endpoint %q: give an absolute socket path (unix:///path/csi.sock)", ep)
	}
	return filepath.Clean(p), nil
}

// Listen removes a stale socket at path and listens there.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating the socket directory: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing the old socket %s: %w", path, err)
	}
	return net.Listen("unix", path)
}

// NewServer returns a gRPC server with the three services registered and
// a logging interceptor that records method, code and error text (never
// the request, which carries secrets).
func (d *Driver) NewServer() *grpc.Server {
	s := grpc.NewServer(grpc.UnaryInterceptor(d.logCall))
	csipb.RegisterIdentityServer(s, d)
	csipb.RegisterControllerServer(s, d)
	csipb.RegisterNodeServer(s, d)
	return s
}

func (d *Driver) logCall(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	method := info.FullMethod[strings.LastIndex(info.FullMethod, "/")+1:]
	attrs := []any{"method", method, "duration", time.Since(start).Round(time.Millisecond)}
	if v, ok := req.(interface{ GetVolumeId() string }); ok && v.GetVolumeId() != "" {
		attrs = append(attrs, "volume", v.GetVolumeId())
	}
	if v, ok := req.(interface{ GetName() string }); ok && v.GetName() != "" {
		attrs = append(attrs, "volume", v.GetName()) // CreateVolume: the name is the ID
	}
	if err != nil {
		st, _ := status.FromError(err)
		d.log.Warn("CSI call failed", append(attrs, "code", st.Code().String(), "error", st.Message())...)
	} else if method != "Probe" && method != "NodeGetCapabilities" && method != "NodeGetVolumeStats" {
		d.log.Info("CSI call", attrs...)
	}
	return resp, err
}

// Shutdown unmounts every staged volume (their FUSE servers are this
// process and die with it anyway) so the node is left without dead
// mounts.
func (d *Driver) Shutdown() {
	for _, id := range d.stagedIDs() {
		unlock := d.lock(id)
		d.mu.Lock()
		sv := d.staged[id]
		delete(d.staged, id)
		d.mu.Unlock()
		if sv != nil {
			for _, t := range d.targetsOf(sv) {
				if err := unmountBind(t, d.log); err != nil {
					d.log.Warn("unmounting at shutdown", "target", t, "error", err)
				}
			}
			if err := sv.m.Unmount(); err != nil {
				d.log.Warn("unmounting at shutdown", "volume", id, "error", err)
			}
		}
		unlock()
	}
}
