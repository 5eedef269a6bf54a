package options

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the option table in ../README.md")

// TestREADME fails when the table in README.md differs from Markdown(), so
// the documentation cannot drift from the code. Fix it with
// `go test ./options -run README -update`.
func TestREADME(t *testing.T) {
	const path = "../README.md"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	i, j := strings.Index(s, MarkerBegin), strings.Index(s, MarkerEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the markers %s ... %s", MarkerBegin, MarkerEnd)
	}
	want := s[:i+len(MarkerBegin)] + "\n" + Markdown() + "\n" + s[j:]
	if s == want {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md option table is out of date; run `go test ./options -run README -update`")
}

func TestMarkdownListsEveryOption(t *testing.T) {
	md, txt := Markdown(), Text()
	for _, o := range Table() {
		if !strings.Contains(md, "| `"+o.Name+"`") {
			t.Errorf("Markdown lacks %s", o.Name)
		}
		if !strings.Contains(txt, "  "+o.Name+"=") {
			t.Errorf("Text lacks %s", o.Name)
		}
	}
	if !strings.Contains(md, "**Secret.**") {
		t.Error("secret options are not marked")
	}
}
