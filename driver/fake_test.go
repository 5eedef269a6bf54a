package driver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/volume"

	"github.com/sftpfs/sftpfs/backend"
)

// fakeMounter is a pure-logic Mounter: it accepts a small option set,
// records mounts and never touches the kernel or the network.
type fakeMounter struct {
	mu        sync.Mutex
	live      map[string]*fakeMount // by mountpoint
	mounts    int                   // Mount calls that succeeded
	maxLive   int                   // most mounts ever live on one mountpoint
	checks    int
	block     chan struct{} // when non-nil, Mount waits on it
	blockMP   string        // when set, only Mount on this mountpoint waits on block
	failMount error
}

func newFakeMounter() *fakeMounter { return &fakeMounter{live: map[string]*fakeMount{}} }

func (f *fakeMounter) Validate(opts map[string]string, _ *slog.Logger) (Info, error) {
	for k := range opts {
		switch strings.ToLower(k) {
		case "host", "port", "password", "path":
		default:
			return Info{}, fmt.Errorf("unknown option %q", k)
		}
	}
	opts, _ = f.Canonical(opts)
	if opts["host"] == "" {
		return Info{}, errors.New("option host is required: add -o host=SERVER")
	}
	return Info{Backend: "sftp", Remote: "u@" + opts["host"] + ":22/" + opts["path"]}, nil
}

func (f *fakeMounter) Check(ctx context.Context, opts map[string]string, log *slog.Logger) (Info, error) {
	f.mu.Lock()
	f.checks++
	f.mu.Unlock()
	if opts["host"] == "unreachable" {
		return Info{}, errors.New("connecting to unreachable:22: connection refused")
	}
	info, err := f.Validate(opts, log)
	info.HostKey = "SHA256:fake"
	return info, err
}

func (f *fakeMounter) Canonical(opts map[string]string) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range opts {
		out[strings.ToLower(k)] = v
	}
	return out, nil
}

func (f *fakeMounter) Mount(ctx context.Context, _ string, opts map[string]string, mp string, _ *slog.Logger) (Mount, error) {
	f.mu.Lock()
	block, failErr := f.block, f.failMount
	if f.blockMP != "" && f.blockMP != mp {
		block = nil
	}
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if failErr != nil {
		return nil, failErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.live[mp] != nil {
		return nil, fmt.Errorf("fake: %s is already mounted", mp)
	}
	m := &fakeMount{f: f, mp: mp, done: make(chan struct{})}
	f.live[mp] = m
	f.mounts++
	f.maxLive = max(f.maxLive, len(f.live))
	return m, nil
}

func (f *fakeMounter) liveCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.live)
}

type fakeMount struct {
	f    *fakeMounter
	mp   string
	dead error
	once sync.Once
	done chan struct{}
}

func (m *fakeMount) Unmount() error {
	m.f.mu.Lock()
	if m.f.live[m.mp] == m {
		delete(m.f.live, m.mp)
	}
	m.f.mu.Unlock()
	m.once.Do(func() { close(m.done) })
	return nil
}

func (m *fakeMount) Alive(ctx context.Context) error {
	m.f.mu.Lock()
	defer m.f.mu.Unlock()
	return m.dead
}

func (m *fakeMount) kill() {
	m.f.mu.Lock()
	m.dead = errors.New("transport endpoint is not connected")
	m.f.mu.Unlock()
	m.once.Do(func() { close(m.done) })
}

func (m *fakeMount) Status() MountStatus {
	return MountStatus{State: backend.StateConnected, Reconnects: 2, HostKey: "SHA256:fake"}
}

func (m *fakeMount) Done() <-chan struct{} { return m.done }

// client talks to a driver through the real go-plugins-helpers handler
// over a unix socket, as dockerd does.
type client struct {
	t    testing.TB
	http *http.Client
}

// serve starts the handler for d on a socket in a temporary directory.
func serve(t testing.TB, d *Driver) *client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "sftpfs.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	// The real handler dockerd talks to, serving on our listener.
	go volume.NewHandler(d).Serve(l)
	t.Cleanup(func() { l.Close() })
	return &client{t: t, http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}, Timeout: 30 * time.Second}}
}

// call posts req to /VolumeDriver.<method> and decodes the reply into
// resp. It returns the driver's error text ("" on success).
func (c *client) call(method string, req, resp any) string {
	c.t.Helper()
	body, _ := json.Marshal(req)
	r, err := c.http.Post("http://plugin/VolumeDriver."+method, "application/vnd.docker.plugins.v1.2+json", bytes.NewReader(body))
	if err != nil {
		c.t.Fatalf("%s: %v", method, err)
	}
	defer r.Body.Close()
	raw, _ := io.ReadAll(r.Body)
	var e struct{ Err string }
	_ = json.Unmarshal(raw, &e)
	if e.Err != "" {
		return e.Err
	}
	if r.StatusCode != http.StatusOK {
		c.t.Fatalf("%s: HTTP %d without an error message: %s", method, r.StatusCode, raw)
	}
	if resp != nil {
		if err := json.Unmarshal(raw, resp); err != nil {
			c.t.Fatalf("%s: decoding %s: %v", method, raw, err)
		}
	}
	return ""
}

func (c *client) mustOK(method string, req, resp any) {
	c.t.Helper()
	if e := c.call(method, req, resp); e != "" {
		c.t.Fatalf("%s %+v: unexpected error: %s", method, req, e)
	}
}

func (c *client) mustFail(method string, req any, want ...string) string {
	c.t.Helper()
	e := c.call(method, req, nil)
	if e == "" {
		c.t.Fatalf("%s %+v succeeded, want an error containing %q", method, req, want)
	}
	for _, w := range want {
		if !strings.Contains(e, w) {
			c.t.Fatalf("%s %+v: error %q does not contain %q", method, req, e, w)
		}
	}
	return e
}

func (c *client) get(name string) *volume.Volume {
	c.t.Helper()
	var r volume.GetResponse
	c.mustOK("Get", volume.GetRequest{Name: name}, &r)
	return r.Volume
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

type env struct {
	root, state string
	fm          *fakeMounter
}

func newEnv(t *testing.T) *env {
	dir := t.TempDir()
	return &env{root: filepath.Join(dir, "volumes"), state: filepath.Join(dir, "volumes", ".state"), fm: newFakeMounter()}
}

func (e *env) driver(t *testing.T) *Driver {
	t.Helper()
	d, err := New(Config{MountRoot: e.root, StateDir: e.state, Mounter: e.fm, Logger: testLogger(t), AliveTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return d
}
