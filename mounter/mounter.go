package mounter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/backend/local"
	"github.com/sftpfs/sftpfs/backend/metered"
	"github.com/sftpfs/sftpfs/backend/sftp"
	"github.com/sftpfs/sftpfs/fusefs"
	"github.com/sftpfs/sftpfs/internal/logx"
	"github.com/sftpfs/sftpfs/internal/mountinfo"
	"github.com/sftpfs/sftpfs/options"
)

// OpenBackend opens the backend cfg describes. For SFTP this connects and
// authenticates, so errors here are what a user needs to see at volume
// creation. log receives the backend's events; nil discards them. With
// the debug option its debug lines are logged whatever the process level
// (see VolumeLogger).
func OpenBackend(ctx context.Context, cfg *options.Config, log *slog.Logger) (backend.Backend, error) {
	if cfg == nil {
		return nil, errors.New("mounter: no configuration")
	}
	log = VolumeLogger(cfg, log)
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

// VolumeLogger returns log with the level the volume asks for: with the
// debug option (cfg.LogLevel debug) its debug lines pass even when the
// process logs at info, for that volume only. log should already carry
// the volume's name (the driver adds volume=NAME).
func VolumeLogger(cfg *options.Config, log *slog.Logger) *slog.Logger {
	log = orDiscard(log)
	if cfg.LogLevel < slog.LevelInfo {
		return logx.WithFloor(log, cfg.LogLevel)
	}
	return log
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
	server     *fusefs.Server
	b          backend.Backend
	log        *slog.Logger
	done       chan struct{}
	// dev is the mount's device ("major:minor") from the mount table,
	// recorded once mounted; "" when it could not be found. The minor
	// names the FUSE connection in /sys/fs/fuse/connections.
	dev string
	// tablePath is the mountpoint as the mount table spells it.
	tablePath string
}

// Mount opens the backend and mounts it on mountpoint, which must be an
// existing directory. It returns once the mount is usable.
func Mount(ctx context.Context, cfg *options.Config, mountpoint string, log *slog.Logger) (*Mounted, error) {
	return MountObserved(ctx, cfg, mountpoint, Observe{Log: log})
}

// Observe says how a mount reports on itself.
type Observe struct {
	// Log receives every event of the mount and its backend; it should
	// carry the volume's name. nil discards.
	Log *slog.Logger
	// Metrics, if not nil, counts the backend's operations under the
	// label volume=Name.
	Metrics *metered.Metrics
	Name    string
}

// MountObserved is Mount with metrics.
func MountObserved(ctx context.Context, cfg *options.Config, mountpoint string, o Observe) (*Mounted, error) {
	log := VolumeLogger(cfg, o.Log)
	b, err := OpenBackend(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	if o.Metrics != nil {
		b = o.Metrics.Wrap(o.Name, b)
	}
	return mountBackend(cfg, b, mountpoint, log)
}

// mountBackend mounts an opened backend; it closes b if mounting fails.
func mountBackend(cfg *options.Config, b backend.Backend, mountpoint string, log *slog.Logger) (*Mounted, error) {
	// The mount table shows paths with symlinks resolved. Resolve now,
	// while the path is still a plain directory: afterwards a lookup of
	// it would be a request to our own mount.
	tablePath := mountpoint
	if p, err := filepath.EvalSymlinks(mountpoint); err == nil {
		tablePath = p
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
		tablePath: tablePath, dev: fuseDev(tablePath),
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

// Unmount unmounts the filesystem from its mountpoint. If the mount stays
// busy it is detached lazily. Either way the mountpoint is free when
// Unmount returns, but the FUSE session (and the backend) end only when
// the kernel drops its last reference: an open file, or a bind mount of
// it elsewhere, which is what every container using a Docker volume holds
// in its own mount namespace. Those keep being served (and recover with
// the storage) until they let go; Done closes then. So Unmount waits for
// the session to end only briefly and never for other users: a remount of
// a dead volume must not wait for the containers still using the old
// mount. Unmounting a mount that is already gone returns nil, and a
// mountpoint whose top mount is no longer ours (detached from outside,
// something mounted over it) is left alone.
func (m *Mounted) Unmount() error {
	select {
	case <-m.done:
		return nil
	default:
	}
	if !m.onTop() {
		m.log.Info("mount already detached from its mountpoint; the filesystem is served until its last user lets go",
			"mountpoint", m.mountpoint)
		return nil
	}
	err := m.unmount()
	if err != nil {
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
	}
	// The kernel ends the session when the last reference goes; give it
	// a moment so the common case (nobody else) reports completion.
	select {
	case <-m.done:
	case <-time.After(sessionEndWait):
		m.log.Info("unmounted; the filesystem is still served for processes or containers that use it and stops when they let go",
			"mountpoint", m.mountpoint)
	}
	return nil
}

// sessionEndWait is how long Unmount waits for the FUSE session to end
// after the mountpoint is free.
const sessionEndWait = 2 * time.Second

// onTop reports whether the mount on top of the mountpoint is this one
// (by device, from the mount table; never through the mount). When the
// device is unknown it answers true, as before it was recorded.
func (m *Mounted) onTop() bool {
	if m.dev == "" {
		return true
	}
	return fuseDev(m.tablePath) == m.dev
}

// Status describes the mount for `docker volume inspect` and logs. It
// never contains a secret.
type Status struct {
	Backend    string // options.BackendSFTP or options.BackendLocal
	Remote     string // user@host:port/path or local:/dir
	Mountpoint string
	// State is the backend's connection state (backend.StateConnected,
	// ...), or backend.StateUnmounted once the mount is gone.
	State              backend.State
	Reconnects         int
	LastError          string
	HostKeyFingerprint string
	// Missing lists backend features that do not work (see
	// backend.Capabilities.Missing).
	Missing []string
	// RejectedNames counts directory entries the SFTP server sent
	// with names that are not a single path element; they were
	// dropped and logged (see backend/sftp).
	RejectedNames int64
}

// Status reports the mount and, for SFTP, the connection.
func (m *Mounted) Status() Status {
	ss := backend.StatusOf(m.b)
	st := Status{
		Backend: m.kind, Remote: m.remote, Mountpoint: m.mountpoint,
		State: ss.State, Missing: m.b.Capabilities().Missing(),
		Reconnects: ss.Reconnects, LastError: ss.LastError, HostKeyFingerprint: ss.HostKeyFingerprint,
		RejectedNames: ss.RejectedNames,
	}
	select {
	case <-m.done:
		st.State = backend.StateUnmounted
	default:
	}
	return st
}

// Alive checks, from inside the process, that the mount still works: the
// FUSE server has not stopped, the mount table still shows this mount's
// connection on the mountpoint, and the backend answers a Stat of its root
// within ctx's deadline (5s if ctx has none).
//
// It never makes a system call on the mountpoint itself (no stat or
// statfs): a request to our own FUSE mount is answered by this very
// process, and if the process is SIGKILLed while one of its threads waits
// for such an answer, the kernel waits uninterruptibly for a reply only
// the dying process could give, leaving it a zombie holding the
// connection until someone aborts it through fusectl.
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
	if err := m.inMountTable(); err != nil {
		return err
	}
	res := make(chan error, 1)
	go func() {
		// Backend calls honour ctx; the goroutine and the buffered
		// channel only guard against a backend that does not.
		_, err := m.b.Stat(ctx, ".")
		res <- err
	}()
	select {
	case err := <-res:
		if err != nil {
			return fmt.Errorf("mount %s: the storage does not answer: %w", m.mountpoint, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mount %s: the storage does not answer: %w", m.mountpoint, ctx.Err())
	}
}

// inMountTable checks /proc/self/mountinfo for this mount: the topmost
// mount on the mountpoint must be a FUSE mount with our device. Someone
// may have detached it (umount -l) while a file kept the session alive;
// the server still runs then, but nothing reaches it through the path.
func (m *Mounted) inMountTable() error {
	if m.dev == "" {
		// Not found right after mounting either (an unusual mount
		// namespace or path): nothing to compare against.
		return nil
	}
	ms, err := mountinfo.Read()
	if err != nil {
		// Not a verdict on the mount; the backend probe still runs.
		m.log.Debug("liveness: cannot read the mount table", "err", err)
		return nil
	}
	var top *mountinfo.Mount
	for i := range ms {
		if ms[i].Mountpoint == m.tablePath {
			top = &ms[i]
		}
	}
	switch {
	case top == nil:
		return fmt.Errorf("%s is no longer mounted (not in the mount table)", m.mountpoint)
	case !isFUSE(top.FSType):
		return fmt.Errorf("%s is not a FUSE mount any more (filesystem type %s on top)", m.mountpoint, top.FSType)
	case top.Dev != m.dev:
		return fmt.Errorf("%s shows another FUSE mount (device %s, ours was %s)", m.mountpoint, top.Dev, m.dev)
	}
	return nil
}

// unmount asks the kernel to unmount, retrying briefly while the mount is
// busy (files the last user just closed can take a moment to be
// released). As root it calls umount(2) directly: go-fuse's Unmount falls
// back to running fusermount, which would look up the mountpoint through
// our own mount. Without the privilege, fusermount is the only way.
func (m *Mounted) unmount() error {
	delay := 5 * time.Millisecond
	var err error
	for range 5 {
		err = unix.Unmount(m.mountpoint, 0)
		if err == nil || !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(delay)
		delay *= 2
	}
	if errors.Is(err, unix.EPERM) {
		return m.server.Unmount()
	}
	if errors.Is(err, unix.EINVAL) {
		// Not a mountpoint any more: unmounted from outside; Done
		// closes once the kernel ends the session.
		select {
		case <-m.done:
			return nil
		case <-time.After(2 * time.Second):
		}
	}
	return err
}

// fuseDev returns the device of the topmost FUSE mount on mp, or "".
func fuseDev(mp string) string {
	ms, err := mountinfo.Read()
	if err != nil {
		return ""
	}
	dev := ""
	for _, m := range ms {
		if m.Mountpoint == mp {
			dev = ""
			if isFUSE(m.FSType) {
				dev = m.Dev
			}
		}
	}
	return dev
}

func isFUSE(fstype string) bool { return fstype == "fuse" || strings.HasPrefix(fstype, "fuse.") }
