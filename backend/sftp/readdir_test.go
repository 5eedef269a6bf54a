package sftp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sftpfs/sftpfs/internal/testenv"

	psftp "github.com/pkg/sftp"

	"github.com/sftpfs/sftpfs/internal/sshdtest"
)

// hostileConn is the transport of a hostileServer connection that, like
// an SSH connection, can open further SFTP sessions to the same server.
type hostileConn struct {
	net.Conn
	srv *hostileServer
	wg  *sync.WaitGroup
}

func (h hostileConn) OpenSFTPStream() (io.ReadWriteCloser, error) {
	cs, ss := net.Pipe()
	h.wg.Add(1)
	go func() { defer h.wg.Done(); h.srv.serve(ss) }()
	return cs, nil
}

// hostileBackend connects a backend to srv over a transport that offers
// a second session (dials: how many connections may be made).
func hostileBackend(t testing.TB, srv *hostileServer, opTimeout time.Duration, log *slog.Logger, dials int) (*Backend, func(), error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	dial := func(ctx context.Context) (*psftp.Client, io.Closer, error) {
		mu.Lock()
		defer mu.Unlock()
		if dials == 0 {
			return nil, nil, errors.New("test: no further connection")
		}
		dials--
		cs, ss := net.Pipe()
		wg.Add(1)
		go func() { defer wg.Done(); srv.serve(ss) }()
		cl, err := psftp.NewClientPipe(cs, cs)
		if err != nil {
			cs.Close()
			return nil, nil, err
		}
		return cl, hostileConn{cs, srv, &wg}, nil
	}
	b, err := NewWithDialer(context.Background(), dial, srv.root, Options{OpTimeout: opTimeout, ConnectTimeout: opTimeout, Logger: log})
	if err != nil {
		wg.Wait()
		return nil, nil, err
	}
	return b, func() { b.Close(); wg.Wait() }, nil
}

