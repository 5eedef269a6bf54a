package driver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/go-plugins-helpers/volume"
	"golang.org/x/sys/unix"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/backend/metered"
	"github.com/sftpfs/sftpfs/internal/mountinfo"
	"github.com/sftpfs/sftpfs/options"
)

// Config configures a Driver.
type Config struct {
	// MountRoot is the directory under which each volume is mounted at
	// MountRoot/<volume name>: the plugin's propagated mount.
	MountRoot string
	// StateDir holds the persisted state (default MountRoot/.state).
	StateDir string
	// Mounter makes the mounts.
	Mounter Mounter
	// Guard mounts a read-only empty tmpfs under every FUSE mount, so that
	// if the filesystem dies the mountpoint refuses writes (EROFS) instead
	// of letting them land on the plugin's own disk. Needs CAP_SYS_ADMIN;
	// tests of pure logic turn it off.
	Guard bool
	// CheckTimeout bounds the connectivity check of Create (default 30s).
	CheckTimeout time.Duration
	// MountTimeout bounds connecting and mounting one volume (default 60s).
	MountTimeout time.Duration
	// AliveTimeout bounds the liveness probe of a reused mount (default 5s).
	AliveTimeout time.Duration
	// MountRequestTimeout bounds one Mount request as Docker sees it:
	// waiting for other operations on the same volume, the liveness
	// probe and mounting (default 25s). Docker gives up on a plugin call
	// after about 30s and never sends the Unmount for that caller; a
	// Mount that succeeded later would count a caller that never leaves,
	// and `docker volume rm` would be refused for good (seen in a 10 min
	// soak). So Mount answers within this budget, with an error if need
	// be, and records the caller only when it answers success.
	MountRequestTimeout time.Duration
	// ReleaseMemoryDelay is how long after the last FUSE unmount of a
	// burst the driver hands freed heap back to the kernel (default 2s;
	// negative: never, leaving it to the Go runtime). Each mount's
	// request buffers are MiBs (MaxWrite-sized); after many mounts
	// come and go that memory is garbage, but without allocation
	// pressure the next GC and the runtime's scavenger can take
	// minutes, and the plugin's RSS meanwhile looks like a leak
	// (docs/reliability.md, load section).
	ReleaseMemoryDelay time.Duration
	// Logger receives events; nil discards them. Events about one volume
	// go to Logger.With("volume", NAME), down to the backend.
	Logger *slog.Logger
	// Metrics, if not nil, gets each volume's count of callers.
	Metrics *metered.Metrics
}

// Volume lifecycle states shown in Status while no mount is live; a live
// mount shows its connection state (backend.State*).
const (
	stateMounting    backend.State = "mounting"
	stateMountFailed backend.State = "mount-failed"
	// stateDead: the filesystem server stopped while the volume was in
	// use; the next Mount remounts it.
	stateDead backend.State = "dead"
)

// Driver implements volume.Driver. It is safe for concurrent use.
//
// Locking: mu guards the volume map and every volume's record and live
// fields, and is only ever held for memory operations. Each volume's op
// lock serializes Mount/Unmount/Remove of that volume and is the only lock
// held across network I/O, so a dead server blocks only its own volume.
// saveMu orders state writes.
type Driver struct {
	cfg   Config
	log   *slog.Logger
	store *store

	mu   sync.Mutex
	vols map[string]*vol

	saveMu sync.Mutex

	// bg counts the background remounts of Start; bgCtx bounds them and
	// is cancelled by Shutdown. closing (guarded by mu) is set by
	// Shutdown.
	bg       sync.WaitGroup
	bgCtx    context.Context
	bgCancel context.CancelFunc
	closing  bool

	// release is the pending debounced memory release (see
	// Config.ReleaseMemoryDelay), guarded by releaseMu.
	releaseMu sync.Mutex
	release   *time.Timer
}

