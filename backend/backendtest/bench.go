package backendtest

import (
	"context"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/sftpfs/sftpfs/backend"
)

// RunBenchmarks runs simple throughput and latency benchmarks against a
// backend made by newBackend (one per sub-benchmark, with an empty root;
// newBackend arranges its Close with b.Cleanup).
func RunBenchmarks(b *testing.B, newBackend func(b *testing.B) backend.Backend) {
	const chunk = 64 << 10
	b.Run("WriteAt64KiB", func(b *testing.B) {
		be := newBackend(b)
		f := benchCreate(b, be, "f", 0)
		defer f.Close()
		buf := make([]byte, chunk)
		b.SetBytes(chunk)
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			// Cycle over 16 MiB so the file does not grow without bound.
			if _, err := f.WriteAt(buf, int64(i%256)*chunk); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ReadAt64KiB", func(b *testing.B) {
		be := newBackend(b)
		f := benchCreate(b, be, "f", 256*chunk)
		defer f.Close()
		buf := make([]byte, chunk)
		b.SetBytes(chunk)
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if _, err := f.ReadAt(buf, int64(i%256)*chunk); err != nil && err != io.EOF {
				b.Fatal(err)
			}
		}
	})
	b.Run("Stat", func(b *testing.B) {
		be := newBackend(b)
		benchCreate(b, be, "f", 1).Close()
		ctx := context.Background()
		for b.Loop() {
			if _, err := be.Stat(ctx, "f"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ReadDir100", func(b *testing.B) {
		be := newBackend(b)
		ctx := context.Background()
		if err := be.Mkdir(ctx, "d", 0o755); err != nil {
			b.Fatal(err)
		}
		for i := 0; i < 100; i++ {
			benchCreate(b, be, fmt.Sprintf("d/f%03d", i), 0).Close()
		}
		for b.Loop() {
			infos, err := be.ReadDir(ctx, "d")
			if err != nil || len(infos) != 100 {
				b.Fatalf("ReadDir = %d entries, %v; want 100", len(infos), err)
			}
		}
	})
	b.Run("CreateRemove", func(b *testing.B) {
		be := newBackend(b)
		ctx := context.Background()
		for b.Loop() {
			f, err := be.OpenFile(ctx, "tmp", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				b.Fatal(err)
			}
			if err := f.Close(); err != nil {
				b.Fatal(err)
			}
			if err := be.Remove(ctx, "tmp"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchCreate(b *testing.B, be backend.Backend, name string, size int64) backend.File {
	b.Helper()
	f, err := be.OpenFile(context.Background(), name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	if size > 0 {
		if _, err := f.WriteAt(make([]byte, size), 0); err != nil {
			b.Fatal(err)
		}
	}
	return f
}
