package main

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Metric identifiers; labels (with the sizes of the run) come from
// metricLabel.
const (
	mSeqRead   = "seqread"
	mSeqWrite  = "seqwrite"
	mCPURead   = "cpuread"
	mCPUWrite  = "cpuwrite"
	mLs        = "ls"
	mFind      = "find"
	mCreate    = "create"
	mSmallRead = "smallread"
	mRand      = "rand"
	mPar       = "par"
	mGit       = "git"
	mUnlink    = "unlink"
	mRename    = "rename"
	mParProc   = "parproc"
	mRSSIdle   = "rssidle"
	mRSSPeak   = "rsspeak"
	// mRSSStream is the peak of a sequential read or write alone (the
	// issue's "peak under one stream"); mRSSPeak stays the peak over
	// every measured workload, the parallel reads included.
	mRSSStream = "rssstream"
)

// metricOrder is the row order of the table; higherBetter says which way
// a ratio is good.
func metricOrder() []string {
	return []string{mSeqRead, mSeqWrite, mCPURead, mCPUWrite, mLs, mFind, mCreate, mSmallRead, mUnlink, mRename, mRand, mPar, mParProc, mGit, mRSSIdle, mRSSStream, mRSSPeak}
}

func higherBetter(m string) bool {
	switch m {
	case mCPURead, mCPUWrite, mGit, mRSSIdle, mRSSStream, mRSSPeak:
		return false
	}
	return true
}

func (c config) metricLabel(m string) string {
	switch m {
	case mSeqRead:
		return fmt.Sprintf("seq read %s cold (MB/s)", sizeStr(c.seqSize))
	case mSeqWrite:
		return fmt.Sprintf("seq write %s incl. close (MB/s)", sizeStr(c.seqSize))
	case mCPURead:
		return "client CPU per GiB read (s)"
	case mCPUWrite:
		return "client CPU per GiB written (s)"
	case mLs:
		return fmt.Sprintf("ls -l of %d entries cold (entries/s)", c.statFiles)
	case mFind:
		return fmt.Sprintf("find over %d files nested cold (entries/s)", c.findFiles)
	case mCreate:
		return fmt.Sprintf("create %d x 4 KiB (files/s)", c.smallFiles)
	case mSmallRead:
		return fmt.Sprintf("read %d x 4 KiB cold (files/s)", c.smallFiles)
	case mUnlink:
		return fmt.Sprintf("unlink %d x 4 KiB cold, a syscall each (files/s)", c.smallFiles)
	case mRename:
		return fmt.Sprintf("rename %d files cold, a syscall each (files/s)", c.smallFiles)
	case mParProc:
		return fmt.Sprintf("%d processes each reading a %s file, dd bs=1M (MB/s)", c.parFiles, sizeStr(c.parSize))
	case mRand:
		return fmt.Sprintf("4 KiB random reads on %s, 1 thread (IOPS)", sizeStr(c.randSize))
	case mPar:
		return fmt.Sprintf("%d files x %s read in parallel (MB/s)", c.parFiles, sizeStr(c.parSize))
	case mGit:
		return fmt.Sprintf("git status, %d files cold (s)", c.gitFiles)
	case mRSSIdle:
		return "client RSS idle after mount (MiB)"
	case mRSSStream:
		return "client peak RSS, one sequential stream (MiB)"
	case mRSSPeak:
		return "client peak RSS under load, parallel reads included (MiB)"
	}
	return m
}

func sizeStr(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// measurement is the metrics one workload run produced.
type measurement map[string]float64

// Data set layout under the served directory.
const (
	dSeq   = "seq"
	dStat  = "stat"
	dTree  = "tree"
	dSmall = "small"
	dRand  = "rand"
	dPar   = "par"
	dGit   = "git"
	dOut   = "out" // written by the write workloads, emptied after each
)

// fillRandom writes size pseudo-random bytes (incompressible, so no
// transport can cheat) to path and returns their CRC-32.
func fillRandom(path string, size int64, seed uint64) (uint32, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 1})
	buf := make([]byte, 1<<20)
	h := crc32.NewIEEE()
	for left := size; left > 0; {
		n := int64(len(buf))
		if left < n {
			n = left
		}
		_, _ = r.Read(buf[:n])
		h.Write(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return 0, err
		}
		left -= n
	}
	return h.Sum32(), f.Close()
}

