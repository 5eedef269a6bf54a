package backendtest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/sftpfs/sftpfs/backend"
)

// seedFor returns the seed for randomized cases: $BACKENDTEST_SEED when
// set, else one derived from the clock. It is logged so that a failure can
// be replayed.
func seedFor(t *testing.T) uint64 {
	t.Helper()
	if s := os.Getenv("BACKENDTEST_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("BACKENDTEST_SEED=%q is not an unsigned decimal integer: %v", s, err)
		}
		t.Logf("seed %d (from BACKENDTEST_SEED)", seed)
		return seed
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d (replay with BACKENDTEST_SEED=%d)", seed, seed)
	return seed
}

// model is the expected state of the namespace used by testRandom: the
// directories "d0" and "d1" may exist under the root, and files "f0".."f3"
// may exist in the root and in each existing directory. Directories only
// ever hold files, and renames never mix kinds, so every expected outcome
// follows from a few rules.
type model struct {
	dirs  map[string]bool   // "d0", "d1" when they exist
	files map[string][]byte // full path -> content
}

// outcome is the error class an operation must produce.
type outcome int

const (
	ok outcome = iota
	notExist
	exist
	notEmpty
)

func (o outcome) String() string {
	return [...]string{"success", "fs.ErrNotExist", "fs.ErrExist", "syscall.ENOTEMPTY"}[o]
}

func (o outcome) matches(err error) bool {
	switch o {
	case ok:
		return err == nil
	case notExist:
		return errors.Is(err, fs.ErrNotExist)
	case exist:
		return errors.Is(err, fs.ErrExist)
	case notEmpty:
		return errors.Is(err, syscall.ENOTEMPTY)
	}
	return false
}

func (m *model) parentExists(p string) bool {
	d := path.Dir(p)
	return d == "." || m.dirs[d]
}

func (m *model) dirEmpty(d string) bool {
	for p := range m.files {
		if path.Dir(p) == d {
			return false
		}
	}
	return true
}

