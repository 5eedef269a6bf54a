package main

import (
	"fmt"
	"os"
	"path/filepath"
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
}

// newWarmer mounts a tmpfs of size bytes at dir.
func newWarmer(dir string, size int64) (*warmer, error) {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size+1<<20)); err != nil {
		return nil, fmt.Errorf("tmpfs on %s: %w", dir, err)
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i) | 1 // not zero: tmpfs stores every page either way, but be sure
	}
	return &warmer{dir: dir, size: size, buf: buf}, nil
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
	if err := syscall.Unmount(w.dir, 0); err != nil {
		_ = syscall.Unmount(w.dir, syscall.MNT_DETACH)
	}
	os.Remove(w.dir)
}
