package fusefs_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sftpfs/sftpfs/backend/sftp"
	"github.com/sftpfs/sftpfs/fusefs"
	"github.com/sftpfs/sftpfs/internal/sshdtest"
)

// sftpRequestRE matches the line OpenSSH's sftp-server logs at DEBUG3
// for every request: "request 12: open ...".
var sftpRequestRE = regexp.MustCompile(`request \d+: ([a-z@.-]+)`)

// sshdMount is a mount of a real OpenSSH sftp-server whose requests are
// logged, so a test can count the round trips an operation costs.
type sshdMount struct {
	mnt, back, log string
}

// loggingSSHD starts sshd with sftp-server logging every request to
// the returned file.
func loggingSSHD(t *testing.T) (*sshdtest.Server, string) {
	t.Helper()
	logFile := filepath.Join(t.TempDir(), "sftp-server.log")
	srv := sshdtest.Start(t, sshdtest.Options{ExtraConfig: []string{
		// sshd runs the subsystem through the user's shell, so the
		// redirection works; -e sends the log to stderr.
		"Subsystem sftp /usr/lib/openssh/sftp-server -e -l DEBUG3 2>>" + logFile,
	}})
	return srv, logFile
}

// mountSSHD starts sshd with sftp-server logging every request to a
// file and mounts the SFTP backend over a fresh server directory.
func mountSSHD(t *testing.T, o fusefs.Options) *sshdMount {
	t.Helper()
	requireMount(t)
	srv, logFile := loggingSSHD(t)
	back := t.TempDir()
	b, err := sftp.New(context.Background(), sftp.Config{
		Host: srv.Host, Port: srv.Port, User: srv.User, Path: back,
		IdentityFiles:   []string{srv.KeyFile},
		KnownHostsFiles: []string{srv.KnownHostsFile},
		ConnectTimeout:  10 * time.Second,
		OpTimeout:       20 * time.Second,
	})
	if err != nil {
		t.Fatalf("sftp.New: %v", err)
	}
	o.FSName = "sftpfs-test-sshd"
	return &sshdMount{mnt: mountBackend(t, b, o), back: back, log: logFile}
}

// requests returns the number of SFTP requests of each kind logged so
// far (status replies are not requests).
func (m *sshdMount) requests(t *testing.T) map[string]int {
	t.Helper()
	b, err := os.ReadFile(m.log)
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, l := range strings.Split(string(b), "\n") {
		if s := sftpRequestRE.FindStringSubmatch(l); s != nil && s[1] != "sent" {
			n[s[1]]++
		}
	}
	return n
}

func diff(after, before map[string]int) map[string]int {
	d := map[string]int{}
	for k, v := range after {
		if v != before[k] {
			d[k] = v - before[k]
		}
	}
	return d
}

