// Package mounter is the one code path that turns a parsed options.Config
// into a live FUSE mount. `sftpfs mount` and the Docker volume driver both
// use it, so a fix to mounting, unmounting or liveness checks reaches both.
//
// Unmounting first asks the kernel politely (go-fuse retries while the
// mount is busy) and then detaches lazily (MNT_DETACH), because a volume
// that cannot be removed because some process still has a file open would
// otherwise block Docker forever; the backend is closed once the kernel
// lets go of the last file.
package mounter
