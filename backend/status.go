package backend

// State is the connection state of a backend that has one (see Statuser).
// It is the one definition of the states that logs, `docker volume
// inspect` and metrics show.
type State string

// The connection states.
const (
	// StateConnected: the storage answers.
	StateConnected State = "connected"
	// StateReconnecting: the connection broke; attempts to restore it go
	// on with backoff and calls wait (bounded) or fail.
	StateReconnecting State = "reconnecting"
	// StateFailed: the storage refused us for a reason retrying will not
	// fix by itself (host key changed or revoked, authentication refused,
	// the remote directory gone). Calls fail at once with Status.LastError;
	// attempts continue rarely, so a fix on the server is noticed.
	StateFailed State = "failed"
	// StateClosed: Close was called.
	StateClosed State = "closed"
	// StateUnmounted: no live backend; reported by the layers above
	// (mounter, driver) for a volume that is not mounted.
	StateUnmounted State = "unmounted"
)

// Status is the connection state of a backend. It never contains a
// secret.
type Status struct {
	State State
	// Reconnects counts connections re-established after a loss.
	Reconnects int
	// LastError is the most recent connection error ("" if none); for
	// StateFailed it is the reason.
	LastError string
	// HostKeyFingerprint is the SHA256 fingerprint of the server's host
	// key seen at the last handshake ("" when there is none).
	HostKeyFingerprint string
	// RejectedNames counts directory entries the server sent whose name
	// was not a single path element; they were dropped and logged.
	RejectedNames int64
}

// Statuser is implemented by backends with a connection that can break
// (SFTP). Backends without one (local) do not implement it and are always
// connected. Status must not block or do I/O.
type Statuser interface {
	Status() Status
}

// StatusOf returns b's status, StateConnected for a backend without a
// connection.
func StatusOf(b Backend) Status {
	if s, ok := b.(Statuser); ok {
		return s.Status()
	}
	return Status{State: StateConnected}
}
