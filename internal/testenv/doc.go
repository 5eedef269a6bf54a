// Package testenv decides what a test does when something it needs (a
// tool, root, /dev/fuse, a running service) is missing.
//
// Outside CI a missing requirement skips the test with a message naming
// what is missing, so developers without sshd or FUSE can still run the
// rest of the suite. In CI (environment variable CI=true) the same
// situation fails the test, because a silently skipped test there would
// hide a broken environment and give false confidence.
package testenv
