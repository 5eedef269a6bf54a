package main

import (
	"runtime/debug"
	"testing"
)

// TestTuneGC: without GOGC the mount processes run at defaultGCPercent;
// a GOGC from the environment (the plugin's GOGC setting) is left alone.
func TestTuneGC(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)

	tuneGC(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Errorf("without GOGC the collector target is %d, want %d", got, defaultGCPercent)
	}
	tuneGC(func(k string) string {
		if k == "GOGC" {
			return "300"
		}
		return ""
	})
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set, tuneGC changed the target to %d; the environment must win", got)
	}
}
