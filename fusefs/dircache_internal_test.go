package fusefs

import (
	"fmt"
	"testing"
	"time"

	"github.com/sftpfs/sftpfs/backend"
)

func listingOf(prefix string, n int) []backend.FileInfo {
	fis := make([]backend.FileInfo, n)
	for i := range fis {
		fis[i] = backend.FileInfo{Name: fmt.Sprintf("%s%05d", prefix, i), Mode: 0o644}
	}
	return fis
}

// TestSweepBounds: the entry bound holds after every install, also
// between the full passes over all directories; an expired snapshot is
// dropped at the next full pass (at most ttl/4 after the previous one)
// and never answers meanwhile.
func TestSweepBounds(t *testing.T) {
	const ttl = time.Second
	dc := newDirCache(nil, Options{AttrTimeout: ttl, EntryTimeout: ttl})
	defer dc.shutdown()

	// 60 directories of 1,000 entries: 10,000 more than the bound.
	for i := range 60 {
		dc.store(&node{}, dc.begin(), listingOf("f", 1000))
		dc.mu.Lock()
		total := dc.total
		dc.mu.Unlock()
		if total > snapTotalEntries {
			t.Fatalf("after %d installs the snapshots hold %d entries, bound %d", i+1, total, snapTotalEntries)
		}
	}

	now := time.Now()
	old := &node{}
	dc.mu.Lock()
	dc.swept = now // a full pass just ran
	dc.mu.Unlock()
	dc.storeAt(old, dc.begin(), listingOf("o", 3), now.Add(-2*ttl))
	dc.store(&node{}, dc.begin(), listingOf("n", 3))
	if _, res, _, _ := dc.lookup(old, "o00001"); res != snapUnknown {
		t.Errorf("an expired snapshot answered a lookup (%v)", res)
	}
	// The lookup dropped it; again, and this time a full pass follows.
	dc.storeAt(old, dc.begin(), listingOf("o", 3), now.Add(-2*ttl))
	dc.mu.Lock()
	dc.swept = now.Add(-ttl)
	dc.mu.Unlock()
	dc.store(&node{}, dc.begin(), listingOf("m", 3))
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if st := dc.dirs[old]; st != nil && st.snap != nil {
		t.Errorf("an expired snapshot survived a full pass")
	}
}