type vol struct {
	name string
	op   opLock // held across network I/O; see Driver

	// Guarded by Driver.mu.
	rec     volumeRecord
	mount   Mount
	guarded bool
	lastErr string
	state   backend.State // while no mount is live: unmounted, mounting, mount-failed
	removed bool
	// restored holds the caller IDs loaded from the state at start that
	// Docker has not mentioned since. After an engine crash Docker never
	// sends Unmount for the containers that died with it, so such IDs
	// can be stale forever; see Remove.
	restored map[string]bool
}

// validateName applies Docker's rule for volume names; it also keeps a
// name from escaping MountRoot or colliding with the ".state" directory.
func validateName(name string) error {
	ok := len(name) >= 1 && len(name) <= 255
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		ok = alnum || i > 0 && (c == '_' || c == '.' || c == '-')
	}
	if !ok {
		return fmt.Errorf("invalid volume name %q: use letters, digits, '_', '.' and '-', starting with a letter or digit", name)
	}
	return nil
}

// New loads the persisted state and cleans up mounts left under MountRoot
// by a previous run. Call Start after the socket is listening to remount
// volumes that were in use.
func New(cfg Config) (*Driver, error) {
	if cfg.MountRoot == "" {
		return nil, errors.New("driver: MountRoot is required")
	}
	if cfg.Mounter == nil {
		return nil, errors.New("driver: Mounter is required")
	}
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join(cfg.MountRoot, ".state")
	}
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = 30 * time.Second
	}
	if cfg.MountTimeout <= 0 {
		cfg.MountTimeout = 60 * time.Second
	}
	if cfg.MountRequestTimeout <= 0 {
		cfg.MountRequestTimeout = 25 * time.Second
	}
	if cfg.AliveTimeout <= 0 {
		cfg.AliveTimeout = 5 * time.Second
	}
	if cfg.ReleaseMemoryDelay == 0 {
		cfg.ReleaseMemoryDelay = 2 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := os.MkdirAll(cfg.MountRoot, 0o755); err != nil {
		return nil, fmt.Errorf("creating the mount root %s: %w", cfg.MountRoot, err)
	}
	st, err := newStore(cfg.StateDir, log)
	if err != nil {
		return nil, err
	}
	recs, err := st.load()
	if err != nil {
		return nil, err
	}
	d := &Driver{cfg: cfg, log: log, store: st, vols: map[string]*vol{}}
	d.bgCtx, d.bgCancel = context.WithCancel(context.Background())
	for name, r := range recs {
		v := &vol{name: name, rec: *r, state: backend.StateUnmounted, restored: map[string]bool{}}
		for _, id := range r.MountIDs {
			v.restored[id] = true
		}
		d.vols[name] = v
		d.setMounts(name, len(r.MountIDs))
	}
	d.cleanStale()
	log.Info("volume driver ready", "volumes", len(d.vols), "mount_root", cfg.MountRoot, "state_dir", cfg.StateDir)
	return d, nil
}

