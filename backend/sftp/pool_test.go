package sftp

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sftpfs/sftpfs/backend"
	"github.com/sftpfs/sftpfs/internal/faultproxy"
	"github.com/sftpfs/sftpfs/internal/sshdtest"
)

// waitConns waits until addr has want established connections from
// this process (a closed connection takes a moment to leave the table).
func waitConns(t *testing.T, addr string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := establishedTo(t, addr)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections to %s, want %d", n, addr, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openFour opens four files at once: two new ones for writing, two
// existing ones for reading (written to the server's directory first).
func openFour(t *testing.T, b *Backend, dir string) ([]*File, [][]byte) {
	t.Helper()
	files := make([]*File, 4)
	data := make([][]byte, 4)
	for i := range files {
		data[i] = make([]byte, 2<<20+123)
		rand.Read(data[i])
		name := fmt.Sprintf("f%d", i)
		flag := os.O_RDWR | os.O_CREATE
		if i%2 == 1 {
			if err := os.WriteFile(filepath.Join(dir, name), data[i], 0o644); err != nil {
				t.Fatal(err)
			}
			flag = os.O_RDONLY
		}
		f, err := b.OpenFile(context.Background(), name, flag, 0o644)
		if err != nil {
			t.Fatalf("open %s: %v", name, err)
		}
		t.Cleanup(func() { f.Close() })
		files[i] = f.(*File)
	}
	return files, data
}

// transferAll writes the new files and reads every file, all four at
// once, and checks the data on both sides.
func transferAll(t *testing.T, files []*File, data [][]byte, dir string) {
	t.Helper()
	const chunk = 128 << 10
	var wg sync.WaitGroup
	errs := make([]error, len(files))
	for i, f := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := data[i]
			if i%2 == 0 {
				for off := 0; off < len(d); off += chunk {
					if _, err := f.WriteAt(d[off:min(off+chunk, len(d))], int64(off)); err != nil {
						errs[i] = fmt.Errorf("write %s at %d: %w", f.name, off, err)
						return
					}
				}
			}
			got := make([]byte, len(d))
			for off := 0; off < len(d); off += chunk {
				n, err := f.ReadAt(got[off:min(off+chunk, len(d))], int64(off))
				if err != nil && !(err == io.EOF && off+n == len(d)) {
					errs[i] = fmt.Errorf("read %s at %d: %w", f.name, off, err)
					return
				}
			}
			if !bytes.Equal(got, d) {
				errs[i] = fmt.Errorf("%s: data read back differs", f.name)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, f := range files {
		if on, err := os.ReadFile(filepath.Join(dir, f.name)); err != nil || !bytes.Equal(on, data[i]) {
			t.Fatalf("%s on the server differs from what was written (err %v)", f.name, err)
		}
	}
}

// TestConnsSpreadFiles: with conns=4 the mount starts with one
// connection, path calls never add one, four files open at once get a
// connection each (the server sees four) with correct data on each,
// path calls keep working with the extra connections gone (they run on
// connection 0 only).
func TestConnsSpreadFiles(t *testing.T) {
	srv := sshdtest.Start(t, sshdtest.Options{})
	dir := t.TempDir()
	cfg := sshdConfig(srv, dir)
	cfg.Conns = 4
	b := openBackend(t, cfg)
	ctx := context.Background()
	waitConns(t, srv.Addr, 1)

	// Path calls, and files opened one at a time, stay on connection 0.
	if err := b.Mkdir(ctx, "d", 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		f, err := b.OpenFile(ctx, fmt.Sprintf("d/one%d", i), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte("x"), 0); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if _, err := b.ReadDir(ctx, "d"); err != nil {
			t.Fatal(err)
		}
	}
	if n := establishedTo(t, srv.Addr); n != 1 {
		t.Fatalf("%d connections after path calls and one file at a time, want 1 (extra ones only for files open at once)", n)
	}

	files, data := openFour(t, b, dir)
	waitConns(t, srv.Addr, 4)
	seen := map[*conn]bool{}
	for _, f := range files {
		seen[f.c] = true
	}
	if len(seen) != 4 || !seen[b.c] {
		t.Fatalf("four open files are on %d connections (connection 0 among them: %v), want one each", len(seen), seen[b.c])
	}
	transferAll(t, files, data, dir)

	// Path calls after the files were placed: with every extra
	// connection closed, they must still work, so none ran there.
	for _, c := range b.pool.extra() {
		c.close()
	}
	waitConns(t, srv.Addr, 1)
	if _, err := b.Stat(ctx, "f1"); err != nil {
		t.Fatalf("Stat with the extra connections closed: %v", err)
	}
	if _, err := b.ReadDir(ctx, "."); err != nil {
		t.Fatalf("ReadDir with the extra connections closed: %v", err)
	}
	if err := b.Rename(ctx, "d/one0", "d/moved", 0); err != nil {
		t.Fatalf("Rename with the extra connections closed: %v", err)
	}
	if err := b.Remove(ctx, "d/moved"); err != nil {
		t.Fatalf("Remove with the extra connections closed: %v", err)
	}
	if st := b.Status(); st.State != backend.StateConnected {
		t.Errorf("Status %q, want connected (connection 0 decides)", st.State)
	}

}

// closeLeavesNothing closes b and waits for every connection to addr
// and every goroutine started since goroutines were counted to go.
func closeLeavesNothing(t *testing.T, b *Backend, addr string, goroutines int) {
	t.Helper()
	b.Close()
	waitConns(t, addr, 0)
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > goroutines {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("after Close: %d goroutines (before New: %d)\n%s", runtime.NumGoroutine(), goroutines, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConnsOne: conns=1 (the default) keeps four open files on one
// connection.
func TestConnsOne(t *testing.T) {
	srv := sshdtest.Start(t, sshdtest.Options{})
	dir := t.TempDir()
	cfg := sshdConfig(srv, dir)
	cfg.Conns = 1
	b := openBackend(t, cfg)
	files, data := openFour(t, b, dir)
	transferAll(t, files, data, dir)
	if n := establishedTo(t, srv.Addr); n != 1 {
		t.Fatalf("%d connections with conns=1, want 1", n)
	}
}

// TestConnsKillOne: an extra connection that breaks reconnects by itself
// and its file re-opens on it, while the files on the other connections
// go on without a reconnect; the volume's state stays connected. Close,
// with the four connections up and files open, leaves no connection or
// goroutine.
func TestConnsKillOne(t *testing.T) {
	srv := sshdtest.Start(t, sshdtest.Options{})
	dir := t.TempDir()
	goroutines := runtime.NumGoroutine()
	cfg := sshdConfig(srv, dir)
	cfg.Conns = 4
	cfg.OpTimeout = 5 * time.Second
	b := openBackend(t, cfg)
	files, data := openFour(t, b, dir)
	transferAll(t, files, data, dir)
	victim := files[2]
	if victim.c == b.c {
		t.Fatal("file 2 is on connection 0; the test needs it on an extra one")
	}
	old := victim.c.current()
	// Close the SSH connection under the client, as a server or network
	// dropping it would: nothing in the backend is told.
	old.closer.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, n, _ := victim.c.status(); n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the broken extra connection did not reconnect")
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitConns(t, srv.Addr, 4)
	transferAll(t, files, data, dir)
	if tr := victim.c.current(); tr == old || victim.t != tr {
		t.Errorf("file 2's handle is not on its connection's new transport")
	}
	for i, f := range files {
		if _, n, _ := f.c.status(); f != victim && n != 0 {
			t.Errorf("file %d's connection reconnected %d times; only file 2's broke", i, n)
		}
	}
	if st := b.Status(); st.State != backend.StateConnected || st.Reconnects != 0 {
		t.Errorf("Status %q with %d reconnects, want connected with 0 (connection 0 decides)", st.State, st.Reconnects)
	}
	closeLeavesNothing(t, b, srv.Addr, goroutines)
}

// TestConnsDialFails: when an extra connection cannot be dialled, its
// file goes to connection 0 and works, the failure is logged once, and
// the extra connections are tried again later.
func TestConnsDialFails(t *testing.T) {
	srv := sshdtest.Start(t, sshdtest.Options{})
	px, err := faultproxy.New(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	dir := t.TempDir()
	var logs lockedBuf
	cfg := sshdConfig(srv, dir)
	cfg.Port = px.Port()
	cfg.KnownHostsFiles = nil
	cfg.HostKeys = []string{srv.HostKeyLine}
	cfg.Conns = 4
	cfg.ConnectTimeout = 2 * time.Second
	cfg.Password = []byte("not-a-secret-to-log")
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	b := openBackend(t, cfg)
	px.SetRefuse(true)
	files, data := openFour(t, b, dir)
	for i, f := range files {
		if f.c != b.c {
			t.Fatalf("file %d is on an extra connection although none could be dialled", i)
		}
	}
	transferAll(t, files, data, dir)
	var warned []string
	for _, l := range logs.lines() {
		if strings.Contains(l, "extra SSH connection") {
			warned = append(warned, l)
		}
	}
	if len(warned) != 1 || strings.Contains(warned[0], "not-a-secret-to-log") {
		t.Fatalf("want one warning without the password; got %q", warned)
	}
	for _, f := range files {
		f.Close()
	}

	// Later files try again once the retry time has passed.
	px.SetRefuse(false)
	b.pool.mu.Lock()
	for _, s := range b.pool.slots {
		s.failedAt = s.failedAt.Add(-extraRetry)
	}
	b.pool.mu.Unlock()
	files, data = openFour(t, b, dir)
	waitConns(t, px.Addr(), 4)
	transferAll(t, files, data, dir)
}
