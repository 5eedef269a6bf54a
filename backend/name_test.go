package backend

import (
	"io/fs"
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{".", true}, {"a", true}, {"a/b/c", true}, {"a..b", true}, {"...", true}, {".a", true},
		{"caf\xe9", true}, {"d\xff/x", true},
		{"", false}, {"/", false}, {"/a", false}, {"a/", false}, {"a//b", false}, {"..", false},
		{"a/..", false}, {"../a", false}, {"./a", false}, {"a/./b", false}, {"a\x00b", false}, {"\xff/..", false},
	} {
		if got := ValidName(tc.name); got != tc.ok {
			t.Errorf("ValidName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

// FuzzValidName: ValidName is io/fs.ValidPath without its UTF-8 rule and
// with NUL refused.
func FuzzValidName(f *testing.F) {
	for _, s := range []string{".", "a/b", "a/../b", "caf\xe9", "a\x00", "/x", "x/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got := ValidName(name)
		hasNUL := false
		for i := 0; i < len(name); i++ {
			hasNUL = hasNUL || name[i] == 0
		}
		// Invalid UTF-8 never contains '/' or '.', so replacing it by a
		// letter keeps the element structure ValidPath judges.
		if want := fs.ValidPath(strings.ToValidUTF8(name, "x")) && !hasNUL; got != want {
			t.Fatalf("ValidName(%q) = %v, want %v (fs.ValidPath up to UTF-8, NUL refused)", name, got, want)
		}
		if got && hasNUL {
			t.Fatalf("ValidName(%q) accepted a NUL", name)
		}
	})
}
