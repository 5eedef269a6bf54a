package fusefs_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sftpfs/sftpfs/fusefs"
)

// TestSymlinkPolicies mounts a local backend whose directory holds links
// a hostile server could serve, and reads them through the mount under
// each policy. The host's /etc/passwd is the file an escaping link would
// reach.
func TestSymlinkPolicies(t *testing.T) {
	host, err := os.Stat("/etc/passwd")
	if err != nil {
		t.Skipf("this test needs the host's /etc/passwd as the escape target: %v", err)
	}
	// link -> stored target, relative to the backing directory
	links := map[string]string{
		"abs":     "/etc/passwd",
		"sub/up":  "../../..",
		"sub/esc": "../../etc/passwd",
		"rel":     "sub/../x",
		"sub/ok":  "../x",
	}
	type want struct {
		target string
		errno  syscall.Errno
	}
	cases := []struct {
		policy fusefs.SymlinkPolicy
		want   map[string]want
	}{
		{fusefs.SymlinkKeep, map[string]want{
			"abs": {"/etc/passwd", 0}, "sub/up": {"../../..", 0}, "sub/esc": {"../../etc/passwd", 0},
			"rel": {"sub/../x", 0}, "sub/ok": {"../x", 0},
		}},
		{fusefs.SymlinkContain, map[string]want{
			"abs": {"etc/passwd", 0}, "sub/up": {"..", 0}, "sub/esc": {"../etc/passwd", 0},
			"rel": {"x", 0}, "sub/ok": {"../x", 0},
		}},
		{fusefs.SymlinkRefuse, map[string]want{
			"abs": {"", syscall.EACCES}, "sub/up": {"", syscall.EACCES}, "sub/esc": {"", syscall.EACCES},
			"rel": {"x", 0}, "sub/ok": {"../x", 0},
		}},
	}
	for _, tc := range cases {
		t.Run(string(tc.policy), func(t *testing.T) {
			var logs logBuffer
			o := testOptions()
			o.Symlinks = tc.policy
			o.Logger = logs.logger()
			mnt, back := mountLocal(t, o)
			for _, d := range []string{"sub", "etc"} {
				if err := os.Mkdir(filepath.Join(back, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			writeFile(t, filepath.Join(back, "etc", "passwd"), "inside the mount\n")
			writeFile(t, filepath.Join(back, "x"), "x\n")
			for l, target := range links {
				if err := os.Symlink(target, filepath.Join(back, l)); err != nil {
					t.Fatal(err)
				}
			}
			// Read every link twice: refusals are logged once per link.
			for range 2 {
				for l, w := range tc.want {
					got, err := os.Readlink(filepath.Join(mnt, l))
					if w.errno != 0 {
						wantErrno(t, "readlink "+l, err, w.errno)
						continue
					}
					if err != nil || got != w.target {
						t.Errorf("readlink %s = %q, %v; want %q", l, got, err, w.target)
					}
				}
			}

			// Following the absolute link: only keep reaches the host.
			st, err := os.Stat(filepath.Join(mnt, "abs"))
			switch tc.policy {
			case fusefs.SymlinkKeep:
				if err != nil || !os.SameFile(st, host) {
					t.Errorf("keep: stat through abs = %v, %v; want the host's /etc/passwd", st, err)
				}
			case fusefs.SymlinkContain:
				if err != nil {
					t.Fatalf("contain: stat through abs: %v", err)
				}
				if os.SameFile(st, host) {
					t.Error("contain: abs reaches the host's /etc/passwd")
				}
				if got := readFile(t, filepath.Join(mnt, "abs")); got != "inside the mount\n" {
					t.Errorf("contain: abs reads %q, want the mount's etc/passwd", got)
				}
				if got := readFile(t, filepath.Join(mnt, "sub", "esc")); got != "inside the mount\n" {
					t.Errorf("contain: sub/esc reads %q, want the mount's etc/passwd", got)
				}
				// ../../.. from sub is clamped at the mount root.
				up, err := os.Stat(filepath.Join(mnt, "sub", "up"))
				root, err2 := os.Stat(mnt)
				if err != nil || err2 != nil || !os.SameFile(up, root) {
					t.Errorf("contain: sub/up = %v, %v; want the mount root (%v)", up, err, err2)
				}
			case fusefs.SymlinkRefuse:
				wantErrno(t, "refuse: stat through abs", err, syscall.EACCES)
				if n := strings.Count(logs.String(), "refusing symlink"); n != 3 {
					t.Errorf("refuse: %d warnings for 3 escaping links read twice, want 3; log:\n%s", n, logs.String())
				}
			}

			// Creating a link through the mount stores the target verbatim.
			if err := os.Symlink("/etc/passwd", filepath.Join(mnt, "made")); err != nil {
				t.Fatal(err)
			}
			if got, err := os.Readlink(filepath.Join(back, "made")); err != nil || got != "/etc/passwd" {
				t.Errorf("stored target of made = %q, %v; want /etc/passwd verbatim", got, err)
			}
		})
	}
}
