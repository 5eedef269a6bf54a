package sftpserver

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pkg/sftp"

	"github.com/sftpfs/sftpfs/backend"
)

// handlers implements pkg/sftp's request-server handler interfaces over a
// backend.Backend. One value serves every connection: the backend is safe
// for concurrent use and handlers keep no per-connection state.
type handlers struct {
	b        backend.Backend
	readOnly bool
}

var (
	_ sftp.FileReader           = (*handlers)(nil)
	_ sftp.OpenFileWriter       = (*handlers)(nil)
	_ sftp.PosixRenameFileCmder = (*handlers)(nil)
	_ sftp.StatVFSFileCmder     = (*handlers)(nil)
	_ sftp.LstatFileLister      = (*handlers)(nil)
	_ sftp.ReadlinkFileLister   = (*handlers)(nil)
)

func (h *handlers) sftpHandlers() sftp.Handlers {
	return sftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h}
}

// errReadOnly is what every modifying request gets on a read-only server.
var errReadOnly = &statusError{code: sftp.ErrSSHFxPermissionDenied, msg: "the server is read-only (started with ReadOnly / -read-only)"}

// statusError carries an SFTP status code (found by pkg/sftp through
// errors.As on its unexported code type) and the message sent to the
// client.
type statusError struct {
	code error
	msg  string
}

func (e *statusError) Error() string { return e.msg }
func (e *statusError) Unwrap() error { return e.code }

// toStatus maps a backend error onto the SFTPv3 status codes, which is
// all the protocol has: like OpenSSH's sftp-server, conditions without a
// code of their own (exists, not empty, is a directory, ...) become
// SSH_FX_FAILURE with a message saying what happened.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	code := sftp.ErrSSHFxFailure
	switch {
	case errors.Is(err, fs.ErrNotExist):
		code = sftp.ErrSSHFxNoSuchFile
	case errors.Is(err, fs.ErrPermission):
		code = sftp.ErrSSHFxPermissionDenied
	case errors.Is(err, errors.ErrUnsupported):
		code = sftp.ErrSSHFxOpUnsupported
	}
	return &statusError{code: code, msg: err.Error()}
}

// name turns a request path into a backend name. pkg/sftp has already
// made it absolute and cleaned it (so "../" cannot climb above "/"); the
// backend then rejects anything that is still not a valid relative path
// and refuses symlinks leading out of its root.
func name(p string) (string, error) {
	n := strings.TrimPrefix(path.Clean("/"+p), "/")
	if n == "" {
		n = "."
	}
	if !backend.ValidName(n) {
		return "", &statusError{code: sftp.ErrSSHFxFailure, msg: "invalid path " + p}
	}
	return n, nil
}

// openFlags converts SFTP open flags to the backend's os flags. Append is
// handled by the caller (backends take explicit offsets only).
func openFlags(f sftp.FileOpenFlags) int {
	var flag int
	switch {
	case f.Read && (f.Write || f.Append):
		flag = os.O_RDWR
	case f.Write || f.Append:
		flag = os.O_WRONLY
	default:
		flag = os.O_RDONLY
	}
	if f.Creat {
		flag |= os.O_CREATE
	}
	if f.Trunc {
		flag |= os.O_TRUNC
	}
	if f.Excl {
		flag |= os.O_EXCL
	}
	return flag
}

// createPerm is the mode of files created over SFTP, before the process
// umask. pkg/sftp's request server does not pass the attributes of an
// open request to handlers, so a client's requested mode cannot be
// honoured; 0666 minus umask is also what OpenSSH uses without one.
const createPerm = 0o666

// mkdirPerm is the mode of new directories, for the same reason.
const mkdirPerm = 0o777

func (h *handlers) open(r *sftp.Request) (*file, error) {
	pf := r.Pflags()
	if h.readOnly && (pf.Write || pf.Append || pf.Creat || pf.Trunc) {
		return nil, errReadOnly
	}
	n, err := name(r.Filepath)
	if err != nil {
		return nil, err
	}
	f, err := h.b.OpenFile(r.Context(), n, openFlags(pf), createPerm)
	if err != nil {
		return nil, toStatus(err)
	}
	return &file{f: f, append: pf.Append}, nil
}

