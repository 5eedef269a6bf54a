// Command sftpfs mounts SFTP servers (or local directories) with FUSE,
// standalone or as a Docker volume plugin. It is one static binary with
// its own SSH and FUSE code; it never runs ssh or sshfs.
//
//	sftpfs mount [-o name=value,...]... SOURCE MOUNTPOINT   mount in the foreground
//	sftpfs SOURCE MOUNTPOINT [-o ...]                      sshfs / mount.fuse3 form: background once mounted
//	sftpfs serve                                           the Docker plugin's entrypoint
//	sftpfs sftp-server -root DIR ...                       a small SFTP server (tests, demo)
//	sftpfs version | help
//
// Each subcommand lives in its own file and is listed in commands() in
// main.go. Options are documented in package options and README.md; the
// sshfs, ssh_config and mount(8) compatibility is package sshcompat, so
// mount.go only wires it to mounter.
package main