// cleanStale releases every mount below MountRoot: after a crash or a
// plugin restart they are FUSE mounts whose server was the previous
// process, or orphaned guards. The FUSE connections are aborted first, so
// processes blocked on a wedged one (a SIGKILLed plugin whose thread still
// waited on its own mount) get ENOTCONN at once, then everything is
// detached lazily. Nothing here makes a system call through the stale
// mounts: a lookup of one could block forever.
func (d *Driver) cleanStale() {
	all, err := mountinfo.Read()
	if err != nil {
		d.log.Warn("could not list stale mounts", "error", err)
		return
	}
	prefix := filepath.Clean(d.cfg.MountRoot) + "/"
	var below []mountinfo.Mount
	for _, m := range all {
		if strings.HasPrefix(m.Mountpoint, prefix) {
			below = append(below, m)
		}
	}
	if len(below) == 0 {
		return
	}
	abortFUSE(below, d.cfg.MountRoot, d.log)
	mps, err := mountsBelow(d.cfg.MountRoot)
	if err != nil {
		d.log.Warn("could not list stale mounts", "error", err)
		return
	}
	// The bottom mount of each mountpoint: a volume's guard is kept, so
	// that its mountpoint never becomes a bare, writable directory
	// between this cleanup and the remount (a container still writing
	// there would write to the plugin's own disk and see success).
	bottom := map[string]mountinfo.Mount{}
	for _, m := range below {
		if _, ok := bottom[m.Mountpoint]; !ok {
			bottom[m.Mountpoint] = m
		}
	}
	for _, mp := range mps {
		name := volumeOf(d.cfg.MountRoot, mp)
		v := d.vols[name]
		if b := bottom[mp]; d.cfg.Guard && v != nil && mp == d.mountpoint(name) && isGuardMount(b) {
			n, err := mountCount(mp)
			for i := 1; err == nil && i < n; i++ {
				err = unix.Unmount(mp, unix.MNT_DETACH)
			}
			if err != nil {
				d.log.Warn("could not detach a stale mount", "volume", name, "mountpoint", mp, "error", err)
				continue
			}
			v.guarded = true
			d.log.Info("detached stale mount from a previous run; its read-only guard stays", "volume", name, "mountpoint", mp)
			continue
		}
		if err := detachAll(mp, 8); err != nil {
			d.log.Warn("could not detach a stale mount", "volume", name, "mountpoint", mp, "error", err)
			continue
		}
		d.log.Info("detached stale mount from a previous run", "volume", name, "mountpoint", mp)
	}
}

// guardSource names the guard's tmpfs in the mount table.
const guardSource = "sftpfs-guard"

// isGuardMount reports whether m is a volume's read-only guard
// (mountLocked).
func isGuardMount(m mountinfo.Mount) bool {
	return m.FSType == "tmpfs" && m.Source == guardSource
}

// Start remounts, in the background, every volume that still had callers
// when the plugin last stopped, each bounded by MountTimeout. Call it once
// the socket is listening, so Docker never waits on a slow server.
func (d *Driver) Start() {
	d.mu.Lock()
	var todo []*vol
	for _, v := range d.vols {
		if len(v.rec.MountIDs) > 0 {
			todo = append(todo, v)
		}
	}
	d.mu.Unlock()
	for _, v := range todo {
		d.bg.Add(1)
		go func() {
			defer d.bg.Done()
			v.op.Lock()
			defer v.op.Unlock()
			d.mu.Lock()
			skip := d.closing || v.removed || len(v.rec.MountIDs) == 0 || v.mount != nil
			d.mu.Unlock()
			if skip {
				return
			}
			if err := d.mountLocked(d.bgCtx, v); err != nil {
				d.log.Error("remounting a volume that was in use before the restart failed; the next container start retries",
					"volume", v.name, "error", err)
				return
			}
			d.log.Info("remounted volume that was in use before the restart", "volume", v.name)
		}()
	}
}

// Wait waits for background remounts started by Start.
func (d *Driver) Wait() { d.bg.Wait() }

// shutdownWait bounds how long Shutdown waits for operations that hold a
// volume (a remount or a Mount request waiting for a slow server) before
// it leaves that volume as it is; the other volumes are unmounted at once.
const shutdownWait = 5 * time.Second

// Shutdown unmounts every live mount but keeps the callers in the state,
// so the next start remounts them. Used when the plugin is stopped.
// Background remounts are cancelled first; volumes nobody holds are
// unmounted at once, and one still held by a stuck operation is waited for
// at most shutdownWait.
func (d *Driver) Shutdown() {
	d.mu.Lock()
	d.closing = true
	all := slices.Collect(maps.Values(d.vols))
	d.mu.Unlock()
	d.bgCancel()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownWait)
	defer cancel()
	// In parallel: an unmount may wait up to a few seconds for its FUSE
	// session (mounter.Mounted.Unmount), and a plugin being stopped with
	// many volumes in use must not add those up.
	var wg sync.WaitGroup
	for _, v := range all {
		wg.Go(func() {
			if !v.op.lockContext(ctx) {
				d.log.Warn("volume still busy at shutdown (waiting for its server); left as it is", "volume", v.name, "waited", shutdownWait)
				return
			}
			d.teardownLocked(v)
			v.op.Unlock()
		})
	}
	wg.Wait()
	done := make(chan struct{})
	go func() { d.bg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		d.log.Warn("a background remount did not end at shutdown", "waited", shutdownWait)
	}
}

