// Package metered counts what a mount asks of its storage, for the
// Prometheus endpoint of the plugin and of `sftpfs mount -o metrics=ADDR`.
//
// It is a decorator, as restic's backend/logger and backend/limiter are:
// Metrics.Wrap returns a backend.Backend whose every call (and every call
// on the Files it opens) is counted, timed and, on error, classified by
// backend.Errno before being passed through unchanged. Nothing else in
// the code base calls into the metrics per operation.
//
// Connection state and reconnects are not counted here but read at scrape
// time from the wrapped backends that implement backend.Statuser, so the
// values are the same ones `docker volume inspect` shows. Every series
// carries the volume's name in the label "volume".
//
// Metrics hold no package-level state: each process makes one with its own
// prometheus.Registry.
package metered
