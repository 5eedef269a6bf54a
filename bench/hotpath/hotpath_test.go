package hotpath

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	psftp "github.com/pkg/sftp"

	"github.com/sftpfs/sftpfs/backend/sftp"
	"github.com/sftpfs/sftpfs/fusefs"
	"github.com/sftpfs/sftpfs/internal/testenv"
)

// clientOptions mirror backend/sftp's production client options
// (Config.sftpOptions in dial.go) for the default max_packet.
func clientOptions() []psftp.ClientOption {
	return []psftp.ClientOption{
		psftp.MaxPacketUnchecked(sftp.DefaultMaxPacket),
		psftp.UseConcurrentReads(true),
		psftp.UseConcurrentWrites(true),
		psftp.MaxConcurrentRequestsPerFile(64),
		psftp.UseFstat(true),
	}
}

// mount serves a fresh directory through pkg/sftp's server over a link
// with round-trip time rtt, mounts it and returns the mountpoint and the
// server-side directory.
func mount(b *testing.B, rtt time.Duration, o fusefs.Options) (mnt, dir string) {
	b.Helper()
	testenv.RequireRoot(b)
	testenv.RequireFUSE(b)
	dir = b.TempDir()
	dial := func(ctx context.Context) (*psftp.Client, io.Closer, error) {
		c, s := link(rtt)
		srv, err := psftp.NewServer(s)
		if err != nil {
			return nil, nil, err
		}
		go func() { _ = srv.Serve(); srv.Close() }()
		cl, err := psftp.NewClientPipe(c, c, clientOptions()...)
		if err != nil {
			c.Close()
			return nil, nil, err
		}
		return cl, c, nil
	}
	be, err := sftp.NewWithDialer(context.Background(), dial, dir, sftp.Options{})
	if err != nil {
		b.Fatal(err)
	}
	mnt = b.TempDir()
	srv, err := fusefs.Mount(mnt, be, o)
	if err != nil {
		be.Close()
		b.Fatal(err)
	}
	b.Cleanup(func() {
		for range 50 {
			if srv.Unmount() == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		srv.Wait()
		be.Close()
	})
	return mnt, dir
}

func rtts() []time.Duration { return []time.Duration{500 * time.Microsecond, 5 * time.Millisecond} }

// variants compare the defaults with read-ahead and write-behind off.
func variants() []struct {
	name string
	o    fusefs.Options
} {
	def := fusefs.DefaultOptions()
	off := def
	off.ReadAhead, off.WriteBehind = 0, 0
	return []struct {
		name string
		o    fusefs.Options
	}{{"pipelined", def}, {"serial", off}}
}

const fileSize = 32 << 20

func BenchmarkSeqRead(b *testing.B) {
	for _, rtt := range rtts() {
		for _, v := range variants() {
			b.Run(fmt.Sprintf("rtt=%v/%s", rtt, v.name), func(b *testing.B) {
				mnt, dir := mount(b, rtt, v.o)
				if err := os.WriteFile(filepath.Join(dir, "f"), bytes.Repeat([]byte("0123456789abcdef"), fileSize/16), 0o644); err != nil {
					b.Fatal(err)
				}
				buf := make([]byte, 1<<20)
				b.SetBytes(fileSize)
				b.ResetTimer()
				for range b.N {
					// A new open drops the file's page cache (no
					// keep-cache), so every iteration reads remotely.
					f, err := os.Open(filepath.Join(mnt, "f"))
					if err != nil {
						b.Fatal(err)
					}
					n, err := io.CopyBuffer(io.Discard, onlyReader{f}, buf)
					f.Close()
					if err != nil || n != fileSize {
						b.Fatalf("read %d bytes: %v", n, err)
					}
				}
			})
		}
	}
}

// onlyReader hides WriterTo so that io.CopyBuffer uses our buffer size.
type onlyReader struct{ io.Reader }

func BenchmarkSeqWrite(b *testing.B) {
	for _, rtt := range rtts() {
		for _, v := range variants() {
			b.Run(fmt.Sprintf("rtt=%v/%s", rtt, v.name), func(b *testing.B) {
				mnt, _ := mount(b, rtt, v.o)
				chunk := bytes.Repeat([]byte("x"), 1<<20)
				b.SetBytes(fileSize)
				b.ResetTimer()
				for i := range b.N {
					f, err := os.Create(filepath.Join(mnt, fmt.Sprintf("w%d", i)))
					if err != nil {
						b.Fatal(err)
					}
					for off := 0; off < fileSize; off += len(chunk) {
						if _, err := f.Write(chunk); err != nil {
							b.Fatal(err)
						}
					}
					if err := f.Close(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkLookupGetattr stats files with the kernel caches off, so
// every stat is a LOOKUP (and the backend's Lstat): the cost of one
// uncached metadata round trip.
func BenchmarkLookupGetattr(b *testing.B) {
	for _, rtt := range rtts() {
		b.Run(fmt.Sprintf("rtt=%v", rtt), func(b *testing.B) {
			o := fusefs.DefaultOptions()
			o.AttrTimeout, o.EntryTimeout = 0, 0
			mnt, dir := mount(b, rtt, o)
			for i := range 100 {
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", i)), nil, 0o644); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				var st syscall.Stat_t
				if err := syscall.Lstat(filepath.Join(mnt, fmt.Sprintf("f%d", i%100)), &st); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReaddirStat lists a directory of 1000 files and stats every
// entry (what ls -l does). READDIRPLUS answers the stats from the
// listing, so this should cost about one round trip, not 1000.
func BenchmarkReaddirStat(b *testing.B) {
	for _, rtt := range rtts() {
		b.Run(fmt.Sprintf("rtt=%v", rtt), func(b *testing.B) {
			mnt, dir := mount(b, rtt, fusefs.DefaultOptions())
			const n = 1000
			for i := range n {
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", i)), nil, 0o644); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for range b.N {
				// The kernel does not cache directory contents here, so
				// every iteration lists remotely; entries and attributes
				// come with the listing.
				ents, err := os.ReadDir(mnt)
				if err != nil || len(ents) != n {
					b.Fatalf("readdir: %d entries, %v", len(ents), err)
				}
				for _, e := range ents {
					var st syscall.Stat_t
					if err := syscall.Lstat(filepath.Join(mnt, e.Name()), &st); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
