#!/usr/bin/env bash
# The sftpfs demo (`make demo`): on a fresh Debian machine, as root, it
# installs what is missing (scripts/deps.sh), builds and enables the Docker
# plugin, starts a throwaway SFTP server on 127.0.0.1 with a freshly
# generated client key, creates a volume that names the key by reference
# and pins the server's host key, and runs one container that writes and
# another that reads. It leaves everything running so you can look around,
# and prints how to clean up.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)

work=${SFTPFS_DEMO_DIR:-/tmp/sftpfs-demo}
port=${SFTPFS_DEMO_PORT:-2222}
volume=sftpfs-demo
image=sftpfs-demo-busybox

step() { printf '\n==> %s\n' "$*"; }

step "checking dependencies (scripts/deps.sh)"
scripts/deps.sh

step "building bin/sftpfs and the plugin (scripts/build-plugin.sh)"
make build
SFTPFS_BINARY=bin/sftpfs scripts/build-plugin.sh

step "starting an SFTP server for $work/remote on 127.0.0.1:$port"
mkdir -p "$work/remote"
if [ -f "$work/server.pid" ] && kill -0 "$(cat "$work/server.pid")" 2>/dev/null; then
	kill "$(cat "$work/server.pid")"
	sleep 1
fi
if [ ! -f "$work/client_key" ]; then
	ssh-keygen -q -t ed25519 -N '' -C sftpfs-demo -f "$work/client_key"
fi
: >"$work/server.out"
(
	# The server outlives this script: it must not inherit descriptors
	# this script was started with (a lock held by flock(1), say), or it
	# would hold them for its whole life.
	for fd in /proc/$BASHPID/fd/*; do
		n=${fd##*/}
		if [ "$n" -gt 2 ] 2>/dev/null; then eval "exec $n>&-"; fi
	done
	exec nohup bin/sftpfs sftp-server -root "$work/remote" -listen "127.0.0.1:$port" \
		-authorized-keys "$work/client_key.pub" -host-key "$work/host_key" \
		>"$work/server.out" 2>"$work/server.log" </dev/null
) &
echo $! >"$work/server.pid"
for _ in $(seq 50); do
	grep -q 'listening on' "$work/server.out" && break
	sleep 0.2
done
if ! grep -q 'listening on' "$work/server.out"; then
	echo "demo: the SFTP server did not start; its log:" >&2
	cat "$work/server.log" >&2
	exit 1
fi
head -n1 "$work/server.out"
fingerprint=$(grep -o 'SHA256:[A-Za-z0-9+/=]*' "$work/server.out" | head -n1)

step "putting the client key into the plugin's secrets directory"
plugin_id=$(docker plugin inspect -f '{{.Id}}' sftpfs:latest)
secrets="$(docker info -f '{{.DockerRootDir}}')/plugins/$plugin_id/propagated-mount/.secrets"
install -m 0600 "$work/client_key" "$secrets/demo_key"
echo "$secrets/demo_key"

step "creating volume $volume (key by reference, host key pinned to $fingerprint)"
docker volume rm -f "$volume" >/dev/null 2>&1 || true
(
	set -x
	docker volume create -d sftpfs -o host=127.0.0.1 -o "port=$port" -o user=demo \
		-o identity=demo_key -o "hostkey=$fingerprint" "$volume"
)

step "building a tiny image ($image: FROM scratch + /bin/busybox)"
ctx=$(mktemp -d)
cp /bin/busybox "$ctx/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT ["/bin/busybox"]\n' >"$ctx/Dockerfile"
docker build -q -t "$image" "$ctx" >/dev/null
rm -rf "$ctx"

step "container 1 writes /data/hello.txt"
(
	set -x
	docker run --rm -v "$volume:/data" "$image" sh -c 'echo "hello from a container, $(date)" > /data/hello.txt'
)
step "container 2 reads it back"
(
	set -x
	docker run --rm -v "$volume:/data" "$image" cat /data/hello.txt
)
step "the file is on the SFTP server"
ls -l "$work/remote"
cat "$work/remote/hello.txt"

step "docker volume inspect $volume (Status comes from the plugin)"
docker volume inspect "$volume"

cat <<MSG

Demo done. Everything is still running:
  - SFTP server (pid $(cat "$work/server.pid")) serving $work/remote on 127.0.0.1:$port
  - Docker plugin sftpfs:latest with volume $volume
Try: docker run --rm -it -v $volume:/data $image sh

Clean up:
  docker volume rm $volume
  kill $(cat "$work/server.pid")
  FORCE=1 scripts/plugin-rm.sh sftpfs:latest   (FORCE=1: it lists and deletes the demo key and state it keeps otherwise)
  docker image rm $image
  rm -rf $work
MSG
