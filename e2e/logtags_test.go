package e2e

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// processLines are the plugin's log messages that are about the process,
// not about one volume; every other line the plugin writes must carry
// volume=NAME, so that an operator with dozens of volumes can tell which
// one a line is about. A new process-level message belongs here; a new
// volume-level one needs the volume attribute.
var processLines = map[string]bool{
	"serving the Docker volume API": true,
	"volume driver ready":           true,
	"stopping":                      true,
	"stopped; volumes in use are remounted on the next start": true,
	"serving metrics and the log level":                       true,
	"log level changed":                                       true,
	"serving CSI":                                             true,
	// logCall adds volume= whenever the request names one; Probe,
	// GetPluginInfo, NodeGetInfo... name none.
	"CSI call":                       true,
	"CSI call failed":                true,
	"serving no volumes":             true,
	"refusing to start":              true,
	"could not list stale mounts":    true,
	"cannot start the volume driver": true,
	"cannot serve metrics; fix or clear SFTPFS_METRICS_ADDR (docker plugin set sftpfs SFTPFS_METRICS_ADDR=)": true,
	"the plugin socket stopped serving":                                              true,
	"could not create the secrets directory; file options will fail until it exists": true,
	"cannot abort the FUSE connections of stale mounts (processes blocked on them stay blocked until the mounts are gone); mount fusectl on /sys/fs/fuse/connections to allow it": true,
}

// pluginLineRE finds, in a line dockerd wrote for a plugin's stderr, the
// plugin's own slog line: msg="time=... level=L msg=MESSAGE attrs..."
// (with the inner quotes escaped).
var pluginLineRE = regexp.MustCompile(`msg="time=\S+ level=(\w+) msg=(\\"(?:[^\\]|\\[^"])*\\"|\S+)(.*)" plugin=`)

// untaggedPluginLines returns the plugin log lines in r that are neither
// process-level nor tagged with volume=.
func untaggedPluginLines(r io.Reader) []string {
	var bad []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := pluginLineRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		msg := strings.TrimSuffix(strings.TrimPrefix(m[2], `\"`), `\"`)
		if processLines[msg] || strings.Contains(m[3], " volume=") {
			continue
		}
		bad = append(bad, m[1]+" "+msg+m[3])
	}
	return bad
}

func TestUntaggedPluginLines(t *testing.T) {
	in := strings.Join([]string{
		`time="t" level=error msg="time=x level=INFO msg=\"volume driver ready\" volumes=0" plugin=abc`,
		`time="t" level=error msg="time=x level=WARN msg=\"sftp connection lost\" volume=v1 err=\"EOF\"" plugin=abc`,
		`time="t" level=error msg="time=x level=INFO msg=stopping signal=terminated" plugin=abc`,
		`time="t" level=error msg="time=x level=WARN msg=\"sftp connection lost\" err=\"EOF\"" plugin=abc`,
		`time="t" level=info msg="not a plugin line"`,
	}, "\n")
	got := untaggedPluginLines(strings.NewReader(in))
	if len(got) != 1 || !strings.HasPrefix(got[0], "WARN sftp connection lost") {
		t.Errorf("untagged lines = %q, want only the untagged connection-lost line", got)
	}
}

// TestMain checks, after the package's tests, that every line the
// plugin wrote about a volume during them names the volume.
func TestMain(m *testing.M) {
	var start int64
	if fi, err := os.Stat(dockerLog); err == nil {
		start = fi.Size()
	}
	code := m.Run()
	f, err := os.Open(dockerLog)
	if err != nil {
		os.Exit(code)
	}
	defer f.Close()
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		os.Exit(code)
	}
	if bad := untaggedPluginLines(f); len(bad) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d plugin log line(s) in %s name no volume (add volume=NAME, or list a process-level message in e2e/logtags_test.go):\n", len(bad), dockerLog)
		for i, l := range bad {
			if i == 20 {
				fmt.Fprintf(os.Stderr, "  ... and %d more\n", len(bad)-i)
				break
			}
			fmt.Fprintln(os.Stderr, "  "+l)
		}
		code = 1
	}
	os.Exit(code)
}
