package fusefs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCachesChangedOnlyThroughChanged keeps change.go the one place that
// decides what a change through the mount does to the caches: the
// primitives that update a listing snapshot, a directory's remembered
// attributes, a node's change number or write generation may be called
// from nowhere else (dircache.go's own update and drop aside). A new
// operation that calls them directly, with its own mix, fails here; it
// should report a change (filesystem.changed) instead.
func TestCachesChangedOnlyThroughChanged(t *testing.T) {
	primitives := map[string]bool{
		"update": true, "drop": true, "markChanged": true, "bumpWriteGen": true,
		"dirAttrCarry": true, "attrsChanged": true, "dirEntryChanged": true, "Store": true,
	}
	allowed := map[string]map[string]bool{
		"change.go":   {"update": true, "drop": true, "markChanged": true, "bumpWriteGen": true, "dirAttrCarry": true, "attrsChanged": true, "dirEntryChanged": true, "Store": true},
		"dircache.go": {"markChanged": true},
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		ast.Inspect(f, func(x ast.Node) bool {
			call, ok := x.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !primitives[sel.Sel.Name] {
				return true
			}
			if sel.Sel.Name == "Store" {
				// Only the rename sequence number is a cache primitive.
				if inner, ok := sel.X.(*ast.SelectorExpr); !ok || inner.Sel.Name != "renamed" {
					return true
				}
			}
			if !allowed[name][sel.Sel.Name] {
				t.Errorf("%s: %s called outside change.go; report the change with filesystem.changed", fset.Position(call.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
	if checked < 10 {
		t.Fatalf("only %d source files checked: run from the package directory", checked)
	}
}
