package metered

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/sftpfs/sftpfs/backend"
)

// Metrics is the set of per-volume metrics of one process.
type Metrics struct {
	ops      *prometheus.CounterVec   // volume, op
	errs     *prometheus.CounterVec   // volume, op, errno
	read     *prometheus.CounterVec   // volume
	written  *prometheus.CounterVec   // volume
	latency  *prometheus.HistogramVec // volume, op
	mounts   *prometheus.GaugeVec     // volume
	stateDsc *prometheus.Desc
	reconDsc *prometheus.Desc

	mu   sync.Mutex
	live map[*Backend]uint64 // wrapped backends not yet closed -> order of wrapping
	seq  uint64
}

// New makes the metrics and registers them on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sftpfs_operations_total",
			Help: "Storage operations by kind (stat, readdir, read, write, ...), successful or not.",
		}, []string{"volume", "op"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sftpfs_operation_errors_total",
			Help: "Storage operations that failed, by kind and by the errno the application got (EIO for errors without POSIX meaning: lost connection, timeout).",
		}, []string{"volume", "op", "errno"}),
		read: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sftpfs_read_bytes_total",
			Help: "Bytes read from the storage.",
		}, []string{"volume"}),
		written: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sftpfs_written_bytes_total",
			Help: "Bytes written to the storage.",
		}, []string{"volume"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sftpfs_operation_duration_seconds",
			Help: "Time a storage operation took, including waiting for a reconnect.",
			// 100µs (local disk) to 60s (op_timeout and beyond).
			Buckets: prometheus.ExponentialBucketsRange(0.0001, 60, 16),
		}, []string{"volume", "op"}),
		mounts: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sftpfs_mounts_in_use",
			Help: "Containers (Docker mount requests) using the volume on this node.",
		}, []string{"volume"}),
		stateDsc: prometheus.NewDesc("sftpfs_connection_state",
			"1 for the volume's current connection state (connected, reconnecting, failed), 0 for the others. Only mounted volumes have series.",
			[]string{"volume", "state"}, nil),
		reconDsc: prometheus.NewDesc("sftpfs_reconnects_total",
			"Connections re-established after a loss, for the volume's current mount.",
			[]string{"volume"}, nil),
		live: map[*Backend]uint64{},
	}
	reg.MustRegister(m.ops, m.errs, m.read, m.written, m.latency, m.mounts, (*statusCollector)(m))
	return m
}

// SetMounts records how many callers use the volume.
func (m *Metrics) SetMounts(volume string, n int) {
	m.mounts.WithLabelValues(volume).Set(float64(n))
}

// Forget drops every series of a removed volume.
func (m *Metrics) Forget(volume string) {
	l := prometheus.Labels{"volume": volume}
	m.ops.DeletePartialMatch(l)
	m.errs.DeletePartialMatch(l)
	m.read.DeletePartialMatch(l)
	m.written.DeletePartialMatch(l)
	m.latency.DeletePartialMatch(l)
	m.mounts.DeletePartialMatch(l)
}

// statusCollector reads the connection state of the live backends at
// scrape time.
type statusCollector Metrics

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.stateDsc
	ch <- c.reconDsc
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	// A volume can have two live backends for a while: a remount while
	// containers still hold the old mount. The newest is the one new
	// containers get, so it speaks for the volume.
	c.mu.Lock()
	live := make(map[string]*Backend, len(c.live))
	for b, n := range c.live {
		if cur, ok := live[b.vol]; !ok || c.live[cur] < n {
			live[b.vol] = b
		}
	}
	c.mu.Unlock()
	for v, b := range live {
		st := backend.StatusOf(b.b)
		for _, s := range []backend.State{backend.StateConnected, backend.StateReconnecting, backend.StateFailed} {
			val := 0.0
			if st.State == s {
				val = 1
			}
			ch <- prometheus.MustNewConstMetric(c.stateDsc, prometheus.GaugeValue, val, v, string(s))
		}
		ch <- prometheus.MustNewConstMetric(c.reconDsc, prometheus.CounterValue, float64(st.Reconnects), v)
	}
}

