//go:build !linux

package generator

import (
	"io/fs"
	"os"
	"path/filepath"
)

// syncDir fsyncs every file under dir (no syncfs outside Linux).
func syncDir(dir string) error {
	return filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
}
