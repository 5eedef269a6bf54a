// Package sshcompat makes the sftpfs command line work with the SSH setups
// people already have: sshfs command lines and flags, mount(8) and
// /etc/fstab option lists, and ~/.ssh/config.
//
// Everything here is pure logic over strings and files, so cmd/sftpfs only
// wires it together:
//
//   - ParseArgs reads `sftpfs mount ARGS` and the sshfs / mount-helper form
//     `sftpfs SOURCE MOUNTPOINT [-o ...]` (flags -o, -p, -F, -f, -d).
//   - Translate maps every -o item to sftpfs options (package options) or
//     to a directive for the command (foreground, ssh_config file,
//     StrictHostKeyChecking=accept-new). mount(8)'s generic options are
//     accepted the way mount(8) treats them; sshfs and ssh names are mapped
//     where they mean something here and refused with a reason and the
//     option to use otherwise.
//   - ApplySSHConfig fills options that were not given explicitly from an
//     ssh_config file parsed by github.com/kevinburke/ssh_config, with
//     OpenSSH's precedence: the command line first, then the first value
//     obtained from the file.
//   - AcceptNew records a first-seen host key in a known_hosts file, as
//     OpenSSH's StrictHostKeyChecking=accept-new does.
//
// The Docker plugin does not use this package: volumes have no home
// directory, no ssh_config and no mount(8).
package sshcompat