// Fileread opens a file for reading.
func (h *handlers) Fileread(r *sftp.Request) (io.ReaderAt, error) { return h.open(r) }

// Filewrite opens a file for writing.
func (h *handlers) Filewrite(r *sftp.Request) (io.WriterAt, error) { return h.open(r) }

// OpenFile opens a file for reading and writing.
func (h *handlers) OpenFile(r *sftp.Request) (sftp.WriterAtReaderAt, error) { return h.open(r) }

// file adapts a backend.File to the reader/writer pkg/sftp drives.
type file struct {
	f      backend.File
	append bool
	mu     sync.Mutex // serialises appends, which find the end first
}

func (f *file) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.f.ReadAt(p, off)
	if err == io.EOF || err == nil {
		// pkg/sftp compares with io.EOF directly.
		return n, err
	}
	return n, toStatus(err)
}

func (f *file) WriteAt(p []byte, off int64) (int, error) {
	if f.append {
		// SSH_FXF_APPEND: data goes to the end whatever the offset,
		// as with O_APPEND on the server's side.
		f.mu.Lock()
		defer f.mu.Unlock()
		fi, err := f.f.Stat()
		if err != nil {
			return 0, toStatus(err)
		}
		off = fi.Size
	}
	n, err := f.f.WriteAt(p, off)
	return n, toStatus(err)
}

func (f *file) Close() error { return toStatus(f.f.Close()) }

// Filecmd runs the modifying requests.
func (h *handlers) Filecmd(r *sftp.Request) error {
	if h.readOnly {
		return errReadOnly
	}
	ctx := r.Context()
	switch r.Method {
	case "Symlink":
		// pkg/sftp puts the link's content (never interpreted) in
		// Filepath and the new link's path in Target.
		n, err := name(r.Target)
		if err != nil {
			return err
		}
		return toStatus(h.b.Symlink(ctx, r.Filepath, n))
	case "Setstat":
		return h.setstat(r)
	}
	n, err := name(r.Filepath)
	if err != nil {
		return err
	}
	switch r.Method {
	case "Mkdir":
		return toStatus(h.b.Mkdir(ctx, n, mkdirPerm))
	case "Rmdir":
		return toStatus(h.b.Rmdir(ctx, n))
	case "Remove":
		return toStatus(h.b.Remove(ctx, n))
	case "Rename", "PosixRename", "Link":
		t, err := name(r.Target)
		if err != nil {
			return err
		}
		switch r.Method {
		case "Rename":
			// SSH_FXP_RENAME in SFTPv3 (and OpenSSH) does not
			// replace an existing target.
			return toStatus(h.b.Rename(ctx, n, t, backend.RenameNoReplace))
		case "PosixRename":
			return toStatus(h.b.Rename(ctx, n, t, 0))
		default:
			return toStatus(h.b.Link(ctx, n, t))
		}
	}
	return &statusError{code: sftp.ErrSSHFxOpUnsupported, msg: "unsupported request " + r.Method}
}

// PosixRename handles posix-rename@openssh.com: replace the target.
func (h *handlers) PosixRename(r *sftp.Request) error { return h.Filecmd(r) }

func (h *handlers) setstat(r *sftp.Request) error {
	ctx := r.Context()
	n, err := name(r.Filepath)
	if err != nil {
		return err
	}
	flags, attrs := r.AttrFlags(), r.Attributes()
	if flags.Size {
		if err := h.b.Truncate(ctx, n, int64(attrs.Size)); err != nil {
			return toStatus(err)
		}
	}
	if flags.UidGid {
		if err := h.b.Chown(ctx, n, int(attrs.UID), int(attrs.GID)); err != nil {
			return toStatus(err)
		}
	}
	if flags.Permissions {
		if err := h.b.Chmod(ctx, n, attrs.FileMode()&backend.PermBits); err != nil {
			return toStatus(err)
		}
	}
	if flags.Acmodtime {
		if err := h.b.Chtimes(ctx, n, attrs.AccessTime(), attrs.ModTime()); err != nil {
			return toStatus(err)
		}
	}
	return nil
}

