// Package mounter is the one code path that turns a parsed options.Config
// into a live FUSE mount. `sftpfs mount` and the Docker volume driver both
// use it, so a fix to mounting, unmounting or liveness checks reaches both.
//
// Unmounting first asks the kernel politely (go-fuse retries while the
// mount is busy) and then detaches lazily (MNT_DETACH), because a volume
// that cannot be removed because some process still has a file open would
// otherwise block Docker forever; the backend is closed once the kernel
// lets go of the last file.
//
// Alive checks a mount from inside the process (the FUSE server still
// running, the mount table still showing its connection on the
// mountpoint, the backend answering a Stat within the deadline) and never
// makes a system call on the mountpoint: the request would be served by
// this same process, and a process SIGKILLed while one of its threads
// waits for its own FUSE server cannot finish exiting.
package mounter
