package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sftpfs/sftpfs/options"
	"github.com/sftpfs/sftpfs/sshcompat"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// command is one `sftpfs` subcommand. Every run function returns the exit
// status: 0 success, 1 failure, 2 usage error.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

// commands lists the subcommands in help order; each lives in its own
// file.
func commands() []command {
	return []command{
		{"mount", "mount SOURCE on MOUNTPOINT in the foreground (`sftpfs SOURCE MOUNTPOINT`: in the background, like sshfs)", runMount},
		{"serve", "serve the Docker volume plugin API (the plugin's entrypoint)", runServe},
		{"csi", "serve the CSI plugin (Swarm cluster volumes, Kubernetes; docs/csi.md)", runCSI},
		{"sftp-server", "serve a local directory over SFTP (tests and the demo)", runSFTPServer},
		{"version", "print the version", runVersion},
		{"help", "print this help and all mount options", nil},
	}
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	case "-v", "-V", "-version", "--version":
		// Alone only: in `sftpfs -v HOST:DIR MNT` (sshfs) -v is verbose.
		if len(args) == 1 {
			return runVersion(nil, stdout, stderr)
		}
	}
	for _, c := range commands() {
		if c.name == args[0] && c.run != nil {
			return c.run(args[1:], stdout, stderr)
		}
	}
	if sshcompat.LooksLikeSource(args[0]) {
		return runHelper(args, stdout, stderr)
	}
	fmt.Fprintf(stderr, "sftpfs: unknown command %q; run `sftpfs help` for the list\n", args[0])
	return 2
}

func usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("usage: sftpfs COMMAND [arguments]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-12s %s\n", c.name, c.summary)
	}
	b.WriteString("\n" + mountUsage + "\nmount options (-o name=value; the same names work as Docker volume options):\n")
	b.WriteString(options.Text())
	fmt.Fprint(w, b.String())
}
