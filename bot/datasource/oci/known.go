package oci

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
)

// Known maps image digests to what was read from them once (their source
// repository): a digest's content never changes, so neither does the
// answer. With Dir set it is kept in Dir/known.json (0600 in a 0700
// folder) and outlives the process; a file that cannot be read or
// written only costs the lookups again. The zero value and nil are
// usable (nil keeps nothing).
type Known struct {
	Dir string

	mu     sync.Mutex
	m      map[string]string
	loaded bool
}

// maxKnown bounds the entries kept; past it the map starts over (a
// homelab has a few hundred images).
const maxKnown = 4096

// Get returns the answer kept for key.
func (k *Known) Get(key string) (string, bool) {
	if k == nil {
		return "", false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.load()
	v, ok := k.m[key]
	return v, ok
}

// Put keeps the answer for key (and writes the file when Dir is set).
func (k *Known) Put(key, v string) {
	if k == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.load()
	if old, ok := k.m[key]; ok && old == v {
		return
	}
	if len(k.m) >= maxKnown {
		k.m = map[string]string{}
	}
	k.m[key] = v
	if k.Dir == "" {
		return
	}
	b, err := json.Marshal(k.m)
	if err != nil || os.MkdirAll(k.Dir, 0o700) != nil {
		return
	}
	tmp, err := os.CreateTemp(k.Dir, ".known-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(b)
	if cerr := tmp.Close(); werr != nil || cerr != nil || os.Rename(tmp.Name(), filepath.Join(k.Dir, "known.json")) != nil {
		os.Remove(tmp.Name())
	}
}

func (k *Known) load() {
	if k.loaded {
		return
	}
	k.loaded = true
	k.m = map[string]string{}
	if k.Dir == "" {
		return
	}
	if b, err := os.ReadFile(filepath.Join(k.Dir, "known.json")); err == nil {
		var m map[string]string
		if json.Unmarshal(b, &m) == nil && m != nil {
			k.m = m
		}
	}
}