// opNames are the values of the op label.
func opNames() []string {
	return []string{"stat", "lstat", "readdir", "open", "mkdir", "remove", "rmdir", "rename", "symlink", "readlink",
		"link", "chmod", "chown", "chtimes", "truncate", "statfs", "read", "write", "ftruncate", "fsync", "fstat", "close"}
}

// opMetrics are the series of one op of one volume, looked up once at
// Wrap: a label lookup hashes the label values under a lock on every
// call, a map of ready series does not.
type opMetrics struct {
	n prometheus.Counter
	d prometheus.Observer
}

// Wrap returns b instrumented under the volume's name. Closing the result
// closes b and stops its state series.
func (m *Metrics) Wrap(volume string, b backend.Backend) *Backend {
	w := &Backend{b: b, m: m, vol: volume, read: m.read.WithLabelValues(volume), written: m.written.WithLabelValues(volume),
		ops: map[string]opMetrics{}}
	for _, op := range opNames() {
		w.ops[op] = opMetrics{n: m.ops.WithLabelValues(volume, op), d: m.latency.WithLabelValues(volume, op)}
	}
	m.mu.Lock()
	m.seq++
	m.live[w] = m.seq
	m.mu.Unlock()
	return w
}

// Backend is a backend.Backend whose calls are counted.
type Backend struct {
	b             backend.Backend
	m             *Metrics
	vol           string
	read, written prometheus.Counter
	ops           map[string]opMetrics // read-only after Wrap
}

var (
	_ backend.Backend  = (*Backend)(nil)
	_ backend.Statuser = (*Backend)(nil)
)

// observe records one call of kind op that started at start.
func (w *Backend) observe(op string, start time.Time, err error) {
	om := w.ops[op]
	om.n.Inc()
	om.d.Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, io.EOF) {
		errno, _ := backend.Errno(err)
		name := unix.ErrnoName(errno)
		if name == "" {
			name = errno.Error()
		}
		w.m.errs.WithLabelValues(w.vol, op, name).Inc()
	}
}

// Status passes the wrapped backend's status through (StateConnected for
// one without a connection).
func (w *Backend) Status() backend.Status { return backend.StatusOf(w.b) }

// Unwrap returns the wrapped backend.
func (w *Backend) Unwrap() backend.Backend { return w.b }

func (w *Backend) Stat(ctx context.Context, name string) (backend.FileInfo, error) {
	t := time.Now()
	fi, err := w.b.Stat(ctx, name)
	w.observe("stat", t, err)
	return fi, err
}

func (w *Backend) Lstat(ctx context.Context, name string) (backend.FileInfo, error) {
	t := time.Now()
	fi, err := w.b.Lstat(ctx, name)
	w.observe("lstat", t, err)
	return fi, err
}

func (w *Backend) ReadDir(ctx context.Context, name string) ([]backend.FileInfo, error) {
	t := time.Now()
	fis, err := w.b.ReadDir(ctx, name)
	w.observe("readdir", t, err)
	return fis, err
}

func (w *Backend) OpenFile(ctx context.Context, name string, flag int, perm fs.FileMode) (backend.File, error) {
	t := time.Now()
	f, err := w.b.OpenFile(ctx, name, flag, perm)
	w.observe("open", t, err)
	if err != nil {
		return nil, err
	}
	return &File{f: f, w: w}, nil
}

func (w *Backend) Mkdir(ctx context.Context, name string, perm fs.FileMode) error {
	t := time.Now()
	err := w.b.Mkdir(ctx, name, perm)
	w.observe("mkdir", t, err)
	return err
}

func (w *Backend) Remove(ctx context.Context, name string) error {
	t := time.Now()
	err := w.b.Remove(ctx, name)
	w.observe("remove", t, err)
	return err
}

