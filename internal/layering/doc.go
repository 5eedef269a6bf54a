// Package layering holds only a test: it checks the import graph of
// sftpfs against the intended layers, so that a new upward import (a
// backend importing the FUSE layer, the FUSE layer importing a concrete
// backend, ...) fails CI with a message naming it instead of slowly
// tangling the packages.
//
// The layers, bottom up:
//
//   - internal/...: helpers, importing no other sftpfs package.
//   - backend: the storage contract.
//   - backend/...: the backends (sftp, local) and the conformance suite;
//     they know the contract, nothing above it, and not each other.
//   - fusefs: the FUSE layer, written against the contract only.
//   - sftpserver: serves any backend over SFTP.
//   - options: the one option table; it fills the configuration types of
//     the layers it configures (sftp.Config, fusefs.Options) and imports
//     nothing else of ours.
//   - mounter: builds a backend and a mount from options.
//   - driver: the Docker volume driver, on top of mounter and options,
//     knowing no concrete backend.
//   - cmd/...: wires everything together; nothing imports it.
//
// Only the packages' own imports count: tests may reach across layers
// (the FUSE tests mount the real SFTP backend).
package layering