// prepare builds the data set in the served directory.
func (e *env) prepare() error {
	r := e.remote
	var err error
	if e.seqCRC, err = fillRandom(filepath.Join(r, dSeq), e.cfg.seqSize, 1); err != nil {
		return err
	}
	if _, err := fillRandom(filepath.Join(r, dRand), e.cfg.randSize, 2); err != nil {
		return err
	}
	for _, d := range []string{dStat, dSmall, dPar, dOut, dTree} {
		if err := os.MkdirAll(filepath.Join(r, d), 0o755); err != nil {
			return err
		}
	}
	for i := 0; i < e.cfg.parFiles; i++ {
		if _, err := fillRandom(filepath.Join(r, dPar, fmt.Sprintf("p%d", i)), e.cfg.parSize, uint64(10+i)); err != nil {
			return err
		}
	}
	for i := 0; i < e.cfg.statFiles; i++ {
		if err := os.WriteFile(filepath.Join(r, dStat, fmt.Sprintf("f%05d", i)), nil, 0o644); err != nil {
			return err
		}
	}
	small := bytes.Repeat([]byte("0123456789abcdef"), 256)
	for i := 0; i < e.cfg.smallFiles; i++ {
		if err := os.WriteFile(filepath.Join(r, dSmall, fmt.Sprintf("f%05d", i)), small, 0o644); err != nil {
			return err
		}
	}
	// 10 files per leaf directory, 10 leaves per middle directory.
	for i := 0; i < e.cfg.findFiles; i++ {
		d := filepath.Join(r, dTree, fmt.Sprintf("a%03d", i/100), fmt.Sprintf("b%02d", i/10%10))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%d", i%10)), []byte("x"), 0o644); err != nil {
			return err
		}
	}
	e.findEntries, err = countEntries(filepath.Join(r, dTree))
	if err != nil {
		return err
	}
	return e.prepareGit()
}

func countEntries(dir string) (int, error) {
	n := 0
	err := filepath.WalkDir(dir, func(string, os.DirEntry, error) error { n++; return nil })
	return n, err
}

