//go:build unix

package credfile

import (
	"io/fs"
	"os"
	"syscall"
)

// ownGroup reports whether fi is a file Kubernetes mounted for this
// process: owned by root, group the process's own, read by a non-root
// process. A user's own file on a workstation (owned by that user, whose
// primary group may be shared, e.g. "users") never qualifies.
func ownGroup(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == 0 && os.Geteuid() != 0 && int(st.Gid) == os.Getegid()
}
