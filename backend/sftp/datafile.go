package sftp

import (
	"errors"
	"io/fs"
	"os"
	"sync"
	"time"

	psftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/backend/sftp/internal/sftpwire"
)

// The file data path. Open files use sftpwire on a second "sftp"
// session of the transport's SSH connection when there is one: it reads
// replies straight into the caller's buffer and costs 15-20% less CPU
// per GiB read than pkg/sftp (docs/perf.md, "Data path evaluation").
// A transport without an SSH connection (in-process test servers) or a
// server refusing the second session keeps pkg/sftp for its files.

// fileHandle is an open remote file on one transport: a *psftp.File or
// a wireFile.
type fileHandle interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	Stat() (os.FileInfo, error)
	Chmod(mode fs.FileMode) error
	Truncate(size int64) error
	Sync() error
	Close() error
}

var (
	_ fileHandle = (*psftp.File)(nil)
	_ fileHandle = wireFile{}
)

// dataSession is a transport's sftpwire session, opened by the first
// file open on the transport. A failed open is not retried on the same
// transport: its files use pkg/sftp.
type dataSession struct {
	once sync.Once
	cl   *sftpwire.Client
}

// client returns t's data session, or nil when files use pkg/sftp.
func (d *dataSession) client(t *transport, maxData int) *sftpwire.Client {
	d.once.Do(func() {
		o, ok := t.closer.(sessionOpener)
		if !ok {
			return
		}
		s, out, in, err := openSFTPSession(o)
		if err != nil {
			return
		}
		cl, err := sftpwire.New(out, in, s, sftpwire.Options{MaxData: maxData})
		if err != nil {
			return
		}
		d.cl = cl
	})
	return d.cl
}

// openHandle opens path on t with os.OpenFile flags; a file it creates
// asks for perm (the server's umask may take bits away: see fixMode).
// maxData is Config.MaxPacket (0: what the server announces). lstat asks
// for the file's attributes along with a plain open (one that neither
// creates nor truncates): the mount stats every such open
// (close-to-open), but a re-open after a reconnect has no use for them.
func (t *transport) openHandle(path string, flag int, perm fs.FileMode, maxData int, lstat bool) (fileHandle, error) {
	if wc := t.data.client(t, maxData); wc != nil {
		var attrs *sftpwire.Attrs
		if flag&os.O_CREATE != 0 {
			attrs = &sftpwire.Attrs{Flags: sftpwire.AttrPermissions, Mode: backend.PermToUnix(perm)}
		}
		exclusive := flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL
		if exclusive || lstat && flag&(os.O_CREATE|os.O_TRUNC) == 0 {
			// Ask for the file's attributes along with the OPEN:
			// fixMode needs a new file's, and Open's caller a plainly
			// opened one's. Sent after the OPEN started, the LSTAT
			// shows the file as it is after this open began, whatever
			// order the server answers them in; for a truncating or
			// non-exclusive creating open the order would matter, so
			// none is sent.
			f, st, err := wc.OpenLstat(path, flag, attrs)
			if err != nil {
				return nil, err
			}
			return wireFile{f, st}, nil
		}
		f, err := wc.OpenFile(path, flag, attrs)
		if err != nil {
			return nil, err
		}
		return wireFile{f, nil}, nil
	}
	h, err := t.client.OpenFile(path, flag)
	if err != nil {
		return nil, err
	}
	return h, nil
}

// wireFile adapts an sftpwire file to fileHandle. lstat holds the
// attributes from the LSTAT sent with its OPEN (nil if none was sent or
// it failed).
type wireFile struct {
	*sftpwire.File
	lstat *sftpwire.Attrs
}

func (w wireFile) Stat() (os.FileInfo, error) {
	a, err := w.File.Stat()
	if err != nil {
		return nil, err
	}
	return attrsInfo(a), nil
}

// openedStat returns the attributes read along with the open, if they
// are a regular file's (the mount opens nothing else by path; a symlink
// swapped in meanwhile shows as one, and then the caller asks with an
// FSTAT).
func (w wireFile) openedStat() (os.FileInfo, bool) {
	if w.lstat == nil || w.lstat.Flags&sftpwire.AttrPermissions == 0 {
		return nil, false
	}
	fi := attrsInfo(*w.lstat)
	return fi, fi.Mode().IsRegular()
}

// createdStat is openedStat for an exclusive create: the attributes only
// count if they are those of a new file, empty. A server that answered
// the LSTAT before the OPEN, or another client's file swapped in
// meanwhile, fails that more often than not; then the caller asks with
// an FSTAT.
func (w wireFile) createdStat() (os.FileInfo, bool) {
	if w.lstat == nil || w.lstat.Size != 0 {
		return nil, false
	}
	return w.openedStat()
}

func attrsInfo(a sftpwire.Attrs) os.FileInfo {
	// toInfo reads owner and atime from a *psftp.FileStat.
	return wireInfo{&psftp.FileStat{Size: a.Size, Mode: a.Mode, Mtime: a.Mtime, Atime: a.Atime, UID: a.UID, GID: a.GID}}
}

func (w wireFile) Chmod(mode fs.FileMode) error {
	return w.Setstat(sftpwire.Attrs{Flags: sftpwire.AttrPermissions, Mode: backend.PermToUnix(mode)})
}

func (w wireFile) Truncate(size int64) error {
	return w.Setstat(sftpwire.Attrs{Flags: sftpwire.AttrSize, Size: uint64(size)})
}

// wireInfo is the os.FileInfo of an FSTAT answer; the name is filled in
// by the caller (toInfo).
type wireInfo struct{ st *psftp.FileStat }

func (i wireInfo) Name() string       { return "" }
func (i wireInfo) Size() int64        { return int64(i.st.Size) }
func (i wireInfo) Mode() fs.FileMode  { return i.st.FileMode() }
func (i wireInfo) ModTime() time.Time { return i.st.ModTime() }
func (i wireInfo) IsDir() bool        { return i.Mode().IsDir() }
func (i wireInfo) Sys() any           { return i.st }

// wireStatus returns the status code of an sftpwire server answer.
func wireStatus(err error) (uint32, bool) {
	var se *sftpwire.StatusError
	if errors.As(err, &se) {
		return se.Code, true
	}
	return 0, false
}

func isWireStatus(err error) bool {
	_, ok := wireStatus(err)
	return ok
}

var _ sessionOpener = (*ssh.Client)(nil)
