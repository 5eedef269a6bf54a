package soak

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// WorkerConfig tells one worker process what to do.
type WorkerConfig struct {
	// Dir is the worker's own directory inside a mount; it is created
	// if missing. Nothing else writes there.
	Dir string
	// Journal is a file outside any mount that the worker appends its
	// journal lines to.
	Journal string
	// Until is when the worker stops starting new operations.
	Until time.Time
	// Seed makes the sequence of operations and contents reproducible.
	Seed uint64
	// HangLimit is the longest a single system call may take before it
	// is recorded as a hang.
	HangLimit time.Duration
	// MaxFileSize bounds the size of the files written.
	MaxFileSize int
}

// Journal record kinds, one per line: "<kind> <fields...>". Names never
// contain spaces.
const (
	recWrite      = "W"  // W name size sha256: written and closed without error
	recAmbiguous  = "A"  // A name: an overwrite or delete failed; content unknown
	recDeleted    = "D"  // D name: removed without error
	recRenamed    = "R"  // R old new: renamed without error
	recRenameFail = "r"  // r old new sha256: rename failed; content is at old or new
	recRead       = "V"  // V name bytes: read back and matched
	recCorrupt    = "C"  // C name detail: read back without error but different
	recError      = "E"  // E op detail: an error surfaced to the application
	recHang       = "H"  // H op millis: a system call took longer than HangLimit
	recOps        = "O"  // O count: operations started (last line wins)
	recList       = "L"  // L name: directory listing succeeded
	recListBad    = "LB" // LB detail: a listing missed an acknowledged file
)

// worker is the state of one RunWorker.
type worker struct {
	cfg   WorkerConfig
	rng   *rand.Rand
	j     *os.File
	files map[string]string // name -> sha256 of acknowledged content
	sizes map[string]int
	next  int
	ops   int
	// errs counts recError lines; the loop backs off while operations
	// keep failing, as a real application retrying would, so error counts
	// reflect outages instead of how fast a loop can spin on EIO.
	errs int
}

// RunWorker runs the operation loop until cfg.Until, appending journal
// lines as it goes. Failures of the file system are journal lines, not
// errors; the returned error is only about the worker itself (journal not
// writable, bad configuration).
func RunWorker(cfg WorkerConfig) error {
	if cfg.Dir == "" || cfg.Journal == "" || cfg.HangLimit <= 0 || cfg.MaxFileSize <= 0 {
		return errors.New("soak worker: Dir, Journal, HangLimit and MaxFileSize are required")
	}
	j, err := os.OpenFile(cfg.Journal, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("soak worker: opening journal: %w", err)
	}
	defer j.Close()
	w := &worker{
		cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), j: j,
		files: map[string]string{}, sizes: map[string]int{},
	}
	// The directory may be created while the network is down: retry
	// until it exists or time is up.
	for {
		err := w.timed("mkdir", func() error { return os.MkdirAll(cfg.Dir, 0o755) })
		if err == nil {
			break
		}
		w.record(recError, "mkdir", errText(err))
		if time.Now().After(cfg.Until) {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	backoff := time.Duration(0)
	for time.Now().Before(cfg.Until) {
		w.ops++
		errsBefore := w.errs
		switch p := w.rng.IntN(100); {
		case p < 40 || len(w.files) == 0:
			w.create()
		case p < 65:
			w.readBack()
		case p < 75:
			w.overwrite()
		case p < 83:
			w.rename()
		case p < 92:
			w.remove()
		default:
			w.list()
		}
		if w.ops%20 == 0 {
			w.record(recOps, strconv.Itoa(w.ops))
		}
		if w.errs == errsBefore {
			backoff = 0
			continue
		}
		// 10 ms doubling up to 500 ms while failures go on.
		backoff = min(max(2*backoff, 10*time.Millisecond), 500*time.Millisecond)
		time.Sleep(backoff)
	}
	w.record(recOps, strconv.Itoa(w.ops))
	return nil
}

func (w *worker) record(kind string, fields ...string) {
	if kind == recError {
		w.errs++
	}
	line := kind + " " + strings.Join(fields, " ") + "\n"
	// One write per line with O_APPEND keeps lines whole even if the
	// worker is killed.
	if _, err := w.j.WriteString(line); err != nil {
		fmt.Fprintf(os.Stderr, "soak worker: journal write failed: %v\n", err)
		os.Exit(3)
	}
}

// errText makes an error one journal field: its errno name when there is
// one (what the application sees), else its text without spaces.
func errText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return strconv.Itoa(int(errno)) + ":" + strings.ReplaceAll(errno.Error(), " ", "_")
	}
	return strings.ReplaceAll(err.Error(), " ", "_")
}

