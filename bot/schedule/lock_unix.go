//go:build unix

package schedule

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// fileLock takes an exclusive flock(2) on path without blocking. The kernel
// drops it when the process dies, so a crash never wedges the daemon. The
// file is opened without following a symlink, created 0600, and refused
// when another user owns it: in a shared folder like /tmp anyone could
// otherwise create it first and hold the lock for good.
func fileLock(path string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
			f.Close()
			return nil, fmt.Errorf("lock file %s belongs to another user (uid %d): use a folder only this user can write (--lock-file)", path, st.Uid)
		}
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrBusy
		}
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
