#!/bin/sh
# scripts/bench.sh [bench flags]: build bin/sftpfs and the benchmark
# driver, then run it (see bench/doc.go; `go run ./bench -h` lists the
# flags). Needs root, /dev/fuse, sshd, sftp, sshfs and git.
# On a shared machine run it under `flock /tmp/sftpfs-cpu.lock`.
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}
# A private copy: bin/sftpfs may be rebuilt (stripped) by others meanwhile.
mkdir -p bin/bench
CGO_ENABLED=0 $GO build -trimpath -o bin/bench/sftpfs ./cmd/sftpfs
$GO build -o bin/bench/sftpfs-bench ./bench
SFTPFS_BENCH_INVOKER="scripts/bench.sh" exec bin/bench/sftpfs-bench -sftpfs bin/bench/sftpfs "$@"
