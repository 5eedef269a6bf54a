#!/bin/sh
# scripts/bench.sh [bench flags]: build bin/sftpfs and the benchmark
# driver, then run it (see bench/doc.go; `go run ./bench -h` lists the
# flags). Needs root, /dev/fuse, sshd, sftp, sshfs and git.
# On a shared machine run it under `flock /tmp/sftpfs-cpu.lock`.
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}
CGO_ENABLED=0 $GO build -trimpath -o bin/sftpfs ./cmd/sftpfs
$GO build -o bin/sftpfs-bench ./bench
SFTPFS_BENCH_INVOKER="scripts/bench.sh" exec bin/sftpfs-bench "$@"
