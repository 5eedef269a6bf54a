package sftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	psftp "github.com/pkg/sftp"

	"github.com/sftpfs/sftpfs/backend"
)

// Options configure a Backend built by NewWithDialer. Zero fields take
// the same defaults as Config.
type Options struct {
	OpTimeout         time.Duration
	ConnectTimeout    time.Duration // bounds each reconnect attempt
	KeepaliveInterval time.Duration // only for transports with SendRequest
	KeepaliveCountMax int
	// CreatePath creates the root (and parents) when missing.
	CreatePath bool
	// Conns is the number of connections (see Config.Conns).
	Conns int
	// Remote is the display name for Status.
	Remote    string
	Reconnect ReconnectPolicy
	Logger    *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.OpTimeout <= 0 {
		o.OpTimeout = DefaultOpTimeout
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.KeepaliveInterval == 0 {
		o.KeepaliveInterval = DefaultKeepaliveInterval
	}
	if o.KeepaliveCountMax <= 0 {
		o.KeepaliveCountMax = DefaultKeepaliveCountMax
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Conns <= 0 {
		o.Conns = DefaultConns
	}
	o.Conns = min(o.Conns, MaxConns)
	return o
}

// Backend is a backend.Backend over SFTP.
type Backend struct {
	// c is connection 0, which carries every path call; pool places
	// open files on it and the extra connections (pool.go).
	c      *conn
	pool   *pool
	root   string // absolute remote path of the root
	caps   backend.Capabilities
	exts   []string
	remote string
	log    *slog.Logger
	hk     *seenHostKey
	// mutations counts changes made through this backend (path calls and
	// writes through any handle); a File's creation-time attributes are
	// reused only while it is unchanged.
	mutations atomic.Uint64
	// dirs holds the listing session and the rejected-name count
	// (readdir.go).
	dirs dirLister
	// dataMax is Config.MaxPacket for the file data session (datafile.go).
	dataMax int
}

var _ backend.Backend = (*Backend)(nil)

var _ backend.Statuser = (*Backend)(nil)

// New validates cfg, connects, and checks (or creates, with CreatePath)
// the root directory.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	hk := &seenHostKey{}
	dial := func(ctx context.Context) (*psftp.Client, io.Closer, error) {
		return cfg.dialSSH(ctx, hk)
	}
	p := LoginRelative(cfg.Path)
	if p == "" {
		p = "."
	}
	b, err := newBackend(ctx, dial, p, Options{
		OpTimeout: cfg.OpTimeout, ConnectTimeout: cfg.ConnectTimeout,
		KeepaliveInterval: cfg.KeepaliveInterval, KeepaliveCountMax: cfg.KeepaliveCountMax,
		CreatePath: cfg.CreatePath, Conns: cfg.Conns, Remote: cfg.Remote(), Reconnect: cfg.Reconnect, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	b.hk = hk
	b.dataMax = cfg.MaxPacket
	return b, nil
}

// NewWithDialer builds a Backend over any transport (tests use
// /usr/lib/openssh/sftp-server over pipes and in-process servers). root is
// resolved by the server (relative to its working directory).
func NewWithDialer(ctx context.Context, dial Dialer, root string, opts Options) (*Backend, error) {
	return newBackend(ctx, dial, root, opts)
}

func newBackend(ctx context.Context, dial Dialer, root string, o Options) (*Backend, error) {
	o = o.withDefaults()
	if root == "" || strings.ContainsRune(root, 0) {
		return nil, fmt.Errorf("path %q is not a valid remote directory", root)
	}
	c := newConn(dial, o, o.Logger)
	cctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	defer cancel()
	if err := c.connect(cctx); err != nil {
		c.close()
		return nil, err
	}
	b := &Backend{c: c, remote: o.Remote, log: o.Logger, hk: &seenHostKey{}}
	t := c.current()
	if t == nil {
		c.close()
		return nil, errors.New("connection lost during setup")
	}
	for _, name := range []string{
		"posix-rename@openssh.com", "statvfs@openssh.com", "hardlink@openssh.com",
		"fsync@openssh.com", "lsetstat@openssh.com", "fstatvfs@openssh.com",
		"limits@openssh.com", "expand-path@openssh.com", "copy-data", "home-directory",
		"users-groups-by-id@openssh.com",
	} {
		if _, ok := t.client.HasExtension(name); ok {
			b.exts = append(b.exts, name)
		}
	}
	sort.Strings(b.exts)
	has := func(n string) bool { return contains(b.exts, n) }
	b.caps = backend.Capabilities{
		Link: has("hardlink@openssh.com"), Symlink: true, Chown: true,
		AtomicRename: has("posix-rename@openssh.com"), StatFS: has("statvfs@openssh.com"),
		Fsync: has("fsync@openssh.com"), Lsetstat: has("lsetstat@openssh.com"),
		// pkg/sftp's WriteAt waits for the status reply of every
		// request it sent and returns the first error.
		WritesAcked: true,
	}

	abs, err := b.resolveRoot(ctx, root, o.CreatePath)
	if err != nil {
		c.close()
		return nil, err
	}
	b.root = abs
	// A reconnect that finds the root gone installs nothing: the volume
	// fails with that reason instead of answering ENOENT for everything.
	check := func(cl *psftp.Client) error {
		if _, err := cl.Stat(abs); err != nil && classify(err) == syscall.ENOENT {
			return &rootGoneError{root: abs}
		}
		return nil
	}
	c.mu.Lock()
	c.check = check
	c.mu.Unlock()
	b.pool = newPool(c, dial, o, check)
	if b.remote == "" {
		b.remote = abs
	}
	b.log.Info("sftp backend ready", "remote", b.remote, "root", abs, "missing_capabilities", b.caps.Missing())
	return b, nil
}

// resolveRoot turns root into an absolute path with the server's help and
// checks that it is a directory.
func (b *Backend) resolveRoot(ctx context.Context, root string, create bool) (string, error) {
	st, err := call(b.c, ctx, true, func(t *transport) (os.FileInfo, error) { return t.client.Stat(root) }, nil)
	if err != nil && classify(err) == syscall.ENOENT && create {
		_, err = call(b.c, ctx, true, func(t *transport) (struct{}, error) { return struct{}{}, t.client.MkdirAll(root) }, nil)
		if err != nil {
			return "", fmt.Errorf("path %s: cannot create it (create_path): %w", root, pathErr("mkdir", root, err))
		}
		st, err = call(b.c, ctx, true, func(t *transport) (os.FileInfo, error) { return t.client.Stat(root) }, nil)
	}
	if err != nil {
		if classify(err) == syscall.ENOENT {
			return "", fmt.Errorf("path %s does not exist on the server: create it or set create_path=true", root)
		}
		return "", fmt.Errorf("path %s: %w", root, pathErr("stat", root, err))
	}
	if !st.IsDir() {
		return "", fmt.Errorf("path %s on the server is not a directory", root)
	}
	abs, err := call(b.c, ctx, true, func(t *transport) (string, error) { return t.client.RealPath(root) }, nil)
	if err != nil {
		return "", fmt.Errorf("path %s: resolving it: %w", root, pathErr("realpath", root, err))
	}
	if !path.IsAbs(abs) {
		return "", fmt.Errorf("path %s: the server resolved it to %q, which is not absolute", root, abs)
	}
	return path.Clean(abs), nil
}

// Status reports the connection state (backend.Statuser). Connection 0
// decides it: it is always dialled, every path call (lookups, listings,
// creates) runs on it, so when it is down the volume is unusable
// whatever the extra connections do; an extra connection that is down
// holds up only its own open files, which wait for its reconnect within
// op_timeout like any call, and it reconnects by itself.
func (b *Backend) Status() backend.Status {
	state, n, last := b.c.status()
	return backend.Status{
		State: state, Reconnects: n, LastError: last, HostKeyFingerprint: b.hk.get(),
		RejectedNames: b.dirs.rejected.Load(),
	}
}

// Capabilities follow the server's extensions at the first connection.
func (b *Backend) Capabilities() backend.Capabilities { return b.caps }

// Close closes the connections; open Files become unusable.
func (b *Backend) Close() error {
	b.pool.close()
	b.c.close()
	return nil
}

// abs maps a contract name to the remote path. Names that
// backend.ValidName rejects (it also refuses NUL, which a C server would
// truncate at) are refused without touching the server.
func (b *Backend) abs(op, name string) (string, error) {
	if !backend.ValidName(name) {
		return "", errnoErr(op, name, syscall.EINVAL)
	}
	if name == "." {
		return b.root, nil
	}
	return path.Join(b.root, name), nil
}

func baseName(name string) string {
	if name == "." {
		return "."
	}
	return path.Base(name)
}

// toInfo converts pkg/sftp's FileInfo.
func toInfo(name string, fi os.FileInfo) backend.FileInfo {
	out := backend.FileInfo{Name: name, Size: fi.Size(), Mode: fi.Mode(), ModTime: fi.ModTime()}
	if st, ok := fi.Sys().(*psftp.FileStat); ok {
		out.UID, out.GID = st.UID, st.GID
		if st.Atime != 0 {
			out.ATime = time.Unix(int64(st.Atime), 0)
		}
	}
	return out
}

// do is call for operations that return only an error.
func (b *Backend) do(ctx context.Context, idempotent bool, fn func(*psftp.Client) error) error {
	b.mutations.Add(1)
	_, err := call(b.c, ctx, idempotent, func(t *transport) (struct{}, error) { return struct{}{}, fn(t.client) }, nil)
	return err
}

// lstatRaw is a follow-up Lstat used to disambiguate SSH_FX_FAILURE.
func (b *Backend) lstatRaw(ctx context.Context, p string) (os.FileInfo, error) {
	return call(b.c, ctx, true, func(t *transport) (os.FileInfo, error) { return t.client.Lstat(p) }, nil)
}

// Stat follows a final symlink.
func (b *Backend) Stat(ctx context.Context, name string) (backend.FileInfo, error) {
	p, err := b.abs("stat", name)
	if err != nil {
		return backend.FileInfo{}, err
	}
	fi, err := call(b.c, ctx, true, func(t *transport) (os.FileInfo, error) { return t.client.Stat(p) }, nil)
	if err != nil {
		return backend.FileInfo{}, pathErr("stat", name, err)
	}
	return toInfo(baseName(name), fi), nil
}

// Lstat does not follow a final symlink.
func (b *Backend) Lstat(ctx context.Context, name string) (backend.FileInfo, error) {
	p, err := b.abs("lstat", name)
	if err != nil {
		return backend.FileInfo{}, err
	}
	fi, err := b.lstatRaw(ctx, p)
	if err != nil {
		return backend.FileInfo{}, pathErr("lstat", name, err)
	}
	return toInfo(baseName(name), fi), nil
}

// Mkdir creates a directory, then sets perm (pkg/sftp's MKDIR sends no
// attributes, so the server's umask would otherwise decide).
func (b *Backend) Mkdir(ctx context.Context, name string, perm fs.FileMode) error {
	p, err := b.abs("mkdir", name)
	if err != nil {
		return err
	}
	err = b.do(ctx, false, func(cl *psftp.Client) error { return cl.Mkdir(p) })
	if err != nil {
		if isGenericFailure(err) {
			if _, lerr := b.lstatRaw(ctx, p); lerr == nil {
				return errnoErr("mkdir", name, syscall.EEXIST)
			}
		}
		return pathErr("mkdir", name, err)
	}
	return pathErr("mkdir", name, b.do(ctx, true, func(cl *psftp.Client) error { return cl.Chmod(p, perm&backend.PermBits) }))
}

// Remove removes a non-directory. pkg/sftp's Remove falls back to RMDIR,
// so a directory is refused up front (a directory appearing between the
// check and the remove is the one race left).
func (b *Backend) Remove(ctx context.Context, name string) error {
	p, err := b.abs("remove", name)
	if err != nil {
		return err
	}
	if name == "." {
		return errnoErr("remove", name, syscall.EISDIR)
	}
	st, err := b.lstatRaw(ctx, p)
	if err != nil {
		return pathErr("remove", name, err)
	}
	if st.IsDir() {
		return errnoErr("remove", name, syscall.EISDIR)
	}
	return pathErr("remove", name, b.do(ctx, false, func(cl *psftp.Client) error { return cl.Remove(p) }))
}

// Unlink implements backend.Unlinker: Remove without the LSTAT.
func (b *Backend) Unlink(ctx context.Context, name string) error {
	p, err := b.abs("remove", name)
	if err != nil {
		return err
	}
	if name == "." {
		return errnoErr("remove", name, syscall.EISDIR)
	}
	return pathErr("remove", name, b.do(ctx, false, func(cl *psftp.Client) error { return cl.Remove(p) }))
}

// Rmdir removes an empty directory.
func (b *Backend) Rmdir(ctx context.Context, name string) error {
	p, err := b.abs("rmdir", name)
	if err != nil {
		return err
	}
	if name == "." {
		return errnoErr("rmdir", name, syscall.EBUSY)
	}
	// Some servers (pkg/sftp's) implement RMDIR with remove(3), which
	// also deletes files: refuse non-directories first.
	if st, err := b.lstatRaw(ctx, p); err != nil {
		return pathErr("rmdir", name, err)
	} else if !st.IsDir() {
		return errnoErr("rmdir", name, syscall.ENOTDIR)
	}
	err = b.do(ctx, false, func(cl *psftp.Client) error { return cl.RemoveDirectory(p) })
	if err != nil && classify(err) == 0 {
		st, lerr := b.lstatRaw(ctx, p)
		switch {
		case lerr != nil:
			return pathErr("rmdir", name, lerr)
		case !st.IsDir():
			return errnoErr("rmdir", name, syscall.ENOTDIR)
		case isGenericFailure(err):
			return errnoErr("rmdir", name, syscall.ENOTEMPTY)
		}
	}
	return pathErr("rmdir", name, err)
}

// Rename moves oldname to newname; see the package documentation for how
// replacement works without posix-rename@openssh.com.
func (b *Backend) Rename(ctx context.Context, oldname, newname string, flags backend.RenameFlags) error {
	op, err := b.abs("rename", oldname)
	if err != nil {
		return err
	}
	np, err := b.abs("rename", newname)
	if err != nil {
		return err
	}
	if oldname == "." || newname == "." {
		return errnoErr("rename", oldname, syscall.EBUSY)
	}
	if flags&backend.RenameNoReplace != 0 {
		// Plain SSH_FXP_RENAME refuses an existing target on OpenSSH
		// (link+unlink); the Lstat first also covers servers that replace.
		if _, err := b.lstatRaw(ctx, np); err == nil {
			// rename(2) reports a missing source before an existing target.
			if _, oerr := b.lstatRaw(ctx, op); oerr != nil {
				return pathErr("rename", oldname, oerr)
			}
			return errnoErr("rename", newname, syscall.EEXIST)
		} else if classify(err) != syscall.ENOENT {
			return pathErr("rename", newname, err)
		}
		err := b.do(ctx, false, func(cl *psftp.Client) error { return cl.Rename(op, np) })
		if err != nil && isGenericFailure(err) {
			if _, lerr := b.lstatRaw(ctx, np); lerr == nil {
				return errnoErr("rename", newname, syscall.EEXIST)
			}
		}
		return b.renameErr(ctx, oldname, newname, op, np, err)
	}
	if b.caps.AtomicRename {
		err := b.do(ctx, false, func(cl *psftp.Client) error { return cl.PosixRename(op, np) })
		err = b.renameErr(ctx, oldname, newname, op, np, err)
		if errors.Is(err, syscall.ENOTEMPTY) {
			// Servers written in Go (os.Rename) refuse to replace any
			// directory; an empty one can be removed first (not atomic).
			if b.do(ctx, false, func(cl *psftp.Client) error { return cl.RemoveDirectory(np) }) == nil {
				err = b.do(ctx, false, func(cl *psftp.Client) error { return cl.PosixRename(op, np) })
				err = b.renameErr(ctx, oldname, newname, op, np, err)
			}
		}
		return err
	}
	// Emulated replace: check kinds as rename(2) would, remove the target,
	// then rename. Not atomic: another client can see newname missing.
	if err := b.do(ctx, false, func(cl *psftp.Client) error { return cl.Rename(op, np) }); err == nil {
		return nil
	}
	ost, err := b.lstatRaw(ctx, op)
	if err != nil {
		return pathErr("rename", oldname, err)
	}
	nst, err := b.lstatRaw(ctx, np)
	if err == nil {
		if e := kindConflict(ost, nst); e != 0 {
			return errnoErr("rename", newname, e)
		}
		if nst.IsDir() {
			err = b.do(ctx, false, func(cl *psftp.Client) error { return cl.RemoveDirectory(np) })
			if err != nil && isGenericFailure(err) {
				return errnoErr("rename", newname, syscall.ENOTEMPTY)
			}
		} else {
			err = b.do(ctx, false, func(cl *psftp.Client) error { return cl.Remove(np) })
		}
		if err != nil && classify(err) != syscall.ENOENT {
			return pathErr("rename", newname, err)
		}
	}
	err = b.do(ctx, false, func(cl *psftp.Client) error { return cl.Rename(op, np) })
	return b.renameErr(ctx, oldname, newname, op, np, err)
}

// kindConflict is the rename(2) rule for an existing target.
func kindConflict(src, dst os.FileInfo) syscall.Errno {
	switch {
	case src.IsDir() && !dst.IsDir():
		return syscall.ENOTDIR
	case !src.IsDir() && dst.IsDir():
		return syscall.EISDIR
	}
	return 0
}

// renameErr turns a rename failure into the POSIX errno by looking at
// both ends.
func (b *Backend) renameErr(ctx context.Context, oldname, newname, op, np string, err error) error {
	if err == nil {
		return nil
	}
	// OpenSSH reports ENOTDIR as NO_SUCH_FILE and most other errnos as
	// FAILURE, so both need a look at the two ends.
	if e := classify(err); e != 0 && e != syscall.ENOENT {
		return pathErr("rename", oldname, err)
	}
	ost, oerr := b.lstatRaw(ctx, op)
	if oerr != nil {
		return pathErr("rename", oldname, oerr)
	}
	if nst, nerr := b.lstatRaw(ctx, np); nerr == nil {
		if e := kindConflict(ost, nst); e != 0 {
			return errnoErr("rename", newname, e)
		}
		if ost.IsDir() && nst.IsDir() {
			return errnoErr("rename", newname, syscall.ENOTEMPTY)
		}
	} else if classify(nerr) == syscall.ENOENT {
		if _, perr := b.lstatRaw(ctx, path.Dir(np)); perr != nil {
			return errnoErr("rename", newname, syscall.ENOENT)
		}
		if ost.IsDir() && strings.HasPrefix(np, op+"/") {
			return errnoErr("rename", newname, syscall.EINVAL)
		}
	}
	return pathErr("rename", oldname, err)
}

// Symlink stores target verbatim.
func (b *Backend) Symlink(ctx context.Context, target, name string) error {
	p, err := b.abs("symlink", name)
	if err != nil {
		return err
	}
	if strings.ContainsRune(target, 0) {
		return errnoErr("symlink", name, syscall.EINVAL)
	}
	err = b.do(ctx, false, func(cl *psftp.Client) error { return cl.Symlink(target, p) })
	if err != nil && isGenericFailure(err) {
		if _, lerr := b.lstatRaw(ctx, p); lerr == nil {
			return errnoErr("symlink", name, syscall.EEXIST)
		}
	}
	return pathErr("symlink", name, err)
}

// Readlink returns a symlink's target.
func (b *Backend) Readlink(ctx context.Context, name string) (string, error) {
	p, err := b.abs("readlink", name)
	if err != nil {
		return "", err
	}
	target, err := call(b.c, ctx, true, func(t *transport) (string, error) { return t.client.ReadLink(p) }, nil)
	if err != nil && classify(err) == 0 {
		if st, lerr := b.lstatRaw(ctx, p); lerr == nil && st.Mode()&fs.ModeSymlink == 0 {
			return "", errnoErr("readlink", name, syscall.EINVAL)
		}
	}
	if err != nil {
		return "", pathErr("readlink", name, err)
	}
	return target, nil
}

// Link creates a hard link (hardlink@openssh.com).
func (b *Backend) Link(ctx context.Context, oldname, newname string) error {
	op, err := b.abs("link", oldname)
	if err != nil {
		return err
	}
	np, err := b.abs("link", newname)
	if err != nil {
		return err
	}
	if !b.caps.Link {
		return errnoErr("link", newname, syscall.ENOTSUP)
	}
	err = b.do(ctx, false, func(cl *psftp.Client) error { return cl.Link(op, np) })
	if err != nil && isGenericFailure(err) {
		if _, lerr := b.lstatRaw(ctx, np); lerr == nil {
			return errnoErr("link", newname, syscall.EEXIST)
		}
		if _, lerr := b.lstatRaw(ctx, op); lerr != nil {
			return pathErr("link", oldname, lerr)
		}
	}
	return pathErr("link", newname, err)
}

// Chmod sets permission bits, following symlinks (SETSTAT).
func (b *Backend) Chmod(ctx context.Context, name string, mode fs.FileMode) error {
	p, err := b.abs("chmod", name)
	if err != nil {
		return err
	}
	return pathErr("chmod", name, b.do(ctx, true, func(cl *psftp.Client) error { return cl.Chmod(p, mode&backend.PermBits) }))
}

// Chown sets the numeric owner; SFTP needs both ids, so -1 is filled in
// from a Stat.
func (b *Backend) Chown(ctx context.Context, name string, uid, gid int) error {
	p, err := b.abs("chown", name)
	if err != nil {
		return err
	}
	if uid == -1 && gid == -1 {
		return nil
	}
	err = b.do(ctx, true, func(cl *psftp.Client) error {
		u, g := uid, gid
		if u == -1 || g == -1 {
			fi, err := cl.Stat(p)
			if err != nil {
				return err
			}
			st, ok := fi.Sys().(*psftp.FileStat)
			if !ok {
				return errors.New("server did not report the owner")
			}
			if u == -1 {
				u = int(st.UID)
			}
			if g == -1 {
				g = int(st.GID)
			}
		}
		return cl.Chown(p, u, g)
	})
	return pathErr("chown", name, err)
}

// Chtimes sets times with second precision (SFTP v3 attributes); a zero
// time keeps the current value.
func (b *Backend) Chtimes(ctx context.Context, name string, atime, mtime time.Time) error {
	p, err := b.abs("chtimes", name)
	if err != nil {
		return err
	}
	err = b.do(ctx, true, func(cl *psftp.Client) error {
		a, m := atime, mtime
		if a.IsZero() || m.IsZero() {
			fi, err := cl.Stat(p)
			if err != nil {
				return err
			}
			if m.IsZero() {
				m = fi.ModTime()
			}
			if a.IsZero() {
				a = m
				if st, ok := fi.Sys().(*psftp.FileStat); ok {
					a = time.Unix(int64(st.Atime), 0)
				}
			}
		}
		return cl.Chtimes(p, a, m)
	})
	return pathErr("chtimes", name, err)
}

// Truncate sets the size of a regular file.
func (b *Backend) Truncate(ctx context.Context, name string, size int64) error {
	p, err := b.abs("truncate", name)
	if err != nil {
		return err
	}
	if size < 0 {
		return errnoErr("truncate", name, syscall.EINVAL)
	}
	return pathErr("truncate", name, b.do(ctx, true, func(cl *psftp.Client) error { return cl.Truncate(p, size) }))
}

// StatFS uses statvfs@openssh.com.
func (b *Backend) StatFS(ctx context.Context, name string) (backend.StatFS, error) {
	p, err := b.abs("statfs", name)
	if err != nil {
		return backend.StatFS{}, err
	}
	if !b.caps.StatFS {
		return backend.StatFS{}, errnoErr("statfs", name, syscall.ENOTSUP)
	}
	v, err := call(b.c, ctx, true, func(t *transport) (*psftp.StatVFS, error) { return t.client.StatVFS(p) }, nil)
	if err != nil {
		return backend.StatFS{}, pathErr("statfs", name, err)
	}
	bs := v.Frsize
	if bs == 0 {
		bs = v.Bsize
	}
	return backend.StatFS{
		BlockSize: bs, Blocks: v.Blocks, BlocksFree: v.Bfree, BlocksAvail: v.Bavail,
		Files: v.Files, FilesFree: v.Ffree, NameMax: v.Namemax,
	}, nil
}
