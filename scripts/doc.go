// Package scripts holds the shell scripts that build, install, upgrade,
// push and remove the Docker plugin (build-plugin.sh, plugin-push.sh,
// plugin-upgrade.sh, plugin-rm.sh, plugin-lib.sh) and Go tests of the parts
// that need no Docker engine: the host architecture detection (with a fake
// `uname -m` on PATH) and the arm64 cross-build, whose binary must be a
// static aarch64 ELF. What the scripts do with Docker (upgrade in place,
// refusing to remove a plugin with volumes) is tested in e2e
// (TestPluginFleet). bench.sh runs the benchmark harness (bench/) and
// lab.sh the experiments docs/perf.md quotes that the harness cannot
// make (two mounts read side by side, the Go runtime's wake-ups under
// `perf stat`, many files streamed at once with the mount's peak RSS);
// `make bench-smoke` runs both with tiny sizes in CI. The package has no
// non-test code.
package scripts
