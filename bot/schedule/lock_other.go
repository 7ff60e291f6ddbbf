//go:build !unix

package schedule

// fileLock is a no-op where flock(2) does not exist; the in-process lock
// still prevents overlapping passes.
func fileLock(string) (func(), error) { return func() {}, nil }
