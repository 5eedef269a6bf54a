package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sftpfs/sftpfs/internal/mountinfo"
)

// config is the command line.
type config struct {
	rounds                                int
	seqSize, randSize, parSize            int64
	statFiles, findFiles, smallFiles      int
	randOps, parFiles, gitFiles           int
	contenders                            []string
	sftpfsBin, sshfsBin, sftpBin, sshdBin string
	gitBin, ddBin                         string
	sftpfsOpts, sshfsOpts                 string
	record                                string
	smoke, verify, warm                   bool
	command                               string
	perfDir                               string
	only                                  string
}

// env is one benchmark run.
type env struct {
	cfg         config
	work        string // tmpfs holding everything
	remote      string // the directory the server serves
	mnt         string
	localSeq    string // source of the raw put
	srv         *server
	seqCRC      uint32
	findEntries int
	warm        *warmer                         // evens out the page allocator before each measurement
	results     map[string]map[string][]float64 // contender -> metric -> samples
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fl := flag.NewFlagSet("bench", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.IntVar(&c.rounds, "rounds", 5, "rounds; every workload runs once per contender per round")
	seq := fl.String("seq", "1G", "size of the sequential read/write file")
	rnd := fl.String("rand-size", "256M", "size of the file for random reads")
	par := fl.String("par-size", "128M", "size of each file read in parallel")
	fl.IntVar(&c.statFiles, "stat-files", 10000, "entries in the ls -l directory")
	fl.IntVar(&c.findFiles, "find-files", 2000, "files in the nested tree for find")
	fl.IntVar(&c.smallFiles, "small-files", 1000, "4 KiB files created and read")
	fl.IntVar(&c.randOps, "rand-ops", 3000, "4 KiB random reads per measurement")
	fl.IntVar(&c.parFiles, "par-files", 4, "files read in parallel")
	fl.IntVar(&c.gitFiles, "git-files", 3000, "files in the git checkout")
	cs := fl.String("contenders", strings.Join([]string{cSFTPFS, cSSHFS, cRaw}, ","), "contenders to run")
	fl.StringVar(&c.sftpfsBin, "sftpfs", "bin/sftpfs", "sftpfs binary")
	fl.StringVar(&c.sftpfsOpts, "sftpfs-opts", "", "extra -o options for sftpfs mount")
	fl.StringVar(&c.sshfsOpts, "sshfs-opts", "", "extra -o options for sshfs, after its default tuning (e.g. max_conns=4)")
	fl.StringVar(&c.record, "record", "", "append the results as a dated block to this Markdown file (docs/perf.md)")
	fl.BoolVar(&c.smoke, "smoke", false, "tiny sizes, one round, verify data: a check that every contender works, not a measurement")
	fl.BoolVar(&c.verify, "verify", false, "check the CRC of the data read sequentially")
	fl.StringVar(&c.only, "only", "", "run only the mount workloads whose name contains this, or one of these comma-separated words (e.g. \"seq\" or \"find,parallel\"); for quick checks, not for the record")
	fl.StringVar(&c.perfDir, "perf", "", "record a `perf record -g` profile of the client during every mount workload into this directory")
	fl.BoolVar(&c.warm, "warm", true, "before each measurement fill and free a scratch tmpfs as large as the most fresh memory a workload takes (2x the sequential file), and hold back free page reporting for the run, so no contender pays for memory the machine had handed back to its host (bench/warm.go); -warm=false to see the difference")
	if err := fl.Parse(args); err != nil {
		return c, err
	}
	if fl.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fl.Args())
	}
	var err error
	for _, s := range []struct {
		v   *string
		dst *int64
	}{{seq, &c.seqSize}, {rnd, &c.randSize}, {par, &c.parSize}} {
		if *s.dst, err = parseSize(*s.v); err != nil {
			return c, err
		}
	}
	if c.smoke {
		c.rounds = 1
		c.seqSize, c.randSize, c.parSize = 8<<20, 4<<20, 2<<20
		c.statFiles, c.findFiles, c.smallFiles, c.randOps, c.gitFiles = 200, 100, 50, 100, 50
		c.verify = true
	}
	if c.rounds < 1 || c.seqSize < 1<<20 || c.randSize < 1<<16 || c.parSize < 1 ||
		c.statFiles < 1 || c.findFiles < 10 || c.smallFiles < 1 || c.randOps < 1 || c.parFiles < 1 || c.gitFiles < 1 {
		return c, errors.New("sizes and counts must be positive (seq at least 1M, rand-size at least 64K, find-files at least 10)")
	}
	for _, n := range strings.Split(*cs, ",") {
		n = strings.TrimSpace(n)
		switch n {
		case cSFTPFS, cSSHFS, cRaw:
			c.contenders = append(c.contenders, n)
		case "raw":
			c.contenders = append(c.contenders, cRaw)
		default:
			return c, fmt.Errorf("unknown contender %q (want sftpfs, sshfs, raw)", n)
		}
	}
	c.command = strings.TrimSpace(invoker() + " " + strings.Join(args, " "))
	return c, nil
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	}
	var n int64
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want a positive number with an optional K, M or G suffix", s)
	}
	return n * mult, nil
}

