package main

import "runtime/debug"

// defaultGCPercent is the garbage collector's target for the processes
// that hold mounts (mount, serve, csi) when GOGC is not set.
//
// A streaming mount's live heap is small (15-20 MB: read-ahead chunks,
// go-fuse's request and reply buffers) while x/crypto/ssh allocates a
// copy of every 32 KiB packet it receives, about 1.3 GB of garbage per
// GiB read, so the peak is set by how much garbage the collector lets
// pile up. At Go's default of 100 one stream peaked at 56-73 MiB RSS
// (issue 14 asks for at most 64), at 75 at 51-57 MiB, for 2-3% more
// CPU per GiB read in the backend benchmark (DataPathSeqRead/wire,
// 2.29 / 2.35 -> 2.35 / 2.41 s) and no difference through the mount
// that the noise of this machine shows (docs/perf.md, session 7). 50
// cost 10% CPU for another 6 MiB. GOGC set in the environment (the
// plugin's GOGC setting) wins.
const defaultGCPercent = 75

// tuneGC applies defaultGCPercent unless GOGC is set.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") != "" {
		return
	}
	debug.SetGCPercent(defaultGCPercent)
}
