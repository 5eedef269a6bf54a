package driver

import (
	"context"
	"log/slog"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/backend/metered"
	"github.com/sftpfs/sftpfs/mounter"
	"github.com/sftpfs/sftpfs/options"
)

// NewMounter returns the production Mounter: volume options are parsed by
// the shared option table in volume scope, so file options (identity,
// password_file, known_hosts, ...) name files inside secretsDir, and mounts
// go through package mounter, the same code path as `sftpfs mount`.
// metrics, if not nil, counts every mount's storage operations.
func NewMounter(secretsDir string, metrics *metered.Metrics) Mounter {
	return &realMounter{env: options.Env{Scope: options.ScopeVolume, SecretsDir: secretsDir}, metrics: metrics}
}

type realMounter struct {
	env     options.Env
	metrics *metered.Metrics
	// tune, if set, adjusts every parsed configuration (tests shorten
	// the reconnect timings).
	tune func(*options.Config)
	// selfAccess is set by tests that read and write the mounts from
	// the process that serves them; the plugin never does (see
	// fusefs.Options.ServeOnly).
	selfAccess bool
}

// parse parses opts and applies the plugin's owner default: unless the
// volume sets uid or gid, files are presented as owned by root (0:0), the
// user the plugin mounts as. Remote numeric owners mean nothing inside
// containers, and Docker's copy-up of image content into an empty volume
// chowns every file to the image's owners, which a non-root SFTP account
// cannot do: without a mapping that chown fails and Docker aborts the
// container start ("failed to chown ...: permission denied"). With a
// mapping, fusefs makes chown a successful no-op. uid=-1 / gid=-1 turn the
// mapping off explicitly.
func (r *realMounter) parse(opts map[string]string) (*options.Config, error) {
	cfg, err := options.Parse(opts, r.env)
	if err != nil {
		return nil, err
	}
	canon, err := options.Canonical(opts)
	if err != nil {
		return nil, err
	}
	if _, ok := canon[options.OptUID]; !ok {
		cfg.FS.UID = 0
	}
	if _, ok := canon[options.OptGID]; !ok {
		cfg.FS.GID = 0
	}
	cfg.FS.ServeOnly = !r.selfAccess
	if r.tune != nil {
		r.tune(cfg)
	}
	return cfg, nil
}

func (r *realMounter) Validate(opts map[string]string, log *slog.Logger) (Info, error) {
	cfg, err := r.parse(opts)
	if err != nil {
		return Info{}, err
	}
	for _, w := range cfg.Warnings {
		log.Warn(w, "remote", cfg.Remote())
	}
	return Info{Backend: cfg.Backend, Remote: cfg.Remote()}, nil
}

func (r *realMounter) Check(ctx context.Context, opts map[string]string, log *slog.Logger) (Info, error) {
	cfg, err := r.parse(opts)
	if err != nil {
		return Info{}, err
	}
	b, err := mounter.OpenBackend(ctx, cfg, log)
	if err != nil {
		return Info{}, err
	}
	defer b.Close()
	return Info{Backend: cfg.Backend, Remote: cfg.Remote(), HostKey: backend.StatusOf(b).HostKeyFingerprint}, nil
}

func (r *realMounter) Canonical(opts map[string]string) (map[string]string, error) {
	return options.Canonical(opts)
}

func (r *realMounter) Mount(ctx context.Context, name string, opts map[string]string, mountpoint string, log *slog.Logger) (Mount, error) {
	cfg, err := r.parse(opts)
	if err != nil {
		return nil, err
	}
	m, err := mounter.MountObserved(ctx, cfg, mountpoint, mounter.Observe{Log: log, Metrics: r.metrics, Name: name})
	if err != nil {
		return nil, err
	}
	return realMount{m}, nil
}

type realMount struct{ m *mounter.Mounted }

func (m realMount) Unmount() error                  { return m.m.Unmount() }
func (m realMount) Alive(ctx context.Context) error { return m.m.Alive(ctx) }
func (m realMount) Done() <-chan struct{}           { return m.m.Done() }
func (m realMount) Status() MountStatus {
	s := m.m.Status()
	return MountStatus{State: s.State, Reconnects: int64(s.Reconnects), LastError: s.LastError, HostKey: s.HostKeyFingerprint,
		RejectedNames: s.RejectedNames}
}
