package fusefs

// BufferSize is the size of one read-ahead or write-behind buffer, the
// unit of the mount-wide bounds (budget.go).
const BufferSize = readChunk

// BufferStats tells how many read-ahead and write-behind buffers the
// mount's handles hold now and held at most at once.
func (s *Server) BufferStats() (raHeld, raPeak, wbHeld, wbPeak int) {
	raHeld, raPeak = s.fsys.raMem.stats()
	wbHeld, wbPeak = s.fsys.wbMem.stats()
	return raHeld, raPeak, wbHeld, wbPeak
}
