//go:build unix

package metal

import (
	"os"

	"golang.org/x/sys/unix"
)

// lockFile takes an flock on path (created if needed); exclusive for
// writers, shared for readers. The returned func releases it.
func lockFile(path string, exclusive bool) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		if !exclusive && os.IsNotExist(err) {
			return func() {}, nil
		}
		return nil, err
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}
