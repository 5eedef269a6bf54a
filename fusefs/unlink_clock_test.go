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

// TestUnlinkDirAttrClock: after an unlink the kernel asks for the
// directory's attributes again (default_permissions). When the server's
// clock agrees with ours, the mount answers from the attributes it
// remembers, with the unlink's second as the new mtime (dirattr.go), so
// `rm` of many files costs about one REMOVE per file; the mtime shown is
// the storage's. A server whose clock runs 5 s ahead or behind fails the
// clock check: every unlink's GETATTR goes to the server again, and the
// mtime shown is still the server's, never our clock's.
func TestUnlinkDirAttrClock(t *testing.T) {
	requireMount(t)
	const files = 40
	for _, skew := range []time.Duration{0, 5 * time.Second, -5 * time.Second} {
		t.Run(fmt.Sprintf("skew=%v", skew), func(t *testing.T) {
			back := t.TempDir()
			d := filepath.Join(back, "d")
			must(t, os.Mkdir(d, 0o755))
			for i := range files {
				writeFile(t, filepath.Join(d, fmt.Sprintf("f%02d", i)), "x")
			}
			old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
			must(t, os.Chtimes(d, old, old))
			lb, err := local.New(back)
			must(t, err)
			sb := &skewedBackend{countingBackend: &countingBackend{Backend: lb}, skew: skew}
			o := testOptions()
			// Long enough that the remembered attributes outlive the
			// loop also under -race, so the count below is the carry's.
			o.AttrTimeout, o.EntryTimeout = 10*time.Second, 10*time.Second
			mnt := mountBackend(t, sb, o)
			md := filepath.Join(mnt, "d")
			if _, err := os.ReadDir(md); err != nil {
				t.Fatal(err)
			}
			before := sb.lstats.Load() + sb.stats.Load()
			for i := range files {
				if err := unix.Unlink(filepath.Join(md, fmt.Sprintf("f%02d", i))); err != nil {
					t.Fatal(err)
				}
			}
			stats := sb.lstats.Load() + sb.stats.Load() - before
			t.Logf("%d unlinks: %d remote stats", files, stats)
			if skew == 0 && stats > files/4 {
				t.Errorf("%d unlinks made %d remote stats, want at most %d: the directory's GETATTR after an unlink should be answered from its remembered attributes", files, stats, files/4)
			}
			if skew != 0 && stats < files-2 {
				t.Errorf("%d unlinks with the server's clock off by %v made only %d remote stats: the mount answered the directory's GETATTR with a mtime from its own clock", files, skew, stats)
			}
			var ms, bs unix.Stat_t
			must(t, unix.Lstat(md, &ms))
			must(t, unix.Lstat(d, &bs))
			want := bs.Mtim.Sec + int64(skew/time.Second)
			if ms.Mtim.Sec != want {
				t.Errorf("directory mtime through the mount %d, the server's is %d", ms.Mtim.Sec, want)
			}
		})
	}
}
