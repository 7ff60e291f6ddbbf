package oci

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Blobs keeps chart archives by their sha256 in Dir, so a chart version
// already read (for a PR's rendered diff) is not downloaded again by the
// next run: what a digest names never changes, and a file whose content
// does not match its name is not used. A nil Blobs, or one without Dir,
// keeps nothing.
type Blobs struct{ Dir string }

// maxBlobs and maxBlobBytes bound the archives kept (the bot's cache
// volume is 512 MiB, shared with the HTTP cache and the Helm indexes);
// the least recently used go first.
const (
	maxBlobs     = 256
	maxBlobBytes = 128 << 20
)

func (b *Blobs) path(sum string) (string, bool) {
	sum = strings.TrimPrefix(strings.ToLower(sum), "sha256:")
	if b == nil || b.Dir == "" || len(sum) != 64 || strings.Trim(sum, "0123456789abcdef") != "" {
		return "", false
	}
	return filepath.Join(b.Dir, sum+".tgz"), true
}

// Get returns the blob whose sha256 is sum ("sha256:" optional).
func (b *Blobs) Get(sum string) ([]byte, bool) {
	p, ok := b.path(sum)
	if !ok {
		return nil, false
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, false
	}
	if h := sha256.Sum256(data); hex.EncodeToString(h[:]) != filepath.Base(p)[:64] {
		os.Remove(p)
		return nil, false
	}
	now := time.Now()
	_ = os.Chtimes(p, now, now) // recently used
	return data, true
}

// Put keeps data when its sha256 is sum (a mismatch keeps nothing).
func (b *Blobs) Put(sum string, data []byte) {
	p, ok := b.path(sum)
	if !ok {
		return
	}
	if h := sha256.Sum256(data); hex.EncodeToString(h[:]) != filepath.Base(p)[:64] {
		return
	}
	if os.MkdirAll(b.Dir, 0o700) != nil {
		return
	}
	tmp, err := os.CreateTemp(b.Dir, ".blob-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(data)
	if cerr := tmp.Close(); werr != nil || cerr != nil || os.Rename(tmp.Name(), p) != nil {
		os.Remove(tmp.Name())
		return
	}
	b.prune()
}

// prune removes the least recently used archives past maxBlobs files or
// maxBlobBytes bytes.
func (b *Blobs) prune() {
	ents, err := os.ReadDir(b.Dir)
	if err != nil {
		return
	}
	type file struct {
		name string
		size int64
		used time.Time
	}
	var files []file
	for _, e := range ents {
		if info, err := e.Info(); err == nil && strings.HasSuffix(e.Name(), ".tgz") {
			files = append(files, file{e.Name(), info.Size(), info.ModTime()})
		}
	}
	slices.SortFunc(files, func(a, b file) int { return b.used.Compare(a.used) }) // newest first
	var total int64
	for i, f := range files {
		total += f.size
		if i >= maxBlobs || total > maxBlobBytes {
			os.Remove(filepath.Join(b.Dir, f.name))
		}
	}
}
