package sftpwire

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	psftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/sftpfs/sftpfs/internal/sshdtest"
)

// sshdClient starts a real OpenSSH sshd and a Client on an "sftp"
// subsystem session of one SSH connection to it.
func sshdClient(t testing.TB, o Options) (*Client, *ssh.Client) {
	t.Helper()
	srv := sshdtest.Start(t, sshdtest.Options{})
	sc, err := ssh.Dial("tcp", srv.Addr, srv.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	return sessionClient(t, sc, o), sc
}

// sessionClient opens an sftp subsystem session on sc and starts a
// Client on it.
func sessionClient(t testing.TB, sc *ssh.Client, o Options) *Client {
	t.Helper()
	s, err := sc.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RequestSubsystem("sftp"); err != nil {
		t.Fatal(err)
	}
	c, err := New(r, w, s, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestSSHDReadWrite(t *testing.T) {
	c, _ := sshdClient(t, Options{})
	if c.MaxData() != LargestMaxData {
		t.Errorf("MaxData = %d, want %d from limits@openssh.com", c.MaxData(), LargestMaxData)
	}
	if !c.HasExtension("fsync@openssh.com") {
		t.Error("OpenSSH announces fsync@openssh.com, HasExtension says no")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	f, err := c.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, &Attrs{Flags: AttrPermissions, Mode: 0o640})
	if err != nil {
		t.Fatal(err)
	}
	// Several requests per call, an odd tail, an offset not aligned.
	data := randBytes(3*LargestMaxData + 12345)
	const off = 777
	if n, err := f.WriteAt(data, off); n != len(data) || err != nil {
		t.Fatalf("WriteAt = %d, %v", n, err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	onDisk, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk[off:], data) || len(onDisk) != off+len(data) {
		t.Fatal("file on the server differs from what was written")
	}
	a, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if a.Size != uint64(off+len(data)) || a.Mode&0o777 != 0o640 || a.Mode&syscall.S_IFMT != syscall.S_IFREG {
		t.Fatalf("Stat = size %d mode %o, want size %d mode 0640 regular", a.Size, a.Mode, off+len(data))
	}

	got := make([]byte, len(data))
	if n, err := f.ReadAt(got, off); n != len(data) || err != nil {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("ReadAt returned different data")
	}
	// Across the end: the bytes up to it, then io.EOF.
	tail := make([]byte, 2*LargestMaxData)
	start := int64(off + len(data) - LargestMaxData - 10)
	n, err := f.ReadAt(tail, start)
	if n != LargestMaxData+10 || err != io.EOF {
		t.Fatalf("ReadAt across EOF = %d, %v; want %d, io.EOF", n, err, LargestMaxData+10)
	}
	if !bytes.Equal(tail[:n], data[len(data)-n:]) {
		t.Fatal("ReadAt across EOF returned different data")
	}
	if n, err := f.ReadAt(tail[:10], int64(off+len(data))); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt at EOF = %d, %v; want 0, io.EOF", n, err)
	}

	if err := f.Setstat(Attrs{Flags: AttrSize, Size: 100}); err != nil {
		t.Fatal(err)
	}
	if err := f.Setstat(Attrs{Flags: AttrPermissions, Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(p); err != nil || st.Size() != 100 || st.Mode().Perm() != 0o600 {
		t.Fatalf("after FSETSTAT: %v %v", st, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// The handle is gone on the server.
	if _, err := f.ReadAt(tail[:10], 0); err == nil || errors.Is(err, ErrConnLost) {
		t.Fatalf("ReadAt on a closed handle = %v, want a status error", err)
	}
}

func TestSSHDErrors(t *testing.T) {
	c, _ := sshdClient(t, Options{})
	dir := t.TempDir()
	_, err := c.OpenFile(filepath.Join(dir, "missing"), os.O_RDONLY, nil)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != codeNoSuchFile || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("open of a missing file = %v, want status %d matching fs.ErrNotExist", err, codeNoSuchFile)
	}
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// OpenSSH (version 3) reports EEXIST as a generic failure; the
	// backend disambiguates with an LSTAT.
	_, err = c.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, nil)
	if !errors.As(err, &se) || se.Code != codeFailure || errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("exclusive create of an existing file = %v, want status %d", err, codeFailure)
	}
	// The session is still usable after error replies.
	f, err := c.OpenFile(p, os.O_RDONLY, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("y"), 0); !errors.As(err, &se) || errors.Is(err, ErrConnLost) {
		t.Fatalf("write to a read-only handle = %v, want a status error", err)
	}
	buf := make([]byte, 4)
	if n, err := f.ReadAt(buf, 0); n != 1 || err != io.EOF || buf[0] != 'x' {
		t.Fatalf("ReadAt = %d, %v, %q", n, err, buf[:n])
	}
}

// TestSSHDConcurrentSmallWindow runs many concurrent multi-request reads
// and writes through a client allowing fewer requests in flight than one
// call needs: a slot must be freed when its reply arrives, not when its
// caller looks, or the callers would deadlock holding slots.
func TestSSHDConcurrentSmallWindow(t *testing.T) {
	c, _ := sshdClient(t, Options{MaxInflight: 3, MaxData: 4096})
	dir := t.TempDir()
	data := randBytes(64 << 10)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := filepath.Join(dir, string(rune('a'+i)))
			f, err := c.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, nil)
			if err != nil {
				errs <- err
				return
			}
			defer f.Close()
			if _, err := f.WriteAt(data, 0); err != nil {
				errs <- err
				return
			}
			got := make([]byte, len(data))
			if _, err := f.ReadAt(got, 0); err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(got, data) {
				errs <- errors.New("read back different data")
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("concurrent calls did not finish: deadlock on request slots")
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// memServer serves h (pkg/sftp's request server) over a net.Pipe and
// returns a Client on it plus the server's end, which a test may close.
func memServer(t *testing.T, h psftp.Handlers, o Options) (*Client, net.Conn) {
	t.Helper()
	cs, ss := net.Pipe()
	srv := psftp.NewRequestServer(ss, h)
	go func() { _ = srv.Serve(); srv.Close() }()
	c, err := New(cs, cs, cs, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); ss.Close() })
	return c, ss
}

// readerHook wraps the in-memory handler's readers.
type readerHook struct {
	psftp.FileReader
	wrap func(io.ReaderAt) io.ReaderAt
}

func (h readerHook) Fileread(r *psftp.Request) (io.ReaderAt, error) {
	ra, err := h.FileReader.Fileread(r)
	if err != nil {
		return nil, err
	}
	return h.wrap(ra), nil
}

// shortReader returns at most limit bytes per read, as a server may.
type shortReader struct {
	io.ReaderAt
	limit int
}

func (s shortReader) ReadAt(p []byte, off int64) (int, error) {
	if len(p) > s.limit {
		p = p[:s.limit]
	}
	return s.ReaderAt.ReadAt(p, off)
}

func TestShortReads(t *testing.T) {
	h := psftp.InMemHandler()
	h.FileGet = readerHook{h.FileGet, func(ra io.ReaderAt) io.ReaderAt { return shortReader{ra, 1000} }}
	c, _ := memServer(t, h, Options{MaxData: 8192})
	f, err := c.OpenFile("/f", os.O_RDWR|os.O_CREATE, nil)
	if err != nil {
		t.Fatal(err)
	}
	data := randBytes(50000)
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	// Read through a read-only handle: pkg/sftp serves those with
	// FileGet (the hook), read-write ones with the writer.
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if f, err = c.OpenFile("/f", os.O_RDONLY, nil); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data))
	n, err := f.ReadAt(got, 0)
	if n != len(data) || err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadAt with 1000-byte server reads = %d, %v (equal %v)", n, err, bytes.Equal(got[:n], data[:n]))
	}
	// Short reads running into the end of file.
	n, err = f.ReadAt(got, 30000)
	if n != 20000 || err != io.EOF || !bytes.Equal(got[:n], data[30000:]) {
		t.Fatalf("ReadAt across EOF = %d, %v; want 20000, io.EOF", n, err)
	}
}

