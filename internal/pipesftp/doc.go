// Package pipesftp connects an SFTP client to pkg/sftp's in-process
// server over a net.Pipe, for tests that need a working SFTP connection
// without an SSH server. The dial function it returns has the shape of
// backend/sftp's Dialer.
package pipesftp