// StatVFS handles statvfs@openssh.com.
func (h *handlers) StatVFS(r *sftp.Request) (*sftp.StatVFS, error) {
	n, err := name(r.Filepath)
	if err != nil {
		return nil, err
	}
	st, err := h.b.StatFS(r.Context(), n)
	if err != nil {
		return nil, toStatus(err)
	}
	v := &sftp.StatVFS{
		Bsize: st.BlockSize, Frsize: st.BlockSize,
		Blocks: st.Blocks, Bfree: st.BlocksFree, Bavail: st.BlocksAvail,
		Files: st.Files, Ffree: st.FilesFree, Favail: st.FilesFree,
		Namemax: st.NameMax,
	}
	if h.readOnly {
		v.Flag |= 1 // ST_RDONLY
	}
	return v, nil
}

// Filelist answers List (directory listings) and Stat.
func (h *handlers) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	n, err := name(r.Filepath)
	if err != nil {
		return nil, err
	}
	switch r.Method {
	case "List":
		ents, err := h.b.ReadDir(r.Context(), n)
		if err != nil {
			return nil, toStatus(err)
		}
		l := make(lister, len(ents))
		for i, e := range ents {
			l[i] = info{e}
		}
		return l, nil
	case "Stat":
		fi, err := h.b.Stat(r.Context(), n)
		if err != nil {
			return nil, toStatus(err)
		}
		return lister{info{fi}}, nil
	}
	return nil, &statusError{code: sftp.ErrSSHFxOpUnsupported, msg: "unsupported request " + r.Method}
}

// Lstat answers SSH_FXP_LSTAT without following a final symlink.
func (h *handlers) Lstat(r *sftp.Request) (sftp.ListerAt, error) {
	n, err := name(r.Filepath)
	if err != nil {
		return nil, err
	}
	fi, err := h.b.Lstat(r.Context(), n)
	if err != nil {
		return nil, toStatus(err)
	}
	return lister{info{fi}}, nil
}

// Readlink returns a symlink's content verbatim.
func (h *handlers) Readlink(p string) (string, error) {
	n, err := name(p)
	if err != nil {
		return "", err
	}
	// pkg/sftp gives Readlink no request context; the backend call is
	// local and bounded.
	t, err := h.b.Readlink(context.Background(), n)
	if errors.Is(err, fs.ErrInvalid) {
		// Not a symlink: OpenSSH answers with a failure, too.
		return "", &statusError{code: sftp.ErrSSHFxFailure, msg: p + " is not a symbolic link"}
	}
	return t, toStatus(err)
}

// lister is a complete listing, handed out in pieces.
type lister []os.FileInfo

func (l lister) ListAt(dst []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(dst, l[off:])
	if n < len(dst) {
		return n, io.EOF
	}
	return n, nil
}

// info adapts backend.FileInfo to os.FileInfo plus the owner, which
// pkg/sftp reads through sftp.FileInfoUidGid.
type info struct{ fi backend.FileInfo }

func (i info) Name() string       { return i.fi.Name }
func (i info) Size() int64        { return i.fi.Size }
func (i info) Mode() fs.FileMode  { return i.fi.Mode }
func (i info) ModTime() time.Time { return i.fi.ModTime }
func (i info) IsDir() bool        { return i.fi.IsDir() }
func (i info) Sys() any           { return nil }
func (i info) Uid() uint32        { return i.fi.UID }
func (i info) Gid() uint32        { return i.fi.GID }

// isClosedConn reports whether err only says that the peer went away.
func isClosedConn(err error) bool {
	return err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
