// Package driver is the Docker volume driver of the sftpfs managed plugin:
// it implements go-plugins-helpers' volume.Driver on top of a Mounter (the
// production one parses the shared option table and mounts through package
// mounter, the same code path as `sftpfs mount`).
//
// # Volumes and mounts
//
// Create validates every option without network I/O, then connects and
// authenticates once (bounded by Config.CheckTimeout), so a volume that can
// never work fails at `docker volume create` with the option at fault named.
// Creating an existing name with equal (canonicalized) options succeeds,
// because Docker re-creates volumes for compose files and `docker run -v`;
// with different options it fails.
//
// Mount is counted per caller ID: the first caller mounts at
// MountRoot/<volume name> (the name, never a hash of the remote, so an
// operator can find it), later callers reuse the mount after a bounded
// liveness probe (a dead mount is replaced), and the last Unmount tears it
// down. Remove refuses while any caller holds the volume, never touches
// remote data, and deletes only the empty mountpoint directory (os.Remove,
// after /proc/self/mountinfo shows nothing mounted there).
//
// # The guard mount
//
// With Config.Guard, a read-only empty tmpfs is mounted on the mountpoint
// before the FUSE filesystem, which is stacked on top of it. If the
// filesystem dies, or its unmount only half succeeds, the path shows the
// guard and writes fail with EROFS instead of silently landing on the
// plugin's own disk where no one would ever find them. The guard goes away
// with the last Unmount.
//
// # Locks and timeouts
//
// One driver-wide mutex guards the in-memory table and is never held
// across I/O; each volume has its own operation lock that serializes its
// Mount/Unmount/Remove and is the only lock held while talking to a
// server. Get, List and Path take only the table mutex and do no I/O, so
// `docker volume ls` answers while a server hangs, and a dead server
// blocks only operations on its own volume, each bounded by a timeout.
//
// # State
//
// Volumes, their options (which may include inline secrets, hence 0600 in a
// 0700 directory) and the IDs of callers holding them are written after
// every change with write-temp, fsync, rename, fsync-dir, the previous good
// file kept as state.json.bak. On start a damaged file is copied aside,
// complete entries are salvaged from it, and volumes it lost are taken from
// the backup. The default state directory is MountRoot/.state: the
// propagated mount survives plugin upgrades and dockerd restarts without
// the user creating any host directory, and Docker volume names cannot
// start with ".", so it never collides with a volume. Mounts found under
// MountRoot at start are leftovers of a previous run (the FUSE server
// lived in the old process): their FUSE connections are aborted through
// fusectl (mounted on /sys/fs/fuse/connections, or a private directory,
// if needed), so a process blocked on a wedged previous instance gets
// ECONNABORTED/ENOTCONN instead of hanging, and they are then detached
// lazily. No system call is ever made through such a mount or through
// the plugin's own mounts (mountpoints are created with mkdir(2) and
// inspected through /proc/self/mountinfo): a request to a dead or wedged
// FUSE server can block forever, and a plugin SIGKILLed while waiting on
// its own mount cannot even exit. (go-fuse's mount handshake still opens
// a file in each new mount once, from this process; a kill landing in
// that window leaves exactly such a wedged instance, which the next
// start's abort releases.) Volumes that still had callers are remounted
// in the background once the socket serves.
// Docker never sends Unmount for containers that died with a crashed
// engine, so such restored callers can be stale forever: they keep the
// mount up but do not block Remove, which Docker only calls when none of
// its containers uses the volume (a caller Docker mounts or unmounts
// again after the restart is live and blocks it as usual).
//
// # Options hash
//
// Status.options_hash fingerprints the canonical options (secret values
// left out). With scope "local" every Swarm node has its own volume of a
// name, and Docker does not call Create again for a service whose volume
// already exists on a node, so differing hashes across nodes are how a
// volume that silently points at different remotes is found.
//
// # Scope
//
// Capabilities reports scope "local". A volume is a per-node mount of a
// remote: each node's plugin instance keeps its own state, and Swarm then
// creates the volume on every node that runs a task of a service using it
// (with the options from the service's mount definition), which is what
// the single-node Swarm end-to-end test exercises. "global" would tell
// Docker that one node's Create is visible to all nodes, which is false
// for this plugin; rclone's and vieux's sshfs plugins make the same choice.
package driver
