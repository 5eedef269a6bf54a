// Package swarm holds the multi-node Docker Swarm end-to-end tests of the
// sftpfs plugin (make e2e-swarm).
//
// The fixture builds a three-node Swarm on one machine: the default Docker
// engine is the manager, and two more engines run in network and UTS
// namespaces the test creates (swn1, swn2), joined by a bridge (swbr0,
// 10.77.0.0/24) whose root-namespace address 10.77.0.1 is where a real
// OpenSSH sshd serves the one SFTP remote every node uses. The plugin and a
// FROM-scratch busybox image are installed on each node before it joins,
// because the Swarm scheduler only places tasks with a volume driver on
// nodes whose description lists that plugin.
//
// The extra engines are started with nsenter --net (not `ip netns exec`,
// whose private /sys hides the cgroup mounts dockerd needs) and with data
// and exec roots outside /var/lib/docker and /run/docker (Docker's parent
// mount lookup is a string prefix match, and /var/lib/docker-x would
// resolve to the default engine's shared mount and break pivot_root).
//
// The tests are opt-in (SFTPFS_E2E_SWARM=1, which `make e2e-swarm` sets):
// they take over the default engine's Swarm state and must not run beside
// the single-engine e2e package, which `go test ./...` would do.
//
// Teardown, also run before setup to sweep a crashed run's leftovers,
// removes every namespace, veth, bridge, iptables rule, daemon, mount,
// cgroup and directory the fixture made, and the test fails if any is
// left.
package swarm
