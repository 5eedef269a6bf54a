package local_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/backend/local"
)

// FuzzLocalPaths passes arbitrary names to the path-taking operations of a
// backend whose root contains symlinks leading outside it. Whatever the
// name, nothing may panic, nothing may appear or change outside the root,
// and names that are not backend.ValidName must fail with fs.ErrInvalid.
// The seed corpus is in testdata/fuzz/FuzzLocalPaths.
func FuzzLocalPaths(f *testing.F) {
	f.Add("plain")
	f.Fuzz(func(t *testing.T, name string) {
		ctx := context.Background()
		base := t.TempDir()
		root := filepath.Join(base, "root")
		outside := filepath.Join(base, "outside")
		for _, d := range []string{root, outside, filepath.Join(root, "sub")} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644); err != nil {
			t.Fatal(err)
		}
		for link, target := range map[string]string{"esc": outside, "up": "../outside", "sub/up": "../../outside", "in": "sub"} {
			if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
				t.Fatal(err)
			}
		}
		b, err := local.New(root)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()

		checkName := func(op, name string, err error) {
			t.Helper()
			if !backend.ValidName(name) && !errors.Is(err, fs.ErrInvalid) {
				t.Errorf("%s(%q) on an invalid name = %v; want fs.ErrInvalid", op, name, err)
			}
		}
		check := func(op string, err error) { t.Helper(); checkName(op, name, err) }
		_, err = b.Stat(ctx, name)
		check("Stat", err)
		_, err = b.Lstat(ctx, name)
		check("Lstat", err)
		_, err = b.ReadDir(ctx, name)
		check("ReadDir", err)
		file, err := b.OpenFile(ctx, name, os.O_RDWR|os.O_CREATE, 0o644)
		check("OpenFile", err)
		if err == nil {
			file.WriteAt([]byte("x"), 0)
			file.Close()
		}
		checkName("Mkdir", name+"d", b.Mkdir(ctx, name+"d", 0o755))
		check("Mkdir", b.Mkdir(ctx, name, 0o755))
		check("Truncate", b.Truncate(ctx, name, 0))
		check("Chmod", b.Chmod(ctx, name, 0o777))
		check("Symlink", b.Symlink(ctx, "/", name))
		check("Rename", b.Rename(ctx, name, "renamed", 0))
		check("Remove", b.Remove(ctx, name))

		ents, err := os.ReadDir(outside)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 1 || ents[0].Name() != "secret" {
			t.Fatalf("name %q changed the outside directory: %v", name, ents)
		}
		if data, err := os.ReadFile(filepath.Join(outside, "secret")); err != nil || string(data) != "secret" {
			t.Fatalf("name %q changed outside/secret: %q, %v", name, data, err)
		}
		if fi, err := os.Stat(filepath.Join(outside, "secret")); err != nil || fi.Mode().Perm() != 0o644 {
			t.Fatalf("name %q changed outside/secret's mode: %v", name, err)
		}
		if fi, err := os.Stat(outside); err != nil || fi.Mode().Perm() != 0o755 {
			t.Fatalf("name %q changed the outside directory's mode: %v", name, err)
		}
		top, err := os.ReadDir(base)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range top {
			names = append(names, e.Name())
		}
		if !slices.Equal(names, []string{"outside", "root"}) {
			t.Fatalf("name %q created something next to the root: %v", name, names)
		}
	})
}
