package release

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// What the image promises its users (the rendered Deployment and
// pipelines rely on these; tests assert them).
const (
	// BinaryPath is hl's path in the image and its entrypoint.
	BinaryPath = "/usr/local/bin/hl"
	// User is the account the image runs as: numeric, so a kubelet can
	// check runAsNonRoot without reading /etc/passwd.
	User = "65532:65532"
	// Home is User's home folder (writable by it).
	Home = "/home/hl"
	// Repository is where a tag's image is published; the rendered repo's
	// default hl image (templates/catalog.yaml).
	Repository = "ghcr.io/hl-dev/hl"
	// DefaultSource is the org.opencontainers.image.source label.
	DefaultSource = "https://github.com/hl-dev/hl"
)

const imagePath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Platform is one architecture of the image.
type Platform struct {
	// Arch is Debian's and Go's name: amd64 or arm64.
	Arch string
	// Base is the root filesystem made by scripts/build-image-base.sh.
	Base string
	// Binary is hl built for linux/Arch.
	Binary string
}

// ImageOptions are the inputs of an image: with equal options (and equal
// files behind them) BuildImage returns the same digest.
type ImageOptions struct {
	Version  string
	Revision string
	// Source and Licenses are the OCI labels of the same names.
	Source   string
	Licenses string
	// Created is the source date: every layer entry's mtime, the config's
	// created time and the org.opencontainers.image.created label.
	Created   time.Time
	Platforms []Platform
	// WorkDir receives the layer files (kept: the layout and a push read
	// them).
	WorkDir string
}

// BuildImage assembles the image index, one image per platform.
func BuildImage(ctx context.Context, o ImageOptions) (v1.ImageIndex, error) {
	if o.Version == "" || o.Revision == "" {
		return nil, fmt.Errorf("build image: version and revision are required")
	}
	if len(o.Platforms) == 0 {
		return nil, fmt.Errorf("build image: no platform")
	}
	created := o.Created.UTC().Truncate(time.Second)
	var adds []mutate.IndexAddendum
	for _, p := range o.Platforms {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		img, err := platformImage(o, p, created)
		if err != nil {
			return nil, fmt.Errorf("build image linux/%s: %w", p.Arch, err)
		}
		adds = append(adds, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: platformOf(p.Arch)},
		})
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	return mutate.AppendManifests(idx, adds...), nil
}

func platformOf(arch string) *v1.Platform {
	p := &v1.Platform{OS: "linux", Architecture: arch}
	if arch == "arm64" {
		p.Variant = "v8"
	}
	return p
}

// Labels are the image's OCI labels.
func Labels(o ImageOptions) map[string]string {
	licenses := o.Licenses
	if licenses == "" {
		licenses = "NOASSERTION"
	}
	return map[string]string{
		"org.opencontainers.image.title":       "hl",
		"org.opencontainers.image.description": "hl: homelab repo generator and its bot",
		"org.opencontainers.image.source":      o.Source,
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.revision":    o.Revision,
		"org.opencontainers.image.licenses":    licenses,
		"org.opencontainers.image.created":     o.Created.UTC().Truncate(time.Second).Format(time.RFC3339),
	}
}

func platformImage(o ImageOptions, p Platform, created time.Time) (v1.Image, error) {
	if _, err := os.Stat(filepath.Join(p.Base, "bin", "sh")); err != nil {
		return nil, fmt.Errorf("base %s is no root filesystem (no bin/sh; run scripts/build-image-base.sh %s): %w", p.Base, p.Arch, err)
	}
	dir := filepath.Join(o.WorkDir, "layers", p.Arch)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	basePath := filepath.Join(dir, "base.tar.gz")
	if err := DirLayer(p.Base, basePath, created); err != nil {
		return nil, fmt.Errorf("base layer: %w", err)
	}
	hlPath := filepath.Join(dir, "hl.tar.gz")
	files := []File{
		{Path: "usr/", Mode: 0o755},
		{Path: "usr/local/", Mode: 0o755},
		{Path: "usr/local/bin/", Mode: 0o755},
		{Path: strings.TrimPrefix(BinaryPath, "/"), Source: p.Binary, Mode: 0o755},
	}
	if err := FilesLayer(files, hlPath, created); err != nil {
		return nil, fmt.Errorf("hl layer: %w", err)
	}
	var adds []mutate.Addendum
	for _, l := range []struct{ path, by string }{
		{basePath, "scripts/build-image-base.sh: Debian minbase with git, ca-certificates, tzdata; user hl"},
		{hlPath, "hl " + o.Version + " at " + BinaryPath},
	} {
		layer, err := tarball.LayerFromFile(l.path, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.Addendum{
			Layer:     layer,
			MediaType: types.OCILayer,
			History:   v1.History{Created: v1.Time{Time: created}, CreatedBy: l.by},
		})
	}
	plat := platformOf(p.Arch)
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: plat.Architecture,
		Variant:      plat.Variant,
		OS:           plat.OS,
		Created:      v1.Time{Time: created},
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Entrypoint: []string{BinaryPath},
			User:       User,
			WorkingDir: Home,
			Env:        []string{imagePath, "LANG=C.UTF-8"},
			Labels:     Labels(o),
		},
	})
	if err != nil {
		return nil, err
	}
	return mutate.Append(img, adds...)
}

// WriteLayout writes idx as a new OCI image layout in dir (which must not
// exist or be empty), its index naming ref when ref is set.
func WriteLayout(dir string, idx v1.ImageIndex, ref string) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("write layout: %s is not empty", dir)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("write layout %s: %w", dir, err)
	}
	var opts []layout.Option
	if ref != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref}))
	}
	if err := p.AppendIndex(idx, opts...); err != nil {
		return fmt.Errorf("write layout %s: %w", dir, err)
	}
	return nil
}

// Push publishes idx at ref. Credentials: HL_REGISTRY_USERNAME and
// HL_REGISTRY_PASSWORD when set (a pipeline's secrets), else the docker
// config keychain.
func Push(ctx context.Context, ref string, idx v1.ImageIndex) (name.Reference, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("push: %w", err)
	}
	auth := remote.WithAuthFromKeychain(authn.DefaultKeychain)
	if u := os.Getenv("HL_REGISTRY_USERNAME"); u != "" {
		auth = remote.WithAuth(&authn.Basic{Username: u, Password: os.Getenv("HL_REGISTRY_PASSWORD")})
	}
	if err := remote.WriteIndex(r, idx, remote.WithContext(ctx), auth); err != nil {
		return nil, fmt.Errorf("push %s: %w", r, err)
	}
	d, err := idx.Digest()
	if err != nil {
		return nil, err
	}
	return r.Context().Digest(d.String()), nil
}
