package admin

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestEndpoint(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "sftpfs_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	lv := new(slog.LevelVar)
	var logs bytes.Buffer
	s, err := Listen("127.0.0.1:0", Handler(reg, lv, slog.New(slog.NewTextHandler(&logs, nil))), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := "http://" + s.Addr()
	do := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := do("GET", "/metrics", ""); code != 200 || !strings.Contains(body, "sftpfs_test_total 3") {
		t.Errorf("GET /metrics: %d %q", code, body)
	}
	if code, body := do("PUT", "/loglevel", "warn\n"); code != 200 || strings.TrimSpace(body) != "warn" || lv.Level() != slog.LevelWarn {
		t.Errorf("PUT warn: %d %q, level %v", code, body, lv.Level())
	}
	if code, body := do("GET", "/loglevel", ""); code != 200 || strings.TrimSpace(body) != "warn" {
		t.Errorf("GET /loglevel: %d %q", code, body)
	}
	if code, body := do("PUT", "/loglevel", "verbose"); code != 400 || !strings.Contains(body, "debug, info, warn or error") || lv.Level() != slog.LevelWarn {
		t.Errorf("PUT verbose: %d %q, level %v", code, body, lv.Level())
	}
	if code, _ := do("POST", "/metrics", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %d", code)
	}
	if !strings.Contains(logs.String(), `msg="log level changed" from=INFO to=WARN`) {
		t.Errorf("change not logged: %s", logs.String())
	}
	if _, err := Listen("nonsense", Handler(reg, lv, slog.New(slog.DiscardHandler)), slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "HOST:PORT") {
		t.Errorf("bad address: %v", err)
	}
}
