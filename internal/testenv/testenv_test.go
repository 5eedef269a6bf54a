package testenv

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// recTB records how Require ended a test. Skipf and Fatalf must stop the
// calling goroutine like the real ones do, so they call runtime.Goexit
// and the test runs the code under test in its own goroutine.
type recTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recTB) Helper() {}
func (r *recTB) Skipf(f string, a ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(f, a...)
	runtime.Goexit()
}
func (r *recTB) Fatalf(f string, a ...any) {
	r.failed, r.msg = true, fmt.Sprintf(f, a...)
	runtime.Goexit()
}

func run(fn func(tb testing.TB)) *recTB {
	r := &recTB{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		fn(r)
	}()
	wg.Wait()
	return r
}

func TestRequire(t *testing.T) {
	for _, tc := range []struct {
		ci, ok             bool
		wantSkip, wantFail bool
		wantMsg            string
	}{
		{ci: false, ok: true},
		{ci: true, ok: true},
		{ci: false, ok: false, wantSkip: true, wantMsg: "skipping: thing is missing"},
		{ci: true, ok: false, wantFail: true, wantMsg: "CI: thing is required but missing"},
	} {
		ci := "false"
		if tc.ci {
			ci = "true"
		}
		t.Setenv("CI", ci)
		if InCI() != tc.ci {
			t.Fatalf("InCI() = %v with CI=%s", InCI(), ci)
		}
		reached := false
		r := run(func(tb testing.TB) {
			Require(tb, "thing", tc.ok)
			reached = true
		})
		if r.skipped != tc.wantSkip || r.failed != tc.wantFail || r.msg != tc.wantMsg {
			t.Errorf("ci=%v ok=%v: skipped=%v failed=%v msg=%q; want skipped=%v failed=%v msg=%q",
				tc.ci, tc.ok, r.skipped, r.failed, r.msg, tc.wantSkip, tc.wantFail, tc.wantMsg)
		}
		if reached != tc.ok {
			t.Errorf("ci=%v ok=%v: code after Require reached=%v", tc.ci, tc.ok, reached)
		}
	}
}

func TestLookPath(t *testing.T) {
	t.Setenv("CI", "true")
	var got string
	r := run(func(tb testing.TB) { got = LookPath(tb, "sh") })
	if r.failed || !strings.HasSuffix(got, "/sh") {
		t.Fatalf("LookPath(sh) = %q, failed=%v %s", got, r.failed, r.msg)
	}
	r = run(func(tb testing.TB) { got = LookPath(tb, "no-such-tool-sftpfs-xyz") })
	if !r.failed || !strings.Contains(r.msg, "no-such-tool-sftpfs-xyz") {
		t.Fatalf("LookPath(missing) in CI: failed=%v msg=%q; want failure naming the tool", r.failed, r.msg)
	}
}
