package logx

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestEvery(t *testing.T) {
	e := NewEvery(time.Second)
	t0 := time.Unix(1000, 0)
	if ok, n := e.Allow(t0); !ok || n != 0 {
		t.Fatalf("first event: %v %d", ok, n)
	}
	for i := range 5 {
		if ok, _ := e.Allow(t0.Add(time.Duration(i+1) * 100 * time.Millisecond)); ok {
			t.Fatalf("event %d within the interval allowed", i)
		}
	}
	if ok, n := e.Allow(t0.Add(time.Second)); !ok || n != 5 {
		t.Fatalf("after the interval: %v, held %d; want true, 5", ok, n)
	}
	e.Restart(t0.Add(1500 * time.Millisecond))
	if ok, _ := e.Allow(t0.Add(2 * time.Second)); ok {
		t.Error("allowed within the interval after Restart")
	}
	if ok, n := e.Allow(t0.Add(2500 * time.Millisecond)); !ok || n != 1 {
		t.Errorf("after Restart's interval: %v, held %d; want true, 1", ok, n)
	}
	// Over a minute of events every 10ms, at most one per second passes.
	e = NewEvery(time.Second)
	passed := 0
	for i := range 6000 {
		if ok, _ := e.Allow(t0.Add(time.Duration(i) * 10 * time.Millisecond)); ok {
			passed++
		}
	}
	if passed != 60 {
		t.Errorf("%d of 6000 events in 60s passed, want 60", passed)
	}
}

func TestHandlerLevels(t *testing.T) {
	var buf bytes.Buffer
	lv := new(slog.LevelVar)
	lv.Set(slog.LevelInfo)
	base := slog.New(NewHandler(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), lv))
	a := base.With("volume", "a")
	b := WithFloor(base.With("volume", "b"), slog.LevelDebug)
	a.Debug("a-debug")
	b.Debug("b-debug")
	a.Info("a-info")
	lv.Set(slog.LevelDebug)
	a.Debug("a-debug-2")
	lv.Set(slog.LevelError)
	a.Warn("a-warn")
	b.Warn("b-warn")
	out := buf.String()
	for _, want := range []string{"msg=b-debug volume=b", "msg=a-info volume=a", "msg=a-debug-2", "msg=b-warn volume=b"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	for _, not := range []string{"msg=a-debug ", "a-warn"} {
		if strings.Contains(out, not) {
			t.Errorf("%q logged:\n%s", not, out)
		}
	}
	// WithFloor keeps attributes added before and after.
	if !strings.Contains(out, "msg=b-debug volume=b") {
		t.Errorf("floor lost the volume attribute:\n%s", out)
	}
	// A logger not built on Handler is left alone.
	plain := slog.New(slog.DiscardHandler)
	if WithFloor(plain, slog.LevelDebug) != plain {
		t.Error("WithFloor changed a foreign logger")
	}
}
