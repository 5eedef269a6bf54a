// Package admin is the small HTTP endpoint an operator points Prometheus
// and curl at: GET /metrics (the process's own prometheus.Registry) and
// GET or PUT /loglevel (the process-wide level, changed without
// restarting anything). The plugin serves it on SFTPFS_METRICS_ADDR,
// `sftpfs mount` on -o metrics=ADDR; both are off by default. It has no
// authentication: bind it to 127.0.0.1 (the plugin uses the host's
// network) unless the network is trusted.
package admin