// timed runs one system call and records a hang when it took too long.
func (w *worker) timed(op string, fn func() error) error {
	start := time.Now()
	err := fn()
	if d := time.Since(start); d > w.cfg.HangLimit {
		w.record(recHang, op, strconv.FormatInt(d.Milliseconds(), 10))
	}
	return err
}

// content returns size bytes of reproducible pseudo-random data.
func (w *worker) content() []byte {
	size := w.rng.IntN(w.cfg.MaxFileSize/8 + 1)
	if w.rng.IntN(8) == 0 {
		size = w.rng.IntN(w.cfg.MaxFileSize + 1)
	}
	b := make([]byte, size)
	r := rand.NewChaCha8([32]byte{byte(w.next), byte(w.ops), byte(size), byte(w.cfg.Seed)})
	_, _ = r.Read(b)
	return b
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// writeFile writes data to name with the given open flags in random chunk
// sizes, sometimes with fsync, and closes it. Any error is returned (and
// recorded); the close is attempted even after a write error.
func (w *worker) writeFile(name string, flag int, data []byte) error {
	p := filepath.Join(w.cfg.Dir, name)
	var f *os.File
	err := w.timed("open", func() (err error) { f, err = os.OpenFile(p, flag, 0o644); return err })
	if err != nil {
		w.record(recError, "open", errText(err))
		return err
	}
	var werr error
	for off := 0; off < len(data) && werr == nil; {
		n := min(len(data)-off, 1+w.rng.IntN(256<<10))
		werr = w.timed("write", func() error { _, err := f.Write(data[off : off+n]); return err })
		off += n
	}
	if werr == nil && w.rng.IntN(3) == 0 {
		werr = w.timed("fsync", f.Sync)
		if werr != nil {
			w.record(recError, "fsync", errText(werr))
		}
	} else if werr != nil {
		w.record(recError, "write", errText(werr))
	}
	cerr := w.timed("close", f.Close)
	if cerr != nil {
		w.record(recError, "close", errText(cerr))
	}
	return errors.Join(werr, cerr)
}

func (w *worker) create() {
	w.next++
	name := "f" + strconv.Itoa(w.next)
	data := w.content()
	if err := w.writeFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, data); err != nil {
		// The file may exist half written; it is not acknowledged, so
		// forget it (its name is never reused).
		return
	}
	w.files[name], w.sizes[name] = sum(data), len(data)
	w.record(recWrite, name, strconv.Itoa(len(data)), w.files[name])
}

func (w *worker) pick() string {
	names := make([]string, 0, len(w.files))
	for n := range w.files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names[w.rng.IntN(len(names))]
}

func (w *worker) readBack() {
	name := w.pick()
	var data []byte
	err := w.timed("read", func() (err error) { data, err = os.ReadFile(filepath.Join(w.cfg.Dir, name)); return err })
	if err != nil {
		w.record(recError, "read", errText(err))
		return
	}
	if got := sum(data); got != w.files[name] {
		w.record(recCorrupt, name, fmt.Sprintf("read_%d_bytes_sha256_%s_want_%d_bytes_%s", len(data), got, w.sizes[name], w.files[name]))
		return
	}
	w.record(recRead, name, strconv.Itoa(len(data)))
}

func (w *worker) overwrite() {
	name := w.pick()
	data := w.content()
	if err := w.writeFile(name, os.O_WRONLY|os.O_TRUNC, data); err != nil {
		// Old, new or partial content: nothing can be expected.
		delete(w.files, name)
		w.record(recAmbiguous, name)
		return
	}
	w.files[name], w.sizes[name] = sum(data), len(data)
	w.record(recWrite, name, strconv.Itoa(len(data)), w.files[name])
}

