package pipesftp

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestDialerServesFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cl, c, err := Dialer(nil)(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	defer cl.Close()
	fi, err := cl.Stat(filepath.Join(dir, "f"))
	if err != nil || fi.Size() != 1 {
		t.Fatalf("Stat over the pipe: %v, %v", fi, err)
	}
}
