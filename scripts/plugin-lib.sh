# shellcheck shell=bash
# Functions shared by build-plugin.sh, plugin-push.sh, plugin-upgrade.sh and
# plugin-rm.sh (sourced, not run). They exist so that no script of ours
# loses a volume, a secret or the plugin's state:
#
#   - `docker plugin rm` deletes the plugin's directory, including the
#     propagated mount where .secrets and .state live by default, and a new
#     plugin gets a new ID (so a new directory). So a plugin with volumes is
#     replaced by `docker plugin upgrade`, which keeps the ID, never by
#     rm + create, and removing it needs FORCE=1 after being told what goes.
#   - `docker plugin upgrade` replaces the plugin's config, and with it every
#     mount source set with `docker plugin set X.source=DIR` (environment
#     settings survive; checked on Docker 20.10). plugin_upgrade sets the
#     mount sources again before enabling.

# sftpfs_host_arch prints the Go architecture of this machine (uname -m,
# not `go env GOARCH`, which a GOARCH in the environment changes).
sftpfs_host_arch() {
	local m
	m=$(uname -m)
	case "$m" in
	x86_64 | amd64) echo amd64 ;;
	aarch64 | arm64 | armv8*) echo arm64 ;;
	*)
		echo "unsupported machine architecture '$m' (uname -m); sftpfs plugins are built for amd64 and arm64: set PLUGIN_ARCH=amd64 or PLUGIN_ARCH=arm64" >&2
		return 1
		;;
	esac
}

# plugin_name_norm prints NAME with Docker's implicit :latest tag, the form
# `docker volume ls -f driver=` and `docker plugin inspect` agree on.
plugin_name_norm() {
	local n=$1
	case "${n##*/}" in
	*:*) echo "$n" ;;
	*) echo "$n:latest" ;;
	esac
}

plugin_exists() { docker plugin inspect "$1" >/dev/null 2>&1; }

# plugin_volumes prints the names of the volumes whose driver is NAME.
plugin_volumes() {
	docker volume ls -q -f "driver=$(plugin_name_norm "$1")"
}

# plugin_propagated prints the host directory of NAME's propagated mount.
plugin_propagated() {
	local id root
	id=$(docker plugin inspect -f '{{.Id}}' "$1") || return 1
	root=$(docker info -f '{{.DockerRootDir}}') || return 1
	echo "$root/plugins/$id/propagated-mount"
}

# plugin_mount_settings prints "name.source=DIR" for every settable mount
# whose source is not the default placeholder: what `docker plugin set`
# changed and `docker plugin upgrade` would reset.
plugin_mount_settings() {
	docker plugin inspect -f '{{range .Config.Mounts}}{{if and .Name .Settable}}{{.Name}}.source={{.Source}}{{"\n"}}{{end}}{{end}}' "$1" |
		grep -v '^[^=]*=/sys/fs/fuse/connections$' | grep -v '^$' || true
}

# plugin_in_use prints the running containers that use a volume of NAME:
# disabling the plugin under them ends their FUSE mounts (ENOTCONN).
plugin_in_use() {
	local v
	for v in $(plugin_volumes "$1"); do
		docker ps -f "volume=$v" --format '{{.Names}} (volume '"$v"')'
	done | sort -u
}

# plugin_losses prints, one per line, what `docker plugin rm NAME` would
# delete: its volumes (by name) and the files in its propagated mount's
# .secrets and .state; empty when nothing would be lost. Host directories
# bound with secrets.source/state.source are not deleted by rm.
plugin_losses() {
	local name=$1 v dir f
	for v in $(plugin_volumes "$name"); do
		echo "volume $v"
	done
	dir=$(plugin_propagated "$name") || return 0
	for f in .secrets .state; do
		[ -d "$dir/$f" ] || continue
		if ! [ -r "$dir/$f" ]; then
			echo "$dir/$f (not readable here: run as root to list it)"
			continue
		fi
		find "$dir/$f" -mindepth 1 \( -type f -o -type l \) -printf "${f#.} file %p\n" 2>/dev/null
	done
}

# registry_bin prints the local registry binary, empty if there is none.
# SFTPFS_REGISTRY_BIN overrides the lookup (empty: as if none).
registry_bin() {
	if [ -n "${SFTPFS_REGISTRY_BIN+set}" ]; then
		echo "$SFTPFS_REGISTRY_BIN"
	else
		command -v docker-registry || command -v registry || true
	fi
}

