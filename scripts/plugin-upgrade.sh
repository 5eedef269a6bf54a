#!/usr/bin/env bash
# Upgrades an installed sftpfs plugin in place to a registry reference,
# keeping its volumes, their options, its settings, secrets and state.
#
#   scripts/plugin-upgrade.sh NAME REF     e.g. sftpfs registry.example.com/sftpfs:1.3-arm64
#
# It is `docker plugin disable -f`, `docker plugin upgrade`, `docker plugin
# set` of the mount sources (secrets.source, state.source) that the upgrade
# resets to their defaults, and `docker plugin enable`; it refuses while
# containers run with the plugin's volumes (drain the node first; FORCE=1
# upgrades anyway) and checks that the same volumes are there afterwards.
# The plugin ID, and with it the propagated mount, stays the same.
set -euo pipefail

# Only bash and docker are needed: copy this and plugin-lib.sh to a node.
# shellcheck source=scripts/plugin-lib.sh
. "$(dirname "$0")/plugin-lib.sh"

if [ $# != 2 ]; then
	echo "usage: scripts/plugin-upgrade.sh NAME REF (NAME as in docker plugin ls, e.g. sftpfs; REF as pushed by make plugin-push, e.g. registry.example.com/sftpfs:1.3-amd64)" >&2
	exit 2
fi
name=$(plugin_name_norm "$1")
if ! plugin_exists "$name"; then
	echo "plugin-upgrade.sh: no plugin $name is installed; install it with docker plugin install --grant-all-permissions --alias ${1%%:*} $2" >&2
	exit 1
fi
plugin_upgrade "$name" "$2"
echo "==> $name upgraded to $2; volumes: $(plugin_volumes "$name" | wc -l)"
