package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sftpfs/sftpfs/internal/testenv"
)

// TestWarmerFillsAndFrees: warm writes the whole size into its own
// tmpfs (a short write would leave part of the page cache cold) and
// leaves nothing behind (a leftover would hold the memory the
// measurement is meant to get back), and a tmpfs too small for it
// fails loudly rather than warming less.
func TestWarmerFillsAndFrees(t *testing.T) {
	testenv.RequireRoot(t)
	orig := ""
	if b, err := os.ReadFile(reportingKnob); err == nil {
		orig = strings.TrimSpace(string(b))
	}
	dir := filepath.Join(t.TempDir(), "warm")
	const size = 8<<20 + 12345
	w, err := newWarmer(dir, size, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	// Where the kernel reports free pages to its host, the run holds
	// them back, and close puts the setting back as it was.
	knobOpen, knobErr := os.ReadFile(reportingKnob)
	if knobErr == nil {
		if strings.TrimSpace(string(knobOpen)) != reportHold {
			t.Errorf("%s = %q while the warmer is open, want %s", reportingKnob, knobOpen, reportHold)
		}
		if w.restore == nil {
			t.Error("the warmer changed the reporting setting but has nothing to restore it")
		}
	}
	var before syscall.Statfs_t
	if err := syscall.Statfs(dir, &before); err != nil {
		t.Fatal(err)
	}
	if err := w.warm(); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 0 {
		t.Fatalf("after warm the scratch tmpfs holds %v (%v), want nothing", ents, err)
	}
	// Written in full: a tmpfs just one MiB too small must refuse.
	w.size = int64(before.Blocks*uint64(before.Bsize)) + 1<<20
	if err := w.warm(); err == nil {
		t.Errorf("warm of %d bytes into a %d-byte tmpfs succeeded; it must write everything or fail", w.size, before.Blocks*uint64(before.Bsize))
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a failed warm left %v behind", ents)
	}
	w.close()
	if knobErr == nil {
		if now, _ := os.ReadFile(reportingKnob); strings.TrimSpace(string(now)) == reportHold && orig != reportHold {
			t.Errorf("after close %s is still %s (was %s before the warmer)", reportingKnob, reportHold, orig)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("close left %s: %v", dir, err)
	}
}