// prepareGit makes a committed checkout of gitFiles source-like files.
// core.checkStat=minimal and core.trustctime=false are what git on a
// network filesystem needs: inode numbers and ctimes are not stable
// across mounts (for sshfs as for sftpfs), and without them git would
// re-hash every file, measuring git instead of the filesystem. The files
// get an old mtime so that the index is not "racy" (which would also
// force re-hashing).
func (e *env) prepareGit() error {
	g := filepath.Join(e.remote, dGit)
	old := time.Now().Add(-time.Hour)
	for i := 0; i < e.cfg.gitFiles; i++ {
		d := filepath.Join(g, fmt.Sprintf("pkg%02d", i/100), fmt.Sprintf("sub%d", i/20%5))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		p := filepath.Join(d, fmt.Sprintf("file%04d.go", i))
		content := fmt.Sprintf("package p\n\n// File %d.\nfunc F%d() int { return %d }\n", i, i, i)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
		if err := os.Chtimes(p, old, old); err != nil {
			return err
		}
	}
	for _, args := range [][]string{
		{"init", "-q"},
		{"config", "core.checkStat", "minimal"},
		{"config", "core.trustctime", "false"},
		{"add", "-A"},
		{"-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-q", "-m", "bench"},
	} {
		cmd := exec.Command(e.cfg.gitBin, append([]string{"-C", g}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("git %v: %v: %s", args, err, out)
		}
	}
	return nil
}

// clearOut empties the output directory on the server side.
func (e *env) clearOut() error {
	d := filepath.Join(e.remote, dOut)
	if err := os.RemoveAll(d); err != nil {
		return err
	}
	return os.Mkdir(d, 0o755)
}

// readAll reads path with 1 MiB reads (like cp or cat) and returns the
// byte count and, when verifying, the CRC-32.
func readAll(path string, verify bool) (int64, uint32, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	h := crc32.NewIEEE()
	var n int64
	for {
		k, err := f.Read(buf)
		n += int64(k)
		if verify {
			h.Write(buf[:k])
		}
		if err == io.EOF {
			return n, h.Sum32(), nil
		}
		if err != nil {
			return n, 0, err
		}
	}
}

func mbps(bytes int64, d time.Duration) float64 { return float64(bytes) / 1e6 / d.Seconds() }

// Mount workloads. Each gets the mountpoint and the client's pid (for
// CPU and memory), runs against a fresh, cold mount, and returns its
// metrics.
type mountWorkload struct {
	name string
	run  func(e *env, m *mounted) (measurement, error)
}

func mountWorkloads() []mountWorkload {
	return []mountWorkload{
		{"seq read", (*env).wSeqRead},
		{"seq write", (*env).wSeqWrite},
		{"ls -l", (*env).wLs},
		{"find", (*env).wFind},
		{"create", (*env).wCreate},
		{"small read", (*env).wSmallRead},
		{"random read", (*env).wRand},
		{"parallel read", (*env).wPar},
		{"parallel dd", (*env).wParProc},
		{"unlink", (*env).wUnlink},
		{"rename", (*env).wRename},
		{"git status", (*env).wGit},
	}
}

func (e *env) wSeqRead(m *mounted) (measurement, error) {
	cpu0 := treeCPU(m.pid())
	start := time.Now()
	n, crc, err := readAll(filepath.Join(m.dir, dSeq), e.cfg.verify)
	d := time.Since(start)
	cpu := treeCPU(m.pid()) - cpu0
	if err != nil {
		return nil, err
	}
	if n != e.cfg.seqSize {
		return nil, fmt.Errorf("read %d bytes, want %d", n, e.cfg.seqSize)
	}
	if e.cfg.verify && crc != e.seqCRC {
		return nil, errors.New("data read differs from the data written (CRC mismatch)")
	}
	_, hwm := treeMem(m.pid())
	return measurement{mSeqRead: mbps(n, d), mCPURead: cpu / (float64(n) / (1 << 30)), mRSSStream: hwm, mRSSPeak: hwm}, nil
}

func (e *env) wSeqWrite(m *mounted) (measurement, error) {
	buf := make([]byte, 1<<20)
	r := rand.NewChaCha8([32]byte{3})
	_, _ = r.Read(buf)
	cpu0 := treeCPU(m.pid())
	start := time.Now()
	f, err := os.Create(filepath.Join(m.dir, dOut, "seq"))
	if err != nil {
		return nil, err
	}
	var n int64
	for n < e.cfg.seqSize {
		k := min(int64(len(buf)), e.cfg.seqSize-n)
		buf[0]++ // no two chunks alike
		if _, err := f.Write(buf[:k]); err != nil {
			f.Close()
			return nil, err
		}
		n += k
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("close: %w", err)
	}
	d := time.Since(start)
	cpu := treeCPU(m.pid()) - cpu0
	st, err := os.Stat(filepath.Join(e.remote, dOut, "seq"))
	if err != nil {
		return nil, err
	}
	if st.Size() != e.cfg.seqSize {
		return nil, fmt.Errorf("server has %d bytes after close, want %d", st.Size(), e.cfg.seqSize)
	}
	_, hwm := treeMem(m.pid())
	return measurement{mSeqWrite: mbps(n, d), mCPUWrite: cpu / (float64(n) / (1 << 30)), mRSSStream: hwm, mRSSPeak: hwm}, nil
}

// runCount runs a command and returns its wall time and the number of
// lines it printed.
func runCount(name string, args ...string) (time.Duration, int, error) {
	cmd := exec.Command(name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return d, 0, fmt.Errorf("%s %v: %v: %s", name, args, err, errb.String())
	}
	return d, bytes.Count(out.Bytes(), []byte("\n")), nil
}

func (e *env) wLs(m *mounted) (measurement, error) {
	d, lines, err := runCount("ls", "-l", filepath.Join(m.dir, dStat))
	if err != nil {
		return nil, err
	}
	if lines != e.cfg.statFiles+1 { // plus "total N"
		return nil, fmt.Errorf("ls -l printed %d lines, want %d", lines, e.cfg.statFiles+1)
	}
	return measurement{mLs: float64(e.cfg.statFiles) / d.Seconds()}, nil
}

func (e *env) wFind(m *mounted) (measurement, error) {
	d, lines, err := runCount("find", filepath.Join(m.dir, dTree))
	if err != nil {
		return nil, err
	}
	if lines != e.findEntries {
		return nil, fmt.Errorf("find printed %d entries, want %d", lines, e.findEntries)
	}
	return measurement{mFind: float64(lines) / d.Seconds()}, nil
}

func (e *env) wCreate(m *mounted) (measurement, error) {
	data := bytes.Repeat([]byte("create-4k-file.."), 256)
	start := time.Now()
	for i := 0; i < e.cfg.smallFiles; i++ {
		if err := os.WriteFile(filepath.Join(m.dir, dOut, fmt.Sprintf("c%05d", i)), data, 0o644); err != nil {
			return nil, err
		}
	}
	d := time.Since(start)
	st, err := os.Stat(filepath.Join(e.remote, dOut, fmt.Sprintf("c%05d", e.cfg.smallFiles-1)))
	if err != nil || st.Size() != int64(len(data)) {
		return nil, fmt.Errorf("last created file is not on the server with %d bytes: %v", len(data), err)
	}
	return measurement{mCreate: float64(e.cfg.smallFiles) / d.Seconds()}, nil
}

func (e *env) wSmallRead(m *mounted) (measurement, error) {
	start := time.Now()
	for i := 0; i < e.cfg.smallFiles; i++ {
		b, err := os.ReadFile(filepath.Join(m.dir, dSmall, fmt.Sprintf("f%05d", i)))
		if err != nil {
			return nil, err
		}
		if len(b) != 4096 {
			return nil, fmt.Errorf("small file %d: read %d bytes, want 4096", i, len(b))
		}
	}
	return measurement{mSmallRead: float64(e.cfg.smallFiles) / time.Since(start).Seconds()}, nil
}

func (e *env) wRand(m *mounted) (measurement, error) {
	f, err := os.Open(filepath.Join(m.dir, dRand))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Distinct 4 KiB blocks in a fixed pseudo-random order, the same for
	// every contender and round.
	blocks := e.cfg.randSize / 4096
	perm := rand.New(rand.NewPCG(7, 7)).Perm(int(blocks))
	ops := min(e.cfg.randOps, len(perm))
	buf := make([]byte, 4096)
	start := time.Now()
	for _, b := range perm[:ops] {
		n, err := f.ReadAt(buf, int64(b)*4096)
		if err != nil || n != 4096 {
			return nil, fmt.Errorf("pread block %d: %d bytes, %v", b, n, err)
		}
	}
	return measurement{mRand: float64(ops) / time.Since(start).Seconds()}, nil
}

func (e *env) wPar(m *mounted) (measurement, error) {
	var wg sync.WaitGroup
	errs := make([]error, e.cfg.parFiles)
	start := time.Now()
	for i := 0; i < e.cfg.parFiles; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, _, err := readAll(filepath.Join(m.dir, dPar, fmt.Sprintf("p%d", i)), false)
			if err == nil && n != e.cfg.parSize {
				err = fmt.Errorf("parallel file %d: read %d bytes, want %d", i, n, e.cfg.parSize)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	d := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	_, hwm := treeMem(m.pid())
	return measurement{mPar: mbps(int64(e.cfg.parFiles)*e.cfg.parSize, d), mRSSPeak: hwm}, nil
}

// wParProc reads the parallel files with one dd process each (the
// kernel sees separate processes, as with parallel jobs in a shell,
// where wPar's goroutines share one).
func (e *env) wParProc(m *mounted) (measurement, error) {
	cmds := make([]*exec.Cmd, e.cfg.parFiles)
	outs := make([]bytes.Buffer, e.cfg.parFiles)
	start := time.Now()
	for i := range cmds {
		cmds[i] = exec.Command(e.cfg.ddBin, "if="+filepath.Join(m.dir, dPar, fmt.Sprintf("p%d", i)), "of=/dev/null", "bs=1M")
		cmds[i].Stdout, cmds[i].Stderr = &outs[i], &outs[i]
		if err := cmds[i].Start(); err != nil {
			for _, c := range cmds[:i] {
				_ = c.Wait()
			}
			return nil, err
		}
	}
	errs := make([]error, len(cmds))
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			errs[i] = fmt.Errorf("dd of parallel file %d: %v: %s", i, err, strings.TrimSpace(outs[i].String()))
		} else if want := fmt.Sprintf("%d bytes", e.cfg.parSize); !strings.Contains(outs[i].String(), want) {
			errs[i] = fmt.Errorf("dd of parallel file %d did not copy %s: %s", i, want, strings.TrimSpace(outs[i].String()))
		}
	}
	d := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	_, hwm := treeMem(m.pid())
	return measurement{mParProc: mbps(int64(e.cfg.parFiles)*e.cfg.parSize, d), mRSSPeak: hwm}, nil
}

