package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sftpfs/sftpfs/internal/testenv"
)

func TestServeFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runServe([]string{"-log-level", "loud"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "invalid log level") {
		t.Fatalf("bad log level: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := runServe([]string{"extra"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unexpected argument") {
		t.Fatalf("extra argument: exit %d, %q", code, errb.String())
	}
}

// runServe end to end in-process: it serves the volume API on the socket,
// keeps state and secrets under the mount root, and stops cleanly on
// SIGTERM.
func TestServeLifecycle(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "run", "sftpfs.sock")
	root := filepath.Join(dir, "volumes")
	data := filepath.Join(dir, "data")
	os.Mkdir(data, 0o755)
	t.Setenv("LOG_LEVEL", "info")

	var stderr testenv.Buffer
	done := make(chan int, 1)
	go func() {
		done <- runServe([]string{"-socket", sock, "-mount-root", root, "-guard=false"}, &bytes.Buffer{}, &stderr)
	}()

	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	post := func(method, body string) map[string]any {
		t.Helper()
		r, err := hc.Post("http://plugin/"+method, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		defer r.Body.Close()
		var m map[string]any
		json.NewDecoder(r.Body).Decode(&m)
		return m
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("socket never appeared; log:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if m := post("Plugin.Activate", "{}"); !strings.Contains(mustJSON(m), "VolumeDriver") {
		t.Fatalf("activate: %v", m)
	}
	if m := post("VolumeDriver.Create", `{"Name":"v","Opts":{"local":"`+data+`"}}`); m["Err"] != nil {
		t.Fatalf("create: %v", m)
	}
	if m := post("VolumeDriver.Create", `{"Name":"w","Opts":{"identity":"nokey","host":"h","hostkey":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}`); !strings.Contains(mustJSON(m), "nokey") {
		t.Fatalf("create with a missing key file: %v", m)
	}
	m := post("VolumeDriver.List", "{}")
	if !strings.Contains(mustJSON(m), `"Name":"v"`) {
		t.Fatalf("list: %v", m)
	}
	want := []string{filepath.Join(root, ".state", "state.json")}
	if fi, err := os.Stat("/secrets"); err != nil || !fi.IsDir() {
		// No /secrets bind: the default is inside the mount root.
		want = append(want, filepath.Join(root, ".secrets"))
	}
	for _, p := range want {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}

	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d; log:\n%s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
	if !strings.Contains(stderr.String(), "level=INFO") || !strings.Contains(stderr.String(), `msg="serving the Docker volume API"`) {
		t.Errorf("log lacks levels or the serving line:\n%s", stderr.String())
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
