package main

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestTreeCountsDoubleForkedGroup: a helper started through a double
// fork (as sshfs starts ssh) is reparented away from the contender but
// keeps its process group; its CPU must be counted. With descendants
// alone the busy helper's CPU was missed.
func TestTreeCountsDoubleForkedGroup(t *testing.T) {
	// The subshell puts a busy loop in the background and exits, so the
	// loop's parent becomes init (or a subreaper), not the outer sh.
	cmd := exec.Command("sh", "-c", "( (while :; do :; done) & ) ; exec sleep 30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	root := cmd.Process.Pid
	deadline := time.Now().Add(10 * time.Second)
	for len(tree(root)) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cpu0 := treeCPU(root)
	time.Sleep(time.Second)
	if got := treeCPU(root) - cpu0; got < 0.3 {
		t.Errorf("tree %v used %.2f s of CPU in 1 s with a busy helper in its process group; the helper is not counted", tree(root), got)
	}
	if rss, _ := treeMem(root); rss <= 0 {
		t.Errorf("treeMem = %.1f MiB", rss)
	}
}
