// Package sftpserver is a small SFTP server for one directory, built from
// golang.org/x/crypto/ssh and pkg/sftp's request server over a
// backend.Backend (by default backend/local, which is contained with
// os.Root: "../", absolute paths and symlinks cannot reach outside the
// served directory).
//
// It is a development and test aid (`sftpfs sftp-server`): it lets users
// try sftpfs without an OpenSSH setup and lets tests run an SFTP server
// without root. It is not meant to replace OpenSSH in production: it has
// no per-user accounts (every accepted login gets the same tree), no
// rate limiting and no chroot beyond the backend's containment.
//
// Authentication: public keys (Config.AuthorizedKeys), user certificates
// signed by a trusted CA (Config.TrustedUserCAKeys) and an optional
// password (compared in constant time, never logged). Only the "sftp"
// subsystem is offered; shells, commands and port forwarding are refused.
//
// Limitations that come from pkg/sftp's request server (v1.13.12):
//
//   - The attributes of SSH_FXP_OPEN and SSH_FXP_MKDIR are not passed to
//     handlers, so new files get mode 0666 and new directories 0777, each
//     minus the process umask (OpenSSH's defaults when no mode is given).
//     Clients that care chmod afterwards, as sftpfs does.
//   - SSH_FXP_FSTAT and SSH_FXP_FSETSTAT are answered by path, so they see
//     whatever is at the open file's name now, not the open file itself
//     after it was renamed or removed.
//   - Only the extensions posix-rename@openssh.com, hardlink@openssh.com
//     and statvfs@openssh.com are offered: no fsync@openssh.com and no
//     lsetstat@openssh.com, so an sftpfs SFTP backend talking to this
//     server reports the fsync and lsetstat capabilities as missing.
//   - Access time is reported equal to the modification time.
//
// SSH_FXP_RENAME does not replace an existing target (SFTPv3 and OpenSSH
// behaviour); posix-rename@openssh.com does. Errors are mapped to the
// SFTPv3 status codes: not found, permission denied, unsupported, and a
// failure with a message for everything else, as OpenSSH does.
package sftpserver
