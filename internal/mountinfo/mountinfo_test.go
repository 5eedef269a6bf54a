package mountinfo

import (
	"os"
	"strings"
	"testing"

	"github.com/sftpfs/sftpfs/internal/testenv"
)

func TestParse(t *testing.T) {
	in := `22 1 0:21 / /proc rw,nosuid shared:5 - proc proc rw
101 22 0:60 / /mnt/volumes/my\040vol rw,nosuid,nodev master:1 - fuse.sftpfs sftpfs#u@h:/a\040b rw,user_id=0
short line
`
	ms, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Mount{
		{Mountpoint: "/proc", FSType: "proc", Source: "proc", Dev: "0:21"},
		{Mountpoint: "/mnt/volumes/my vol", FSType: "fuse.sftpfs", Source: "sftpfs#u@h:/a b", Dev: "0:60"},
	}
	if len(ms) != len(want) {
		t.Fatalf("got %d mounts, want %d: %+v", len(ms), len(want), ms)
	}
	for i := range want {
		if ms[i] != want[i] {
			t.Errorf("mount %d = %+v, want %+v", i, ms[i], want[i])
		}
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`/a\040b`: "/a b", `/t\011x`: "/t\tx", `/n\012`: "/n\n", `/b\134s`: `/b\s`, `/plain`: "/plain", `/bad\04`: `/bad\04`,
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLiveTable(t *testing.T) {
	_, err := os.Stat("/proc/self/mountinfo")
	testenv.Require(t, "/proc/self/mountinfo (Linux with /proc mounted)", err == nil)
	if !IsMounted("/") {
		t.Error(`"/" is not reported as mounted`)
	}
	if u := Under("/"); len(u) == 0 || u[len(u)-1] != "/" {
		t.Errorf(`Under("/") = %v, want "/" last (deepest first)`, u)
	}
}