// TestCreateRoundTripsSSHD: filling a directory through the mount costs
// OPEN, LSTAT (of the new file, sent with the OPEN in one round trip),
// WRITE and CLOSE per file against real OpenSSH and no stat of the
// directory, although the kernel (default_permissions) asks for the
// directory's attributes before every creation: a creation through this
// mount only moves the directory's mtime, which the new file's
// attributes tell (dirattr.go). The directory's mtime seen through the
// mount must still be the server's, and a removal must send the next
// stat to the server.
func TestCreateRoundTripsSSHD(t *testing.T) {
	o := testOptions()
	// Long enough that the directory's attributes read before the
	// creations stay valid through them even under -race.
	o.AttrTimeout, o.EntryTimeout = 10*time.Second, 10*time.Second
	m := mountSSHD(t, o)
	if err := os.Mkdir(filepath.Join(m.back, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(m.mnt, "out")
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // SFTP mtimes have 1 s resolution
	before := m.requests(t)
	const n = 60
	data := strings.Repeat("x", 4096)
	for i := range n {
		writeFile(t, filepath.Join(out, fmt.Sprintf("c%03d", i)), data)
	}
	// RELEASE (CLOSE) is asynchronous: let the last one arrive.
	time.Sleep(200 * time.Millisecond)
	got := diff(m.requests(t), before)
	t.Logf("%d creations: SFTP requests %v", n, got)
	for _, op := range []string{"open", "write", "close"} {
		if got[op] < n || got[op] > n+2 {
			t.Errorf("%d creations made %d %s requests, want %d", n, got[op], op, n)
		}
	}
	if got["fstat"] > 2 {
		t.Errorf("%d creations made %d fstat requests, want none (the LSTAT sent with each OPEN answers)", n, got["fstat"])
	}
	// One LSTAT per file (of the file), and a few more and one or two
	// listings are fine (the directory's first GETATTR, a listing for
	// the lookups); one per file of the directory is not.
	if st := got["lstat"] + got["stat"]; st < n || st > n+6 {
		t.Errorf("%d creations made %d stat requests, want %d to %d (one per file, none of the directory per file)", n, st, n, n+6)
	}
	total := 0
	for _, v := range got {
		total += v
	}
	if total > 4*n+12 {
		t.Errorf("%d creations made %d SFTP requests, want at most %d (4 per file)", n, total, 4*n+12)
	}

	// The directory's mtime is the server's, to the second.
	checkMtime := func(what string) {
		t.Helper()
		st, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		srv, err := os.Stat(filepath.Join(m.back, "out"))
		if err != nil {
			t.Fatal(err)
		}
		if st.ModTime().Unix() != srv.ModTime().Unix() {
			t.Errorf("%s: directory mtime through the mount %v, on the server %v", what, st.ModTime(), srv.ModTime())
		}
	}
	checkMtime("after creations")
	time.Sleep(1100 * time.Millisecond)
	writeFile(t, filepath.Join(out, "late"), "late")
	checkMtime("after a creation a second later")
	time.Sleep(1100 * time.Millisecond)
	before = m.requests(t)
	if err := os.Remove(filepath.Join(out, "c000")); err != nil {
		t.Fatal(err)
	}
	checkMtime("after a removal")
	if got := diff(m.requests(t), before); got["lstat"]+got["stat"] == 0 {
		t.Errorf("stat of the directory after a removal was answered without the server (requests %v)", got)
	}
}

// TestOpenRoundTripsSSHD: every open learns the file's attributes from
// the server (close-to-open, TestCloseToOpen) with the LSTAT sent along
// with the OPEN, not with an FSTAT of its own: reading files whose names
// a listing already gave costs OPEN, LSTAT, READ and CLOSE each.
func TestOpenRoundTripsSSHD(t *testing.T) {
	o := testOptions()
	o.AttrTimeout, o.EntryTimeout = 10*time.Second, 10*time.Second
	m := mountSSHD(t, o)
	const n = 40
	must(t, os.Mkdir(filepath.Join(m.back, "in"), 0o755))
	for i := range n {
		writeFile(t, filepath.Join(m.back, "in", fmt.Sprintf("r%03d", i)), strings.Repeat("r", 4096))
	}
	in := filepath.Join(m.mnt, "in")
	if _, err := os.ReadDir(in); err != nil {
		t.Fatal(err)
	}
	before := m.requests(t)
	for i := range n {
		if got := readFile(t, filepath.Join(in, fmt.Sprintf("r%03d", i))); len(got) != 4096 {
			t.Fatalf("read %d bytes, want 4096", len(got))
		}
	}
	time.Sleep(200 * time.Millisecond) // RELEASE (CLOSE) is asynchronous
	got := diff(m.requests(t), before)
	t.Logf("%d reads: SFTP requests %v", n, got)
	if got["open"] != n {
		t.Errorf("%d reads made %d open requests, want %d", n, got["open"], n)
	}
	if got["fstat"] > 2 {
		t.Errorf("%d reads made %d fstat requests, want none (the LSTAT sent with each OPEN answers)", n, got["fstat"])
	}
	if st := got["lstat"] + got["stat"]; st < n || st > n+4 {
		t.Errorf("%d reads made %d stat requests, want %d to %d (one with each OPEN)", n, st, n, n+4)
	}
}

// TestDirAttrAfterOwnChanges: a directory's attributes kept across
// creations (dirattr.go) never hide a change made through the mount to
// the directory itself: after chmod and utimens, also right after
// creations in it, stats show the new attributes. (The kernel tested on
// re-asks after a SETATTR of the mode, so this did not fail when
// SETATTR's own reply still came from the kept attributes; that reply
// now always comes from the backend.)
func TestDirAttrAfterOwnChanges(t *testing.T) {
	o := testOptions()
	o.AttrTimeout, o.EntryTimeout = 10*time.Second, 10*time.Second
	mnt, back := mountLocal(t, o)
	dir := filepath.Join(mnt, "d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, mode := range []os.FileMode{0o700, 0o750, 0o711} {
		// A creation makes the kernel ask for the directory's
		// attributes at the next stat (from the backend); they are
		// then kept across the next creation.
		writeFile(t, filepath.Join(dir, fmt.Sprintf("a%d", i)), "x")
		if _, err := os.Stat(dir); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, fmt.Sprintf("b%d", i)), "x")
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("after chmod %v: mode through the mount %v", mode, st.Mode().Perm())
		}
		mt := time.Unix(1_000_000_000+int64(i), 0)
		if err := os.Chtimes(dir, mt, mt); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(dir); err != nil || !st.ModTime().Equal(mt) {
			t.Errorf("after utimens %v: mtime through the mount %v (%v)", mt, st.ModTime(), err)
		}
		if srv, err := os.Stat(filepath.Join(back, "d")); err != nil || srv.Mode().Perm() != mode {
			t.Errorf("mode on the backend %v (%v), want %v", srv.Mode().Perm(), err, mode)
		}
	}
}