func (w *worker) rename() {
	old := w.pick()
	w.next++
	nw := "f" + strconv.Itoa(w.next)
	err := w.timed("rename", func() error { return os.Rename(filepath.Join(w.cfg.Dir, old), filepath.Join(w.cfg.Dir, nw)) })
	h, size := w.files[old], w.sizes[old]
	delete(w.files, old)
	if err != nil {
		w.record(recError, "rename", errText(err))
		w.record(recRenameFail, old, nw, h)
		return
	}
	w.files[nw], w.sizes[nw] = h, size
	w.record(recRenamed, old, nw)
}

func (w *worker) remove() {
	name := w.pick()
	err := w.timed("unlink", func() error { return os.Remove(filepath.Join(w.cfg.Dir, name)) })
	delete(w.files, name)
	if err != nil {
		w.record(recError, "unlink", errText(err))
		w.record(recAmbiguous, name)
		return
	}
	w.record(recDeleted, name)
}

func (w *worker) list() {
	var ents []os.DirEntry
	err := w.timed("readdir", func() (err error) { ents, err = os.ReadDir(w.cfg.Dir); return err })
	if err != nil {
		w.record(recError, "readdir", errText(err))
		return
	}
	seen := map[string]bool{}
	for _, e := range ents {
		seen[e.Name()] = true
	}
	for n := range w.files {
		if !seen[n] {
			w.record(recListBad, "listing_lacks_"+n)
		}
	}
	w.record(recList, strconv.Itoa(len(ents)))
}

// Report is what Verify found, summed over all journals.
type Report struct {
	Ops           int            // operations started by workers
	FilesAcked    int            // files whose final acknowledged content was checked
	BytesVerified int64          // bytes of those files found intact on the server
	BytesWritten  int64          // bytes acknowledged by successful closes
	BytesReadBack int64          // bytes read back through the mounts and matched
	Errors        map[string]int // errors surfaced to applications, by "op errno"
	Hangs         []string       // system calls slower than the hang limit
	Lost          []string       // acknowledged data missing or different on the server
	BytesLost     int64
	Corrupt       []string // reads through the mount that returned wrong data
	ListingBad    []string // listings that missed an acknowledged file
}

// Add adds o's counts and findings to r.
func (r *Report) Add(o Report) {
	r.Ops += o.Ops
	r.FilesAcked += o.FilesAcked
	r.BytesVerified += o.BytesVerified
	r.BytesWritten += o.BytesWritten
	r.BytesReadBack += o.BytesReadBack
	r.BytesLost += o.BytesLost
	if len(o.Errors) > 0 && r.Errors == nil {
		r.Errors = map[string]int{}
	}
	for k, n := range o.Errors {
		r.Errors[k] += n
	}
	r.Hangs = append(r.Hangs, o.Hangs...)
	r.Lost = append(r.Lost, o.Lost...)
	r.Corrupt = append(r.Corrupt, o.Corrupt...)
	r.ListingBad = append(r.ListingBad, o.ListingBad...)
}

// Failed reports whether the report shows a broken promise.
func (r Report) Failed() bool {
	return len(r.Lost) > 0 || len(r.Corrupt) > 0 || len(r.Hangs) > 0 || len(r.ListingBad) > 0
}

// ErrorCount is the total number of errors surfaced.
func (r Report) ErrorCount() int {
	n := 0
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// String formats the report for logs and docs.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "operations: %d\n", r.Ops)
	fmt.Fprintf(&b, "bytes acknowledged (written+closed): %d\n", r.BytesWritten)
	fmt.Fprintf(&b, "bytes read back and matched: %d\n", r.BytesReadBack)
	fmt.Fprintf(&b, "files verified on the server: %d (%d bytes)\n", r.FilesAcked, r.BytesVerified)
	fmt.Fprintf(&b, "errors surfaced to applications: %d\n", r.ErrorCount())
	keys := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "  %6d  %s\n", r.Errors[k], k)
	}
	fmt.Fprintf(&b, "hangs: %d\n", len(r.Hangs))
	fmt.Fprintf(&b, "corrupt reads: %d\n", len(r.Corrupt))
	fmt.Fprintf(&b, "listings missing acknowledged files: %d\n", len(r.ListingBad))
	fmt.Fprintf(&b, "data lost: %d files, %d bytes\n", len(r.Lost), r.BytesLost)
	for _, l := range append(append(append(r.Lost, r.Corrupt...), r.Hangs...), r.ListingBad...) {
		fmt.Fprintf(&b, "  %s\n", l)
	}
	return b.String()
}

