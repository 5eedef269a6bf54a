#!/usr/bin/env bash
# Removes an installed sftpfs plugin, but not while that loses anything.
#
#   scripts/plugin-rm.sh [NAME]        (make plugin-rm PLUGIN_NAME=NAME)
#
# `docker plugin rm` deletes the plugin's directory, including its
# propagated mount, where .secrets and .state live by default; with -f it
# does so even while volumes of the plugin exist. This script refuses while
# the plugin has volumes or secret or state files there, and lists them.
# FORCE=1 removes it anyway, after listing what is lost. Host directories
# bound with secrets.source / state.source are never deleted.
#
# NAME defaults to $PLUGIN_NAME, else sftpfs:latest.
set -euo pipefail

# Only bash and docker are needed: copy this and plugin-lib.sh to a node.
# shellcheck source=scripts/plugin-lib.sh
. "$(dirname "$0")/plugin-lib.sh"

name=$(plugin_name_norm "${1:-${PLUGIN_NAME:-sftpfs:latest}}")
if ! plugin_exists "$name"; then
	echo "plugin-rm.sh: no plugin $name is installed (docker plugin ls)" >&2
	exit 1
fi
mounts=$(plugin_mount_settings "$name")
kept=""
if [ -n "$mounts" ]; then
	kept="Kept (host directories, not deleted): $(echo $mounts)"
fi
losses=$(plugin_losses "$name")
if [ -n "$losses" ]; then
	if [ "${FORCE:-0}" != 1 ]; then
		cat >&2 <<-MSG
			plugin-rm.sh: refusing to remove $name: docker plugin rm would delete
			$(echo "$losses" | sed 's/^/  /')${kept:+
			$kept}
			To keep them: leave the plugin installed and upgrade it in place
			(make plugin, or scripts/plugin-upgrade.sh $name REF). To remove
			deliberately: docker volume rm each volume (remote data is never touched),
			copy the secret and state files you need, then run this again; or
			FORCE=1 scripts/plugin-rm.sh $name to delete all of the above now.
		MSG
		exit 1
	fi
	echo "plugin-rm.sh: FORCE=1: removing $name; lost:" >&2
	echo "$losses" | sed 's/^/  /' >&2
	[ -z "$kept" ] || echo "$kept" >&2
fi
docker plugin rm -f "$name" >/dev/null
echo "==> $name removed"
