#!/bin/bash
# scripts/lab.sh: experiments that the benchmark harness (scripts/bench.sh)
# cannot do, with the numbers docs/perf.md quotes.
#
#   scripts/lab.sh ab BIN_A BIN_B [FILES]
#       mounts the same server with two sftpfs binaries side by side and
#       reads FILES (default 3000) cold 4 KiB files from both in turn, the
#       order swapped every file; prints the microseconds per file each
#       mount took and B's speed relative to A. Run it with the binaries
#       both ways round, and once with the same binary twice: the second
#       mount has a small advantage of its own on this machine.
#   scripts/lab.sh sched BIN [FILES]
#       mounts with BIN and reads FILES cold 4 KiB files one after the
#       other (Python open/read/close) under `perf stat`: microseconds per
#       file, and the mount process's context switches, nanosleep and
#       futex calls (the Go runtime's wake-ups) and CPU time. The
#       environment reaches the mount (GOMAXPROCS=4 scripts/lab.sh sched ...).
#   scripts/lab.sh streams BIN [N] [MIB]
#       N (default 16) files of MIB (default 64) MiB streamed at once with
#       one dd process each: read cold through a fresh mount, then written
#       through another (conv=fsync); for each, the aggregate MB/s, the
#       mount's peak RSS (VmHWM) and its CPU seconds per GiB.
#
# Each run starts its own sshd (OpenSSH, internal-sftp, aes128-gcm, a
# free loopback port) serving a tmpfs, and removes everything at exit.
# Needs root, /dev/fuse, sshd, ssh-keygen, python3 and, for sched, perf.
# On a shared machine run it under `flock /tmp/sftpfs-cpu.lock`.
set -euo pipefail

usage() {
	sed -n '2,/^set -e/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
	exit 2
}

[ $# -ge 2 ] || usage
cmd=$1
shift
for tool in sshd ssh-keygen python3; do
	command -v "$tool" >/dev/null || { echo "lab.sh: $tool is missing (apt-get install openssh-server openssh-client python3)" >&2; exit 1; }
done
if [ "$cmd" = sched ] && ! command -v perf >/dev/null; then
	echo "lab.sh: perf is missing (apt-get install linux-perf)" >&2
	exit 1
fi
[ "$(id -u)" = 0 ] || { echo "lab.sh: run as root (mounts, drop_caches)" >&2; exit 1; }
SSHD=$(command -v sshd)

lab=$(mktemp -d /tmp/sftpfs-lab.XXXXXX)
pids=()
cleanup() {
	for m in "$lab"/mnt*; do
		mountpoint -q "$m" 2>/dev/null && umount "$m"
	done
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	[ -f "$lab/sshd.pid" ] && kill "$(cat "$lab/sshd.pid")" 2>/dev/null || true
	mountpoint -q "$lab/srv" && umount "$lab/srv"
	rm -rf "$lab"
}
trap cleanup EXIT

mkdir -p "$lab/srv" "$lab/mntA" "$lab/mntB"
mount -t tmpfs -o size=256m tmpfs "$lab/srv"
ssh-keygen -q -t ed25519 -N '' -f "$lab/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$lab/id_ed25519"
cp "$lab/id_ed25519.pub" "$lab/authorized_keys"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$lab/host_key.pub")" > "$lab/known_hosts"
cat > "$lab/sshd_config" <<EOF
ListenAddress 127.0.0.1:$port
HostKey $lab/host_key
PidFile $lab/sshd.pid
AuthorizedKeysFile $lab/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin yes
PasswordAuthentication no
KbdInteractiveAuthentication no
Subsystem sftp internal-sftp
Ciphers aes128-gcm@openssh.com
LogLevel ERROR
EOF
"$SSHD" -f "$lab/sshd_config" -E "$lab/sshd.log"

files() {
	python3 - "$lab/srv/sm" "$1" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d)
for i in range(n):
    with open(os.path.join(d, "f%05d" % i), "wb") as f:
        f.write(os.urandom(4096))
PY
}

# mount BIN DIR: mount the lab's server with BIN on DIR in the background.
mountwith() {
	"$1" mount -o "port=$port,identity=$lab/id_ed25519,known_hosts=$lab/known_hosts" "root@127.0.0.1:$lab/srv" "$2" >"$lab/mount-$(basename "$2").log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do
		mountpoint -q "$2" && return 0
		sleep 0.1
	done
	echo "lab.sh: $1 did not mount $2:" >&2
	cat "$lab/mount-$(basename "$2").log" >&2
	exit 1
}

