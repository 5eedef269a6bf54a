// Package e2e holds end-to-end tests of the sftpfs Docker plugin on a real
// Docker engine: they build and enable the plugin with
// scripts/build-plugin.sh (as sftpfs-e2e:latest, so an installed sftpfs
// plugin is left alone), run a real OpenSSH sshd on loopback (the plugin
// uses the host network), and drive the docker CLI: volume create with a
// key by reference and a pinned host key, containers that write and read,
// :ro, a non-root user, bad options, inspect output, remove, --mount
// volume-opt, plugin disable/enable, a dockerd restart and a single-node
// Swarm service. TestEdge covers Docker's edge cases (run --rm churn,
// SIGKILLed containers, prune, compose down -v, nested paths, disable in
// use); TestPluginKilled kills the plugin process under a writing container
// and checks dockerd's restart, the data and the orphaned container's
// errors; TestPluginUpgrade pushes two builds to a throwaway local registry
// (Debian's docker-registry) and checks that `docker plugin upgrade` keeps
// volumes, options, settings and data, and that scripts/plugin-rm.sh refuses
// while they exist; TestPluginFleet installs from `make plugin-push` with
// `docker plugin install --alias`, secrets and state in host directories,
// and checks that running scripts/build-plugin.sh again and
// scripts/plugin-upgrade.sh keep all of that. TestCSIPluginPackaging
// installs the CSI plugin (plugin/csi) and drives its socket as Swarm's
// cluster volumes would, since this engine (20.10) has no cluster volumes
// of its own.
//
// They need root, /dev/fuse, a running dockerd (scripts/deps.sh starts one,
// logging to /var/log/sftpfs-dockerd.log) and /bin/busybox from Debian's
// busybox-static: missing, the tests skip, or fail when CI=true. The
// package has no non-test code.
package e2e
