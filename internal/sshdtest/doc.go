// Package sshdtest runs a real OpenSSH sshd for tests, on 127.0.0.1 unless
// told another address of this machine.
//
// Tests about SSH behaviour (host key checking, certificates, reconnects
// after a server restart, what OpenSSH's SFTP server really answers) must
// talk to OpenSSH itself, not to a Go imitation, so this package writes a
// throwaway configuration, keys and known_hosts file into t.TempDir() and
// runs /usr/sbin/sshd -D -e on a free loopback port.
//
// Options.HostKeyTypes gives a server several host keys, like a stock
// install (rsa, ecdsa, ed25519), for host key negotiation tests.
// NewNetNS makes a network namespace with one veth pair to the test's
// namespace (deleted at cleanup, also after a failure), Options.NetNS runs
// sshd inside one, and StartJump combines them into a target that only a
// bastion can reach, for proxy_jump tests. These need ip (iproute2).
//
// sshd's privilege separation needs root, so Start requires root and the
// sshd binary through testenv.Require: outside CI the test is skipped,
// in CI (CI=true) it fails.
//
// Every key is generated in Go at Start; nothing from the host's
// ~/.ssh or /etc/ssh is read or changed. Stop kills the listener and every
// per-connection sshd process it forked, so a Restart really drops the
// clients' connections, as a real server restart would.
package sshdtest
