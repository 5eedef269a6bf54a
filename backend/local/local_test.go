package local_test

import (
	"testing"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/backend/backendtest"
	"github.com/sftpfs/sftpfs/backend/local"
)

func newBackend(tb testing.TB) backend.Backend {
	b, err := local.New(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := b.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return b
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend { return newBackend(t) })
}

func BenchmarkLocal(b *testing.B) {
	backendtest.RunBenchmarks(b, func(b *testing.B) backend.Backend { return newBackend(b) })
}
