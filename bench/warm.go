package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Memory a measurement's page cache comes from must cost every contender
// the same. On a virtual machine that returns free guest memory to its
// host (virtio-balloon free page reporting, as on the machines this
// benchmark was developed on), the first touch of such a page after it
// was handed back costs a fault in the host: about 1.5 s per GiB of page
// cache filled, charged to whichever process copies data into it. For a
// FUSE client that is the client itself (its write of a READ reply to
// /dev/fuse fills the page cache), so the contender that happened to run
// first in a round paid it and the next one, reusing the pages the first
// one's dropped cache freed, did not: CPU per GiB read 4.9 s for sftpfs
// first and 3.2 s second, and the same flip for sshfs (session 7).
//
// The server pays it too when it stores a written file in its tmpfs,
// which slows whoever writes while the pages are cold.
//
// Such a kernel hands free pages back a few seconds after they were
// freed (about 1 GiB of 1.3 GiB freed within 6 s here), which is while
// the next measurement runs. Where the kernel has the knob for it
// (min_free_ms of the page_reporting module: how long a page must stay
// free before it is reported), the run holds pages back for reportHold
// and restores the setting at the end; without it, warming alone was
// beaten by the reporting in about one run of two.
//
// warm evens that out: before each measurement it fills a scratch tmpfs
// with as much data as the largest workload takes in fresh pages (page
// cache and the server's tmpfs together) and deletes it again, so the
// pages the measurement gets back from the allocator have just been
// used, whoever runs. It is the harness's own work and not counted for
// anyone.
type warmer struct {
	dir  string
	size int64
	buf  []byte
	// restore puts the page reporting setting back (nil: not changed).
	restore func()
}

// reportingKnob is the page_reporting module's minimum time, in
// milliseconds, a free page stays unreported; reportHold is what the
// run sets it to: longer than any gap between a warm and the end of the
// measurement after it, short enough that memory goes back to the host
// soon after an aborted run that could not restore the setting.
const (
	reportingKnob = "/sys/module/page_reporting/parameters/min_free_ms"
	reportHold    = "300000"
)

// holdReporting sets reportingKnob to reportHold if it exists and
// returns the function that restores it.
func holdReporting(log io.Writer) (restore func(), err error) {
	old, err := os.ReadFile(reportingKnob)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(reportingKnob, []byte(reportHold), 0); err != nil {
		return nil, fmt.Errorf("holding free page reporting: %w", err)
	}
	prev := strings.TrimSpace(string(old))
	fmt.Fprintf(log, "bench: free pages reported to the host after %s ms instead of %s for this run (%s)\n", reportHold, prev, reportingKnob)
	return func() {
		if err := os.WriteFile(reportingKnob, []byte(prev), 0); err != nil {
			fmt.Fprintf(log, "bench: could not restore %s to %s: %v\n", reportingKnob, prev, err)
		}
	}, nil
}

// newWarmer mounts a tmpfs of size bytes at dir and holds free page
// reporting back where the kernel allows it.
func newWarmer(dir string, size int64, log io.Writer) (*warmer, error) {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size+1<<20)); err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("tmpfs on %s: %w", dir, err)
	}
	restore, err := holdReporting(log)
	if err != nil {
		_ = syscall.Unmount(dir, 0)
		os.Remove(dir)
		return nil, err
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i) | 1 // not zero: tmpfs stores every page either way, but be sure
	}
	return &warmer{dir: dir, size: size, buf: buf, restore: restore}, nil
}

// warm writes size bytes into the scratch tmpfs and removes them.
func (w *warmer) warm() error {
	if w == nil || w.size <= 0 {
		return nil
	}
	p := filepath.Join(w.dir, "warm")
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	var n int64
	for n < w.size && err == nil {
		k := min(int64(len(w.buf)), w.size-n)
		_, err = f.Write(w.buf[:k])
		n += k
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := os.Remove(p); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("warming the page allocator: %w", err)
	}
	return nil
}

func (w *warmer) close() {
	if w == nil {
		return
	}
	if w.restore != nil {
		w.restore()
		w.restore = nil
	}
	if err := syscall.Unmount(w.dir, 0); err != nil {
		_ = syscall.Unmount(w.dir, syscall.MNT_DETACH)
	}
	os.Remove(w.dir)
}
