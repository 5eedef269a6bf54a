package backend

import "context"

// Unlinker is implemented by backends whose Remove spends a round trip
// making sure name is not a directory (SFTP: pkg/sftp's Remove falls
// back to RMDIR when REMOVE fails, so Remove lstat's first). Unlink
// removes name, which the caller saw as a non-directory a moment ago
// (the kernel checks the type it knows before it sends an unlink), and
// skips that check: one round trip instead of two, which is the whole
// cost of `rm` of many files. Errors are Remove's, except that a
// directory another client put in name's place since the caller looked
// may be removed if it is empty, instead of failing with EISDIR.
type Unlinker interface {
	Unlink(ctx context.Context, name string) error
}

// Unlink removes the non-directory name through b's Unlink when it has
// one, else through Remove.
func Unlink(ctx context.Context, b Backend, name string) error {
	if u, ok := b.(Unlinker); ok {
		return u.Unlink(ctx, name)
	}
	return b.Remove(ctx, name)
}