# registry_start runs a throwaway `docker-registry serve` on a free loopback
# port (dockerd treats 127.0.0.0/8 as an insecure registry, so plain HTTP
# works with no engine configuration) and sets REGISTRY to its host:port.
# registry_stop ends it and deletes its storage.
registry_start() {
	local bin port dir i
	bin=$(registry_bin)
	if [ -z "$bin" ]; then
		echo "replacing an installed plugin in place needs a throwaway local registry: install docker-registry (Debian package docker-registry; scripts/deps.sh installs it)" >&2
		return 1
	fi
	dir=$(mktemp -d /tmp/sftpfs-registry.XXXXXX)
	for i in 1 2 3 4 5; do
		port=$((20000 + RANDOM % 30000))
		printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s/storage\nhttp:\n  addr: 127.0.0.1:%s\n' "$dir" "$port" >"$dir/config.yml"
		"$bin" serve "$dir/config.yml" >"$dir/log" 2>&1 &
		REGISTRY_PID=$!
		REGISTRY_DIR=$dir
		for _ in $(seq 50); do
			# Listening is enough: the registry opens its port when ready.
			if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && sleep 0.2 && kill -0 "$REGISTRY_PID" 2>/dev/null; then
				REGISTRY=127.0.0.1:$port
				return 0
			fi
			kill -0 "$REGISTRY_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill "$REGISTRY_PID" 2>/dev/null || true
		wait "$REGISTRY_PID" 2>/dev/null || true
	done
	echo "the local registry ($bin) did not start: $(tail -n 5 "$dir/log")" >&2
	rm -rf "$dir"
	return 1
}

registry_stop() {
	if [ -n "${REGISTRY_PID:-}" ]; then
		kill "$REGISTRY_PID" 2>/dev/null || true
		wait "$REGISTRY_PID" 2>/dev/null || true
		REGISTRY_PID=
	fi
	if [ -n "${REGISTRY_DIR:-}" ]; then
		rm -rf "$REGISTRY_DIR"
		REGISTRY_DIR=
	fi
}

# plugin_check_in_use NAME VERB refuses (returns 1, saying why) while
# running containers use a volume of NAME, unless FORCE=1.
plugin_check_in_use() {
	local name=$1 verb=$2 users
	users=$(plugin_in_use "$name")
	[ -n "$users" ] || return 0
	if [ "${FORCE:-0}" != 1 ]; then
		cat >&2 <<-MSG
			refusing to $verb $name: these running containers use its volumes, and
			disabling the plugin ends their mounts (file operations fail with ENOTCONN):
			$(echo "$users" | sed 's/^/  /')
			Stop them first (in Swarm: docker node update --availability drain NODE),
			or run with FORCE=1 to $verb anyway and restart them afterwards.
		MSG
		return 1
	fi
	echo "FORCE=1: going on ($verb $name) under running containers; restart them afterwards:" >&2
	echo "$users" | sed 's/^/  /' >&2
}

# plugin_upgrade NAME REF [enable] replaces the installed plugin NAME by
# REF (a registry reference) in place: same plugin ID, so the propagated
# mount with .secrets and .state stays; volumes, their options and the
# settings stay, and mount sources that the upgrade resets are set again.
# It refuses while containers run with NAME's volumes (their mounts would
# end) unless FORCE=1. enable (default 1): enable afterwards.
plugin_upgrade() {
	local name=$1 ref=$2 enable=${3:-1} before after mounts
	plugin_check_in_use "$name" upgrade || return 1
	before=$(plugin_volumes "$name" | sort)
	mounts=$(plugin_mount_settings "$name")
	if [ "$(docker plugin inspect -f '{{.Enabled}}' "$name")" = true ]; then
		# Docker refuses a plain disable while the plugin has volumes
		# ("in use") even with no container running; -f is safe then.
		docker plugin disable "$name" >/dev/null 2>&1 || docker plugin disable -f "$name" >/dev/null
	fi
	# --skip-remote-check: a new build is a different image by design.
	docker plugin upgrade --grant-all-permissions --skip-remote-check "$name" "$ref"
	if [ -n "$mounts" ]; then
		# shellcheck disable=SC2086 # one setting per word
		docker plugin set "$name" $mounts
		echo "==> mount settings kept: $(echo $mounts)"
	fi
	if [ "$enable" = 1 ]; then
		docker plugin enable "$name" >/dev/null
	fi
	after=$(plugin_volumes "$name" | sort)
	if [ "$enable" = 1 ] && [ "$before" != "$after" ]; then
		echo "upgrade of $name: the volume list changed (before: $(echo $before); after: $(echo $after)); nothing was deleted, check the plugin's state and mount settings (docker plugin inspect $name)" >&2
		return 1
	fi
}
