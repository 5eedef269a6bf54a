package metered

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/backend/local"
)

func newLocal(t testing.TB) backend.Backend {
	t.Helper()
	b, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// Counts land on the volume that made them, errors carry the errno the
// application sees, and Forget drops a removed volume's series.
func TestCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	a, b := m.Wrap("a", newLocal(t)), m.Wrap("b", newLocal(t))
	ctx := context.Background()
	f, err := a.OpenFile(ctx, "f", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("hello"), 0); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if n, _ := f.ReadAt(buf, 0); n != 5 { // short read: io.EOF, not an error
		t.Fatalf("read %d", n)
	}
	f.Close()
	if _, err := a.Stat(ctx, "missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	for _, c := range []struct {
		got  float64
		want float64
		what string
	}{
		{testutil.ToFloat64(m.written.WithLabelValues("a")), 5, "a written"},
		{testutil.ToFloat64(m.read.WithLabelValues("a")), 5, "a read"},
		{testutil.ToFloat64(m.ops.WithLabelValues("a", "write")), 1, "a writes"},
		{testutil.ToFloat64(m.errs.WithLabelValues("a", "stat", "ENOENT")), 1, "a stat ENOENT"},
		{testutil.ToFloat64(m.written.WithLabelValues("b")), 0, "b written"},
		{testutil.ToFloat64(m.ops.WithLabelValues("b", "write")), 0, "b writes"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.errs, "sftpfs_operation_errors_total"); n != 1 {
		t.Errorf("%d error series, want 1 (the EOF of a short read is no error)", n)
	}
	if err := testutil.CollectAndCompare((*statusCollector)(m), strings.NewReader(`
# HELP sftpfs_connection_state 1 for the volume's current connection state (connected, reconnecting, failed), 0 for the others. Only mounted volumes have series.
# TYPE sftpfs_connection_state gauge
sftpfs_connection_state{state="connected",volume="a"} 1
sftpfs_connection_state{state="connected",volume="b"} 1
sftpfs_connection_state{state="failed",volume="a"} 0
sftpfs_connection_state{state="failed",volume="b"} 0
sftpfs_connection_state{state="reconnecting",volume="a"} 0
sftpfs_connection_state{state="reconnecting",volume="b"} 0
`), "sftpfs_connection_state"); err != nil {
		t.Error(err)
	}
	b.Close()
	m.Forget("b")
	if n := testutil.CollectAndCount(reg, "sftpfs_connection_state"); n != 3 {
		t.Errorf("%d state series after b closed, want a's 3", n)
	}
	if n := testutil.CollectAndCount(m.ops); n != len(opNames()) {
		t.Errorf("%d op series after Forget(b), want a's %d", n, len(opNames()))
	}
}

// The cost per call, against the bare local backend (ReadAt of 4 KiB from
// the page cache, the cheapest real call there is).
func BenchmarkReadAt(b *testing.B) {
	for _, metered := range []bool{false, true} {
		name := "plain"
		if metered {
			name = "metered"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "f"), make([]byte, 1<<20), 0o644); err != nil {
				b.Fatal(err)
			}
			var be backend.Backend
			be, err := local.New(dir)
			if err != nil {
				b.Fatal(err)
			}
			if metered {
				be = New(prometheus.NewRegistry()).Wrap("v", be)
			}
			defer be.Close()
			f, err := be.OpenFile(context.Background(), "f", os.O_RDONLY, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, 4096)
			b.SetBytes(4096)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, err := f.ReadAt(buf, int64(i%256)*4096); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// unlinker records that Unlink (not Remove) was called.
type unlinker struct {
	backend.Backend
	unlinks int
}

func (u *unlinker) Unlink(ctx context.Context, name string) error {
	u.unlinks++
	return u.Backend.Remove(ctx, name)
}

// Unlink reaches the wrapped backend's backend.Unlinker (fusefs's UNLINK
// saves a round trip with it) and counts as a remove.
func TestUnlinkPassedThrough(t *testing.T) {
	m := New(prometheus.NewRegistry())
	u := &unlinker{Backend: newLocal(t)}
	w := m.Wrap("v", u)
	ctx := context.Background()
	f, err := w.OpenFile(ctx, "f", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := backend.Unlink(ctx, w, "f"); err != nil {
		t.Fatal(err)
	}
	if u.unlinks != 1 {
		t.Errorf("wrapped backend's Unlink called %d times, want 1", u.unlinks)
	}
	if got := testutil.ToFloat64(m.ops.WithLabelValues("v", "remove")); got != 1 {
		t.Errorf("remove count %v, want 1", got)
	}
}
