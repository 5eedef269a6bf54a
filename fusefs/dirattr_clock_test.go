package fusefs_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/backend/local"
)

// skewedBackend reports every time skew later than the storage has it,
// as a server whose clock runs ahead of ours would.
type skewedBackend struct {
	*countingBackend
	skew time.Duration
}

func (s *skewedBackend) shift(fi backend.FileInfo) backend.FileInfo {
	fi.ModTime = fi.ModTime.Add(s.skew)
	if !fi.ATime.IsZero() {
		fi.ATime = fi.ATime.Add(s.skew)
	}
	return fi
}

func (s *skewedBackend) Lstat(ctx context.Context, name string) (backend.FileInfo, error) {
	fi, err := s.countingBackend.Lstat(ctx, name)
	return s.shift(fi), err
}

func (s *skewedBackend) Stat(ctx context.Context, name string) (backend.FileInfo, error) {
	fi, err := s.countingBackend.Stat(ctx, name)
	return s.shift(fi), err
}

func (s *skewedBackend) ReadDir(ctx context.Context, name string) ([]backend.FileInfo, error) {
	fis, err := s.countingBackend.ReadDir(ctx, name)
	for i := range fis {
		fis[i] = s.shift(fis[i])
	}
	return fis, err
}

// TestDirAttrClock: after an unlink or a rename the kernel asks
// for the directories' attributes again (default_permissions). When the
// server's clock agrees with ours, the mount answers from the attributes
// it remembers, with the request's second as the new mtime (dirattr.go),
// so `rm` or `mv` of many files costs about one request per file; the
// mtime shown is the storage's. A server whose clock runs 5 s ahead or
// behind fails the clock check: every GETATTR goes to the server again,
// and the mtime shown is still the server's, never our clock's. Moving
// directories is never answered that way (link counts change).
func TestDirAttrClock(t *testing.T) {
	requireMount(t)
	const files = 40
	ops := []struct {
		name string
		dirs bool // the entries are directories
		do   func(mnt string, i int) error
	}{
		{"unlink", false, func(mnt string, i int) error { return unix.Unlink(filepath.Join(mnt, "d", fmt.Sprintf("f%02d", i))) }},
		{"rename", false, func(mnt string, i int) error {
			return unix.Rename(filepath.Join(mnt, "d", fmt.Sprintf("f%02d", i)), filepath.Join(mnt, "d", fmt.Sprintf("g%02d", i)))
		}},
		{"move", false, func(mnt string, i int) error {
			return unix.Rename(filepath.Join(mnt, "d", fmt.Sprintf("f%02d", i)), filepath.Join(mnt, "e", fmt.Sprintf("f%02d", i)))
		}},
		{"movedir", true, func(mnt string, i int) error {
			return unix.Rename(filepath.Join(mnt, "d", fmt.Sprintf("f%02d", i)), filepath.Join(mnt, "e", fmt.Sprintf("f%02d", i)))
		}},
	}
	for _, op := range ops {
		for _, skew := range []time.Duration{0, 5 * time.Second, -5 * time.Second} {
			t.Run(fmt.Sprintf("%s/skew=%v", op.name, skew), func(t *testing.T) {
				back := t.TempDir()
				for _, dir := range []string{"d", "e"} {
					must(t, os.Mkdir(filepath.Join(back, dir), 0o755))
				}
				for i := range files {
					p := filepath.Join(back, "d", fmt.Sprintf("f%02d", i))
					if op.dirs {
						must(t, os.Mkdir(p, 0o755))
					} else {
						writeFile(t, p, "x")
					}
				}
				old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
				for _, dir := range []string{"d", "e"} {
					must(t, os.Chtimes(filepath.Join(back, dir), old, old))
				}
				lb, err := local.New(back)
				must(t, err)
				sb := &skewedBackend{countingBackend: &countingBackend{Backend: lb}, skew: skew}
				o := testOptions()
				// Long enough that the remembered attributes outlive the
				// loop also under -race, so the count below is the carry's.
				o.AttrTimeout, o.EntryTimeout = 10*time.Second, 10*time.Second
				mnt := mountBackend(t, sb, o)
				for _, dir := range []string{"d", "e"} {
					if _, err := os.ReadDir(filepath.Join(mnt, dir)); err != nil {
						t.Fatal(err)
					}
				}
				before := sb.lstats.Load() + sb.stats.Load()
				for i := range files {
					if err := op.do(mnt, i); err != nil {
						t.Fatal(err)
					}
				}
				stats := sb.lstats.Load() + sb.stats.Load() - before
				t.Logf("%d of %s: %d remote stats", files, op.name, stats)
				if skew == 0 && !op.dirs && stats > files/4 {
					t.Errorf("%d of %s made %d remote stats, want at most %d: the directories' GETATTRs should be answered from their remembered attributes", files, op.name, stats, files/4)
				}
				if (skew != 0 || op.dirs) && stats < files-2 {
					t.Errorf("%d of %s (server clock off by %v) made only %d remote stats: the mount answered a directory's GETATTR that it cannot know", files, op.name, skew, stats)
				}
				for _, dir := range []string{"d", "e"} {
					var ms, bs unix.Stat_t
					must(t, unix.Lstat(filepath.Join(mnt, dir), &ms))
					must(t, unix.Lstat(filepath.Join(back, dir), &bs))
					if want := bs.Mtim.Sec + int64(skew/time.Second); ms.Mtim.Sec != want || ms.Nlink != bs.Nlink {
						t.Errorf("%s through the mount: mtime %d, %d links; the server has %d, %d links", dir, ms.Mtim.Sec, ms.Nlink, want, bs.Nlink)
					}
				}
			})
		}
	}
}
