package layering

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/sftpfs/sftpfs"

// rule says which packages of ours the packages matching pkg may import.
// A pattern ending in "/" matches every package below it; any other
// pattern matches exactly one package.
type rule struct {
	pkg string
	may []string
	// exceptions are imports allowed for now although the layering says
	// no, each with the reason and what removes it.
	exceptions map[string]string
}

var rules = []rule{
	{pkg: "internal/", may: []string{"internal/"}},
	{pkg: "backend", may: []string{"internal/"}},
	{pkg: "backend/", may: []string{"backend", "internal/"}},
	// backend/sftp's open files use its SFTP wire client (datafile.go).
	{pkg: "backend/sftp", may: []string{"backend", "backend/sftp/internal/sftpwire", "internal/"}},
	// The SFTP wire client is a protocol library under backend/sftp: it
	// knows nothing of the contract, errnos or reconnects.
	{pkg: "backend/sftp/internal/sftpwire", may: []string{}},
	{pkg: "fusefs", may: []string{"backend", "internal/"}},
	{pkg: "sftpserver", may: []string{"backend", "backend/local", "internal/"}},
	{pkg: "options", may: []string{"backend/sftp", "fusefs", "internal/"}},
	{pkg: "mounter", may: []string{"backend", "backend/", "fusefs", "options", "internal/"}},
	// The driver knows no concrete backend; metered is a decorator of
	// the contract whose registry it hands to the mounter.
	{pkg: "driver", may: []string{"backend", "backend/metered", "mounter", "options", "internal/"}},
	// The CSI services drive the same mounter as the Docker driver.
	{pkg: "csi", may: []string{"backend", "mounter", "options", "internal/"}},
	// sshcompat turns ssh/sshfs/mount(8) habits into our options.
	{pkg: "sshcompat", may: []string{"options", "internal/"}},
	{pkg: "cmd/", may: []string{"backend", "backend/", "fusefs", "sftpserver", "options", "sshcompat", "csi", "mounter", "driver", "internal/"}},
	// Test harnesses drive the built binary and Docker from outside.
	{pkg: "bench", may: []string{"internal/"}},
	{pkg: "bench/", may: []string{"internal/"}},
	{pkg: "soak", may: []string{"internal/"}},
	{pkg: "scripts", may: []string{"internal/"}},
	{pkg: "e2e", may: []string{"internal/"}},
	{pkg: "e2e/", may: []string{"internal/"}},
}

func matches(pattern, pkg string) bool {
	if p, ok := strings.CutSuffix(pattern, "/"); ok {
		return strings.HasPrefix(pkg, p+"/")
	}
	return pkg == pattern
}

// ruleFor returns the rule with the longest pattern matching pkg.
func ruleFor(pkg string) (rule, bool) {
	var best rule
	found := false
	for _, r := range rules {
		if matches(r.pkg, pkg) && (!found || len(r.pkg) > len(best.pkg)) {
			best, found = r, true
		}
	}
	return best, found
}

// violations lists the imports of ours that break the rules, as
// "pkg imports dep" lines with the fix.
func violations(graph map[string][]string) []string {
	var out []string
	for pkg, imports := range graph {
		r, ok := ruleFor(pkg)
		if !ok {
			out = append(out, pkg+": no layering rule covers this package; add one to rules in internal/layering")
			continue
		}
		for _, dep := range imports {
			if _, ok := r.exceptions[dep]; ok {
				continue
			}
			allowed := false
			for _, m := range r.may {
				allowed = allowed || matches(m, dep)
			}
			if !allowed {
				out = append(out, pkg+" imports "+dep+": not allowed by the layering (may import: "+strings.Join(r.may, ", ")+
					"); move the shared piece down a layer or depend on the backend contract instead")
			}
		}
	}
	sort.Strings(out)
	return out
}

// ourGraph returns, for every package of the module, the packages of
// ours it imports (without the module prefix; test imports not counted).
func ourGraph(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	graph := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		name, ok := strings.CutPrefix(p.ImportPath, module+"/")
		if !ok {
			continue
		}
		var ours []string
		for _, imp := range p.Imports {
			if dep, ok := strings.CutPrefix(imp, module+"/"); ok {
				ours = append(ours, dep)
			}
		}
		graph[name] = ours
	}
	return graph
}

func TestImportLayering(t *testing.T) {
	graph := ourGraph(t)
	if len(graph) < 10 {
		t.Fatalf("go list found only %d packages: %v", len(graph), graph)
	}
	for _, v := range violations(graph) {
		t.Error(v)
	}
	// An exception nobody needs any more is dropped, not kept as a hole.
	for _, r := range rules {
		for dep, why := range r.exceptions {
			used := false
			for pkg, imports := range graph {
				if matches(r.pkg, pkg) {
					for _, d := range imports {
						used = used || d == dep
					}
				}
			}
			if !used {
				t.Errorf("%s no longer imports %s: remove the exception (%s)", r.pkg, dep, why)
			}
		}
	}
}

// The checker itself catches the upward imports the layering forbids.
func TestViolationsFound(t *testing.T) {
	bad := map[string][]string{
		"backend/sftp": {"backend", "fusefs"},
		"fusefs":       {"backend", "backend/sftp"},
		"driver":       {"mounter", "backend/local"},
		"internal/x":   {"options"},
		"newpkg":       nil,
	}
	got := strings.Join(violations(bad), "\n")
	for _, want := range []string{
		"backend/sftp imports fusefs", "fusefs imports backend/sftp", "driver imports backend/local",
		"internal/x imports options", "newpkg: no layering rule",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("violations missed %q; got:\n%s", want, got)
		}
	}
	if strings.Contains(got, "imports backend\n") || strings.Contains(got, "driver imports mounter") {
		t.Errorf("violations flagged an allowed import:\n%s", got)
	}
}
