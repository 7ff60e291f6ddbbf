//go:build !unix

package credfile

import "io/fs"

func ownGroup(fs.FileInfo) bool { return false }
