// Package mountinfo reads the kernel's mount table (/proc/self/mountinfo).
//
// The driver needs it to find stale and stacked mounts before it touches a
// mountpoint directory, and the tests and the benchmark need it to prove
// that nothing stays mounted; one parser keeps the octal unescaping and
// the field layout in one place.
package mountinfo
