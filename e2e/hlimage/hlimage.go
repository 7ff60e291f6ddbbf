// Package hlimage builds hl's real image for tests and extracts it once
// per source tree: every test binary that runs rendered workloads or
// pipeline steps (internal/asrendered's, e2e's, the loop test's) asks for
// it here and gets the same extracted root file system.
//
// The image is what a release builds (release.BuildBinary for this
// machine's architecture, release.BuildImage over the cached Debian base
// from `make image-base-host`). It lives under .cache/hl-image/<key>,
// where the key hashes the built binary and the base's recipe folder: a
// source change builds a new one, an unchanged tree reuses it. A lock
// file serialises the build across test binaries that `go test` runs at
// the same time, so two packages never build (or extract) it twice; a
// build removes the images of older trees that no test binary runs from.
// $HL_IMAGE_SOURCE names another source tree to build hl from (a clean
// export of a commit, when the working tree does not build).
package hlimage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"hl.dev/hl/internal/asrendered"
	"hl.dev/hl/internal/testharness"
	"hl.dev/hl/release"
)

// Version is the version linked into the test image's hl.
const Version = "v0.0.0-test.1"

// Ref is the reference the test image is written under in its layout.
const Ref = "ghcr.io/hl-dev/hl:" + Version

var shared struct {
	once sync.Once
	img  *asrendered.Image
	err  error
}

// Get returns the extracted image, building it on first use in this
// process (and in the cache, when no other test binary did); it needs
// root (asrendered.ErrNotRoot otherwise).
func Get(ctx context.Context) (*asrendered.Image, error) {
	shared.once.Do(func() { shared.img, shared.err = build(ctx) })
	return shared.img, shared.err
}

// imageMeta is what is kept next to the extracted root file system.
type imageMeta struct {
	Config   v1.Config   `json:"config"`
	Platform v1.Platform `json:"platform"`
}

func build(ctx context.Context) (*asrendered.Image, error) {
	if os.Geteuid() != 0 {
		return nil, asrendered.ErrNotRoot
	}
	repo := os.Getenv("HL_IMAGE_SOURCE")
	if repo == "" {
		var err error
		if repo, err = testharness.RepoRoot(); err != nil {
			return nil, err
		}
	}
	bases, err := testharness.CacheRoot("HL_IMAGE_BASE_CACHE", "image-base")
	if err != nil {
		return nil, err
	}
	testharness.AwaitBuild(filepath.Join(bases, "current", runtime.GOARCH, "rootfs", "bin", "sh"))
	base, err := filepath.EvalSymlinks(filepath.Join(bases, "current", runtime.GOARCH, "rootfs"))
	if err != nil || !exists(filepath.Join(base, "bin", "sh")) {
		return nil, fmt.Errorf("no image base at %s: run `make image-base-host` as root", filepath.Join(bases, "current", runtime.GOARCH, "rootfs"))
	}
	root, err := testharness.CacheRoot("HL_IMAGE_CACHE", "hl-image")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	unlock, err := lock(filepath.Join(root, "lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	work, err := os.MkdirTemp(root, "build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	bin := filepath.Join(work, "hl")
	if err := release.BuildBinary(ctx, repo, runtime.GOARCH, Version, bin); err != nil {
		return nil, err
	}
	key, err := keyOf(bin, base)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(root, key)
	if img, err := load(dir); err == nil {
		return img, hold(dir)
	}
	prune(root, key, filepath.Base(work))
	idx, err := release.BuildImage(ctx, release.ImageOptions{
		Version: Version, Revision: "test", Source: release.DefaultSource,
		Created:   time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Platforms: []release.Platform{{Arch: runtime.GOARCH, Base: base, Binary: bin}},
		WorkDir:   filepath.Join(work, "image"),
	})
	if err != nil {
		return nil, err
	}
	lay := filepath.Join(work, "layout")
	if err := release.WriteLayout(lay, idx, Ref); err != nil {
		return nil, err
	}
	img, err := asrendered.ImageFromLayout(lay, runtime.GOARCH, filepath.Join(dir, "rootfs"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	meta, err := json.Marshal(imageMeta{Config: img.Config, Platform: img.Platform})
	if err != nil {
		return nil, err
	}
	// meta.json last: its presence says the extraction is complete.
	if err := os.WriteFile(filepath.Join(dir, "meta.json"), meta, 0o644); err != nil {
		return nil, err
	}
	return img, hold(dir)
}

// inUse keeps a shared lock on the image this process runs from, for the
// process's life: prune leaves an image alone while any test binary (of
// another source tree, say) holds one.
var inUse *os.File

func hold(dir string) error {
	f, err := os.OpenFile(dir+".inuse", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		return fmt.Errorf("lock %s.inuse: %w", dir, err)
	}
	inUse = f
	return nil
}

// prune removes the images of other builds (older trees) that no running
// test binary holds, and build folders a killed build left behind.
func prune(root, keep, building string) {
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || name == keep || name == building {
			continue
		}
		p := filepath.Join(root, name)
		if strings.HasPrefix(name, "build-") {
			os.RemoveAll(p)
			continue
		}
		f, err := os.OpenFile(p+".inuse", os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			os.RemoveAll(p)
			os.Remove(p + ".inuse")
		}
		f.Close()
	}
}

func load(dir string) (*asrendered.Image, error) {
	data, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		return nil, err
	}
	var m imageMeta
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	return &asrendered.Image{Root: filepath.Join(dir, "rootfs"), Config: m.Config, Platform: m.Platform}, nil
}

// keyOf names an image by its binary's bytes and its base's recipe
// folder (the base cache's folder names carry the recipe's hash).
func keyOf(bin, base string) (string, error) {
	f, err := os.Open(bin)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	fmt.Fprintf(h, "\x00%s\x00%s", base, Version)
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
