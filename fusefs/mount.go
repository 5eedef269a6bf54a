package fusefs

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/internal/logx"
)

// NewRoot returns the root node of the filesystem presenting b with
// options o, for code and tests that build the tree with go-fuse
// directly (fs.NewNodeFS). Listings it reads in the background are
// cancelled only when the process ends; Mount's Server ends them at
// unmount.
func NewRoot(b backend.Backend, o Options) fs.InodeEmbedder {
	return newFilesystem(b, o).root
}

func newFilesystem(b backend.Backend, o Options) *filesystem {
	lg := o.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	fsys := &filesystem{b: b, caps: b.Capabilities(), o: o, log: lg, errs: logx.NewEvery(errLogEvery), bufs: newBufPool(), dc: newDirCache(b, o),
		raMem: newMemBudget(o.ReadAheadTotal), wbMem: newMemBudget(o.WriteBehindTotal)}
	fsys.root = &node{fsys: fsys}
	return fsys
}

// mapsOwner reports whether files are presented with mapped owners, in
// which case chown is accepted and ignored (see Setattr).
func (fsys *filesystem) mapsOwner() bool { return fsys.o.UID >= 0 || fsys.o.GID >= 0 }

// fsOptions translates Options into go-fuse's mount options.
func fsOptions(o Options) *fs.Options {
	maxWrite := o.MaxWrite
	if maxWrite <= 0 {
		maxWrite = DefaultOptions().MaxWrite
	}
	readAhead := o.MaxReadAhead
	if readAhead <= 0 {
		readAhead = maxWrite
	}
	name := o.Subtype
	if name == "" {
		name = "sftpfs"
	}
	fsName := o.FSName
	if fsName == "" {
		fsName = name
	}
	mo := fuse.MountOptions{
		// mount(2) directly: the plugin runs as root in its own
		// container where no fusermount binary exists. Without
		// DirectMountStrict go-fuse still falls back to fusermount
		// for unprivileged `sftpfs mount` users.
		DirectMount:  true,
		AllowOther:   o.AllowOther,
		FsName:       fsName,
		Name:         name,
		MaxWrite:     maxWrite,
		MaxReadAhead: readAhead,
		// Locks would only be local to this client; pretending to
		// lock a shared remote file would be worse than refusing.
		EnableLocks: false,
		Debug:       o.Debug,
	}
	if o.DefaultPermissions {
		mo.Options = append(mo.Options, "default_permissions")
	}
	if o.ReadOnly {
		mo.Options = append(mo.Options, "ro")
	}
	if o.NoExec {
		mo.Options = append(mo.Options, "noexec")
	}
	lg := loggerOrDiscard(o.Logger)
	if o.Debug {
		// Info, not Debug: whoever sets Debug wants to see the
		// request trace without also lowering the logger's level.
		mo.Logger = slog.NewLogLogger(lg.Handler(), slog.LevelInfo)
	}
	fo := &fs.Options{
		MountOptions: mo,
		AttrTimeout:  &o.AttrTimeout,
		EntryTimeout: &o.EntryTimeout,
		// Modes are presented exactly as the storage reports them; a
		// mode of 0 must not be turned into 0644/0755.
		NullPermissions: true,
		// go-fuse's own diagnostics ("this looks wrong") are warnings.
		Logger: slog.NewLogLogger(lg.Handler(), slog.LevelWarn),
	}
	if o.NegativeTimeout > 0 {
		fo.NegativeTimeout = &o.NegativeTimeout
	}
	return fo
}

func loggerOrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// Server is a mounted filesystem: go-fuse's server, whose Wait and
// Unmount also end the mount's own background work.
type Server struct {
	*fuse.Server
	fsys *filesystem
}

// Wait waits until the FUSE session ends (Unmount, or an unmount from
// outside), then cancels the listings the mount reads in the background
// and waits for them. Once it returns, nothing of the mount uses the
// backend any more: the caller may close it.
func (s *Server) Wait() {
	s.Server.Wait()
	s.fsys.dc.shutdown()
}

// Unmount unmounts the filesystem; when that succeeds it ends the
// background work as Wait does.
func (s *Server) Unmount() error {
	if err := s.Server.Unmount(); err != nil {
		return err
	}
	s.fsys.dc.shutdown()
	return nil
}

// Mount mounts b at mountpoint and serves it until the returned server
// is unmounted (server.Unmount) or the filesystem is unmounted from
// outside (then server.Wait returns). It returns once the kernel has
// completed the mount, so the mountpoint is usable immediately. The
// backend stays the caller's: close it after server.Wait returned.
func Mount(mountpoint string, b backend.Backend, o Options) (*Server, error) {
	if b == nil {
		return nil, errors.New("fusefs: mount: no backend given")
	}
	fsys := newFilesystem(b, o)
	root := fsys.root
	fo := fsOptions(o)
	if !o.ServeOnly {
		server, err := fs.Mount(mountpoint, root, fo)
		if err != nil {
			return nil, mountError(mountpoint, err)
		}
		raiseReadAhead(mountpoint, fo.MaxReadAhead, loggerOrDiscard(o.Logger))
		return &Server{Server: server, fsys: fsys}, nil
	}
	// fs.Mount would, after mount(2), open a file in the new mount and
	// poll it (go-fuse's WaitMount), so that the Go runtime's poller in
	// this process never sends POLL requests. That is a request from the
	// server to itself, answered only after the kernel asked the backend
	// for the root's attributes: a process killed meanwhile keeps a
	// thread waiting for an answer only it could give, never finishes
	// exiting and holds the FUSE connection open, so everything else
	// using the mount hangs until someone aborts the connection. A
	// serve-only process never opens files in its own mount, so the
	// probe has nothing to protect. The mount is usable once mount(2)
	// returned: the kernel holds requests until Serve answers INIT.
	server, err := fuse.NewServer(fs.NewNodeFS(root, fo), mountpoint, &fo.MountOptions)
	if err != nil {
		return nil, mountError(mountpoint, err)
	}
	raiseReadAhead(mountpoint, fo.MaxReadAhead, loggerOrDiscard(o.Logger))
	go server.Serve()
	return &Server{Server: server, fsys: fsys}, nil
}

func mountError(mountpoint string, err error) error {
	return fmt.Errorf("fusefs: mount %s: %w (mounting needs root or a fusermount binary, and an existing empty directory)", mountpoint, err)
}
