// Package options is the single table of sftpfs mount options and their
// parser.
//
// The same table serves `sftpfs mount -o ...`, Docker volume options
// (`docker volume create -o ...`, compose `driver_opts`, `--mount
// volume-opt=...`), the README's option table (Markdown) and validation, so
// the CLI, the plugin and the documentation can never disagree about what
// an option is called, what it defaults to or what it accepts.
//
// # Names
//
// Option names are snake_case. Matching ignores case and treats "-" and
// "_" as absent, so "connect_timeout", "connect-timeout" and the OpenSSH
// spelling "ConnectTimeout" are the same option. A few vieux/sshfs names
// are accepted as aliases (IdentityFile for identity); sshfs and ssh
// options that have no sftpfs equivalent are rejected with a message that
// names the replacement, if there is one.
//
// # Values
//
// Booleans accept true/false/yes/no/on/off/1/0 and an empty value (true),
// so "-o ro" works. Durations use Go syntax ("15s", "1m30s") or a bare
// number of seconds (as OpenSSH does). Modes are octal ("022"). Lists are
// separated by commas; on the command line, where "-o" itself splits on
// commas, write "\," or repeat the option (-o hostkey=A -o hostkey=B).
//
// # Files and secrets
//
// Options of kind File name a file. For `sftpfs mount` a relative name is
// relative to the current directory. In the Docker plugin every such value
// is a name inside the plugin's secrets directory: absolute paths and ".."
// are rejected, except that the vieux/sshfs option IdentityFile=/x/y/id_rsa
// maps to the name id_rsa for migration. Options marked Secret carry secret
// values inline (password, identity_b64); their values never appear in
// errors, logs or Redact output.
package options
