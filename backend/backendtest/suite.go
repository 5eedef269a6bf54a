package backendtest

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sftpfs/sftpfs/backend"
)

// testCase is one named conformance case. caps, when not nil, says
// whether the backend can run the case; needs names the capability for
// the skip message.
type testCase struct {
	name  string
	needs string
	caps  func(backend.Capabilities) bool
	fn    func(t *testing.T, b backend.Backend)
}

// cases returns the table of conformance cases. It is a function so that
// the table is immutable package state.
func cases() []testCase {
	return []testCase{
		{name: "Errors/NotExist", fn: testNotExist},
		{name: "Errors/Exist", fn: testExist},
		{name: "Errors/InvalidNames", fn: testInvalidNames},
		{name: "Errors/Permission", fn: testPermission},
		{name: "Errors/Errno", fn: testErrno},
		{name: "Errors/Unsupported", fn: testUnsupported},
		{name: "Errors/CanceledContext", fn: testCanceledContext},
		{name: "Dirs", fn: testDirs},
		{name: "Names/NotUTF8", fn: testNonUTF8Names},
		{name: "ReadWriteAt", fn: testReadWriteAt},
		{name: "ReadPastEOF", fn: testReadPastEOF},
		{name: "Truncate", fn: testTruncate},
		{name: "OpenFlags", fn: testOpenFlags},
		{name: "FileStatAndSync", fn: testFileStatAndSync},
		{name: "Rename/OverFile", fn: testRenameOverFile},
		{name: "Rename/DirOverEmptyDir", fn: testRenameDirOverEmptyDir},
		{name: "Rename/DirOverNonEmptyDir", fn: testRenameDirOverNonEmptyDir},
		{name: "Rename/MixedKinds", fn: testRenameMixedKinds},
		{name: "Rename/NoReplace", fn: testRenameNoReplace},
		{name: "Rename/AcrossDirs", fn: testRenameAcrossDirs},
		{name: "ReadDir/5001Entries", fn: testReadDirLarge},
		{name: "ConcurrentWrites/OneFile", fn: testConcurrentWritesOneFile},
		{name: "ConcurrentWrites/SeparateFiles", fn: testConcurrentWritesSeparateFiles},
		{name: "Symlink", needs: "Symlink", caps: func(c backend.Capabilities) bool { return c.Symlink }, fn: testSymlink},
		{name: "Link", needs: "Link", caps: func(c backend.Capabilities) bool { return c.Link }, fn: testLink},
		{name: "Chown", needs: "Chown", caps: func(c backend.Capabilities) bool { return c.Chown }, fn: testChown},
		{name: "StatFS", needs: "StatFS", caps: func(c backend.Capabilities) bool { return c.StatFS }, fn: testStatFS},
		{name: "Chmod", fn: testChmod},
		{name: "Chtimes", fn: testChtimes},
		{name: "Close/File", fn: testCloseFile},
		{name: "Close/Backend", fn: testCloseBackend},
		{name: "Random", fn: testRandom},
	}
}

// Run runs the conformance suite against backends made by newBackend.
// Every case gets a fresh backend whose root is an empty directory;
// newBackend must arrange its Close with t.Cleanup (the suite closes it
// itself in the cases about Close, and a second Close must return nil).
// A case is skipped only when a capability it needs is false.
func Run(t *testing.T, newBackend func(t *testing.T) backend.Backend) {
	for _, tc := range cases() {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(t)
			if tc.caps != nil && !tc.caps(b.Capabilities()) {
				t.Skipf("backend lacks capability %s", tc.needs)
			}
			tc.fn(t, b)
		})
	}
}

// isAny reports whether err matches any of targets.
func isAny(err error, targets ...error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

func wantErr(t *testing.T, what string, err error, targets ...error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s succeeded; want an error matching %v", what, targets)
		return
	}
	if !isAny(err, targets...) {
		t.Errorf("%s = %v; want an error matching %v", what, err, targets)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func writeFile(t *testing.T, b backend.Backend, name string, data []byte) {
	t.Helper()
	f, err := b.OpenFile(t.Context(), name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	must(t, "create "+name, err)
	if len(data) > 0 {
		n, err := f.WriteAt(data, 0)
		if err != nil || n != len(data) {
			f.Close()
			t.Fatalf("write %s: n=%d, %v", name, n, err)
		}
	}
	must(t, "close "+name, f.Close())
}

func readFile(t *testing.T, b backend.Backend, name string) []byte {
	t.Helper()
	data, err := readAll(t, b, name)
	must(t, "read "+name, err)
	return data
}

func readAll(t *testing.T, b backend.Backend, name string) ([]byte, error) {
	f, err := b.OpenFile(t.Context(), name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, fi.Size+1)
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return nil, err
	}
	if int64(n) != fi.Size {
		return nil, errors.New("size from File.Stat and bytes read differ")
	}
	return buf[:n], nil
}

func wantContent(t *testing.T, b backend.Backend, name string, want []byte) {
	t.Helper()
	got := readFile(t, b, name)
	if !bytes.Equal(got, want) {
		t.Errorf("content of %s = %s; want %s", name, short(got), short(want))
	}
}

func short(p []byte) string {
	if len(p) <= 40 {
		return "\"" + string(p) + "\""
	}
	return "\"" + string(p[:40]) + "\"... (" + strconv.Itoa(len(p)) + " bytes)"
}

func names(infos []backend.FileInfo) []string {
	var out []string
	for _, fi := range infos {
		out = append(out, fi.Name)
	}
	slices.Sort(out)
	return out
}

func wantNames(t *testing.T, b backend.Backend, dir string, want ...string) {
	t.Helper()
	infos, err := b.ReadDir(t.Context(), dir)
	must(t, "readdir "+dir, err)
	got := names(infos)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("ReadDir(%q) = [%s]; want [%s]", dir, strings.Join(got, " "), strings.Join(want, " "))
	}
}

func wantNotExist(t *testing.T, b backend.Backend, name string) {
	t.Helper()
	_, err := b.Lstat(t.Context(), name)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Lstat(%q) = %v; want fs.ErrNotExist", name, err)
	}
}
