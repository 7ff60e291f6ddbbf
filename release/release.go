package release

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Options are one release's inputs.
type Options struct {
	Version  string
	Revision string
	Source   string
	Licenses string
	// SourceDate is the commit time: archive and layer mtimes, the
	// image's created time.
	SourceDate time.Time
	// Arches to build (amd64, arm64).
	Arches []string
	// SrcDir is the hl module's root.
	SrcDir string
	// BaseDir holds <arch>/rootfs per architecture
	// (.cache/image-base/current).
	BaseDir string
	// OutDir receives the archives, SHA256SUMS and the OCI layout
	// (image/); it must be empty or missing.
	OutDir string
	// Push is the reference to publish the image at; empty: not pushed.
	Push   string
	Logger *slog.Logger
}

// Result is what a release produced.
type Result struct {
	Index    v1.ImageIndex
	Digest   v1.Hash
	Archives []string
	// Pushed is the image's digest reference, when pushed.
	Pushed string
}

// Run builds hl for every arch, archives and checksums the binaries,
// assembles the image into OutDir/image and pushes it when asked.
func Run(ctx context.Context, o Options) (*Result, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if entries, err := os.ReadDir(o.OutDir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("release: %s is not empty", o.OutDir)
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, err
	}
	res := &Result{}
	var plats []Platform
	for _, arch := range o.Arches {
		start := time.Now()
		bin := filepath.Join(o.OutDir, "bin", "linux_"+arch, "hl")
		if err := BuildBinary(ctx, o.SrcDir, arch, o.Version, bin); err != nil {
			return nil, err
		}
		log.Info("built hl", "arch", arch, "path", bin, "took", time.Since(start).Round(time.Millisecond))
		name := ArchiveName(o.Version, arch)
		if err := Archive(bin, filepath.Join(o.OutDir, name), o.SourceDate); err != nil {
			return nil, fmt.Errorf("archive %s: %w", name, err)
		}
		res.Archives = append(res.Archives, name)
		plats = append(plats, Platform{Arch: arch, Base: filepath.Join(o.BaseDir, arch, "rootfs"), Binary: bin})
	}
	if err := WriteChecksums(o.OutDir, res.Archives); err != nil {
		return nil, err
	}
	start := time.Now()
	idx, err := BuildImage(ctx, ImageOptions{
		Version: o.Version, Revision: o.Revision, Source: o.Source, Licenses: o.Licenses,
		Created: o.SourceDate, Platforms: plats, WorkDir: filepath.Join(o.OutDir, "work"),
	})
	if err != nil {
		return nil, err
	}
	ref := Repository + ":" + o.Version
	if o.Push != "" {
		ref = o.Push
	}
	if err := WriteLayout(filepath.Join(o.OutDir, "image"), idx, ref); err != nil {
		return nil, err
	}
	if res.Digest, err = idx.Digest(); err != nil {
		return nil, err
	}
	res.Index = idx
	log.Info("built image", "digest", res.Digest.String(), "layout", filepath.Join(o.OutDir, "image"), "took", time.Since(start).Round(time.Millisecond))
	if o.Push != "" {
		d, err := Push(ctx, o.Push, idx)
		if err != nil {
			return nil, err
		}
		res.Pushed = d.String()
		log.Info("pushed image", "ref", res.Pushed)
	}
	return res, os.WriteFile(filepath.Join(o.OutDir, "image.digest"), []byte(res.Digest.String()+"\n"), 0o644)
}