// expect is the final state a journal promises for one name.
type expect struct {
	state string // "present", "absent" or "unknown"
	sha   string
	size  int64
}

// Verify replays journal (written by one worker whose directory is
// serverDir as seen directly on the server) and adds its findings to r.
func Verify(journal, serverDir string, r *Report) error {
	f, err := os.Open(journal)
	if err != nil {
		return err
	}
	defer f.Close()
	if r.Errors == nil {
		r.Errors = map[string]int{}
	}
	exp := map[string]expect{}
	// Failed renames: the content must be at one of the two names.
	type either struct{ a, b, sha string }
	var eithers []either
	ops := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) == 0 {
			continue
		}
		bad := func(n int) bool { return len(fl) < n }
		switch fl[0] {
		case recWrite:
			if bad(4) {
				return fmt.Errorf("%s: bad line %q", journal, sc.Text())
			}
			size, _ := strconv.ParseInt(fl[2], 10, 64)
			exp[fl[1]] = expect{state: "present", sha: fl[3], size: size}
			r.BytesWritten += size
		case recAmbiguous:
			exp[fl[1]] = expect{state: "unknown"}
		case recDeleted:
			exp[fl[1]] = expect{state: "absent"}
		case recRenamed:
			if bad(3) {
				return fmt.Errorf("%s: bad line %q", journal, sc.Text())
			}
			exp[fl[2]] = exp[fl[1]]
			exp[fl[1]] = expect{state: "absent"}
		case recRenameFail:
			if bad(4) {
				return fmt.Errorf("%s: bad line %q", journal, sc.Text())
			}
			exp[fl[1]], exp[fl[2]] = expect{state: "unknown"}, expect{state: "unknown"}
			eithers = append(eithers, either{fl[1], fl[2], fl[3]})
		case recRead:
			n, _ := strconv.ParseInt(fl[2], 10, 64)
			r.BytesReadBack += n
		case recCorrupt:
			r.Corrupt = append(r.Corrupt, journal+": "+strings.Join(fl[1:], " "))
		case recError:
			r.Errors[strings.Join(fl[1:], " ")]++
		case recHang:
			r.Hangs = append(r.Hangs, journal+": "+strings.Join(fl[1:], " ")+"ms")
		case recOps:
			ops, _ = strconv.Atoi(fl[1])
		case recListBad:
			r.ListingBad = append(r.ListingBad, journal+": "+strings.Join(fl[1:], " "))
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	r.Ops += ops
	names := make([]string, 0, len(exp))
	for n := range exp {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		e := exp[n]
		p := filepath.Join(serverDir, n)
		switch e.state {
		case "present":
			got, size, err := fileSum(p)
			switch {
			case err != nil:
				r.Lost = append(r.Lost, fmt.Sprintf("%s: acknowledged (%d bytes) but unreadable on the server: %v", p, e.size, err))
				r.BytesLost += e.size
			case got != e.sha:
				r.Lost = append(r.Lost, fmt.Sprintf("%s: acknowledged %d bytes sha256 %s, server has %d bytes sha256 %s", p, e.size, e.sha, size, got))
				r.BytesLost += e.size
			default:
				r.FilesAcked++
				r.BytesVerified += size
			}
		case "absent":
			if _, err := os.Lstat(p); err == nil {
				r.Lost = append(r.Lost, fmt.Sprintf("%s: removed or renamed away without error, but still exists on the server", p))
			}
		}
	}
	for _, e := range eithers {
		if e.sha == "" {
			continue
		}
		ok := false
		for _, n := range []string{e.a, e.b} {
			if exp[n].state != "unknown" {
				// A later operation decided this name.
				ok = true
			}
			if got, _, err := fileSum(filepath.Join(serverDir, n)); err == nil && got == e.sha {
				ok = true
			}
		}
		if !ok {
			r.Lost = append(r.Lost, fmt.Sprintf("%s: failed rename %s -> %s lost the acknowledged content (sha256 %s is at neither name)", serverDir, e.a, e.b, e.sha))
		}
	}
	return nil
}

func fileSum(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