// volLog is the logger for everything about one volume: each line names
// it, however deep in the mount or backend it is logged.
func (d *Driver) volLog(name string) *slog.Logger { return d.log.With("volume", name) }

func (d *Driver) mountpoint(name string) string { return filepath.Join(d.cfg.MountRoot, name) }

func (d *Driver) lookup(name string) (*vol, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.vols[name]
	if !ok {
		return nil, fmt.Errorf("volume %q does not exist in the sftpfs driver", name)
	}
	return v, nil
}

// save persists the current records. saveMu is taken before the snapshot
// so writes land in the order the snapshots were taken.
func (d *Driver) save() error {
	d.saveMu.Lock()
	defer d.saveMu.Unlock()
	d.mu.Lock()
	recs := make(map[string]*volumeRecord, len(d.vols))
	for name, v := range d.vols {
		r := v.rec
		r.Options = maps.Clone(v.rec.Options)
		r.MountIDs = slices.Clone(v.rec.MountIDs)
		recs[name] = &r
	}
	d.mu.Unlock()
	if err := d.store.save(recs); err != nil {
		d.log.Error("could not persist the plugin state", "error", err)
		return err
	}
	return nil
}

// Create validates the options and checks that the server can be reached
// and authenticated to, so that a volume that can never work fails here.
func (d *Driver) Create(req *volume.CreateRequest) error {
	if err := validateName(req.Name); err != nil {
		return err
	}
	opts := req.Options
	if opts == nil {
		opts = map[string]string{}
	}
	if _, err := d.cfg.Mounter.Validate(opts, d.volLog(req.Name)); err != nil {
		return fmt.Errorf("volume %q: %w", req.Name, err)
	}
	canon, err := d.cfg.Mounter.Canonical(opts)
	if err != nil {
		return fmt.Errorf("volume %q: %w", req.Name, err)
	}
	// A re-create (Docker does this for compose files and for `docker run
	// -v` of an existing name) must not do network I/O or change anything.
	d.mu.Lock()
	if v, ok := d.vols[req.Name]; ok {
		same := d.sameOptions(v.rec.Options, canon)
		d.mu.Unlock()
		if same {
			return nil
		}
		return fmt.Errorf("volume %q already exists with different options; remove it first (docker volume rm %s) or use another name", req.Name, req.Name)
	}
	d.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.CheckTimeout)
	defer cancel()
	start := time.Now()
	info, err := d.cfg.Mounter.Check(ctx, opts, d.volLog(req.Name))
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("volume %q: could not reach the server within %s: %w", req.Name, d.cfg.CheckTimeout, err)
		}
		return fmt.Errorf("volume %q: %w", req.Name, err)
	}
	d.log.Info("volume checked", "volume", req.Name, "backend", info.Backend, "remote", info.Remote, "host_key", info.HostKey, "took", time.Since(start).Round(time.Millisecond))

	d.mu.Lock()
	if v, ok := d.vols[req.Name]; ok {
		// Lost a race with a concurrent create of the same name.
		same := d.sameOptions(v.rec.Options, canon)
		d.mu.Unlock()
		if same {
			return nil
		}
		return fmt.Errorf("volume %q already exists with different options; remove it first (docker volume rm %s) or use another name", req.Name, req.Name)
	}
	d.vols[req.Name] = &vol{name: req.Name, state: backend.StateUnmounted, rec: volumeRecord{
		Options:   maps.Clone(opts),
		CreatedAt: time.Now().UTC(),
		Backend:   info.Backend,
		Remote:    info.Remote,
		HostKey:   info.HostKey,
	}}
	d.mu.Unlock()
	if err := d.save(); err != nil {
		d.mu.Lock()
		delete(d.vols, req.Name)
		d.mu.Unlock()
		return fmt.Errorf("volume %q: %w", req.Name, err)
	}
	d.log.Info("volume created", "volume", req.Name)
	return nil
}

