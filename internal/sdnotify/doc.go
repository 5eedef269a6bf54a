// Package sdnotify tells systemd that a service is ready (sd_notify(3)
// READY=1) by writing to the datagram socket named in $NOTIFY_SOCKET. It
// is the few lines of the protocol, without cgo or a systemd library, so
// the static binary keeps working without systemd.
package sdnotify
