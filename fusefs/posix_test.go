package fusefs_test

import (
	"slices"
	"sort"
	"testing"

	"github.com/hanwen/go-fuse/v2/posixtest"

	"github.com/sftpfs/sftpfs/fusefs"
)

// posixIncluded are the go-fuse posixtest scenarios sftpfs must pass.
var posixIncluded = []string{
	"AppendWrite",
	"DirSeek",
	"DirectIO",
	"FdLeak",
	"FileBasic",
	"FileLarge",
	"FstatDeleted",
	"Link",
	"LinkUnlinkRename",
	"LseekEnxioCheck",
	"LseekHoleSeeksToEOF",
	"MkdirRmdir",
	"NlinkZero",
	"OpenAt",
	"ParallelFileOpen",
	"ReadDirBasic",
	"ReadDirConsistency",
	"RenameOpenDir",
	"RenameOverwriteDestExist",
	"RenameOverwriteDestNoExist",
	"SymlinkReadlink",
	"TruncateFile",
	"TruncateNoFile",
}

// posixExcluded are left out on purpose, each with the reason.
var posixExcluded = map[string]string{
	"Fallocate":           "the backend contract has no fallocate (SFTP has no such request)",
	"FallocateKeepSize":   "the backend contract has no fallocate (SFTP has no such request)",
	"FcntlFlockLocksFile": "locks are disabled: they would only be local to one client of shared storage",
	"FcntlFlockSetLk":     "locks are disabled: they would only be local to one client of shared storage",
	"OpenSymlinkRace":     "the backend follows a symlink that replaced a file between lookup and open (SFTP cannot open without following); the local backend then refuses the escape with EACCES, which this test does not expect; confinement is tested in backend/local",
	"SetattrSymlink":      "times of a symlink itself need lsetstat, which the local backend lacks; sftpfs accepts and ignores such requests instead",
	"Tmpfile":             "O_TMPFILE needs an unnamed file, which neither SFTP nor the contract can create",
	"XAttr":               "extended attributes are not supported (not in the backend contract)",
	"XAttrLarge":          "extended attributes are not supported (not in the backend contract)",
}

// TestPosix runs the chosen go-fuse posixtest scenarios, each on a fresh
// mount of a local backend (TestPosixSFTP: over SFTP).
func TestPosix(t *testing.T) {
	// Every scenario go-fuse ships must be decided on, so that a go-fuse
	// upgrade with new scenarios fails here until someone looks at them.
	var all []string
	for name := range posixtest.All {
		all = append(all, name)
	}
	sort.Strings(all)
	for _, name := range all {
		_, excluded := posixExcluded[name]
		included := slices.Contains(posixIncluded, name)
		if included == excluded {
			t.Errorf("posixtest %q must be in exactly one of posixIncluded and posixExcluded", name)
		}
	}
	runPosix(t, localStorage, nil)
}

// runPosix runs posixIncluded, each scenario on a fresh mount of
// storage s, except those in skip (name -> why it cannot pass there).
func runPosix(t *testing.T, s storage, skip map[string]string) {
	for _, name := range posixIncluded {
		fn, ok := posixtest.All[name]
		if !ok {
			t.Errorf("posixtest %q no longer exists", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			if why, ok := skip[name]; ok {
				t.Skip(why)
			}
			o := testOptions()
			// These scenarios check POSIX round trips (SymlinkReadlink reads
			// back an absolute "/foobar"); the containment rewrite is tested
			// in TestSymlinkPolicies.
			o.Symlinks = fusefs.SymlinkKeep
			mnt, _ := s.mount(t, o)
			fn(t, mnt)
		})
	}
}