// sameOptions compares stored options with canonical new ones.
func (d *Driver) sameOptions(stored, canon map[string]string) bool {
	old, err := d.cfg.Mounter.Canonical(stored)
	if err != nil {
		return false
	}
	return maps.Equal(old, canon)
}

// Remove forgets a volume. It never touches remote data; it only removes
// the empty local mountpoint directory.
func (d *Driver) Remove(req *volume.RemoveRequest) error {
	v, err := d.lookup(req.Name)
	if err != nil {
		return err
	}
	v.op.Lock()
	defer v.op.Unlock()
	// Docker only calls Remove when none of its containers uses the
	// volume, so callers recorded before the plugin restarted that Docker
	// never mentioned again (containers lost in an engine crash, for which
	// no Unmount ever comes) are stale and must not block the removal.
	d.mu.Lock()
	n, stale := 0, 0
	for _, id := range v.rec.MountIDs {
		if v.restored[id] {
			stale++
		} else {
			n++
		}
	}
	if n == 0 && stale > 0 {
		v.rec.MountIDs = nil
		v.restored = nil
	}
	d.mu.Unlock()
	if n > 0 {
		return fmt.Errorf("volume %q is in use by %d mount(s); stop the containers using it first", req.Name, n)
	}
	if stale > 0 {
		d.log.Warn("removing a volume whose callers from before the restart were never released by Docker (lost in an engine crash)",
			"volume", req.Name, "stale_mounts", stale)
	}
	d.teardownLocked(v)
	mp := d.mountpoint(req.Name)
	if c, err := mountCount(mp); err != nil {
		return fmt.Errorf("volume %q: %w", req.Name, err)
	} else if c > 0 {
		return fmt.Errorf("volume %q: something is still mounted on %s; unmount it and retry", req.Name, mp)
	}
	// os.Remove, never RemoveAll: if anything is in the directory it
	// is not ours to delete.
	if err := os.Remove(mp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		d.log.Warn("left the mountpoint directory in place", "volume", req.Name, "mountpoint", mp, "error", err)
	}
	d.mu.Lock()
	delete(d.vols, req.Name)
	v.removed = true
	d.mu.Unlock()
	if err := d.save(); err != nil {
		return fmt.Errorf("volume %q was removed but the state could not be saved: %w", req.Name, err)
	}
	if d.cfg.Metrics != nil {
		d.cfg.Metrics.Forget(req.Name)
	}
	d.log.Info("volume removed (remote data untouched)", "volume", req.Name)
	return nil
}

