// Package backendtest is the conformance suite for backend.Backend
// implementations.
//
// A backend runs it from its own tests with a constructor that returns a
// fresh backend rooted at an empty directory and registers its Close:
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, func(t *testing.T) backend.Backend {
//			b, err := local.New(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { b.Close() })
//			return b
//		})
//	}
//
// Every case is an explicit, named subtest (run one with
// -run 'TestConformance/Rename/NoReplace') and gets its own backend. A case
// is skipped only when the backend reports that it lacks a capability the
// case needs; everything else is a hard requirement of the contract in
// package backend, checked with errors.Is against the io/fs sentinels and
// syscall errnos the contract names.
//
// The randomized cases log their seed; set BACKENDTEST_SEED to replay one.
// The suite is meant to run in seconds on a local directory and stays
// usable over SFTP on loopback: only the 5,001-entry directory case does
// thousands of round trips, and it issues them from a bounded pool of
// concurrent workers.
//
// The permission case cannot make root fail an access check: when the
// test process runs as root and the backend lets it open a mode-0 file,
// the case only logs that. RunBenchmarks offers simple read, write,
// stat, readdir and create/remove benchmarks.
package backendtest
