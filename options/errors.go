package options

import (
	"fmt"
	"sort"
	"strings"
)

// Error is a problem with one option (or a combination of options, in
// which case Option names the one to change). Its message names the
// option, says what is wrong and how to fix it, and never contains the
// value of a secret option.
type Error struct {
	Option string
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

func errorf(opt, format string, args ...any) *Error {
	return &Error{Option: opt, Msg: fmt.Sprintf(format, args...)}
}

// unknownError explains an option name that is not in the table.
func unknownError(name string) *Error {
	if advice, ok := replaced()[normalize(name)]; ok {
		return errorf(name, "option %q is not an sftpfs option: %s", name, advice)
	}
	msg := fmt.Sprintf("unknown option %q", name)
	if s := suggest(name); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	return errorf(name, "%s (valid options: %s)", msg, strings.Join(names(), ", "))
}

// names lists the canonical option names, sorted.
func names() []string {
	var n []string
	for _, o := range Table() {
		n = append(n, o.Name)
	}
	sort.Strings(n)
	return n
}

// suggest returns the option whose name or alias is closest to name by
// edit distance, or "" when nothing is close enough to be a likely typo.
func suggest(name string) string {
	n := normalize(name)
	best, bestD := "", -1
	for _, o := range Table() {
		for _, c := range append([]string{o.Name}, o.Aliases...) {
			d := editDistance(n, normalize(c))
			if bestD < 0 || d < bestD {
				best, bestD = o.Name, d
			}
		}
	}
	limit := 2
	if l := len(n) / 3; l > limit {
		limit = l
	}
	if bestD < 0 || bestD > limit {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
