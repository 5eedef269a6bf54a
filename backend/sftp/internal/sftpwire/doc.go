// Package sftpwire is a minimal SFTP version 3 client for the file data
// path: OPEN (with attributes, so a create carries its mode), READ,
// WRITE, FSTAT, FSETSTAT, CLOSE and fsync@openssh.com over one stream
// (an "sftp" subsystem session of an SSH connection).
//
// It exists for CPU per byte. pkg/sftp v1 allocates a buffer for every
// response and hands it through goroutines before the data reaches the
// caller; here one receive goroutine reads each reply's header and
// copies a DATA payload straight from the stream into the buffer of the
// caller waiting for it, so a READ costs no allocation and one copy out
// of the SSH channel. A request is sent as its header plus the start of
// its data in one write, which fills the first SSH packet (x/crypto/ssh
// makes at least one packet per channel write), and the rest of the data
// in a second write straight from the caller's buffer. Call objects with
// their completion channels are pooled; a semaphore bounds the requests
// in flight, and the receive goroutine releases a request's slot when
// its reply arrives, so that callers holding some slots while waiting
// for more cannot deadlock.
//
// Errors: a server status is a *StatusError carrying the SFTP code (the
// caller maps it to an errno), matching io/fs's sentinels for "no such
// file" and "permission denied" as pkg/sftp's does; a READ at end of
// file returns io.EOF. A broken stream fails every pending and later
// call with an error wrapping ErrConnLost that carries no errno of the
// socket, since it says nothing about the file.
//
// Everything else (names, directories, links) stays with pkg/sftp.
package sftpwire
