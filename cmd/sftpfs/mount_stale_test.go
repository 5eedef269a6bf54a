package main

import (
	"bytes"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sftpfs/sftpfs/internal/testenv"
)

// TestMountOnFUSEMountpoint: mounting where a FUSE filesystem already is
// (a crashed sftpfs mount leaves a dead one) is refused from the mount
// table with advice, instead of a stat that fails with ENOTCONN or hangs.
func TestMountOnFUSEMountpoint(t *testing.T) {
	testenv.RequireFUSE(t)
	bin := buildBinary(t)
	src, mp := t.TempDir(), t.TempDir()
	p := startMount(t, bin, mp, "local:"+src)
	defer p.stop(t, syscall.SIGTERM)
	cmd := exec.Command(bin, "mount", "local:"+t.TempDir(), mp)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 1 || !strings.Contains(out.String(), "already has a FUSE filesystem") || !strings.Contains(out.String(), "umount -l") {
			t.Errorf("second mount on %s: %v, output %q; want exit 1 explaining the existing FUSE mount", mp, err, out.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("second mount on a FUSE mountpoint did not exit within 30s")
	}
}