// tools finds the programs the contenders need. A missing one is an
// error: a benchmark that silently leaves out a contender would produce
// a table that looks complete.
func (c *config) tools() error {
	var missing []string
	look := func(dst *string, name string, need bool) {
		if !need {
			return
		}
		p, err := exec.LookPath(name)
		if err != nil {
			missing = append(missing, name)
			return
		}
		*dst = p
	}
	has := func(n string) bool {
		for _, x := range c.contenders {
			if x == n {
				return true
			}
		}
		return false
	}
	sshd := "sshd"
	if _, err := exec.LookPath(sshd); err != nil {
		sshd = "/usr/sbin/sshd"
	}
	look(&c.sshdBin, sshd, true)
	look(&c.gitBin, "git", has(cSFTPFS) || has(cSSHFS))
	look(&c.sshfsBin, "sshfs", has(cSSHFS))
	look(&c.sftpBin, "sftp", has(cRaw))
	look(&c.ddBin, "dd", has(cSFTPFS) || has(cSSHFS))
	for _, t := range []string{"ls", "find"} {
		var p string
		look(&p, t, true)
	}
	if has(cSFTPFS) {
		if st, err := os.Stat(c.sftpfsBin); err != nil || st.IsDir() {
			missing = append(missing, c.sftpfsBin+" (run make build)")
		} else if c.sftpfsBin, err = filepath.Abs(c.sftpfsBin); err != nil {
			return err
		}
	}
	if os.Geteuid() != 0 {
		missing = append(missing, "root (mounting, tmpfs, drop_caches)")
	}
	if f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0); err != nil {
		missing = append(missing, "/dev/fuse")
	} else {
		f.Close()
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing: %s", strings.Join(missing, ", "))
	}
	return nil
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	if err := cfg.tools(); err != nil {
		// A smoke run on a developer machine without the tools is
		// skipped; in CI (CI=true) it must fail so the harness cannot
		// rot unnoticed. A real benchmark run always fails.
		if cfg.smoke && os.Getenv("CI") != "true" {
			fmt.Fprintln(stderr, "bench: skipping smoke run:", err)
			return 0
		}
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	e, err := setup(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "bench: setup:", err)
		if e != nil {
			e.teardown()
		}
		return 1
	}
	// An interrupted run must still unmount and stop sshd.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	stopped := make(chan struct{})
	go func() {
		select {
		case <-sig:
			fmt.Fprintln(stderr, "bench: interrupted; cleaning up")
			e.teardown()
			os.Exit(130)
		case <-stopped:
		}
	}()
	err = e.runAll(stderr)
	close(stopped)
	signal.Stop(sig)
	e.teardown()
	if err != nil {
		fmt.Fprintln(stderr, "bench: FAIL:", err)
		return 1
	}
	table := e.table()
	fmt.Fprint(stdout, table)
	if cfg.record != "" {
		if err := e.record(table); err != nil {
			fmt.Fprintln(stderr, "bench: record:", err)
			return 1
		}
		fmt.Fprintln(stderr, "bench: appended to", cfg.record)
	}
	return 0
}