// Mount mounts the volume for caller req.ID; the first caller connects,
// later ones reuse the mount after checking it is alive.
func (d *Driver) Mount(req *volume.MountRequest) (*volume.MountResponse, error) {
	v, err := d.lookup(req.Name)
	if err != nil {
		return nil, err
	}
	reqCtx, reqCancel := context.WithTimeout(context.Background(), d.cfg.MountRequestTimeout)
	defer reqCancel()
	if !v.op.lockContext(reqCtx) {
		return nil, fmt.Errorf("volume %q is busy: another mount or unmount of it (waiting for the server) did not finish within %s; start the container again later",
			req.Name, d.cfg.MountRequestTimeout)
	}
	defer v.op.Unlock()
	d.mu.Lock()
	if v.removed {
		d.mu.Unlock()
		return nil, fmt.Errorf("volume %q does not exist in the sftpfs driver", req.Name)
	}
	m := v.mount
	d.mu.Unlock()

	if m != nil {
		if st := m.Status(); st.State == backend.StateFailed {
			// The server refuses the connection for a reason retrying
			// will not fix (host key, authentication, directory gone):
			// the container start fails with it. The mount stays for
			// the containers already using it and recovers by itself
			// once the cause is fixed.
			return nil, fmt.Errorf("volume %q failed: %s", req.Name, st.LastError)
		}
		ctx, cancel := context.WithTimeout(reqCtx, d.cfg.AliveTimeout)
		err := m.Alive(ctx)
		cancel()
		if err != nil {
			d.log.Warn("mount is dead; remounting", "volume", req.Name, "error", err)
			d.mu.Lock()
			v.lastErr = "mount died: " + err.Error()
			d.mu.Unlock()
			d.unmountFUSELocked(v)
			m = nil
		}
	}
	if m == nil {
		if err := d.mountLocked(reqCtx, v); err != nil {
			d.mu.Lock()
			idle := len(v.rec.MountIDs) == 0
			d.mu.Unlock()
			if idle {
				// Nobody uses the mountpoint: drop the guard too.
				d.teardownLocked(v)
			}
			return nil, fmt.Errorf("volume %q: %w", req.Name, err)
		}
	}
	d.mu.Lock()
	wasRestored := v.restored[req.ID]
	delete(v.restored, req.ID)
	added := !slices.Contains(v.rec.MountIDs, req.ID)
	if added {
		v.rec.MountIDs = append(v.rec.MountIDs, req.ID)
	}
	count := len(v.rec.MountIDs)
	d.mu.Unlock()
	if err := d.save(); err != nil {
		// Docker takes the error as a failed mount and will never send
		// the Unmount for this caller: keeping it would hold the volume
		// (and refuse its Remove) until the plugin restarts.
		d.mu.Lock()
		if added {
			if i := slices.Index(v.rec.MountIDs, req.ID); i >= 0 {
				v.rec.MountIDs = slices.Delete(v.rec.MountIDs, i, i+1)
			}
		}
		if wasRestored {
			v.restored[req.ID] = true
		}
		idle := len(v.rec.MountIDs) == 0
		d.mu.Unlock()
		if idle {
			d.teardownLocked(v)
		}
		return nil, fmt.Errorf("volume %q: %w", req.Name, err)
	}
	d.setMounts(req.Name, count)
	d.log.Info("volume mounted", "volume", req.Name, "id", req.ID, "mounts", count)
	return &volume.MountResponse{Mountpoint: d.mountpoint(req.Name)}, nil
}

// setMounts updates the callers gauge.
func (d *Driver) setMounts(name string, n int) {
	if d.cfg.Metrics != nil {
		d.cfg.Metrics.SetMounts(name, n)
	}
}

// mountLocked mounts v (guard first, then the filesystem) within
// MountTimeout and ctx. Caller holds v.op and v has no live mount.
func (d *Driver) mountLocked(ctx context.Context, v *vol) error {
	mp := d.mountpoint(v.name)
	d.mu.Lock()
	opts := maps.Clone(v.rec.Options)
	v.state = stateMounting
	guarded := v.guarded
	d.mu.Unlock()
	fail := func(err error) error {
		d.mu.Lock()
		v.state = stateMountFailed
		v.lastErr = err.Error()
		d.mu.Unlock()
		return err
	}
	// Mkdir, not MkdirAll: MkdirAll stats the path first, and a stat of
	// a path with a FUSE mount on it is a request to that filesystem,
	// which may be dead or wedged. mkdir(2) of an existing name fails in
	// the parent directory without crossing into the mount.
	if err := os.Mkdir(mp, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fail(fmt.Errorf("creating the mountpoint %s: %w", mp, err))
	}
	if d.cfg.Guard && !guarded {
		// Anything already there is a leftover (a dead mount from a
		// crash); detach it so we start from the bare directory.
		if err := detachAll(mp, 8); err != nil {
			return fail(err)
		}
		if err := unix.Mount(guardSource, mp, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=4k,nr_inodes=16,mode=0555"); err != nil {
			return fail(fmt.Errorf("mounting the read-only guard on %s (the plugin needs CAP_SYS_ADMIN): %w", mp, err))
		}
		d.mu.Lock()
		v.guarded = true
		d.mu.Unlock()
	}
	bound := d.cfg.MountTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < bound {
		bound = time.Until(dl).Round(time.Millisecond) // what is left of the request's budget
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.MountTimeout)
	defer cancel()
	m, err := d.cfg.Mounter.Mount(ctx, v.name, opts, mp, d.volLog(v.name))
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("mounting did not finish within %s: %w", bound, err)
		}
		return fail(err)
	}
	d.mu.Lock()
	v.mount = m
	v.lastErr = ""
	d.mu.Unlock()
	go d.watch(v, m)
	return nil
}

