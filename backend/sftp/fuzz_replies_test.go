package sftp

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	psftp "github.com/pkg/sftp"
)

// SFTP v3 packet types (draft-ietf-secsh-filexfer-02) the hostile server
// understands.
const (
	fzInit     = 1
	fzVersion  = 2
	fzOpen     = 3
	fzClose    = 4
	fzRead     = 5
	fzLstat    = 7
	fzFstat    = 8
	fzOpendir  = 11
	fzReaddir  = 12
	fzRealpath = 16
	fzStat     = 17
	fzReadlink = 19
	fzStatus   = 101
	fzHandle   = 102
	fzData     = 103
	fzName     = 104
	fzAttrs    = 105
)

// fzReply is what the fuzzer controls about the server's answers.
type fzReply struct {
	names    string // READDIR entries, separated by '\n'
	flags    uint32 // attribute flags sent with every ATTRS and NAME entry
	size     uint64
	perm     uint32
	realpath string // REALPATH answer
	link     string // READLINK answer
	data     []byte // READ answer; also the raw bytes for the mutations
	mutate   uint8  // see hostileServer.mutated
}

// hostileServer speaks just enough SFTP v3 to get a backend through setup,
// then answers with fuzzer-chosen (and possibly malformed) replies. It
// records every path the client asks about.
type hostileServer struct {
	r     fzReply
	root  string
	mu    sync.Mutex
	paths []string // paths of requests after setup (after the first REALPATH)
	setup bool
	sent  int
}

func fzU32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func fzU64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }
func fzStr(b []byte, s string) []byte { return append(fzU32(b, uint32(len(s))), s...) }

func (s *hostileServer) attrs(b []byte, dir bool) []byte {
	fl := s.r.flags &^ 0x80000000 // extended attrs below, so the count is ours
	perm := s.r.perm
	if dir {
		// The root must look like a directory or setup stops early.
		fl |= 4
		perm = perm&^0o170000 | 0o040000
	}
	b = fzU32(b, fl|s.r.flags&0x80000000)
	if fl&1 != 0 {
		b = fzU64(b, s.r.size)
	}
	if fl&2 != 0 {
		b = fzU32(fzU32(b, uint32(s.r.size)), uint32(s.r.size>>32))
	}
	if fl&4 != 0 {
		b = fzU32(b, perm)
	}
	if fl&8 != 0 {
		b = fzU32(fzU32(b, uint32(s.r.size)), ^uint32(0))
	}
	if s.r.flags&0x80000000 != 0 {
		b = fzU32(b, 1)
		b = fzStr(fzStr(b, "x@fuzz"), s.r.link)
	}
	return b
}

// serve answers requests from c until it fails.
func (s *hostileServer) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	readdirs := 0
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n == 0 || n > 1<<20 {
			return
		}
		pkt := make([]byte, n)
		if _, err := io.ReadFull(br, pkt); err != nil {
			return
		}
		typ, body := pkt[0], pkt[1:]
		if typ == fzInit {
			out := fzU32([]byte{fzVersion}, 3)
			for _, e := range []string{"posix-rename@openssh.com", "statvfs@openssh.com", "hardlink@openssh.com", "fsync@openssh.com"} {
				out = fzStr(fzStr(out, e), "1")
			}
			if !s.write(c, out) {
				return
			}
			continue
		}
		if len(body) < 4 {
			return
		}
		id := binary.BigEndian.Uint32(body)
		arg := ""
		if len(body) >= 8 {
			if l := binary.BigEndian.Uint32(body[4:]); int(l) <= len(body)-8 {
				arg = string(body[8 : 8+l])
			}
		}
		var out []byte
		reply := fzU32(nil, id)
		switch typ {
		case fzRealpath:
			out = append([]byte{fzName}, reply...)
			out = fzU32(out, 1)
			rp := s.root
			s.mu.Lock()
			if s.setup {
				rp = s.r.realpath
				s.paths = append(s.paths, arg)
			}
			s.setup = true
			s.mu.Unlock()
			out = s.attrs(fzStr(fzStr(out, rp), rp), false)
		case fzStat, fzLstat:
			s.record(arg)
			out = s.attrs(append([]byte{fzAttrs}, reply...), arg == s.root)
		case fzFstat:
			out = s.attrs(append([]byte{fzAttrs}, reply...), false)
		case fzOpendir, fzOpen:
			s.record(arg)
			if typ == fzOpendir {
				// Like a real server, a directory handle gives its
				// names once, then EOF to every further READDIR (the
				// client keeps several in flight).
				readdirs = 0
			}
			out = fzStr(append([]byte{fzHandle}, reply...), "h")
		case fzReaddir:
			readdirs++
			if readdirs > 1 {
				out = fzStr(fzStr(fzU32(append([]byte{fzStatus}, reply...), 1), "eof"), "")
				break
			}
			names := strings.Split(s.r.names, "\n")
			out = fzU32(append([]byte{fzName}, reply...), uint32(len(names)))
			for _, nm := range names {
				out = s.attrs(fzStr(fzStr(out, nm), "-rw-r--r-- 1 u g 0 Jan 1 00:00 "+nm), false)
			}
		case fzRead:
			off := uint64(0)
			if len(body) >= 8+1+8 {
				hl := binary.BigEndian.Uint32(body[4:])
				if int(hl)+16 <= len(body) {
					off = binary.BigEndian.Uint64(body[8+hl:])
				}
			}
			if off > 0 {
				out = fzStr(fzStr(fzU32(append([]byte{fzStatus}, reply...), 1), "eof"), "")
				break
			}
			out = fzStr(append([]byte{fzData}, reply...), string(s.r.data))
		case fzReadlink:
			s.record(arg)
			out = fzU32(append([]byte{fzName}, reply...), 1)
			out = s.attrs(fzStr(fzStr(out, s.r.link), s.r.link), false)
		default:
			// CLOSE and anything else: OK.
			out = fzStr(fzStr(fzU32(append([]byte{fzStatus}, reply...), 0), "ok"), "")
		}
		if !s.write(c, s.mutated(typ, out)) {
			return
		}
	}
}

