package main

import (
	"strings"
	"testing"
)

func TestRoundRange(t *testing.T) {
	for _, tc := range []struct {
		name        string
		m           string
		ours, other []float64
		want        string
	}{
		{"faster is better", mSeqRead, []float64{100, 120, 90}, []float64{100, 100, 100}, " (0.90-1.20)"},
		{"less CPU is better", mCPURead, []float64{2, 4}, []float64{3, 3}, " (0.75-1.50)"},
		{"one round", mSeqRead, []float64{100}, []float64{50}, ""},
		{"not every round", mSeqRead, []float64{100, 100}, []float64{50}, ""},
		{"peak over the run", mRSSStream, []float64{50, 60}, []float64{10, 12}, ""},
		{"a zero", mSeqRead, []float64{100, 0}, []float64{50, 50}, ""},
	} {
		if got := roundRange(tc.m, tc.ours, tc.other); got != tc.want {
			t.Errorf("%s: roundRange = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestTableShowsRoundRange: the ratio columns carry the per-round range
// next to the ratio of the medians, and a contender without the metric
// gets an empty cell.
func TestTableShowsRoundRange(t *testing.T) {
	e := &env{cfg: config{rounds: 3}, results: map[string]map[string][]float64{
		cSFTPFS: {mUnlink: {2000, 2400, 1800}},
		cSSHFS:  {mUnlink: {2000, 1600, 2000}},
		cRaw:    {},
	}}
	var row string
	for _, l := range strings.Split(e.table(), "\n") {
		if strings.HasPrefix(l, "| unlink") {
			row = l
		}
	}
	if want := "| 2000 | 2000 |  | 1.00x (0.90-1.50) |  |"; !strings.HasSuffix(row, want) {
		t.Errorf("unlink row %q, want it to end in %q", row, want)
	}
}
