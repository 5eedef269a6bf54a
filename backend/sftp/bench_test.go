package sftp

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sftpfs/sftpfs/internal/sshdtest"
)

// Benchmarks of the backend against a real loopback OpenSSH sshd, without
// FUSE: they isolate the cost of the SFTP/SSH layer (round trips, per-call
// overhead, transport syscalls). Besides ns/op each reports cpu-ms/op or
// cpu-s/GiB: user+system CPU of this process (the client; sshd runs in
// other processes), which is what the CPU-per-GiB target counts.
//
//	flock -o /tmp/sftpfs-cpu.lock go test -run XXX -bench . -benchmem ./backend/sftp/

func benchBackend(b *testing.B, mutate func(*Config)) (*Backend, string) {
	b.Helper()
	srv := sshdtest.Start(b, sshdtest.Options{})
	dir := b.TempDir()
	cfg := sshdConfig(srv, dir)
	if mutate != nil {
		mutate(&cfg)
	}
	be, err := New(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	return be, dir
}

// cpuTime is this process's user+system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter reports CPU per op (or per GiB when bytes > 0) at the end.
func cpuMeter(b *testing.B, bytes int64) func() {
	start := cpuTime(b)
	return func() {
		used := cpuTime(b) - start
		if bytes > 0 {
			b.ReportMetric(used.Seconds()/(float64(bytes)*float64(b.N)/(1<<30)), "cpu-s/GiB")
		} else {
			b.ReportMetric(float64(used.Microseconds())/float64(b.N), "cpu-us/op")
		}
	}
}

// BenchmarkBackendStat is one round trip per op: the per-call overhead of
// the backend shows most here.
func BenchmarkBackendStat(b *testing.B) {
	be, dir := benchBackend(b, nil)
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	done := cpuMeter(b, 0)
	for range b.N {
		if _, err := be.Stat(ctx, "f"); err != nil {
			b.Fatal(err)
		}
	}
	done()
}

// BenchmarkBackendCreate is what the mount does per created small file:
// open with O_CREATE, fstat, one 4 KiB write, close.
func BenchmarkBackendCreate(b *testing.B) {
	be, _ := benchBackend(b, nil)
	ctx := context.Background()
	data := make([]byte, 4096)
	b.ResetTimer()
	done := cpuMeter(b, 0)
	for i := range b.N {
		f, err := be.OpenFile(ctx, fmt.Sprintf("f%d", i), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Stat(); err != nil {
			b.Fatal(err)
		}
		if _, err := f.WriteAt(data, 0); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
	done()
}

// BenchmarkBackendRandRead4K is one 4 KiB READ per op on an open handle.
func BenchmarkBackendRandRead4K(b *testing.B) {
	be, dir := benchBackend(b, nil)
	const size = 16 << 20
	if err := os.WriteFile(filepath.Join(dir, "f"), make([]byte, size), 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := be.OpenFile(context.Background(), "f", os.O_RDONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	done := cpuMeter(b, 0)
	for range b.N {
		off := rng.Int64N(size/4096) * 4096
		if _, err := f.ReadAt(buf, off); err != nil {
			b.Fatal(err)
		}
	}
	done()
}

const benchSeqSize = 64 << 20

// BenchmarkBackendSeqRead reads a 64 MiB file with 1 MiB ReadAt calls
// (the mount's read-ahead issues large reads like these).
func BenchmarkBackendSeqRead(b *testing.B) {
	for _, chunk := range []int{256 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("chunk=%dK", chunk>>10), func(b *testing.B) {
			be, dir := benchBackend(b, nil)
			if err := os.WriteFile(filepath.Join(dir, "f"), make([]byte, benchSeqSize), 0o644); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, chunk)
			b.SetBytes(benchSeqSize)
			b.ResetTimer()
			done := cpuMeter(b, benchSeqSize)
			for range b.N {
				f, err := be.OpenFile(context.Background(), "f", os.O_RDONLY, 0)
				if err != nil {
					b.Fatal(err)
				}
				var total int64
				for off := int64(0); off < benchSeqSize; off += int64(chunk) {
					n, err := f.ReadAt(buf, off)
					total += int64(n)
					if err != nil && err != io.EOF {
						b.Fatal(err)
					}
				}
				f.Close()
				if total != benchSeqSize {
					b.Fatalf("read %d bytes, want %d", total, benchSeqSize)
				}
			}
			done()
		})
	}
}

// BenchmarkBackendSeqWrite writes a 64 MiB file with 1 MiB WriteAt calls.
func BenchmarkBackendSeqWrite(b *testing.B) {
	for _, chunk := range []int{256 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("chunk=%dK", chunk>>10), func(b *testing.B) {
			be, _ := benchBackend(b, nil)
			buf := make([]byte, chunk)
			b.SetBytes(benchSeqSize)
			b.ResetTimer()
			done := cpuMeter(b, benchSeqSize)
			for range b.N {
				f, err := be.OpenFile(context.Background(), "f", os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
				if err != nil {
					b.Fatal(err)
				}
				for off := int64(0); off < benchSeqSize; off += int64(chunk) {
					if _, err := f.WriteAt(buf, off); err != nil {
						b.Fatal(err)
					}
				}
				if err := f.Close(); err != nil {
					b.Fatal(err)
				}
			}
			done()
		})
	}
}