// Unlink passes backend.Unlinker through, counted as a remove.
func (w *Backend) Unlink(ctx context.Context, name string) error {
	t := time.Now()
	err := backend.Unlink(ctx, w.b, name)
	w.observe("remove", t, err)
	return err
}

func (w *Backend) Rmdir(ctx context.Context, name string) error {
	t := time.Now()
	err := w.b.Rmdir(ctx, name)
	w.observe("rmdir", t, err)
	return err
}

func (w *Backend) Rename(ctx context.Context, oldname, newname string, flags backend.RenameFlags) error {
	t := time.Now()
	err := w.b.Rename(ctx, oldname, newname, flags)
	w.observe("rename", t, err)
	return err
}

func (w *Backend) Symlink(ctx context.Context, target, name string) error {
	t := time.Now()
	err := w.b.Symlink(ctx, target, name)
	w.observe("symlink", t, err)
	return err
}

func (w *Backend) Readlink(ctx context.Context, name string) (string, error) {
	t := time.Now()
	s, err := w.b.Readlink(ctx, name)
	w.observe("readlink", t, err)
	return s, err
}

func (w *Backend) Link(ctx context.Context, oldname, newname string) error {
	t := time.Now()
	err := w.b.Link(ctx, oldname, newname)
	w.observe("link", t, err)
	return err
}

func (w *Backend) Chmod(ctx context.Context, name string, mode fs.FileMode) error {
	t := time.Now()
	err := w.b.Chmod(ctx, name, mode)
	w.observe("chmod", t, err)
	return err
}

func (w *Backend) Chown(ctx context.Context, name string, uid, gid int) error {
	t := time.Now()
	err := w.b.Chown(ctx, name, uid, gid)
	w.observe("chown", t, err)
	return err
}

func (w *Backend) Chtimes(ctx context.Context, name string, atime, mtime time.Time) error {
	t := time.Now()
	err := w.b.Chtimes(ctx, name, atime, mtime)
	w.observe("chtimes", t, err)
	return err
}

func (w *Backend) Truncate(ctx context.Context, name string, size int64) error {
	t := time.Now()
	err := w.b.Truncate(ctx, name, size)
	w.observe("truncate", t, err)
	return err
}

func (w *Backend) StatFS(ctx context.Context, name string) (backend.StatFS, error) {
	t := time.Now()
	s, err := w.b.StatFS(ctx, name)
	w.observe("statfs", t, err)
	return s, err
}

// Capabilities is not a storage operation and is not counted.
func (w *Backend) Capabilities() backend.Capabilities { return w.b.Capabilities() }

// Close closes the wrapped backend; its state series go away.
func (w *Backend) Close() error {
	w.m.mu.Lock()
	delete(w.m.live, w)
	w.m.mu.Unlock()
	return w.b.Close()
}

// File is a backend.File whose calls are counted.
type File struct {
	f backend.File
	w *Backend
}

var _ backend.File = (*File)(nil)

func (f *File) ReadAt(p []byte, off int64) (int, error) {
	t := time.Now()
	n, err := f.f.ReadAt(p, off)
	f.w.read.Add(float64(n))
	f.w.observe("read", t, err)
	return n, err
}

func (f *File) WriteAt(p []byte, off int64) (int, error) {
	t := time.Now()
	n, err := f.f.WriteAt(p, off)
	f.w.written.Add(float64(n))
	f.w.observe("write", t, err)
	return n, err
}

func (f *File) Truncate(size int64) error {
	t := time.Now()
	err := f.f.Truncate(size)
	f.w.observe("ftruncate", t, err)
	return err
}

func (f *File) Sync() error {
	t := time.Now()
	err := f.f.Sync()
	f.w.observe("fsync", t, err)
	return err
}

func (f *File) Stat() (backend.FileInfo, error) {
	t := time.Now()
	fi, err := f.f.Stat()
	f.w.observe("fstat", t, err)
	return fi, err
}

func (f *File) Close() error {
	t := time.Now()
	err := f.f.Close()
	f.w.observe("close", t, err)
	return err
}
