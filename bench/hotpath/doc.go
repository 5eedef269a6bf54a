// Package hotpath holds Go benchmarks (testing.B) of the mount's hot
// paths — sequential read, sequential write, lookup/getattr and readdir —
// through a real FUSE mount of backend/sftp talking to an in-process
// pkg/sftp server over a connection that adds a fixed round-trip latency
// (0.5 ms and 5 ms), so that pipelining and round-trip counts show up in
// the numbers. Run with
//
//	flock /tmp/sftpfs-cpu.lock go test -run XXX -bench . -benchtime 5x ./bench/hotpath/
//
// It needs root and /dev/fuse (skipped without, failing when CI=true).
package hotpath
