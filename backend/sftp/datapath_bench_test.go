package sftp

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	sftpv2 "github.com/pkg/sftp/v2"
	"golang.org/x/crypto/ssh"

	"github.com/sftpfs/sftpfs/backend/sftp/internal/sftpwire"
	"github.com/sftpfs/sftpfs/internal/sshdtest"
)

// The data path evaluation (docs/perf.md, "Data path evaluation"): the
// same workloads through three SFTP clients on one SSH connection to a
// real OpenSSH sshd with aes128-gcm (as bench/server.go):
//
//	v1:   pkg/sftp v1 as the backend configures it (dial.go: coalescer,
//	      concurrent reads/writes, 64 requests per file, 261120-byte
//	      packets after limits@openssh.com);
//	v2:   pkg/sftp/v2 v2.0.0-alpha2 (64 in flight, same data length);
//	wire: sftpwire (internal/sftpwire).
//
// Sequential reads follow the mount's read-ahead (fusefs/readahead.go:
// 1 MiB backend reads, a 4 MiB window, so 4 in flight) and sequential
// writes its write-behind (1 MiB writes, 8 in flight). cpu-s/GiB is
// this process's CPU (sshd is another process).
//
//	flock /tmp/sftpfs-cpu.lock go test -run XXX -bench DataPath -benchmem -benchtime 3x ./backend/sftp/

// dpFile and dpClient are what the workloads need from each client.
type dpFile interface {
	io.ReaderAt
	io.WriterAt
	Close() error
}

type dpClient struct {
	name string
	open func(path string, flag int) (dpFile, error)
}

func dpClients(b *testing.B, sc *ssh.Client) []dpClient {
	v1, err := newSFTPClient(sc, Config{}.sftpOptions(LargeMaxPacket)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { v1.Close() })
	v2, err := sftpv2.NewClient(context.Background(), sc,
		sftpv2.WithMaxInflight(64), sftpv2.WithMaxDataLength(LargeMaxPacket))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { v2.Close() })
	s, out, in, err := openSFTPSession(sc)
	if err != nil {
		b.Fatal(err)
	}
	wire, err := sftpwire.New(out, in, s, sftpwire.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { wire.Close() })
	if wire.MaxData() != LargeMaxPacket {
		b.Fatalf("sftpwire data length %d, want %d", wire.MaxData(), LargeMaxPacket)
	}
	return []dpClient{
		{"v1", func(p string, flag int) (dpFile, error) { return v1.OpenFile(p, flag) }},
		{"v2", func(p string, flag int) (dpFile, error) { return v2.OpenFile(p, flag, 0o644) }},
		{"wire", func(p string, flag int) (dpFile, error) { return wire.OpenFile(p, flag, nil) }},
	}
}

// dpSetup starts sshd with aes128-gcm only and dials it once.
func dpSetup(b *testing.B) (*ssh.Client, string) {
	const cipher = "aes128-gcm@openssh.com"
	srv := sshdtest.Start(b, sshdtest.Options{ExtraConfig: []string{"Ciphers " + cipher}})
	cfg := srv.ClientConfig()
	cfg.Ciphers = []string{cipher}
	sc, err := ssh.Dial("tcp", srv.Addr, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sc.Close() })
	return sc, b.TempDir()
}

const (
	dpSeqSize  = 256 << 20
	dpChunk    = 1 << 20
	dpReadPar  = 4 // fusefs ReadAhead 4 MiB / readChunk 1 MiB
	dpWritePar = 8 // fusefs WriteBehind
)

// parallelChunks runs fn on every dpChunk of dpSeqSize with par workers.
func parallelChunks(b *testing.B, par int, fn func(buf []byte, off int64) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, par)
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, dpChunk)
			for {
				off := next.Add(dpChunk) - dpChunk
				if off >= dpSeqSize {
					return
				}
				if err := fn(buf, off); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

func BenchmarkDataPathSeqRead(b *testing.B) {
	sc, dir := dpSetup(b)
	p := filepath.Join(dir, "big")
	if err := os.WriteFile(p, make([]byte, dpSeqSize), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, c := range dpClients(b, sc) {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(dpSeqSize)
			b.ReportAllocs()
			b.ResetTimer()
			done := cpuMeter(b, dpSeqSize)
			for range b.N {
				f, err := c.open(p, os.O_RDONLY)
				if err != nil {
					b.Fatal(err)
				}
				parallelChunks(b, dpReadPar, func(buf []byte, off int64) error {
					n, err := f.ReadAt(buf, off)
					if n != len(buf) {
						return fmt.Errorf("read %d at %d: %v", n, off, err)
					}
					return nil
				})
				f.Close()
			}
			done()
		})
	}
}

