package backend

import "testing"

// TestPermToUnixInvertsModeFromUnix: every 12-bit permission value (with
// setuid, setgid and sticky) survives the round trip, so the SFTP
// attributes and the kernel's attributes carry what was asked for.
func TestPermToUnixInvertsModeFromUnix(t *testing.T) {
	for m := uint32(0); m <= 0o7777; m++ {
		if got := PermToUnix(ModeFromUnix(m)); got != m {
			t.Fatalf("PermToUnix(ModeFromUnix(%#o)) = %#o", m, got)
		}
	}
}
