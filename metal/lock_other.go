//go:build !unix

package metal

// lockFile is a no-op where flock does not exist: one process per state
// file is then the operator's job.
func lockFile(string, bool) (func(), error) { return func() {}, nil }