func BenchmarkDataPathSeqWrite(b *testing.B) {
	sc, dir := dpSetup(b)
	for _, c := range dpClients(b, sc) {
		b.Run(c.name, func(b *testing.B) {
			if c.name == "v2" {
				// Its File.WriteAt of more than one request writes at
				// the handle's running offset instead of off, racily
				// (docs/perf.md, "Data path evaluation"): the file came
				// out 4-7 MiB short and scrambled.
				b.Skip("pkg/sftp/v2 v2.0.0-alpha2 WriteAt ignores its offset when it splits")
			}
			p := filepath.Join(dir, "w-"+c.name)
			b.SetBytes(dpSeqSize)
			b.ReportAllocs()
			b.ResetTimer()
			done := cpuMeter(b, dpSeqSize)
			for range b.N {
				f, err := c.open(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
				if err != nil {
					b.Fatal(err)
				}
				parallelChunks(b, dpWritePar, func(buf []byte, off int64) error {
					n, err := f.WriteAt(buf, off)
					if err == nil && n != len(buf) {
						err = fmt.Errorf("WriteAt at %d wrote %d of %d bytes without an error", off, n, len(buf))
					}
					return err
				})
				if err := f.Close(); err != nil {
					b.Fatal(err)
				}
			}
			done()
			b.StopTimer()
			if st, err := os.Stat(p); err != nil || st.Size() != dpSeqSize {
				b.Fatalf("written file: %v %v", st, err)
			}
		})
	}
}

// BenchmarkDataPathRandRead4K is one 4 KiB read at a random offset per op.
func BenchmarkDataPathRandRead4K(b *testing.B) {
	sc, dir := dpSetup(b)
	const size = 16 << 20
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, c := range dpClients(b, sc) {
		b.Run(c.name, func(b *testing.B) {
			f, err := c.open(p, os.O_RDONLY)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, 4096)
			rng := rand.New(rand.NewPCG(1, 2))
			b.ReportAllocs()
			b.ResetTimer()
			done := cpuMeter(b, 0)
			for range b.N {
				if _, err := f.ReadAt(buf, rng.Int64N(size/4096)*4096); err != nil {
					b.Fatal(err)
				}
			}
			done()
		})
	}
}

// BenchmarkDataPathSmallRead is open, one 4 KiB read, close per op.
func BenchmarkDataPathSmallRead(b *testing.B) {
	sc, dir := dpSetup(b)
	p := filepath.Join(dir, "small")
	if err := os.WriteFile(p, make([]byte, 4096), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, c := range dpClients(b, sc) {
		b.Run(c.name, func(b *testing.B) {
			buf := make([]byte, 4096)
			b.ReportAllocs()
			b.ResetTimer()
			done := cpuMeter(b, 0)
			for range b.N {
				f, err := c.open(p, os.O_RDONLY)
				if err != nil {
					b.Fatal(err)
				}
				if n, err := f.ReadAt(buf, 0); n != len(buf) {
					b.Fatal(n, err)
				}
				if err := f.Close(); err != nil {
					b.Fatal(err)
				}
			}
			done()
		})
	}
}

// BenchmarkDataPathSmallCreate is an exclusive create, one 4 KiB write,
// close per op.
func BenchmarkDataPathSmallCreate(b *testing.B) {
	sc, dir := dpSetup(b)
	seq := 0 // names stay unique across the benchmark's rounds
	for _, c := range dpClients(b, sc) {
		b.Run(c.name, func(b *testing.B) {
			buf := make([]byte, 4096)
			b.ReportAllocs()
			b.ResetTimer()
			done := cpuMeter(b, 0)
			for range b.N {
				seq++
				f, err := c.open(filepath.Join(dir, fmt.Sprintf("%s-%d", c.name, seq)), os.O_WRONLY|os.O_CREATE|os.O_EXCL)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := f.WriteAt(buf, 0); err != nil {
					b.Fatal(err)
				}
				if err := f.Close(); err != nil {
					b.Fatal(err)
				}
			}
			done()
		})
	}
}
