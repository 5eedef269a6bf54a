// Command bench measures sftpfs against sshfs and OpenSSH's own sftp
// client on one loopback OpenSSH server, so that the numbers in
// docs/perf.md compare like with like (issue 5).
//
// It starts its own sshd (internal-sftp, aes128-gcm only) serving a tmpfs,
// builds the data set there, and then, for N rounds, runs every workload
// against every contender, interleaved (the contender order rotates per
// round) so that drift of the machine hits all of them alike. Before every
// measurement the page cache is dropped and the mount is made anew, so
// each measurement starts cold on the client side (the server's data stays
// in tmpfs: the benchmark is about the client and the transport, not
// about the server's disk). Before every measurement it also refills the
// page allocator with just-used memory, and holds back the VM's free page
// reporting for the run, so that no contender pays the host's first-touch
// faults for its page cache (warm.go).
//
// It prints a Markdown table of medians and the ratios sftpfs/sshfs and
// sftpfs/raw, each with the lowest and highest ratio of a single round
// in brackets (a round measures every contender back to back), so that
// a table shows how far this machine's noise moves a row; -record
// appends it, with the exact command and the
// machine, to docs/perf.md. -smoke uses tiny sizes and fails when any
// contender fails, so CI notices when the harness rots.
//
// It needs root (mounting, dropping caches, tmpfs), /dev/fuse, sshd,
// sftp, ssh, sshfs, git, ls, find and dd.
//
// Raw sftp takes part where OpenSSH's client does the same job: get and
// put of the sequential file, batch sessions of rm and rename commands
// (unlink and rename rows) and one get session per file at once (the
// parallel dd row); the time of an empty session is subtracted. Run it through `make bench` or
// scripts/bench.sh.
package main
