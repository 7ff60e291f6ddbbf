//go:build unix

package credfile

import (
	"io/fs"
	"os"
	"syscall"
)

// ownGroup reports whether fi's group is the process's group.
func ownGroup(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Gid) == os.Getegid()
}