// TestRawListingRejectsHostileNames: names a server may not send are
// rejected, not reduced to their last element as pkg/sftp does (where
// "a/b" became "b" and could alias a real "b"), and each is logged and
// counted; valid names, including odd but legal ones, are kept.
func TestRawListingRejectsHostileNames(t *testing.T) {
	srv := &hostileServer{root: "/vol", r: fzReply{
		names:    "good\n..\n.\n\n/etc/passwd\na/b\nb\nx\x00y\n../../etc\nalso-good\na..b\n...\ngood\nsp ace\n\u00e9t\u00e9",
		flags:    15,
		size:     7,
		perm:     0o100640,
		realpath: "/vol",
	}}
	var logs testenv.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	b, done, err := hostileBackend(t, srv, time.Second, log, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	list, err := b.ReadDir(context.Background(), ".")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, fi := range list {
		got = append(got, fi.Name)
		// The fake sends atime = size and mtime = 2^32-1 (unsigned).
		if fi.Size != 7 || fi.Mode != 0o640 || fi.ATime.Unix() != 7 || fi.ModTime.Unix() != 1<<32-1 {
			t.Errorf("entry %q: size %d mode %v atime %d mtime %d; want 7, -rw-r-----, 7, 4294967295",
				fi.Name, fi.Size, fi.Mode, fi.ATime.Unix(), fi.ModTime.Unix())
		}
	}
	sort.Strings(got)
	want := []string{"...", "a..b", "also-good", "b", "good", "sp ace", "\u00e9t\u00e9"}
	if !slices.Equal(got, want) {
		t.Errorf("ReadDir names = %q, want %q", got, want)
	}
	if n := b.Status().RejectedNames; n != 5 {
		t.Errorf("Status.RejectedNames = %d, want 5 (\"\", /etc/passwd, a/b, x\\x00y, ../../etc)", n)
	}
	out := logs.String()
	for _, n := range []string{"/etc/passwd", "a/b", "x\x00y", "../../etc", ""} {
		// Quoted by the backend, then again by the text handler.
		if q := "entry=" + strconv.Quote(strconv.Quote(n)); !strings.Contains(out, q) {
			t.Errorf("log does not quote rejected name %s:\n%s", q, out)
		}
	}
	b.dirs.mu.Lock()
	raw := b.dirs.cl != nil && !b.dirs.unsupported
	b.dirs.mu.Unlock()
	if !raw {
		t.Error("the listing did not use the raw listing session")
	}
	// A second listing reuses the session and counts again.
	if _, err := b.ReadDir(context.Background(), "."); err != nil {
		t.Fatal(err)
	}
	if n := b.Status().RejectedNames; n != 10 {
		t.Errorf("Status.RejectedNames after two listings = %d, want 10", n)
	}
}

// TestRawListingManyRejectsLogBounded: a server sending thousands of bad
// names costs a bounded number of log lines.
func TestRawListingManyRejectsLogBounded(t *testing.T) {
	var names []string
	for i := range 500 {
		names = append(names, fmt.Sprintf("d/%d", i))
	}
	names = append(names, "fine")
	srv := &hostileServer{root: "/vol", r: fzReply{names: strings.Join(names, "\n"), flags: 4, perm: 0o100644, realpath: "/vol"}}
	var logs testenv.Buffer
	b, done, err := hostileBackend(t, srv, time.Second, slog.New(slog.NewTextHandler(&logs, nil)), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	list, err := b.ReadDir(context.Background(), ".")
	if err != nil || len(list) != 1 || list[0].Name != "fine" {
		t.Fatalf("ReadDir = %v, %v; want just \"fine\"", list, err)
	}
	if n := b.Status().RejectedNames; n != 500 {
		t.Errorf("RejectedNames = %d, want 500", n)
	}
	if lines := strings.Count(logs.String(), "\n"); lines > maxLoggedRejects+5 {
		t.Errorf("%d log lines for one listing with 500 rejected names", lines)
	}
}

// FuzzRawListing drives the raw listing session with fuzzer-chosen names,
// attributes and malformed replies. It must never panic or hang, every
// name it returns must be one the server sent verbatim (no aliasing) and
// a single safe path element, and the server must never be asked about a
// path outside the root.
func FuzzRawListing(f *testing.F) {
	f.Add("a\nb\nc", uint32(15), uint64(3), uint32(0o100644), []byte("abc"), uint8(0))
	f.Add("../../etc\n..\n.\n/etc/passwd\na/b\n\x00x\n", uint32(0x8000000f), uint64(1<<63), uint32(0o120777), []byte("x"), uint8(0))
	f.Add("a", uint32(0xffffffff), ^uint64(0), ^uint32(0), make([]byte, 70000), uint8(0))
	f.Add("ok", uint32(4), uint64(0), uint32(0o040755), []byte{0, 0, 0, 9, 104}, uint8(1))
	f.Add("ok", uint32(1), uint64(10), uint32(0), []byte{7}, uint8(2))
	f.Add("ok", uint32(1), uint64(10), uint32(0), []byte{}, uint8(3))
	f.Add("ok", uint32(1), uint64(10), uint32(0), []byte{1, 2, 3}, uint8(4))
	f.Add("ok", uint32(1), uint64(10), uint32(0), []byte{}, uint8(5))
	f.Add("ok\nok\nx", uint32(0x80000000), uint64(10), uint32(0), []byte{0xff, 0xff, 0xff, 0xff}, uint8(6))
	f.Fuzz(func(t *testing.T, names string, flags uint32, size uint64, perm uint32, data []byte, mutate uint8) {
		const root = "/vol"
		srv := &hostileServer{root: root, r: fzReply{names: names, flags: flags, size: size, perm: perm, realpath: root, data: data, mutate: mutate}}
		watchdog := time.AfterFunc(20*time.Second, func() {
			buf := make([]byte, 1<<20)
			panic("hostile listing hung the backend for 20s:\n" + string(buf[:runtime.Stack(buf, true)]))
		})
		defer watchdog.Stop()
		b, done, err := hostileBackend(t, srv, 100*time.Millisecond, nil, 1)
		if err != nil {
			return
		}
		defer done()
		sent := map[string]bool{}
		for _, n := range strings.Split(names, "\n") {
			sent[n] = true
		}
		list, _ := b.ReadDir(context.Background(), ".")
		seen := map[string]bool{}
		for _, fi := range list {
			n := fi.Name
			if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\x00") {
				t.Fatalf("ReadDir returned unsafe name %q", n)
			}
			if !sent[n] {
				t.Fatalf("ReadDir returned %q, which the server never sent (aliasing)", n)
			}
			if seen[n] {
				t.Fatalf("ReadDir returned %q twice", n)
			}
			seen[n] = true
		}
		srv.mu.Lock()
		defer srv.mu.Unlock()
		for _, p := range srv.paths {
			if p != root && !strings.HasPrefix(p, root+"/") || filepath.Clean(p) != p {
				t.Fatalf("client asked the server about %q, outside the root %s", p, root)
			}
		}
	})
}

// TestRawListingStallAndReconnect: a listing session that stops answering
// fails the listing within about op_timeout and kills the connection like
// any other call; the next listing runs on a new connection and session.
func TestRawListingStallAndReconnect(t *testing.T) {
	_, px, b, dir := faultSetup(t)
	ctx := context.Background()
	for i := range 3 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint("f", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if l, err := b.ReadDir(ctx, "."); err != nil || len(l) != 3 {
		t.Fatalf("ReadDir = %d entries, %v", len(l), err)
	}
	px.SetStall(true)
	start := time.Now()
	_, err := b.ReadDir(ctx, ".")
	if err == nil {
		t.Fatal("ReadDir through a stalled connection succeeded")
	}
	if d := time.Since(start); d > 2*time.Second+1500*time.Millisecond {
		t.Errorf("stalled ReadDir took %v to fail; want about op_timeout (2s)", d)
	}
	px.SetStall(false)
	deadline := time.Now().Add(15 * time.Second)
	for {
		l, err := b.ReadDir(ctx, ".")
		if err == nil && len(l) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("listing did not recover after the stall: %d entries, %v", len(l), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	px.DropAll()
	deadline = time.Now().Add(15 * time.Second)
	for {
		l, err := b.ReadDir(ctx, ".")
		if err == nil && len(l) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("listing did not recover after the connections were dropped: %d entries, %v", len(l), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := b.Status(); st.Reconnects < 2 {
		t.Errorf("Status.Reconnects = %d after a stall and a drop; want >= 2", st.Reconnects)
	}
}

// TestRawListingOpenSSH lists real OpenSSH directories: odd but valid
// names (spaces, unicode, newline, "a..b", a leading dash) come back
// verbatim with their attributes, 5,001 entries come back complete, and
// nothing is rejected.
func TestRawListingOpenSSH(t *testing.T) {
	srv := sshdtest.Start(t, sshdtest.Options{})
	dir := t.TempDir()
	b, err := New(context.Background(), sshdConfig(srv, dir))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer b.Close()
	ctx := context.Background()

	odd := []string{"with space", "  lead and trail  ", "\u00e9t\u00e9 \u65e5\u672c \U0001F600", "new\nline", "a..b", "...", "-dash", "tab\there", `back\slash`, "'quote\""}
	if err := os.Mkdir(filepath.Join(dir, "odd"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i, n := range odd {
		if err := os.WriteFile(filepath.Join(dir, "odd", n), bytes.Repeat([]byte("x"), i), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "odd", "sub dir"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/elsewhere", filepath.Join(dir, "odd", "link")); err != nil {
		t.Fatal(err)
	}
	list, err := b.ReadDir(ctx, "odd")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]int{}
	for i, fi := range list {
		byName[fi.Name] = i
	}
	for i, n := range odd {
		j, ok := byName[n]
		if !ok {
			t.Errorf("name %q missing from the listing", n)
			continue
		}
		fi := list[j]
		if fi.Size != int64(i) || fi.Mode != 0o600 {
			t.Errorf("%q: size %d mode %v; want %d -rw-------", n, fi.Size, fi.Mode, i)
		}
	}
	if j, ok := byName["sub dir"]; !ok || list[j].Mode != fs0750Dir {
		t.Errorf("directory entry: %+v (present %v)", list[j], ok)
	}
	if j, ok := byName["link"]; !ok || list[j].Mode.Type() != os.ModeSymlink {
		t.Errorf("symlink entry: present %v", ok)
	}
	if len(list) != len(odd)+2 {
		t.Errorf("listing has %d entries, want %d", len(list), len(odd)+2)
	}
	// Agreement with Lstat, which goes through pkg/sftp.
	for _, fi := range list {
		st, err := b.Lstat(ctx, "odd/"+fi.Name)
		if err != nil {
			t.Errorf("Lstat(%q): %v", fi.Name, err)
			continue
		}
		if st.Mode != fi.Mode || st.Size != fi.Size || !st.ModTime.Equal(fi.ModTime) || st.UID != fi.UID || st.GID != fi.GID {
			t.Errorf("%q: listing says %+v, Lstat says %+v", fi.Name, fi, st)
		}
	}

	const many = 5001
	if err := os.Mkdir(filepath.Join(dir, "many"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range many {
		f, err := os.Create(filepath.Join(dir, "many", fmt.Sprintf("entry-%05d", i)))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	start := time.Now()
	list, err = b.ReadDir(ctx, "many")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("listed %d entries in %v", len(list), time.Since(start))
	seen := map[string]bool{}
	for _, fi := range list {
		seen[fi.Name] = true
	}
	if len(list) != many || len(seen) != many {
		t.Fatalf("listing has %d entries (%d distinct), want %d", len(list), len(seen), many)
	}
	for i := range many {
		if n := fmt.Sprintf("entry-%05d", i); !seen[n] {
			t.Fatalf("%s missing", n)
		}
	}
	if n := b.Status().RejectedNames; n != 0 {
		t.Errorf("RejectedNames = %d on an honest server", n)
	}
	b.dirs.mu.Lock()
	raw := b.dirs.cl != nil && !b.dirs.unsupported
	b.dirs.mu.Unlock()
	if !raw {
		t.Error("the OpenSSH listing did not use the raw listing session")
	}
	// Listing a file and a missing name give the contract's errors.
	if _, err := b.ReadDir(ctx, "odd/with space"); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("ReadDir of a file: %v, want ENOTDIR", err)
	}
	if _, err := b.ReadDir(ctx, "missing"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadDir of a missing name: %v, want ErrNotExist", err)
	}
}

const fs0750Dir = os.ModeDir | 0o750

// TestRawListingPipelinedOpenSSH: a big directory is listed with several
// READDIRs in flight on the handle (one at a time costs a round trip per
// batch of 100 names), and the listing is still exactly the directory:
// every name once, with its attributes, for sizes around OpenSSH's batch
// boundaries.
func TestRawListingPipelinedOpenSSH(t *testing.T) {
	srv := sshdtest.Start(t, sshdtest.Options{})
	dir := t.TempDir()
	b, err := New(context.Background(), sshdConfig(srv, dir))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer b.Close()
	ctx := context.Background()
	for _, n := range []int{0, 1, 99, 100, 101, 250, 2500} {
		d := filepath.Join(dir, fmt.Sprintf("d%d", n))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%05d", i)), make([]byte, i%7), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		list, err := b.ReadDir(ctx, fmt.Sprintf("d%d", n))
		if err != nil {
			t.Fatalf("d%d: %v", n, err)
		}
		seen := map[string]bool{}
		for _, fi := range list {
			var i int
			if _, err := fmt.Sscanf(fi.Name, "f%05d", &i); err != nil || i >= n || seen[fi.Name] {
				t.Fatalf("d%d: unexpected or repeated entry %q", n, fi.Name)
			}
			seen[fi.Name] = true
			if fi.Size != int64(i%7) {
				t.Errorf("d%d/%s: size %d, want %d", n, fi.Name, fi.Size, i%7)
			}
		}
		if len(seen) != n {
			t.Errorf("d%d: listed %d entries, want %d", n, len(seen), n)
		}
	}
	b.dirs.mu.Lock()
	cl := b.dirs.cl
	b.dirs.mu.Unlock()
	if cl == nil {
		t.Fatal("listings did not use the raw listing session")
	}
	// 25 batches: the pipeline must have grown well past one.
	if peak := cl.peakReaddirs.Load(); peak < 4 {
		t.Errorf("at most %d READDIRs were in flight while listing 2500 entries, want at least 4", peak)
	}
}
