package release

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// gzipLevel is fixed: a different level gives different bytes, so a
// different layer digest.
const gzipLevel = gzip.DefaultCompression

// File is one entry of a layer built from named files (the hl layer).
type File struct {
	// Path inside the image, without a leading slash.
	Path string
	// Source is the host file copied in; empty for a directory.
	Source string
	Mode   fs.FileMode
}

// writeTarGz writes a gzip-compressed tar to path, handing fill the tar
// writer; the file appears only once complete.
func writeTarGz(path string, fill func(*tar.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".layer-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	gz, err := gzip.NewWriterLevel(tmp, gzipLevel)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	if err := fill(tw); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// Published files: readable by all, as a release asset is.
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// DirLayer writes dir as a layer to path: every entry under dir in
// lexical order (parents before children), mtime = modTime, numeric uid
// and gid as on disk (no names), permission and setuid/setgid/sticky bits
// as on disk, hard links as tar links to the first path, no xattrs.
// Sockets are refused; device nodes are kept as such (the base script
// removes /dev's).
func DirLayer(dir, path string, modTime time.Time) error {
	return writeTarGz(path, func(tw *tar.Writer) error {
		links := map[[2]uint64]string{}
		var rootDev uint64
		return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			fi, err := os.Lstat(p)
			if err != nil {
				return err
			}
			st, ok := fi.Sys().(*syscall.Stat_t)
			if !ok {
				return fmt.Errorf("%s: no stat_t", p)
			}
			// A mount inside the base (a /proc debootstrap left mounted)
			// is no part of it.
			if rel == "." {
				rootDev = uint64(st.Dev)
				return nil
			}
			if uint64(st.Dev) != rootDev {
				return fmt.Errorf("%s is on another file system (a mount inside the base): unmount it", p)
			}
			name := filepath.ToSlash(rel)
			hdr := &tar.Header{
				Name:    name,
				Mode:    tarMode(fi.Mode()),
				Uid:     int(st.Uid),
				Gid:     int(st.Gid),
				ModTime: modTime,
			}
			var body string
			switch m := fi.Mode(); {
			case m.IsDir():
				hdr.Typeflag = tar.TypeDir
				hdr.Name += "/"
			case m&fs.ModeSymlink != 0:
				hdr.Typeflag = tar.TypeSymlink
				if hdr.Linkname, err = os.Readlink(p); err != nil {
					return err
				}
			case m.IsRegular():
				key := [2]uint64{uint64(st.Dev), st.Ino}
				if first, ok := links[key]; ok && st.Nlink > 1 {
					hdr.Typeflag = tar.TypeLink
					hdr.Linkname = first
					break
				}
				links[key] = name
				hdr.Typeflag = tar.TypeReg
				hdr.Size = fi.Size()
				body = p
			case m&fs.ModeNamedPipe != 0:
				hdr.Typeflag = tar.TypeFifo
			case m&fs.ModeDevice != 0:
				hdr.Typeflag = tar.TypeBlock
				if m&fs.ModeCharDevice != 0 {
					hdr.Typeflag = tar.TypeChar
				}
				hdr.Devmajor = int64(unix.Major(st.Rdev))
				hdr.Devminor = int64(unix.Minor(st.Rdev))
			default:
				return fmt.Errorf("%s: cannot put a %v in a layer", p, m.Type())
			}
			if err := tw.WriteHeader(hdr); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			if body != "" {
				return copyInto(tw, body, hdr.Size)
			}
			return nil
		})
	})
}

// FilesLayer writes files as a layer to path, owned by root, in the
// order given (callers list parents first).
func FilesLayer(files []File, path string, modTime time.Time) error {
	return writeTarGz(path, func(tw *tar.Writer) error {
		for _, f := range files {
			hdr := &tar.Header{Name: strings.TrimPrefix(f.Path, "/"), Mode: tarMode(f.Mode), ModTime: modTime}
			if f.Source == "" {
				hdr.Typeflag = tar.TypeDir
				hdr.Name = strings.TrimSuffix(hdr.Name, "/") + "/"
				if err := tw.WriteHeader(hdr); err != nil {
					return err
				}
				continue
			}
			fi, err := os.Stat(f.Source)
			if err != nil {
				return err
			}
			if !fi.Mode().IsRegular() {
				return fmt.Errorf("%s: not a regular file", f.Source)
			}
			hdr.Typeflag = tar.TypeReg
			hdr.Size = fi.Size()
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if err := copyInto(tw, f.Source, hdr.Size); err != nil {
				return err
			}
		}
		return nil
	})
}

// copyInto copies exactly size bytes of p (a file changing under the
// build is an error, not a short or long entry).
func copyInto(w io.Writer, p string, size int64) error {
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("%w (the base holds root-only files such as /etc/shadow: build the image as root)", err)
		}
		return err
	}
	defer f.Close()
	n, err := io.Copy(w, io.LimitReader(f, size+1))
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if n != size {
		return fmt.Errorf("%s changed size while being read", p)
	}
	return nil
}

// tarMode is the tar mode word of m: permission bits plus the
// setuid/setgid/sticky bits in their Unix positions.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}