// watch logs when a filesystem server stops on its own, so the reason is
// in dockerd's log even before the next Mount notices.
func (d *Driver) watch(v *vol, m Mount) {
	<-m.Done()
	d.mu.Lock()
	live := v.mount == m
	d.mu.Unlock()
	if live {
		d.log.Warn("the volume's filesystem stopped while in use; the next mount remounts it", "volume", v.name)
	}
}

// unmountFUSELocked removes the filesystem mount but leaves the guard.
func (d *Driver) unmountFUSELocked(v *vol) {
	d.mu.Lock()
	m := v.mount
	v.mount = nil
	d.mu.Unlock()
	if m == nil {
		return
	}
	if err := m.Unmount(); err != nil {
		d.log.Warn("unmount reported an error", "volume", v.name, "error", err)
	}
	d.scheduleRelease()
	if !d.cfg.Guard {
		return
	}
	// Whatever is left above the guard (a dead FUSE mount the unmount
	// could not remove) is detached so the guard is on top again.
	mp := d.mountpoint(v.name)
	if n, err := mountCount(mp); err == nil && n > 1 {
		for range n - 1 {
			if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil {
				d.log.Warn("could not detach a dead mount", "volume", v.name, "error", err)
				break
			}
		}
	}
}

// scheduleRelease returns freed heap to the kernel once unmounts have
// been quiet for ReleaseMemoryDelay. Debounced, so a burst of unmounts
// costs one forced GC, not one per volume.
func (d *Driver) scheduleRelease() {
	if d.cfg.ReleaseMemoryDelay < 0 {
		return
	}
	d.releaseMu.Lock()
	defer d.releaseMu.Unlock()
	if d.release == nil {
		d.release = time.AfterFunc(d.cfg.ReleaseMemoryDelay, releaseMemory)
		return
	}
	d.release.Reset(d.cfg.ReleaseMemoryDelay)
}

// releaseMemory collects garbage twice, because the buffers of unmounted
// filesystems sit in sync.Pools whose contents survive one GC in the
// pools' victim cache, then returns the free heap to the kernel.
func releaseMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}

// teardownLocked removes the filesystem and the guard.
func (d *Driver) teardownLocked(v *vol) {
	d.unmountFUSELocked(v)
	d.mu.Lock()
	guarded := v.guarded
	v.guarded = false
	v.state = backend.StateUnmounted
	d.mu.Unlock()
	if guarded {
		if err := detachAll(d.mountpoint(v.name), 8); err != nil {
			d.log.Warn("could not remove the guard mount", "volume", v.name, "error", err)
		}
	}
}

// Unmount releases caller req.ID; the last one tears the mount down.
func (d *Driver) Unmount(req *volume.UnmountRequest) error {
	v, err := d.lookup(req.Name)
	if err != nil {
		return err
	}
	v.op.Lock()
	defer v.op.Unlock()
	d.mu.Lock()
	delete(v.restored, req.ID)
	if i := slices.Index(v.rec.MountIDs, req.ID); i >= 0 {
		v.rec.MountIDs = slices.Delete(v.rec.MountIDs, i, i+1)
	} else {
		d.log.Warn("unmount from a caller that had not mounted the volume", "volume", req.Name, "id", req.ID)
	}
	left := len(v.rec.MountIDs)
	d.mu.Unlock()
	if left == 0 {
		d.teardownLocked(v)
	}
	if err := d.save(); err != nil {
		return fmt.Errorf("volume %q: %w", req.Name, err)
	}
	d.setMounts(req.Name, left)
	d.log.Info("volume unmounted", "volume", req.Name, "id", req.ID, "mounts", left)
	return nil
}

