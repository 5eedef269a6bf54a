package main

import (
	"runtime/debug"
	"testing"
)

// TestTuneGC: without GOGC in the environment the long-running commands
// use defaultGCPercent; with GOGC set, the user's value (already applied
// by the runtime) stays.
func TestTuneGC(t *testing.T) {
	orig := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(orig) })

	tuneGC(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Errorf("GOGC unset: GC percent %d, want %d", got, defaultGCPercent)
	}
	debug.SetGCPercent(50) // as if the runtime had read GOGC=50
	tuneGC(func(k string) string {
		if k == "GOGC" {
			return "50"
		}
		return ""
	})
	if got := debug.SetGCPercent(100); got != 50 {
		t.Errorf("GOGC=50: GC percent %d, want the user's 50", got)
	}
}
