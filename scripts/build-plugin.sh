#!/usr/bin/env bash
# Builds the sftpfs managed Docker plugin and installs it into the local
# Docker engine.
#
#   scripts/build-plugin.sh [amd64|arm64] [--csi] [--docker-build] [--no-enable] [--no-install]
#
# --csi builds the CSI plugin for Swarm cluster volumes instead
# (plugin/csi/config.json, entrypoint `sftpfs csi`, default name
# sftpfs-csi:latest; docs/csi.md). It never touches the classic plugin.
#
# Steps: build a static binary for the architecture (CGO_ENABLED=0), lay out
# plugin/build[-ARCH]/rootfs (the binary plus the directories the plugin
# needs) and config.json, then `docker plugin rm -f` the old plugin,
# `docker plugin create`, and `docker plugin enable` (only when the
# architecture matches this machine). No image registry is needed: the rootfs
# is assembled directly, or with --docker-build through the FROM-scratch
# Dockerfile (docker build + docker create + docker export).
#
# Environment: PLUGIN_NAME (default sftpfs:latest; arm64 builds default to
# sftpfs:latest-arm64), VERSION (default from git), SFTPFS_BINARY (use this
# prebuilt static binary instead of building one).
set -euo pipefail

cd "$(dirname "$0")/.."

arch=""
docker_build=0
csi=0
enable=1
install=1
for a in "$@"; do
	case "$a" in
	amd64 | arm64) arch=$a ;;
	--docker-build) docker_build=1 ;;
	--csi) csi=1 ;;
	--no-enable) enable=0 ;;
	--no-install) install=0 ;;
	*)
		echo "build-plugin.sh: unknown argument $a (want amd64, arm64, --csi, --docker-build, --no-enable, --no-install)" >&2
		exit 2
		;;
	esac
done
host_arch=$(go env GOARCH)
arch=${arch:-${PLUGIN_ARCH:-$host_arch}}
version=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}

base=sftpfs
config=plugin/config.json
if [ "$csi" = 1 ]; then
	base=sftpfs-csi
	config=plugin/csi/config.json
fi
if [ "$arch" = "$host_arch" ]; then
	build=plugin/build
	[ "$csi" = 1 ] && build=plugin/build-csi
	name=${PLUGIN_NAME:-$base:latest}
else
	build=plugin/build-$arch
	[ "$csi" = 1 ] && build=plugin/build-csi-$arch
	name=${PLUGIN_NAME:-$base:latest-$arch}
	if [ "$enable" = 1 ]; then
		echo "build-plugin.sh: $arch plugin will be created but not enabled on this $host_arch machine"
		enable=0
	fi
fi

if [ -n "${SFTPFS_BINARY:-}" ]; then
	bin=$SFTPFS_BINARY
	echo "==> using prebuilt $bin"
else
	bin=bin/sftpfs-linux-$arch
	echo "==> building $bin ($version)"
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath \
		-ldflags "-s -w -X main.version=$version" -o "$bin" ./cmd/sftpfs
fi

echo "==> assembling $build"
rm -rf "$build"
mkdir -p "$build/rootfs"
if [ "$docker_build" = 1 ]; then
	img=sftpfs-rootfs:$arch
	# A context holding only the binary keeps the build fast and lets
	# SFTPFS_BINARY live anywhere.
	ctx=$(mktemp -d)
	cp "$bin" "$ctx/sftpfs"
	docker build --platform "linux/$arch" --build-arg BINARY=sftpfs -f Dockerfile -t "$img" "$ctx"
	rm -rf "$ctx"
	cid=$(docker create --platform "linux/$arch" "$img")
	trap 'docker rm -f "$cid" >/dev/null 2>&1 || true' EXIT
	docker export "$cid" | tar -x -C "$build/rootfs"
else
	# The same tree the Dockerfile produces.
	mkdir -p "$build/rootfs"/{run/docker/plugins,mnt/volumes,secrets,tmp,proc,dev,sys,etc}
	touch "$build/rootfs/etc/hosts" "$build/rootfs/etc/resolv.conf"
	chmod 1777 "$build/rootfs/tmp"
	install -m 0755 "$bin" "$build/rootfs/sftpfs"
fi
if [ "$csi" = 1 ]; then
	# The CSI plugin's publish (propagated mount), staging and state
	# directories.
	mkdir -p "$build/rootfs"/{data/published,data/staged,var/lib/sftpfs-csi}
fi
cp "$config" "$build/config.json"

if [ "$install" = 0 ]; then
	echo "==> plugin tree ready in $build (not installed)"
	exit 0
fi
if ! docker info >/dev/null 2>&1; then
	echo "build-plugin.sh: cannot reach the Docker engine (is dockerd running? scripts/deps.sh starts it); plugin tree is in $build" >&2
	exit 1
fi
echo "==> installing $name"
docker plugin rm -f "$name" >/dev/null 2>&1 || true
docker plugin create "$name" "$build"
if [ "$enable" = 1 ]; then
	docker plugin enable "$name"
	echo "==> $name enabled"
fi