// Path reports where the volume is mounted, or "" when it is not.
func (d *Driver) Path(req *volume.PathRequest) (*volume.PathResponse, error) {
	v, err := d.lookup(req.Name)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if v.mount == nil {
		return &volume.PathResponse{}, nil
	}
	return &volume.PathResponse{Mountpoint: d.mountpoint(req.Name)}, nil
}

// Get describes one volume. Like List it does no I/O and takes no
// per-volume lock, so it answers while a server is unreachable.
func (d *Driver) Get(req *volume.GetRequest) (*volume.GetResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.vols[req.Name]
	if !ok {
		return nil, fmt.Errorf("volume %q does not exist in the sftpfs driver", req.Name)
	}
	return &volume.GetResponse{Volume: d.describe(v)}, nil
}

// List describes every volume.
func (d *Driver) List() (*volume.ListResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	names := slices.Collect(maps.Keys(d.vols))
	sort.Strings(names)
	out := &volume.ListResponse{Volumes: []*volume.Volume{}}
	for _, n := range names {
		out.Volumes = append(out.Volumes, d.describe(d.vols[n]))
	}
	return out, nil
}

// describe builds the Docker view of v. Caller holds d.mu.
func (d *Driver) describe(v *vol) *volume.Volume {
	st := map[string]any{
		"backend":    v.rec.Backend,
		"remote":     v.rec.Remote,
		"mounts":     len(v.rec.MountIDs),
		"reconnects": int64(0),
		"state":      string(v.state),
	}
	hostKey := v.rec.HostKey
	lastErr := v.lastErr
	if v.mount != nil {
		ms := v.mount.Status()
		st["state"] = string(ms.State)
		st["reconnects"] = ms.Reconnects
		if ms.HostKey != "" {
			hostKey = ms.HostKey
		}
		if ms.LastError != "" {
			lastErr = ms.LastError
		}
		if ms.RejectedNames > 0 {
			// A server sending names like "../x" or "a/b" is hostile
			// or broken; inspect shows it, the log has the names.
			st["rejected_names"] = ms.RejectedNames
		}
		select {
		case <-v.mount.Done():
			st["state"] = string(stateDead)
		default:
		}
	}
	if hostKey != "" {
		st["host_key"] = hostKey
	}
	if h := d.optionsHash(v.rec.Options); h != "" {
		st["options_hash"] = h
	}
	if lastErr != "" {
		st["last_error"] = lastErr
	}
	vv := &volume.Volume{
		Name:      v.name,
		CreatedAt: v.rec.CreatedAt.Format(time.RFC3339),
		Status:    st,
	}
	if v.mount != nil {
		vv.Mountpoint = d.mountpoint(v.name)
	}
	return vv
}

// optionsHash fingerprints a volume's options so that the same volume
// name created on several Swarm nodes with different options can be told
// apart: each node's plugin only knows its own volume, and Docker does not
// call Create again for a service whose volume already exists on a node,
// so nothing else would notice the nodes silently using different
// remotes. Equal canonical options (aliases and spellings resolved) give
// equal hashes. Secret values are left out, so the hash cannot be used to
// guess them; only their presence counts. Pure CPU: safe under d.mu.
func (d *Driver) optionsHash(opts map[string]string) string {
	canon, err := d.cfg.Mounter.Canonical(opts)
	if err != nil {
		return ""
	}
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(canon)) {
		v := canon[k]
		if o, ok := options.Lookup(k); !ok || o.Secret {
			v = "<secret>"
		}
		fmt.Fprintf(h, "%s=%s\n", k, v)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:16]
}

// Capabilities reports local scope: a volume is a per-node mount of a
// remote, and each node's plugin keeps its own state (see doc.go).
func (d *Driver) Capabilities() *volume.CapabilitiesResponse {
	return &volume.CapabilitiesResponse{Capabilities: volume.Capability{Scope: "local"}}
}