case $cmd in
ab)
	[ $# -ge 2 ] || usage
	n=${3:-3000}
	files "$n"
	mountwith "$1" "$lab/mntA"
	mountwith "$2" "$lab/mntB"
	sync
	echo 3 > /proc/sys/vm/drop_caches
	python3 - "$lab" "$n" <<'PY'
import sys, time
lab, n = sys.argv[1], int(sys.argv[2])
t = {"A": 0.0, "B": 0.0}
for i in range(n):
    for m in (("A", "B") if i % 2 == 0 else ("B", "A")):
        s = time.perf_counter()
        with open("%s/mnt%s/sm/f%05d" % (lab, m, i), "rb") as f:
            b = f.read()
        t[m] += time.perf_counter() - s
        if len(b) != 4096:
            sys.exit("file %d through mount %s: %d bytes, want 4096" % (i, m, len(b)))
print("A %.0f us/file  B %.0f us/file  B's speed vs A %.3fx" % (t["A"] / n * 1e6, t["B"] / n * 1e6, t["A"] / t["B"]))
PY
	;;
sched)
	n=${2:-3000}
	files "$n"
	mountwith "$1" "$lab/mntA"
	pid=${pids[-1]}
	sync
	echo 3 > /proc/sys/vm/drop_caches
	perf stat -e context-switches,syscalls:sys_enter_nanosleep,syscalls:sys_enter_futex,task-clock -p "$pid" -o "$lab/perf.out" &
	perfpid=$!
	sleep 0.3
	python3 - "$lab" "$n" <<'PY'
import sys, time
lab, n = sys.argv[1], int(sys.argv[2])
s = time.perf_counter()
for i in range(n):
    with open("%s/mntA/sm/f%05d" % (lab, i), "rb") as f:
        if len(f.read()) != 4096:
            sys.exit("file %d: short read" % i)
print("%.0f us/file" % ((time.perf_counter() - s) / n * 1e6), end="  ")
PY
	kill -INT "$perfpid"
	wait "$perfpid" || true
	grep -q task-clock "$lab/perf.out" || { echo "lab.sh: perf stat counted nothing:" >&2; cat "$lab/perf.out" >&2; exit 1; }
	awk '/context-switches|nanosleep|futex|task-clock/ {printf "%s=%s  ", $2, $1} END {print ""}' "$lab/perf.out"
	;;
streams)
	n=${2:-16}
	mib=${3:-64}
	mount -o remount,size=$((2 * n * mib + 256))m "$lab/srv"
	mkdir "$lab/srv/in" "$lab/srv/out"
	for i in $(seq "$n"); do
		head -c "${mib}M" /dev/urandom > "$lab/srv/in/p$i"
	done
	# phase NAME SRC DST [DD FLAGS]: one dd per file through a fresh mount.
	phase() {
		local name=$1 src=$2 dst=$3
		shift 3
		mountwith "$BIN" "$lab/mntA"
		local pid=${pids[-1]} dds=() i
		sync
		echo 3 > /proc/sys/vm/drop_caches
		local t0 s e t1
		t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
		s=$(date +%s.%N)
		for i in $(seq "$n"); do
			local of="$dst/p$i"
			[ "$dst" = /dev/null ] && of=/dev/null
			dd if="$src/p$i" of="$of" bs=1M status=none "$@" &
			dds+=($!)
		done
		for i in "${dds[@]}"; do
			wait "$i" || { echo "lab.sh: a dd of the $name phase failed" >&2; exit 1; }
		done
		e=$(date +%s.%N)
		t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
		awk -v name="$name" -v n="$n" -v mib="$mib" -v s="$s" -v e="$e" -v t0="$t0" -v t1="$t1" -v hwm="$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")" -v hz="$(getconf CLK_TCK)" \
			'BEGIN {printf "%s: %d x %d MiB  %.1f MB/s  peak RSS %.1f MiB  CPU %.2f s/GiB\n", name, n, mib, n * mib * 1.048576 / (e - s), hwm / 1024, (t1 - t0) / hz / (n * mib / 1024)}'
		umount "$lab/mntA"
	}
	BIN=$1
	phase read "$lab/mntA/in" /dev/null
	phase write "$lab/srv/in" "$lab/mntA/out" conv=fsync
	for i in $(seq "$n"); do
		cmp "$lab/srv/in/p$i" "$lab/srv/out/p$i" || { echo "lab.sh: file $i written through the mount differs" >&2; exit 1; }
	done
	;;
*)
	usage
	;;
esac