func (s *hostileServer) record(p string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.setup {
		s.paths = append(s.paths, p)
	}
}

// mutated applies the fuzzer's corruption to replies after setup.
func (s *hostileServer) mutated(typ byte, out []byte) []byte {
	s.mu.Lock()
	setup := s.setup
	s.sent++
	sent := s.sent
	s.mu.Unlock()
	if !setup || typ == fzRealpath {
		return out
	}
	raw := s.r.data
	switch s.r.mutate % 8 {
	case 1: // a READDIR answer replaced by arbitrary bytes
		if typ == fzReaddir {
			return raw
		}
	case 2: // truncated answers
		if len(raw) > 0 {
			return out[:int(raw[0])%(len(out)+1)]
		}
	case 3: // a wrong request id
		binary.BigEndian.PutUint32(out[1:], binary.BigEndian.Uint32(out[1:])+1)
	case 4: // garbage appended inside the packet
		return append(out, raw...)
	case 5: // the connection ends after a few packets
		if sent > 3+len(raw)%8 {
			return nil
		}
	case 6: // a lying packet length: raw is sent as a whole frame
		if typ == fzStat || typ == fzLstat {
			return append([]byte{0xff}, raw...)
		}
	}
	return out
}

func (s *hostileServer) write(c net.Conn, out []byte) bool {
	if out == nil {
		return false
	}
	_, err := c.Write(fzU32(nil, uint32(len(out))))
	if err == nil {
		_, err = c.Write(out)
	}
	return err == nil
}