// blockingReader holds every read until release is closed.
type blockingReader struct {
	io.ReaderAt
	started chan struct{}
	release chan struct{}
}

func (b blockingReader) ReadAt(p []byte, off int64) (int, error) {
	select {
	case b.started <- struct{}{}:
	default:
	}
	<-b.release
	return b.ReaderAt.ReadAt(p, off)
}

// TestBrokenStream closes the server's end while reads are pending:
// every pending call and every later one fails with ErrConnLost, and
// none returns io.EOF or an errno of the socket (which would read as an
// answer about the file).
func TestBrokenStream(t *testing.T) {
	started, release := make(chan struct{}, 1), make(chan struct{})
	defer close(release)
	h := psftp.InMemHandler()
	h.FileGet = readerHook{h.FileGet, func(ra io.ReaderAt) io.ReaderAt { return blockingReader{ra, started, release} }}
	c, ss := memServer(t, h, Options{MaxData: 4096})
	f, err := c.OpenFile("/f", os.O_RDWR|os.O_CREATE, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(randBytes(100000), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if f, err = c.OpenFile("/f", os.O_RDONLY, nil); err != nil {
		t.Fatal(err)
	}
	const readers = 5
	errs := make(chan error, readers)
	for range readers {
		go func() {
			_, err := f.ReadAt(make([]byte, 20000), 0)
			errs <- err
		}()
	}
	<-started
	ss.Close()
	check := func(what string, err error) {
		t.Helper()
		var errno syscall.Errno
		if !errors.Is(err, ErrConnLost) || errors.Is(err, io.EOF) || errors.As(err, &errno) {
			t.Errorf("%s = %v, want an ErrConnLost without io.EOF or an errno", what, err)
		}
	}
	for range readers {
		select {
		case err := <-errs:
			check("pending ReadAt", err)
		case <-time.After(10 * time.Second):
			t.Fatal("a pending ReadAt did not fail after the stream broke")
		}
	}
	<-c.Done()
	_, err = f.ReadAt(make([]byte, 10), 0)
	check("ReadAt after the break", err)
	_, err = c.OpenFile("/g", os.O_RDONLY, nil)
	check("OpenFile after the break", err)
	_, err = f.WriteAt([]byte("x"), 0)
	check("WriteAt after the break", err)
}

// TestUnknownReplyBreaks checks that a reply for a request never sent
// tears the session down instead of being ignored or delivered.
func TestUnknownReplyBreaks(t *testing.T) {
	cs, ss := net.Pipe()
	defer ss.Close()
	go func() {
		// VERSION 3 without extensions, then a STATUS for id 99.
		var init [9]byte
		if _, err := io.ReadFull(ss, init[:]); err != nil {
			return
		}
		_, _ = ss.Write([]byte{0, 0, 0, 5, fxpVersion, 0, 0, 0, 3})
		var req [4]byte
		if _, err := io.ReadFull(ss, req[:]); err != nil {
			return
		}
		_, _ = ss.Write([]byte{0, 0, 0, 9, fxpStatus, 0, 0, 0, 99, 0, 0, 0, 0})
		_, _ = io.Copy(io.Discard, ss)
	}()
	c, err := New(cs, cs, cs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.OpenFile("/x", os.O_RDONLY, nil)
	var pe *ProtocolError
	if !errors.Is(err, ErrConnLost) || errors.As(err, &pe) && pe == nil {
		t.Fatalf("OpenFile with a stray reply = %v, want ErrConnLost", err)
	}
}

// TestSSHDOpenLstat: the LSTAT sent with an exclusive create's OPEN
// answers with the new file's attributes (OpenSSH answers in order); a
// failed OPEN returns its error and no attributes, and the session goes
// on; the LSTAT of a path the OPEN did not create answers nothing.
func TestSSHDOpenLstat(t *testing.T) {
	c, _ := sshdClient(t, Options{})
	dir := t.TempDir()
	p := filepath.Join(dir, "new")
	f, st, err := c.OpenLstat(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, &Attrs{Flags: AttrPermissions, Mode: 0o600})
	if err != nil {
		t.Fatal(err)
	}
	if st == nil || st.Mode != 0o100600 || st.Size != 0 {
		t.Fatalf("attributes with the create = %+v, want a regular, empty file of mode 0600", st)
	}
	fst, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if fst != *st {
		t.Errorf("FSTAT %+v differs from the LSTAT sent with the OPEN %+v", fst, *st)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.Close())
	var se *StatusError
	if f, st, err := c.OpenLstat(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, nil); !errors.As(err, &se) || f != nil || st != nil {
		t.Fatalf("exclusive create of an existing file = %v, %+v, %v; want a status error and nothing else", f, st, err)
	}
	// Read-only open of a missing file: both requests fail.
	if _, st, err := c.OpenLstat(filepath.Join(dir, "missing"), os.O_RDONLY, nil); !errors.Is(err, fs.ErrNotExist) || st != nil {
		t.Fatalf("open of a missing file = %+v, %v; want ErrNotExist", st, err)
	}
	f, err = c.OpenFile(p, os.O_RDONLY, nil)
	must(err)
	must(f.Close())
}
