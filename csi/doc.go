// Package csi is sftpfs as a CSI plugin (`sftpfs csi`): the Identity,
// Controller and Node services of the Container Storage Interface, for
// Docker Swarm cluster volumes (Docker 23+) and Kubernetes. It uses the
// same option table (package options), mounter and FUSE filesystem as
// `sftpfs serve` and `sftpfs mount`; cmd/sftpfs only wires the socket.
//
// # Why a CSI plugin
//
// Swarm hands `docker secret`s to containers, never to classic volume
// plugins, so with `sftpfs serve` an operator copies the private key into
// every node's plugin secrets directory. A CSI plugin receives secrets in
// the request itself: Swarm resolves `docker volume create --secret
// KEY=SECRET` from its secret store at create, stage and publish time, and
// Kubernetes sends the secrets named by the StorageClass or PV.
//
// # Secrets
//
// The secrets map may hold identity (the private key file's content; also
// ssh-privatekey, the key of Kubernetes' ssh-auth secrets), password,
// passphrase, known_hosts (file content) and hostkey (pins). Anything else
// is refused by key name. Options that carry or name secrets (identity,
// identity_b64, password, password_file, passphrase_file, known_hosts) are
// refused as parameters: the orchestrator stores parameters and shows them
// to anyone who can inspect the volume, and returns them as volume_context.
//
// Each secret is written to an anonymous memory file (memfd_create) and
// handed to the option parser as a file option whose name resolves under
// /proc/self/fd. The backend then works unchanged: it re-reads keys,
// passwords and known_hosts at every reconnect, and x/crypto's knownhosts
// only reads files. Nothing touches a disk; the memory files are closed
// when the mount's FUSE session ends (not at unmount: a lazily detached
// mount still serves its last users and may reconnect), so a descriptor
// number is never reused under a live backend. Errors name the secret
// ("the identity secret"), never its content; the gRPC log records the
// method, volume, code and error text, never a request.
//
// # Controller
//
// CreateVolume validates the parameters with the option table, connects
// and authenticates once with the secrets (so a volume that can never work
// fails at create, as `docker volume create` does with the classic
// plugin), and returns the canonical options as volume_context: the only
// way Swarm passes options to the nodes. The volume ID is the name. A
// repeated create with equal canonical options returns the same volume
// without connecting; other options give ALREADY_EXISTS. The list of
// volumes (no secret in it) is kept in Config.StateDir so this survives a
// restart. DeleteVolume forgets the volume and never touches remote data.
// There is nothing to attach (no ControllerPublish), no snapshot, no size.
// Every access mode of the mount access type is accepted: the storage is a
// shared directory (MULTI_NODE_MULTI_WRITER); reader-only modes mount
// read-only. Block access is refused.
//
// # Node: one FUSE mount per volume per node, bind mounts per publish
//
// NodeStageVolume connects and mounts the FUSE filesystem at the staging
// path; NodePublishVolume bind-mounts it at each target, applying the
// publish's readonly and its bind flags (ro, nosuid, nodev, noexec,
// noatime) with a remount of the bind; NodeUnpublishVolume removes only
// that bind mount and the target directory; NodeUnstageVolume unmounts
// the FUSE filesystem. Chosen over one FUSE mount per publish because:
//   - Swarm: before moby/swarmkit#3116 Swarm did not work with plugins
//     that do not stage, and it passes the same secrets to stage and
//     publish, so staging costs nothing there.
//   - One SSH connection and one kernel cache per volume per node,
//     however many containers use it: pods on one node see each other's
//     writes at once, as with a local directory, instead of after the
//     attribute timeout of another mount.
//   - Unpublish is a plain unmount of a bind: it cannot disturb the other
//     publishes, and read-only per publish is enforced by the kernel.
//
// The price: on Kubernetes the secrets must be given for the stage call
// (csi.storage.k8s.io/node-stage-secret-name, nodeStageSecretRef), and
// options in volume_capability mount flags (name=value from the option
// table) apply per volume per node, at stage.
//
// NodeGetVolumeStats reports the server's capacity (statvfs) and, as the
// VolumeCondition, whether the server answers: a bounded probe of the
// backend (mounter.Mounted.Alive, which never touches the mount itself)
// and the connection state. It is abnormal while the server is
// unreachable and normal again once the backend has reconnected, which it
// does by itself.
//
// # Restarts
//
// The FUSE servers live in this process. When it stops, Shutdown
// unmounts every publish and stage; a plugin that was killed leaves dead
// mounts, which the next stage or publish at the same path detaches
// lazily before mounting afresh. Workloads that were running need a
// restart either way, as with any FUSE-based CSI driver.
package csi
