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

// startServe runs runServe with args in-process until stop, which sends
// SIGTERM (runServe's signal), requires a clean exit and returns the log.
// post calls the volume API on sock.
func startServe(t *testing.T, sock string, args ...string) (post func(method, body string) map[string]any, stop func() string) {
	t.Helper()
	var stderr testenv.Buffer
	done := make(chan int, 1)
	go func() {
		done <- runServe(append([]string{"-socket", sock, "-guard=false"}, args...), &bytes.Buffer{}, &stderr)
	}()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	post = func(method, body string) map[string]any {
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
	stop = func() string {
		t.Helper()
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
		return stderr.String()
	}
	return post, stop
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
	t.Setenv("SFTPFS_STATE_DIR", "")

	post, stop := startServe(t, sock, "-mount-root", root)
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
	stateFile := filepath.Join(root, ".state", "state.json")
	want := []string{stateFile}
	if fi, err := os.Stat("/secrets"); err != nil || !fi.IsDir() {
		// No /secrets bind: the default is inside the mount root.
		want = append(want, filepath.Join(root, ".secrets"))
	}
	for _, p := range want {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	log := stop()
	if !strings.Contains(log, "level=INFO") || !strings.Contains(log, `msg="serving the Docker volume API"`) {
		t.Errorf("log lacks levels or the serving line:\n%s", log)
	}

	// The state was on a host directory (the marker a run with /state
	// bound leaves, naming its volumes) and the setting is gone: the
	// named volumes are there for Get and List (Docker deletes its record
	// of a volume whose Get fails) with the fix in their Status, every
	// other request fails with it, and the default state is neither read
	// nor written.
	before, err := os.ReadFile(stateFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, stateOnHostMarker), []byte(`{"volumes":["hv"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	const fix = "state.source is not set now"
	post, stop = startServe(t, sock, "-mount-root", root)
	if m := mustJSON(post("VolumeDriver.List", "{}")); !strings.Contains(m, `"Name":"hv"`) || strings.Contains(m, `"Name":"v"`) || !strings.Contains(m, fix) {
		t.Fatalf("List with the state.source setting lost: %s", m)
	}
	if m := mustJSON(post("VolumeDriver.Get", `{"Name":"hv"}`)); !strings.Contains(m, `"Name":"hv"`) || !strings.Contains(m, fix) || strings.Contains(m, `"Err":"`) {
		t.Fatalf("Get of a volume named in the marker: %s", m)
	}
	for _, req := range [][2]string{
		{"VolumeDriver.Get", `{"Name":"v"}`},
		{"VolumeDriver.Mount", `{"Name":"hv","ID":"c1"}`},
		{"VolumeDriver.Remove", `{"Name":"hv"}`},
		{"VolumeDriver.Create", `{"Name":"x","Opts":{"local":"` + data + `"}}`},
	} {
		if m := post(req[0], req[1]); !strings.Contains(mustJSON(m["Err"]), fix) {
			t.Fatalf("%s %s with the state.source setting lost: %v", req[0], req[1], m)
		}
	}
	log = stop()
	if !strings.Contains(log, "serving no volumes") {
		t.Errorf("the log does not say why no volume is served:\n%s", log)
	}
	if after, err := os.ReadFile(stateFile); err != nil || !bytes.Equal(after, before) {
		t.Fatalf("the default state changed while refusing: %v", err)
	}

	// Given explicitly, the default state directory is what the user asked for.
	post, stop = startServe(t, sock, "-mount-root", root, "-state-dir", filepath.Join(root, ".state"))
	if m := post("VolumeDriver.List", "{}"); !strings.Contains(mustJSON(m), `"Name":"v"`) {
		t.Fatalf("list with -state-dir despite the marker: %v", m)
	}
	stop()
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