// makeOut creates smallFiles 4 KiB files named prefix%05d in the output
// directory on the server side, behind the mount's back: the mount
// (fresh) has seen none of them, as after files left by a build.
func (e *env) makeOut(prefix string) error {
	data := bytes.Repeat([]byte("unlink-4k-file.."), 256)
	for i := 0; i < e.cfg.smallFiles; i++ {
		if err := os.WriteFile(filepath.Join(e.remote, dOut, fmt.Sprintf("%s%05d", prefix, i)), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// outLeft counts the entries left in the output directory on the server.
func (e *env) outLeft() (int, error) {
	des, err := os.ReadDir(filepath.Join(e.remote, dOut))
	return len(des), err
}

// wUnlink removes smallFiles files by name, one unlink(2) each (a loop
// of os.unlink in Python, rm with many arguments).
func (e *env) wUnlink(m *mounted) (measurement, error) {
	if err := e.makeOut("u"); err != nil {
		return nil, err
	}
	start := time.Now()
	for i := 0; i < e.cfg.smallFiles; i++ {
		if err := syscall.Unlink(filepath.Join(m.dir, dOut, fmt.Sprintf("u%05d", i))); err != nil {
			return nil, fmt.Errorf("unlink file %d: %w", i, err)
		}
	}
	d := time.Since(start)
	if n, err := e.outLeft(); err != nil || n != 0 {
		return nil, fmt.Errorf("%d files left on the server after unlinking all (%v)", n, err)
	}
	return measurement{mUnlink: float64(e.cfg.smallFiles) / d.Seconds()}, nil
}

// wRename renames smallFiles files within one directory, one rename(2)
// each.
func (e *env) wRename(m *mounted) (measurement, error) {
	if err := e.makeOut("r"); err != nil {
		return nil, err
	}
	start := time.Now()
	for i := 0; i < e.cfg.smallFiles; i++ {
		from := filepath.Join(m.dir, dOut, fmt.Sprintf("r%05d", i))
		if err := syscall.Rename(from, filepath.Join(m.dir, dOut, fmt.Sprintf("s%05d", i))); err != nil {
			return nil, fmt.Errorf("rename file %d: %w", i, err)
		}
	}
	d := time.Since(start)
	if err := e.checkRenamed(); err != nil {
		return nil, err
	}
	return measurement{mRename: float64(e.cfg.smallFiles) / d.Seconds()}, nil
}

// checkRenamed checks that the server holds exactly the renamed files.
func (e *env) checkRenamed() error {
	n, err := e.outLeft()
	if err != nil {
		return err
	}
	if n != e.cfg.smallFiles {
		return fmt.Errorf("%d entries on the server after renaming %d files", n, e.cfg.smallFiles)
	}
	last := filepath.Join(e.remote, dOut, fmt.Sprintf("s%05d", e.cfg.smallFiles-1))
	if st, err := os.Stat(last); err != nil || st.Size() != 4096 {
		return fmt.Errorf("renamed file %s is not on the server with 4096 bytes: %v", last, err)
	}
	return nil
}

func (e *env) wGit(m *mounted) (measurement, error) {
	d, _, err := runCount(e.cfg.gitBin, "-C", filepath.Join(m.dir, dGit), "status", "--porcelain")
	if err != nil {
		return nil, err
	}
	return measurement{mGit: d.Seconds()}, nil
}

// Raw OpenSSH sftp: get to /dev/null and put from a local tmpfs file.
// The time of an empty session (connect, authenticate, quit), measured
// in the same round, is subtracted so that only the transfer counts, as
// for the mounts, whose mount time is not counted either.
func (e *env) rawRound() (measurement, error) {
	w0, c0, err := e.sftpBatch("")
	if err != nil {
		return nil, err
	}
	if err := dropCaches(); err != nil {
		return nil, err
	}
	w, c, err := e.sftpBatch(fmt.Sprintf("get %s /dev/null\n", filepath.Join(e.remote, dSeq)))
	if err != nil {
		return nil, err
	}
	gib := float64(e.cfg.seqSize) / (1 << 30)
	res := measurement{
		mSeqRead: float64(e.cfg.seqSize) / 1e6 / max(w-w0, 1e-6),
		mCPURead: max(c-c0, 0) / gib,
	}
	if err := e.clearOut(); err != nil {
		return nil, err
	}
	if err := dropCaches(); err != nil {
		return nil, err
	}
	w, c, err = e.sftpBatch(fmt.Sprintf("put %s %s\n", e.localSeq, filepath.Join(e.remote, dOut, "seq")))
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(filepath.Join(e.remote, dOut, "seq"))
	if err != nil || st.Size() != e.cfg.seqSize {
		return nil, fmt.Errorf("raw put did not leave %d bytes on the server: %v", e.cfg.seqSize, err)
	}
	res[mSeqWrite] = float64(e.cfg.seqSize) / 1e6 / max(w-w0, 1e-6)
	res[mCPUWrite] = max(c-c0, 0) / gib
	if err := e.rawMany(res, w0); err != nil {
		return nil, err
	}
	return res, e.clearOut()
}

// rawMany adds the raw sftp counterparts of the unlink, rename and
// parallel dd workloads: one batch session of rm or rename commands, and
// one session per file getting it to /dev/null, all at once. w0 is the
// time of an empty session, subtracted (for the parallel gets, once:
// the sessions start together).
func (e *env) rawMany(res measurement, w0 float64) error {
	var rm, mv strings.Builder
	out := filepath.Join(e.remote, dOut)
	for i := 0; i < e.cfg.smallFiles; i++ {
		fmt.Fprintf(&rm, "rm %s/u%05d\n", out, i)
		fmt.Fprintf(&mv, "rename %s/r%05d %s/s%05d\n", out, i, out, i)
	}
	if err := e.clearOut(); err != nil {
		return err
	}
	if err := e.makeOut("u"); err != nil {
		return err
	}
	w, _, err := e.sftpBatch(rm.String())
	if err != nil {
		return err
	}
	if n, err := e.outLeft(); err != nil || n != 0 {
		return fmt.Errorf("raw rm left %d files on the server (%v)", n, err)
	}
	res[mUnlink] = float64(e.cfg.smallFiles) / max(w-w0, 1e-6)
	if err := e.makeOut("r"); err != nil {
		return err
	}
	if w, _, err = e.sftpBatch(mv.String()); err != nil {
		return err
	}
	if err := e.checkRenamed(); err != nil {
		return fmt.Errorf("raw rename: %w", err)
	}
	res[mRename] = float64(e.cfg.smallFiles) / max(w-w0, 1e-6)
	if err := dropCaches(); err != nil {
		return err
	}
	walls := make([]float64, e.cfg.parFiles)
	errs := make([]error, e.cfg.parFiles)
	var wg sync.WaitGroup
	for i := range walls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			walls[i], _, errs[i] = e.sftpBatch(fmt.Sprintf("get %s /dev/null\n", filepath.Join(e.remote, dPar, fmt.Sprintf("p%d", i))))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	res[mParProc] = mbps(int64(e.cfg.parFiles)*e.cfg.parSize, time.Duration(max(slices.Max(walls)-w0, 1e-6)*float64(time.Second)))
	return nil
}
