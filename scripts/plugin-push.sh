#!/usr/bin/env bash
# Builds the sftpfs plugin for amd64 and arm64 and pushes it to a registry.
#
#   scripts/plugin-push.sh REGISTRY/NAME[:TAG]       (make plugin-push PLUGIN_REF=...)
#
# Managed plugins have no multi-architecture manifest lists, so every
# architecture is its own tag: REF-amd64 and REF-arm64 (e.g.
# registry.example.com/sftpfs:1.3-amd64), and the plain REF is the amd64
# build, whichever machine pushes (so it means the same on every node).
# Nodes install theirs with
#   docker plugin install --grant-all-permissions --alias sftpfs REF-$(dpkg --print-architecture)
# and the alias is the name volumes use (-d sftpfs).
#
# The binaries are cross-compiled (CGO_ENABLED=0 GOARCH=...). Environment:
# PLUGIN_ARCHS (default "amd64 arm64"), VERSION, and `docker login` for the
# registry beforehand. Pushing needs only a running dockerd; the plugins it
# creates to push are removed again (they never had volumes).
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=scripts/plugin-lib.sh
. scripts/plugin-lib.sh

if [ $# != 1 ] || [ -z "$1" ]; then
	echo "usage: scripts/plugin-push.sh REGISTRY/NAME[:TAG] (make plugin-push PLUGIN_REF=registry.example.com/sftpfs:1.3)" >&2
	exit 2
fi
ref=$(plugin_name_norm "$1")
archs=${PLUGIN_ARCHS:-amd64 arm64}
work=$(mktemp -d /tmp/sftpfs-push.XXXXXX)
trap 'rm -rf "$work"' EXIT

# push REF DIR: create, push, remove the local copy.
push() {
	if plugin_exists "$1"; then
		echo "plugin-push.sh: a plugin named $1 is installed here; pushing would replace it. Remove it (scripts/plugin-rm.sh $1) or push another tag." >&2
		return 1
	fi
	docker plugin create "$1" "$2" >/dev/null
	if ! docker plugin push "$1"; then
		docker plugin rm -f "$1" >/dev/null
		echo "plugin-push.sh: docker plugin push $1 failed (docker login to the registry?)" >&2
		return 1
	fi
	docker plugin rm -f "$1" >/dev/null
	echo "==> pushed $1"
}

plain=""
for arch in $archs; do
	PLUGIN_BUILD_DIR=$work/$arch scripts/build-plugin.sh "$arch" --no-install
	push "$ref-$arch" "$work/$arch"
	if [ "$arch" = amd64 ] || [ -z "$plain" ]; then
		plain=$arch
	fi
done
# A fresh marker makes the layer differ from REF-ARCH's (Docker refuses to
# create a plugin whose layer it already holds).
echo "sftpfs plain tag of $plain, pushed $(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" >>"$work/$plain/rootfs/etc/sftpfs-build"
push "$ref" "$work/$plain"
echo "==> $ref is the $plain build; per architecture: $(for a in $archs; do printf '%s ' "$ref-$a"; done)"