func testRandom(t *testing.T, b backend.Backend) {
	ctx := t.Context()
	seed := seedFor(t)
	rng := rand.New(rand.NewPCG(seed, ^seed))
	m := &model{dirs: map[string]bool{}, files: map[string][]byte{}}
	dirNames := []string{"d0", "d1"}
	filePath := func() string {
		f := "f" + strconv.Itoa(rng.IntN(4))
		if k := rng.IntN(3); k > 0 {
			return dirNames[k-1] + "/" + f
		}
		return f
	}
	randData := func() []byte {
		p := make([]byte, 1+rng.IntN(3000))
		for i := range p {
			p[i] = byte('a' + rng.IntN(26))
		}
		return p
	}
	const steps = 500
	for step := 0; step < steps; step++ {
		var desc string
		var want outcome
		var err error
		switch op := rng.IntN(9); op {
		case 0, 1: // create
			p := filePath()
			desc = "create " + p
			switch {
			case !m.parentExists(p):
				want = notExist
			case m.files[p] != nil:
				want = exist
			default:
				m.files[p] = []byte{}
			}
			var f backend.File
			f, err = b.OpenFile(ctx, p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
			if f != nil {
				must(t, "close "+p, f.Close())
			}
		case 2, 3: // write at an offset, possibly past the end
			p := filePath()
			data := randData()
			content, exists := m.files[p]
			off := 0
			if exists {
				off = rng.IntN(len(content) + 2000)
			}
			desc = fmt.Sprintf("write %d bytes at %d to %s", len(data), off, p)
			if !exists {
				want = notExist
			} else {
				if end := off + len(data); end > len(content) {
					content = append(content, make([]byte, end-len(content))...)
				}
				copy(content[off:], data)
				m.files[p] = content
			}
			var f backend.File
			f, err = b.OpenFile(ctx, p, os.O_RDWR, 0)
			if err == nil {
				var n int
				n, err = f.WriteAt(data, int64(off))
				if err == nil && n != len(data) {
					err = fmt.Errorf("short write: %d of %d bytes", n, len(data))
				}
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
		case 4: // truncate
			p := filePath()
			content, exists := m.files[p]
			size := rng.IntN(len(content) + 1000)
			desc = fmt.Sprintf("truncate %s to %d", p, size)
			if !exists {
				want = notExist
			} else if size <= len(content) {
				m.files[p] = content[:size:size]
			} else {
				m.files[p] = append(content, make([]byte, size-len(content))...)
			}
			err = b.Truncate(ctx, p, int64(size))
		case 5: // rename a file, sometimes without replacing
			from, to := filePath(), filePath()
			if from == to {
				continue
			}
			flags := backend.RenameFlags(0)
			if rng.IntN(3) == 0 {
				flags = backend.RenameNoReplace
			}
			desc = fmt.Sprintf("rename %s to %s (flags %d)", from, to, flags)
			content, exists := m.files[from]
			switch {
			case !exists || !m.parentExists(to):
				want = notExist
			case flags == backend.RenameNoReplace && m.files[to] != nil:
				want = exist
			default:
				delete(m.files, from)
				m.files[to] = content
			}
			err = b.Rename(ctx, from, to, flags)
		case 6: // remove a file
			p := filePath()
			desc = "remove " + p
			if m.files[p] == nil {
				want = notExist
			} else {
				delete(m.files, p)
			}
			err = b.Remove(ctx, p)
		case 7: // mkdir or rmdir
			d := dirNames[rng.IntN(2)]
			if rng.IntN(2) == 0 {
				desc = "mkdir " + d
				if m.dirs[d] {
					want = exist
				} else {
					m.dirs[d] = true
				}
				err = b.Mkdir(ctx, d, 0o755)
			} else {
				desc = "rmdir " + d
				switch {
				case !m.dirs[d]:
					want = notExist
				case !m.dirEmpty(d):
					want = notEmpty
				default:
					delete(m.dirs, d)
				}
				err = b.Rmdir(ctx, d)
			}
		case 8: // rename a directory over the other one
			from, to := dirNames[0], dirNames[1]
			if rng.IntN(2) == 0 {
				from, to = to, from
			}
			desc = "rename directory " + from + " to " + to
			switch {
			case !m.dirs[from]:
				want = notExist
			case m.dirs[to] && !m.dirEmpty(to):
				want = notEmpty
			default:
				delete(m.dirs, from)
				m.dirs[to] = true
				for p, c := range m.files {
					if path.Dir(p) == from {
						delete(m.files, p)
						m.files[to+"/"+path.Base(p)] = c
					}
				}
			}
			err = b.Rename(ctx, from, to, 0)
		}
		if !want.matches(err) {
			t.Fatalf("step %d: %s = %v; want %v (seed %d)", step, desc, err, want, seed)
		}
		// Check a random file against the model after every step.
		p := filePath()
		got, rerr := readAll(t, b, p)
		if wantC, exists := m.files[p]; exists {
			if rerr != nil || !bytes.Equal(got, wantC) {
				t.Fatalf("step %d (after %s): %s = %s, %v; want %s (seed %d)", step, desc, p, short(got), rerr, short(wantC), seed)
			}
		} else if !errors.Is(rerr, fs.ErrNotExist) {
			t.Fatalf("step %d (after %s): reading %s = %v; want fs.ErrNotExist (seed %d)", step, desc, p, rerr, seed)
		}
	}
	// Finally the whole tree must equal the model.
	gotDirs, gotFiles := walk(t, b)
	var wantDirs []string
	for d := range m.dirs {
		wantDirs = append(wantDirs, d)
	}
	slices.Sort(wantDirs)
	if !slices.Equal(gotDirs, wantDirs) {
		t.Errorf("directories = %v; want %v (seed %d)", gotDirs, wantDirs, seed)
	}
	for p, c := range m.files {
		if g, ok := gotFiles[p]; !ok || !bytes.Equal(g, c) {
			t.Errorf("file %s = %s (present %v); want %s (seed %d)", p, short(g), ok, short(c), seed)
		}
	}
	for p := range gotFiles {
		if _, ok := m.files[p]; !ok {
			t.Errorf("unexpected file %s (seed %d)", p, seed)
		}
	}
}

// walk lists every directory (except the root) and reads every regular
// file under the root.
func walk(t *testing.T, b backend.Backend) (dirs []string, files map[string][]byte) {
	files = map[string][]byte{}
	var visit func(dir string)
	visit = func(dir string) {
		infos, err := b.ReadDir(t.Context(), dir)
		must(t, "readdir "+dir, err)
		for _, fi := range infos {
			p := fi.Name
			if dir != "." {
				p = dir + "/" + fi.Name
			}
			switch {
			case fi.IsDir():
				dirs = append(dirs, p)
				visit(p)
			case fi.Mode.IsRegular():
				files[p] = readFile(t, b, p)
			default:
				t.Errorf("unexpected %v entry %s", fi.Mode.Type(), p)
			}
		}
	}
	visit(".")
	slices.Sort(dirs)
	return dirs, files
}
