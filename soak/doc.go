// Package soak checks that sftpfs volumes keep their promise under network
// trouble: nothing written and closed without error is lost or corrupted,
// no file operation hangs past its bound, and a mount recovers once the
// network does.
//
// The pieces are deliberately split so that the FUSE mounts and the I/O
// live in different processes (a process must never do I/O on a FUSE mount
// it serves itself under fault injection, since a stuck request would then
// also stop the test that should report it):
//
//   - RunWorker is the body of a worker process. It writes, reads back,
//     overwrites, renames and deletes files in its own directory of a
//     mount, times every system call, and appends one journal line per
//     acknowledged (or failed) operation to a file outside the mount.
//   - Verify replays the journals against the server's directory, read
//     directly rather than through the mount, and reports every
//     acknowledged byte that is missing or different.
//
// The test in this package (TestSoak, `make soak`) starts a real OpenSSH
// sshd, mounts several volumes through internal/faultproxy, re-executes
// the test binary as the workers, and injects connection drops, stalls,
// refused connections and sshd restarts at random intervals. Where Docker
// is present (required when CI=true) it also installs the sftpfs plugin
// with one volume behind each fault proxy and runs busybox containers
// (containers_test.go) that write, read back and delete files through
// them, journalling in the same format, so their acknowledged files are
// verified on the server as well. Its budget and load are set by
// environment variables; see soak_test.go and SOAK_CONTAINERS.
package soak
