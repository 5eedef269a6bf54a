package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/<pid>/stat;
// it is 100 on every Linux architecture Go supports.
const clockTicks = 100

// procStat is what we need from /proc/<pid>/stat.
type procStat struct {
	ppid, pgrp int
	// cpu is utime+stime plus cutime+cstime (children already reaped), in
	// seconds: a client that spawns helpers (sshfs runs ssh) is charged
	// for all of them.
	cpu float64
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name is in parentheses and may contain spaces; fields
	// are counted after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); ppid is field 4, utime..cstime 14..17.
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	num := func(k int) int64 { v, _ := strconv.ParseInt(f[k-3], 10, 64); return v }
	ticks := num(14) + num(15) + num(16) + num(17)
	return procStat{ppid: int(num(4)), pgrp: int(num(5)), cpu: float64(ticks) / clockTicks}, nil
}

// tree returns root, all its descendants and every other process of the
// process group root leads (the contenders are started with Setpgid).
// The group matters: sshfs starts ssh through a double fork, so ssh's
// parent is init, not sshfs, and a walk of descendants alone misses it
// (and with it about half of sshfs's CPU and memory); ssh keeps sshfs's
// process group.
func tree(root int) []int {
	children := map[int][]int{}
	var group []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if st, err := readProcStat(pid); err == nil {
			children[st.ppid] = append(children[st.ppid], pid)
			if st.pgrp == root && pid != root {
				group = append(group, pid)
			}
		}
	}
	out := []int{root}
	seen := map[int]bool{root: true}
	for i := 0; i < len(out); i++ {
		for _, c := range children[out[i]] {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
		if i == len(out)-1 {
			// Group members outside the tree, and their descendants.
			for _, g := range group {
				if !seen[g] {
					seen[g] = true
					out = append(out, g)
				}
			}
		}
	}
	return out
}

// treeCPU is the CPU seconds used so far by root, its descendants and
// its process group (tree).
func treeCPU(root int) float64 {
	var sum float64
	for _, pid := range tree(root) {
		if st, err := readProcStat(pid); err == nil {
			sum += st.cpu
		}
	}
	return sum
}

// treeMem sums VmRSS and VmHWM (peak RSS) in MiB over root's tree
// (descendants and process group).
func treeMem(root int) (rss, hwm float64) {
	for _, pid := range tree(root) {
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if !ok || (k != "VmRSS" && k != "VmHWM") {
				continue
			}
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if k == "VmRSS" {
				rss += kb / 1024
			} else {
				hwm += kb / 1024
			}
		}
		f.Close()
	}
	return rss, hwm
}

// dropCaches writes dirty data back and drops the page, dentry and inode
// caches, so the next access of a mount goes to the server.
func dropCaches() error {
	syscall.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err != nil {
		return fmt.Errorf("drop caches (needs root): %w", err)
	}
	return nil
}

// startPerf records a CPU profile of pid's process while a workload runs
// (with -perf), so that a missed target can be explained with evidence.
// Inspect with `perf report -i FILE --no-children`.
func (e *env) startPerf(contender, workload string, pid int) (stop func()) {
	if e.cfg.perfDir == "" {
		return func() {}
	}
	name := strings.NewReplacer(" ", "-", "/", "-").Replace(contender + "-" + workload)
	out := filepath.Join(e.cfg.perfDir, name+".perf.data")
	cmd := exec.Command("perf", "record", "-q", "-F", "499", "-g", "-o", out, "-p", strconv.Itoa(pid))
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "bench: perf:", err)
		return func() {}
	}
	time.Sleep(200 * time.Millisecond) // let perf attach
	return func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
	}
}
