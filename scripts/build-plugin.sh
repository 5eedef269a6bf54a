#!/usr/bin/env bash
# Builds the sftpfs managed Docker plugin and installs it into the local
# Docker engine, or, when it is already installed, replaces it in place
# without losing a volume, a secret or the plugin's state.
#
#   scripts/build-plugin.sh [amd64|arm64] [--csi] [--docker-build] [--no-enable] [--no-install]
#
# --csi builds the CSI plugin for Swarm cluster volumes instead
# (plugin/csi/config.json, entrypoint `sftpfs csi`, default name
# sftpfs-csi:latest; docs/csi.md). It never touches the classic plugin.
#
# Steps: build a static binary for the architecture (CGO_ENABLED=0), lay out
# plugin/build[-ARCH]/rootfs (the binary plus the directories the plugin
# needs) and config.json, then install it:
#   - not installed yet: `docker plugin create`, the PLUGIN_SETTINGS, and
#     `docker plugin enable` (only when the architecture matches this machine);
#   - installed: the tree is pushed to a throwaway registry on loopback
#     (docker-registry) and the plugin is upgraded to it with
#     `docker plugin upgrade` (scripts/plugin-lib.sh plugin_upgrade): same
#     plugin ID, so its propagated mount with .secrets and .state stays, and
#     the volumes, their options and the settings are kept. It refuses while
#     containers run with the plugin's volumes (FORCE=1 upgrades anyway).
#     Without docker-registry it replaces the plugin only if that loses
#     nothing (no volume, no secret or state file), else it refuses and says
#     what would be lost.
# No image registry is needed otherwise: the rootfs is assembled directly,
# or with --docker-build through the FROM-scratch Dockerfile (docker build +
# docker create + docker export).
#
# The architecture is this machine's (uname -m) unless given as an argument
# or PLUGIN_ARCH. Another architecture is cross-compiled, named
# sftpfs:latest-ARCH and not enabled.
#
# Environment: PLUGIN_NAME (default sftpfs:latest; other architectures
# sftpfs:latest-ARCH), PLUGIN_ARCH, VERSION (default from git),
# SFTPFS_BINARY (use this prebuilt static binary instead of building one),
# PLUGIN_BUILD_DIR (where the tree goes, and the binary as
# PLUGIN_BUILD_DIR-sftpfs-linux-ARCH; default plugin/build[-ARCH] and
# bin/sftpfs-linux-ARCH), PLUGIN_SETTINGS (for a new install, e.g.
# "state.source=/var/lib/sftpfs/state secrets.source=/etc/sftpfs/secrets";
# missing source directories are created 0700), FORCE=1 (see above),
# SFTPFS_REGISTRY_BIN (the local registry binary; default docker-registry
# on PATH; empty: none).
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=scripts/plugin-lib.sh
. scripts/plugin-lib.sh

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
host_arch=$(sftpfs_host_arch)
arch=${arch:-${PLUGIN_ARCH:-$host_arch}}
case "$arch" in
amd64 | arm64) ;;
*)
	echo "build-plugin.sh: PLUGIN_ARCH=$arch is not supported (want amd64 or arm64)" >&2
	exit 2
	;;
esac
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

# Refuse before building: replacing the plugin ends the mounts of running
# containers (checked again just before the upgrade).
if [ "$install" = 1 ] && docker info >/dev/null 2>&1 && plugin_exists "$(plugin_name_norm "$name")" &&
	! plugin_check_in_use "$(plugin_name_norm "$name")" upgrade; then
	exit 1
fi

if [ -n "${SFTPFS_BINARY:-}" ]; then
	bin=$SFTPFS_BINARY
	echo "==> using prebuilt $bin"
else
	bin=bin/sftpfs-linux-$arch
	if [ -n "${PLUGIN_BUILD_DIR:-}" ]; then
		# Next to the tree, which is deleted and assembled again below.
		bin=${PLUGIN_BUILD_DIR%/}-sftpfs-linux-$arch
	fi
	echo "==> building $bin ($version)"
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath \
		-ldflags "-s -w -X main.version=$version" -o "$bin" ./cmd/sftpfs
fi

build=${PLUGIN_BUILD_DIR:-$build}
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
	docker rm -f "$cid" >/dev/null
	trap - EXIT
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
# What was built, and a marker that makes every tree's layer unique:
# Docker 20.10 refuses `docker plugin create` of a layer it already holds
# ("content ... already exists"), which a rebuild of the same source would be.
echo "$base $version linux/$arch built $(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" >"$build/rootfs/etc/sftpfs-build"

if [ "$install" = 0 ]; then
	echo "==> plugin tree ready in $build (not installed)"
	exit 0
fi
if ! docker info >/dev/null 2>&1; then
	echo "build-plugin.sh: cannot reach the Docker engine (is dockerd running? scripts/deps.sh starts it); plugin tree is in $build" >&2
	exit 1
fi
name=$(plugin_name_norm "$name")

if ! plugin_exists "$name"; then
	echo "==> installing $name"
	docker plugin create "$name" "$build"
	if [ -n "${PLUGIN_SETTINGS:-}" ]; then
		for kv in $PLUGIN_SETTINGS; do
			case "$kv" in
			*.source=/*) mkdir -p -m 0700 "${kv#*=}" ;;
			esac
		done
		# shellcheck disable=SC2086 # one setting per word
		docker plugin set "$name" $PLUGIN_SETTINGS
	fi
	if [ "$enable" = 1 ]; then
		docker plugin enable "$name"
		echo "==> $name enabled"
	fi
	exit 0
fi

if [ -n "${PLUGIN_SETTINGS:-}" ]; then
	echo "build-plugin.sh: $name is installed: PLUGIN_SETTINGS is for a new install and is ignored; its current settings are kept" >&2
fi
if [ -n "$(registry_bin)" ]; then
	echo "==> replacing the installed $name in place (docker plugin upgrade through a throwaway local registry)"
	registry_start
	trap registry_stop EXIT
	ref=$REGISTRY/sftpfs-local-build:$arch
	docker plugin create "$ref" "$build" >/dev/null
	docker plugin push "$ref" >/dev/null || {
		docker plugin rm "$ref" >/dev/null
		echo "build-plugin.sh: pushing the build to the local registry $REGISTRY failed" >&2
		exit 1
	}
	docker plugin rm "$ref" >/dev/null
	plugin_upgrade "$name" "$ref" "$enable"
	echo "==> $name upgraded in place ($version); volumes: $(plugin_volumes "$name" | wc -l)"
	exit 0
fi

losses=$(plugin_losses "$name")
if [ -n "$losses" ]; then
	cat >&2 <<-MSG
		build-plugin.sh: refusing to replace $name: without a local registry it can only be
		removed and created again, which deletes:
		$(echo "$losses" | sed 's/^/  /')
		Install docker-registry (Debian package docker-registry; scripts/deps.sh installs it) to
		upgrade it in place, keeping all of that; or remove it deliberately with
		FORCE=1 scripts/plugin-rm.sh $name
	MSG
	exit 1
fi
echo "==> replacing $name (no volume, secret or state file to keep)"
mounts=$(plugin_mount_settings "$name")
docker plugin rm -f "$name" >/dev/null
docker plugin create "$name" "$build"
if [ -n "$mounts" ]; then
	# shellcheck disable=SC2086 # one setting per word
	docker plugin set "$name" $mounts
fi
if [ "$enable" = 1 ]; then
	docker plugin enable "$name"
	echo "==> $name enabled"
fi