// FuzzHostileServerReplies connects a backend to a server that answers
// with fuzzer-chosen attributes, names, link targets and data, or with
// malformed packets. The backend must never panic, never list a name that
// is not a single safe path element, never ask the server about a path
// outside its root, never return more bytes than asked, and must return
// within its timeouts.
func FuzzHostileServerReplies(f *testing.F) {
	f.Add("a\nb\nc", uint32(15), uint64(3), uint32(0o100644), "/vol", "target", []byte("abc"), uint8(0))
	f.Add("../../etc\n..\n.\n/etc/passwd\na/b\n\x00x\n", uint32(0x8000000f), uint64(1<<63), uint32(0o120777), "/vol", "/etc/shadow", []byte("x"), uint8(0))
	f.Add("a", uint32(0xffffffff), ^uint64(0), ^uint32(0), "/", "../../../../", make([]byte, 70000), uint8(0))
	f.Add("ok", uint32(4), uint64(0), uint32(0o040755), "/elsewhere/..", "", []byte{0, 0, 0, 9, 104}, uint8(1))
	f.Add("ok", uint32(1), uint64(10), uint32(0), "/vol", "l", []byte{7}, uint8(2))
	f.Add("ok", uint32(1), uint64(10), uint32(0), "/vol", "l", []byte{}, uint8(3))
	f.Add("ok", uint32(1), uint64(10), uint32(0), "/vol", "l", []byte{1, 2, 3}, uint8(4))
	f.Add("ok", uint32(1), uint64(10), uint32(0), "/vol", "l", []byte{}, uint8(5))
	f.Add("ok", uint32(1), uint64(10), uint32(0), "/vol", "l", []byte{0xff, 0xff, 0xff, 0xff}, uint8(6))
	f.Fuzz(func(t *testing.T, names string, flags uint32, size uint64, perm uint32, realpath, link string, data []byte, mutate uint8) {
		const root = "/vol"
		srv := &hostileServer{root: root, r: fzReply{names: names, flags: flags, size: size, perm: perm, realpath: realpath, link: link, data: data, mutate: mutate}}
		var wg sync.WaitGroup
		var dials sync.Mutex
		dialed := false
		dial := func(ctx context.Context) (*psftp.Client, io.Closer, error) {
			// One connection only: a reconnect would start setup over.
			dials.Lock()
			defer dials.Unlock()
			if dialed {
				return nil, nil, errors.New("fuzz: no second connection")
			}
			dialed = true
			cs, ss := net.Pipe()
			wg.Add(1)
			go func() { defer wg.Done(); srv.serve(ss) }()
			cl, err := psftp.NewClientPipe(cs, cs)
			if err != nil {
				cs.Close()
				return nil, nil, err
			}
			return cl, cs, nil
		}
		// A hang is a failure with the input saved: the fuzzer has no
		// per-input timeout, so crash the process with all stacks.
		watchdog := time.AfterFunc(20*time.Second, func() {
			buf := make([]byte, 1<<20)
			panic("hostile server input hung the backend for 20s:\n" + string(buf[:runtime.Stack(buf, true)]))
		})
		defer watchdog.Stop()
		// Short, so that inputs that make the client wait cost little;
		// a reply that misses it under load is just another error.
		const opTimeout = 100 * time.Millisecond
		ctx := context.Background()
		start := time.Now()
		b, err := NewWithDialer(ctx, dial, root, Options{OpTimeout: opTimeout, ConnectTimeout: opTimeout})
		if err != nil {
			wg.Wait()
			return
		}
		defer func() {
			b.Close()
			wg.Wait()
		}()
		if b.root != root {
			t.Fatalf("root = %q, want %q", b.root, root)
		}
		list, _ := b.ReadDir(ctx, ".")
		for _, fi := range list {
			n := fi.Name
			// Names need not be UTF-8 (fs.ValidPath would say no):
			// the promise is one element that stays in the directory.
			if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\x00") {
				t.Fatalf("ReadDir returned unsafe name %q", n)
			}
			_, _ = b.Lstat(ctx, n)
		}
		_, _ = b.Stat(ctx, "x")
		_, _ = b.Readlink(ctx, "x")
		if fh, err := b.OpenFile(ctx, "x", os.O_RDONLY, 0); err == nil {
			buf := make([]byte, 16)
			n, _ := fh.ReadAt(buf, 0)
			if n < 0 || n > len(buf) {
				t.Fatalf("ReadAt returned n=%d for a %d-byte buffer", n, len(buf))
			}
			_, _ = fh.Stat()
			fh.Close()
		}
		// Every call is bounded by about twice opTimeout (plus the
		// one-second grace for a call stuck on a closed connection); a
		// handful of calls must finish well within this.
		if d := time.Since(start); d > 15*time.Second {
			t.Fatalf("calls took %v with op timeout %v", d, opTimeout)
		}
		srv.mu.Lock()
		defer srv.mu.Unlock()
		for _, p := range srv.paths {
			if p != root && !strings.HasPrefix(p, root+"/") || path.Clean(p) != p {
				t.Fatalf("client asked the server about %q, outside the root %s", p, root)
			}
		}
	})
}

// TestHostileServerListing pins what the fuzz target relies on: names a
// server may not send ("..", ".", "", with "/" or NUL) are dropped from a
// listing and the rest is kept; an absolute symlink target is returned
// verbatim (the FUSE layer's policy decides what to do with it).
func TestHostileServerListing(t *testing.T) {
	srv := &hostileServer{root: "/vol", r: fzReply{
		names: "good\n..\n.\n\n/etc/passwd\na/b\nx\x00y\n../../etc\nalso-good", flags: 5, size: 7, perm: 0o100644,
		realpath: "/vol", link: "/etc/shadow",
	}}
	cs, ss := net.Pipe()
	go srv.serve(ss)
	dial := func(ctx context.Context) (*psftp.Client, io.Closer, error) {
		cl, err := psftp.NewClientPipe(cs, cs)
		return cl, cs, err
	}
	ctx := context.Background()
	b, err := NewWithDialer(ctx, dial, "/vol", Options{OpTimeout: time.Second, ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	list, err := b.ReadDir(ctx, ".")
	if err != nil {
		t.Fatal(err)
	}
	// pkg/sftp reduces every listed name to path.Base before the backend
	// sees it, so "/etc/passwd", "a/b" and "../../etc" arrive as
	// "passwd", "b" and "etc": entries of this directory, never paths
	// outside it, but not rejected either (the raw name is not exposed).
	got := map[string]bool{}
	for _, fi := range list {
		got[fi.Name] = true
	}
	for n := range got {
		switch n {
		case "good", "also-good", "passwd", "b", "etc":
		default:
			t.Errorf("ReadDir returned %q", n)
		}
	}
	if !got["good"] || !got["also-good"] {
		t.Errorf("ReadDir = %v, lacks the valid names", got)
	}
	if l, err := b.Readlink(ctx, "good"); err != nil || l != "/etc/shadow" {
		t.Errorf("Readlink = %q, %v", l, err)
	}
	for _, p := range srv.paths {
		if !strings.HasPrefix(p, "/vol") {
			t.Errorf("request for %q outside the root", p)
		}
	}
}
