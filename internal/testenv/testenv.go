package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run in CI (environment variable
// CI=true), where missing requirements are failures, not skips.
func InCI() bool { return os.Getenv("CI") == "true" }

// Require stops the test when ok is false: in CI it fails with
// "CI: <what> is required but missing"; elsewhere it skips with
// "skipping: <what> is missing". what should say what is needed, for
// example "root (to run sshd)".
func Require(t testing.TB, what string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if InCI() {
		t.Fatalf("CI: %s is required but missing", what)
	}
	t.Skipf("skipping: %s is missing", what)
}

// LookPath returns the path of the executable name (as exec.LookPath
// finds it), requiring it to exist.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	Require(t, "executable "+name+" (in PATH)", err == nil)
	return p
}

// RequireRoot requires the test to run as root (effective uid 0).
func RequireRoot(t testing.TB) {
	t.Helper()
	Require(t, "root (effective uid 0)", os.Geteuid() == 0)
}

// RequireFUSE requires /dev/fuse to be openable for reading and writing,
// which is what mounting a FUSE filesystem needs.
func RequireFUSE(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err == nil {
		f.Close()
	}
	Require(t, "/dev/fuse (openable read-write)", err == nil)
}