func setup(cfg config) (*env, error) {
	work, err := os.MkdirTemp("", "sftpfs-bench-")
	if err != nil {
		return nil, err
	}
	e := &env{cfg: cfg, work: work, results: map[string]map[string][]float64{}}
	// tmpfs: the server's data stays in memory even when the page cache
	// is dropped, so every contender reads from the same fast source.
	need := cfg.seqSize*2 + cfg.randSize + int64(cfg.parFiles)*cfg.parSize + 512<<20
	if err := syscall.Mount("tmpfs", work, "tmpfs", 0, fmt.Sprintf("size=%d", need)); err != nil {
		os.Remove(work)
		return nil, fmt.Errorf("tmpfs on %s: %w", work, err)
	}
	e.remote = filepath.Join(work, "remote")
	e.mnt = filepath.Join(work, "mnt")
	e.localSeq = filepath.Join(e.remote, dSeq)
	for _, d := range []string{e.remote, e.mnt, filepath.Join(work, "sshd")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return e, err
		}
	}
	start := time.Now()
	if err := e.prepare(); err != nil {
		return e, fmt.Errorf("data set: %w", err)
	}
	fmt.Fprintf(os.Stderr, "bench: data set ready in %v\n", time.Since(start).Round(time.Millisecond))
	if cfg.warm {
		// The most fresh memory a workload takes: the sequential write
		// fills the client's page cache and the server's tmpfs with the
		// file (2x its size), the parallel reads the page cache with
		// their files; a tenth more for the rest.
		size := max(2*cfg.seqSize, int64(cfg.parFiles)*cfg.parSize) * 11 / 10
		if e.warm, err = newWarmer(filepath.Join(os.TempDir(), filepath.Base(work)+"-warm"), size, os.Stderr); err != nil {
			return e, err
		}
	}
	if e.srv, err = startServer(filepath.Join(work, "sshd"), cfg.sshdBin); err != nil {
		return e, err
	}
	return e, nil
}

func (e *env) teardown() {
	if mountinfo.IsMounted(e.mnt) {
		_ = syscall.Unmount(e.mnt, syscall.MNT_DETACH)
	}
	if e.srv != nil {
		e.srv.stop()
	}
	e.warm.close()
	if err := syscall.Unmount(e.work, 0); err != nil {
		_ = syscall.Unmount(e.work, syscall.MNT_DETACH)
	}
	os.Remove(e.work)
}

func (e *env) add(c string, m measurement) {
	if e.results[c] == nil {
		e.results[c] = map[string][]float64{}
	}
	for k, v := range m {
		e.results[c][k] = append(e.results[c][k], v)
	}
}

// runAll runs every round; the contender order rotates per round.
func (e *env) runAll(log io.Writer) error {
	cs := e.cfg.contenders
	for r := 0; r < e.cfg.rounds; r++ {
		for i := range cs {
			c := cs[(i+r)%len(cs)]
			start := time.Now()
			if err := e.runContender(c, log); err != nil {
				return fmt.Errorf("round %d, %s: %w", r+1, c, err)
			}
			fmt.Fprintf(log, "bench: round %d/%d %s done in %v\n", r+1, e.cfg.rounds, c, time.Since(start).Round(time.Millisecond))
		}
	}
	return nil
}

func (e *env) runContender(c string, log io.Writer) error {
	if c == cRaw {
		m, err := e.rawRound()
		if err != nil {
			return err
		}
		e.add(c, m)
		return nil
	}
	for _, w := range mountWorkloads() {
		if !e.cfg.wanted(w.name) {
			continue
		}
		if err := e.clearOut(); err != nil {
			return err
		}
		if err := e.warm.warm(); err != nil {
			return err
		}
		if err := dropCaches(); err != nil {
			return err
		}
		m, err := e.mount(c, e.mnt)
		if err != nil {
			return err
		}
		rss, _ := treeMem(m.pid())
		if e.cfg.smoke {
			fmt.Fprintf(log, "bench: %s %s: first stat after mount took %v\n", c, w.name, m.firstStat)
		}
		stopPerf := e.startPerf(c, w.name, m.pid())
		res, werr := w.run(e, m)
		stopPerf()
		uerr := m.unmount()
		if werr != nil {
			return fmt.Errorf("%s: %w (client output: %s)", w.name, werr, strings.TrimSpace(m.out.String()))
		}
		if uerr != nil {
			return uerr
		}
		res[mRSSIdle] = rss
		e.add(c, res)
	}
	return e.clearOut()
}

// invoker is how the run was started, for the record: scripts/bench.sh
// says so in SFTPFS_BENCH_INVOKER.
func invoker() string {
	if v := os.Getenv("SFTPFS_BENCH_INVOKER"); v != "" {
		return v
	}
	return os.Args[0]
}

// wanted reports whether -only selects the mount workload name.
func (c config) wanted(name string) bool {
	if c.only == "" {
		return true
	}
	for _, w := range strings.Split(c.only, ",") {
		if w = strings.TrimSpace(w); w != "" && strings.Contains(name, w) {
			return true
		}
	}
	return false
}
