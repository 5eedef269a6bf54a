package local_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sftpfs/sftpfs/backend/local"
)

// layout creates base/root (the backend root) next to base/outside, which
// holds a file "secret" that no backend operation may reach.
func layout(t *testing.T) (b *local.Backend, root, outside string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "root")
	outside = filepath.Join(base, "outside")
	for _, d := range []string{root, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := local.New(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, root, outside
}

// outsideUnchanged fails the test if anything but "secret" appeared in
// outside or secret's content changed.
func outsideUnchanged(t *testing.T, outside string) {
	t.Helper()
	ents, err := os.ReadDir(outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "secret" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("outside directory changed: %v", names)
	}
	data, err := os.ReadFile(filepath.Join(outside, "secret"))
	if err != nil || string(data) != "secret" {
		t.Fatalf("outside/secret changed: %q, %v", data, err)
	}
}

func TestSymlinksOutsideRootAreNotFollowed(t *testing.T) {
	ctx := context.Background()
	b, root, outside := layout(t)
	links := map[string]string{
		"abs":      outside,
		"etc":      "/etc",
		"up":       "../outside",
		"deepup":   "a/../../../outside",
		"absfile":  filepath.Join(outside, "secret"),
		"upfile":   "../outside/secret",
		"rootlink": "/",
	}
	if err := os.Mkdir(filepath.Join(root, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	for name := range links {
		t.Run(name, func(t *testing.T) {
			fi, err := b.Lstat(ctx, name)
			if err != nil || fi.Mode&fs.ModeSymlink == 0 {
				t.Fatalf("Lstat(%q) = %v, %v; want a symlink", name, fi.Mode, err)
			}
			if got, err := b.Readlink(ctx, name); err != nil || got != links[name] {
				t.Fatalf("Readlink(%q) = %q, %v; want %q stored verbatim", name, got, err, links[name])
			}
			if _, err := b.Stat(ctx, name); !errors.Is(err, fs.ErrPermission) {
				t.Errorf("Stat(%q) = %v; want an error matching fs.ErrPermission", name, err)
			}
			if f, err := b.OpenFile(ctx, name, os.O_RDONLY, 0); err == nil {
				f.Close()
				t.Errorf("OpenFile(%q) succeeded through a symlink leaving the root", name)
			}
			if _, err := b.Stat(ctx, name+"/secret"); err == nil {
				t.Errorf("Stat(%q) succeeded", name+"/secret")
			}
			if f, err := b.OpenFile(ctx, name+"/new", os.O_RDWR|os.O_CREATE, 0o644); err == nil {
				f.Close()
				t.Errorf("OpenFile(%q, O_CREATE) succeeded", name+"/new")
			}
			if err := b.Mkdir(ctx, name+"/dir", 0o755); err == nil {
				t.Errorf("Mkdir(%q) succeeded", name+"/dir")
			}
			if err := b.Symlink(ctx, "x", name+"/link"); err == nil {
				t.Errorf("Symlink(%q) succeeded", name+"/link")
			}
			if err := b.Remove(ctx, name+"/secret"); err == nil {
				t.Errorf("Remove(%q) succeeded", name+"/secret")
			}
			if err := b.Rename(ctx, name+"/secret", "stolen", 0); err == nil {
				t.Errorf("Rename(%q) succeeded", name+"/secret")
			}
			if err := b.Link(ctx, name+"/secret", "hard"); err == nil {
				t.Errorf("Link(%q) succeeded", name+"/secret")
			}
			if err := b.Chmod(ctx, name, 0o777); err == nil {
				t.Errorf("Chmod(%q) succeeded", name)
			}
			if err := b.Chtimes(ctx, name, time.Unix(1, 0), time.Unix(1, 0)); err == nil {
				t.Errorf("Chtimes(%q) succeeded", name)
			}
			if err := b.Truncate(ctx, name, 0); err == nil {
				t.Errorf("Truncate(%q) succeeded", name)
			}
			if _, err := b.ReadDir(ctx, name); err == nil {
				t.Errorf("ReadDir(%q) succeeded", name)
			}
			// Removing the link itself is fine: it is inside the root.
		})
	}
	outsideUnchanged(t, outside)
	fi, err := os.Stat(filepath.Join(outside, "secret"))
	if err != nil || fi.Mode().Perm() != 0o644 || fi.ModTime().Unix() == 1 {
		t.Fatalf("outside/secret attributes changed: %v, %v", fi, err)
	}
}

func TestSymlinkInsideRootIsFollowed(t *testing.T) {
	ctx := context.Background()
	b, root, _ := layout(t)
	if err := os.MkdirAll(filepath.Join(root, "a/b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "a/b/f"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../a/b", filepath.Join(root, "a/l")); err != nil {
		t.Fatal(err)
	}
	fi, err := b.Stat(ctx, "a/l/f")
	if err != nil || fi.Size != 5 {
		t.Fatalf("Stat through an inside symlink = %+v, %v; want size 5", fi, err)
	}
}

func TestInvalidNamesNeverResolve(t *testing.T) {
	ctx := context.Background()
	b, _, outside := layout(t)
	for _, name := range []string{"../outside/secret", "/etc/passwd", "a/../b", "a/", "", "./a", "a//b", "..", "a/."} {
		if _, err := b.Stat(ctx, name); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Stat(%q) = %v; want fs.ErrInvalid", name, err)
		}
		if f, err := b.OpenFile(ctx, name, os.O_RDWR|os.O_CREATE, 0o644); !errors.Is(err, fs.ErrInvalid) {
			if f != nil {
				f.Close()
			}
			t.Errorf("OpenFile(%q) = %v; want fs.ErrInvalid", name, err)
		}
		if err := b.Mkdir(ctx, name, 0o755); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Mkdir(%q) = %v; want fs.ErrInvalid", name, err)
		}
	}
	outsideUnchanged(t, outside)
}

// TestSwapDirectoryForSymlink races a goroutine that keeps replacing the
// directory "d" by a symlink to the outside directory (and back) against
// operations on "d/...". os.Root resolves with descriptors, so no
// interleaving may reach or create anything outside.
func TestSwapDirectoryForSymlink(t *testing.T) {
	ctx := context.Background()
	b, root, outside := layout(t)
	d := filepath.Join(root, "d")
	real := filepath.Join(root, "real")
	link := filepath.Join(root, "link")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}

	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Atomically exchange d between a directory and the symlink by
		// renaming over it.
		for i := 0; !stop.Load(); i++ {
			if i%2 == 0 {
				os.Rename(d, real)
				os.Rename(link, d)
			} else {
				os.Rename(d, link)
				os.Rename(real, d)
			}
		}
	}()
	deadline := time.Now().Add(300 * time.Millisecond)
	var tries int
	for time.Now().Before(deadline) {
		tries++
		if fi, err := b.Stat(ctx, "d/secret"); err == nil {
			t.Errorf("Stat(d/secret) reached the outside file: %+v", fi)
		}
		if f, err := b.OpenFile(ctx, "d/created", os.O_RDWR|os.O_CREATE, 0o644); err == nil {
			f.Close()
		}
		b.Mkdir(ctx, "d/newdir", 0o755)
		b.Remove(ctx, "d/secret")
		b.Rename(ctx, "d/secret", "moved", 0)
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d rounds of operations raced the swap", tries)
	outsideUnchanged(t, outside)
	if _, err := os.Lstat(filepath.Join(root, "moved")); err == nil {
		t.Fatal("outside/secret was renamed into the root")
	}
}
