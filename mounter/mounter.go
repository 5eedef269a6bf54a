package mounter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/backend/local"
	"github.com/sftpfs/sftpfs/backend/sftp"
	"github.com/sftpfs/sftpfs/fusefs"
	"github.com/sftpfs/sftpfs/options"
)

// States reported in Status.State.
const (
	StateConnected    = "connected"
	StateReconnecting = "reconnecting"
	StateUnmounted    = "unmounted"
)

// OpenBackend opens the backend cfg describes. For SFTP this connects and
// authenticates, so errors here are what a user needs to see at volume
// creation. log receives the backend's events; nil discards them.
func OpenBackend(ctx context.Context, cfg *options.Config, log *slog.Logger) (backend.Backend, error) {
	if cfg == nil {
		return nil, errors.New("mounter: no configuration")
	}
	switch cfg.Backend {
	case options.BackendLocal:
		b, err := local.New(cfg.LocalRoot)
		if err != nil {
			return nil, fmt.Errorf("local directory %s: %w", cfg.LocalRoot, err)
		}
		return b, nil
	case options.BackendSFTP:
		sc := cfg.SFTP
		sc.Logger = orDiscard(log)
		b, err := sftp.New(ctx, sc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Remote(), err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("mounter: unknown backend %q", cfg.Backend)
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// Mounted is one live FUSE mount of a backend, made by Mount.
type Mounted struct {
	mountpoint string
	remote     string
	kind       string
	server     *fuse.Server
	b          backend.Backend
	log        *slog.Logger
	done       chan struct{}
}

// Mount opens the backend and mounts it on mountpoint, which must be an
// existing directory. It returns once the mount is usable.
func Mount(ctx context.Context, cfg *options.Config, mountpoint string, log *slog.Logger) (*Mounted, error) {
	log = orDiscard(log)
	b, err := OpenBackend(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	fo := cfg.FS
	fo.Logger = log
	srv, err := fusefs.Mount(mountpoint, b, fo)
	if err != nil {
		b.Close()
		return nil, err
	}
	m := &Mounted{
		mountpoint: mountpoint, remote: cfg.Remote(), kind: cfg.Backend,
		server: srv, b: b, log: log, done: make(chan struct{}),
	}
	go func() {
		// Wait returns when the kernel ends the FUSE session: our
		// Unmount, `umount` from outside, or the last user of a lazily
		// detached mount going away.
		srv.Wait()
		if err := b.Close(); err != nil {
			log.Warn("closing backend", "remote", m.remote, "err", err)
		}
		close(m.done)
	}()
	if c := b.Capabilities().Missing(); len(c) > 0 {
		log.Info("backend lacks features; these operations fail with ENOTSUP", "remote", m.remote, "missing", c)
	}
	log.Debug("mounted", "remote", m.remote, "mountpoint", mountpoint)
	return m, nil
}

// Mountpoint returns where the mount is.
func (m *Mounted) Mountpoint() string { return m.mountpoint }

// Backend returns the mounted backend.
func (m *Mounted) Backend() backend.Backend { return m.b }

// Done is closed once the mount is gone and the backend closed, whoever
// unmounted it.
func (m *Mounted) Done() <-chan struct{} { return m.done }

// Wait blocks until Done is closed.
func (m *Mounted) Wait() { <-m.done }

// Unmount unmounts the filesystem. If the mount stays busy it is detached
// lazily: the mountpoint is free at once, and the FUSE session (and
// backend) end when the last open file is closed. Unmounting a mount that
// is already gone returns nil.
func (m *Mounted) Unmount() error {
	select {
	case <-m.done:
		return nil
	default:
	}
	err := m.server.Unmount()
	if err == nil {
		<-m.done
		return nil
	}
	select {
	case <-m.done: // unmounted from outside meanwhile
		return nil
	default:
	}
	m.log.Warn("mount busy; detaching lazily", "mountpoint", m.mountpoint, "err", err)
	if derr := unix.Unmount(m.mountpoint, unix.MNT_DETACH); derr != nil {
		select {
		case <-m.done:
			return nil
		default:
		}
		return fmt.Errorf("unmount %s: %v; lazy detach: %w", m.mountpoint, err, derr)
	}
	// The kernel ends the session when the last reference goes; give it
	// a moment so the common case (nothing open) reports completion.
	select {
	case <-m.done:
	case <-time.After(2 * time.Second):
	}
	return nil
}

// Status describes the mount for `docker volume inspect` and logs. It
// never contains a secret.
type Status struct {
	Backend    string // options.BackendSFTP or options.BackendLocal
	Remote     string // user@host:port/path or local:/dir
	Mountpoint string
	// State is StateConnected, StateReconnecting or StateUnmounted.
	State              string
	Reconnects         int
	LastError          string
	HostKeyFingerprint string
	// Missing lists backend features that do not work (see
	// backend.Capabilities.Missing).
	Missing []string
}

// Status reports the mount and, for SFTP, the connection.
func (m *Mounted) Status() Status {
	st := Status{
		Backend: m.kind, Remote: m.remote, Mountpoint: m.mountpoint,
		State: StateConnected, Missing: m.b.Capabilities().Missing(),
	}
	if s, ok := m.b.(interface{ Status() sftp.Status }); ok {
		ss := s.Status()
		st.Reconnects, st.LastError, st.HostKeyFingerprint = ss.Reconnects, ss.LastError, ss.HostKeyFingerprint
		if ss.State == sftp.StateReconnecting {
			st.State = StateReconnecting
		}
	}
	select {
	case <-m.done:
		st.State = StateUnmounted
	default:
	}
	return st
}

// Alive checks that the mount answers: the FUSE session is running and a
// stat of the mountpoint returns within ctx's deadline (5s if ctx has
// none). The stat runs in its own goroutine, so a hung mount cannot block
// the caller past the deadline.
func (m *Mounted) Alive(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	select {
	case <-m.done:
		return fmt.Errorf("%s is no longer mounted", m.mountpoint)
	default:
	}
	res := make(chan error, 1)
	go func() {
		var st unix.Statfs_t
		err := unix.Statfs(m.mountpoint, &st)
		if err == nil && st.Type != fuseSuperMagic {
			err = fmt.Errorf("%s is not a FUSE mount any more (filesystem type %#x)", m.mountpoint, st.Type)
		}
		res <- err
	}()
	select {
	case err := <-res:
		if err != nil {
			return fmt.Errorf("mount %s does not answer: %w", m.mountpoint, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mount %s does not answer: %w", m.mountpoint, ctx.Err())
	}
}

// fuseSuperMagic is f_type of a FUSE file system (linux/magic.h).
const fuseSuperMagic = 0x65735546
