package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (e *env) med(c, m string) (float64, bool) {
	v := e.results[c][m]
	if len(v) == 0 {
		return 0, false
	}
	if m == mRSSPeak || m == mRSSStream {
		return slices.Max(v), true // the peak over the run, not a median
	}
	return median(v), true
}

func num(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

// ratio is sftpfs/other oriented so that > 1 is always better for
// sftpfs ("x better"), which keeps the table readable.
func ratio(m string, ours, other float64) string {
	if ours == 0 || other == 0 {
		return ""
	}
	r := ours / other
	if !higherBetter(m) {
		r = other / ours
	}
	return fmt.Sprintf("%.2fx", r)
}

// roundRange is the lowest and highest of the per-round ratios of
// sftpfs to another contender, as "(0.95-1.30)", or "" when there is
// nothing to show: a single round, a contender that did not measure m
// in every round, or a peak (RSS) row, whose figure is the maximum over
// the run rather than a median. Every round measures every contender
// back to back, so a round's ratio compares like with like; the range
// is how far one round can mislead on this machine, which a median of
// three hides.
func roundRange(m string, ours, other []float64) string {
	if len(ours) < 2 || len(ours) != len(other) || m == mRSSPeak || m == mRSSStream {
		return ""
	}
	rs := make([]float64, len(ours))
	for i := range ours {
		if ours[i] == 0 || other[i] == 0 {
			return ""
		}
		rs[i] = ours[i] / other[i]
		if !higherBetter(m) {
			rs[i] = other[i] / ours[i]
		}
	}
	return fmt.Sprintf(" (%.2f-%.2f)", slices.Min(rs), slices.Max(rs))
}

// table renders the medians as Markdown.
func (e *env) table() string {
	var b strings.Builder
	cols := []string{cSFTPFS, cSSHFS, cRaw}
	fmt.Fprintf(&b, "| workload (median of %d) | sftpfs | sshfs | raw sftp | sftpfs vs sshfs | sftpfs vs raw |\n", e.cfg.rounds)
	b.WriteString("|---|---:|---:|---:|---:|---:|\n")
	for _, m := range metricOrder() {
		row := []string{e.cfg.metricLabel(m)}
		vals := map[string]float64{}
		any := false
		for _, c := range cols {
			v, ok := e.med(c, m)
			if ok {
				vals[c] = v
				row = append(row, num(v))
				any = true
			} else {
				row = append(row, "")
			}
		}
		if !any {
			continue
		}
		for _, c := range []string{cSSHFS, cRaw} {
			r := ratio(m, vals[cSFTPFS], vals[c])
			if r != "" {
				r += roundRange(m, e.results[cSFTPFS][m], e.results[c][m])
			}
			row = append(row, r)
		}
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	b.WriteString("\nRatios are oriented so that above 1.00x means sftpfs is better (faster, or less CPU/memory/time); in brackets the lowest and highest ratio of a single round.\n")
	return b.String()
}

// machine describes where the run happened.
func machine() string {
	var parts []string
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				_, v, _ := strings.Cut(l, ":")
				parts = append(parts, strings.TrimSpace(v))
				break
			}
		}
	}
	parts = append(parts, fmt.Sprintf("%d CPUs", runtime.NumCPU()))
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		parts = append(parts, "Linux "+strings.TrimSpace(string(out)))
	}
	if out, err := exec.Command("ssh", "-V").CombinedOutput(); err == nil {
		parts = append(parts, strings.TrimSpace(string(out)))
	}
	if out, err := exec.Command("sshfs", "--version").CombinedOutput(); err == nil {
		parts = append(parts, strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0])
	}
	return strings.Join(parts, "; ")
}

func (e *env) record(table string) error {
	rev := "unknown"
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		rev = strings.TrimSpace(string(out))
	}
	block := fmt.Sprintf("\n## Run %s (sftpfs %s)\n\nCommand: `%s`\n\nMachine: %s. sshfs options: `Ciphers=%s,%s`; raw sftp: OpenSSH `sftp -b` get to /dev/null and put from tmpfs, with the time of an empty session subtracted. sftpfs options: `%s`.\n\n%s",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), rev, e.cfg.command, machine(), cipher, e.sshfsOpts(), orDefault(e.cfg.sftpfsOpts), table)
	f, err := os.OpenFile(e.cfg.record, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(block); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func orDefault(s string) string {
	if s == "" {
		return "(defaults)"
	}
	return s
}

// sshfsOpts is sshfs's -o as the run used it.
func (e *env) sshfsOpts() string {
	if e.cfg.sshfsOpts == "" {
		return sshfsOptions
	}
	return sshfsOptions + "," + e.cfg.sshfsOpts
}
