// Package oci holds the datasources backed by OCI registries: container
// images ("docker") and Helm charts pushed to OCI ("oci", whose tags spell
// semver build metadata '+' as '_'). Tags are listed with
// go-containerregistry, which follows the Link-header pagination and
// handles the registry's bearer-token challenge with credentials from a
// keychain.
package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/datasource/internal/weburl"
)

// Lister lists tags; it is shared by both datasources.
type Lister struct {
	// Transport is wrapped by go-containerregistry's auth transport; it
	// does the retries and caps bodies.
	Transport http.RoundTripper
	// Keychain resolves credentials per registry (default: the Docker
	// config file, as docker and crane do).
	Keychain authn.Keychain
	// PageSize of tags/list requests (default 1000, the most ECR allows).
	PageSize int
	// MaxPages bounds pagination (default 50: 50 000 tags).
	MaxPages int
	// Insecure registries are spoken to over plain HTTP.
	Insecure []string
	// Known keeps what Source found, and the chart layer of a chart
	// manifest, by digest (nil: nothing is kept).
	Known *Known
	// Blobs keeps chart archives by digest (nil: nothing is kept).
	Blobs *Blobs
}

func (l *Lister) options(ctx context.Context) []remote.Option {
	kc := l.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	ps := l.PageSize
	if ps <= 0 {
		ps = 1000
	}
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(kc),
		remote.WithPageSize(ps),
		remote.WithUserAgent("hl-bot"),
		// Retries with backoff happen in Transport (bounded, logged with
		// redacted URLs); one attempt here avoids multiplying them.
		remote.WithRetryBackoff(remote.Backoff{Steps: 1, Duration: 1}),
	}
	if l.Transport != nil {
		opts = append(opts, remote.WithTransport(l.Transport))
	}
	return opts
}

func (l *Lister) repository(repo string) (name.Repository, error) {
	var nopts []name.Option
	host, _, _ := strings.Cut(repo, "/")
	for _, h := range l.Insecure {
		if h == host {
			nopts = append(nopts, name.Insecure)
		}
	}
	return name.NewRepository(repo, nopts...)
}

// Tags lists every tag of repo, page by page.
func (l *Lister) Tags(ctx context.Context, repo string) ([]string, error) {
	r, err := l.repository(repo)
	if err != nil {
		return nil, fmt.Errorf("repository %q: %w", repo, err)
	}
	p, err := remote.NewPuller(l.options(ctx)...)
	if err != nil {
		return nil, err
	}
	lister, err := p.Lister(ctx, r)
	if err != nil {
		return nil, err
	}
	maxPages := l.MaxPages
	if maxPages <= 0 {
		maxPages = 50
	}
	var tags []string
	for pages := 0; lister.HasNext(); pages++ {
		if pages == maxPages {
			return nil, fmt.Errorf("%s: more than %d pages of tags", repo, maxPages)
		}
		page, err := lister.Next(ctx)
		if err != nil {
			return nil, err
		}
		tags = append(tags, page.Tags...)
	}
	return tags, nil
}

// Digest returns the manifest digest of repo:tag.
func (l *Lister) Digest(ctx context.Context, repo, tag string) (string, error) {
	r, err := l.repository(repo)
	if err != nil {
		return "", err
	}
	desc, err := remote.Head(r.Tag(tag), l.options(ctx)...)
	if err != nil {
		return "", err
	}
	return desc.Digest.String(), nil
}

// ChartLayerMediaType is the layer of a Helm chart pushed to a registry:
// the chart archive as is.
const ChartLayerMediaType = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"

// ChartArchive fetches the archive of the Helm chart at repo:tag (the
// registry repository of the chart, see ChartRepository), at most max
// bytes. A HEAD finds the manifest's digest; a chart read before under
// that digest comes from Blobs without another request.
func (l *Lister) ChartArchive(ctx context.Context, repo, tag string, max int64) ([]byte, error) {
	r, err := l.repository(repo)
	if err != nil {
		return nil, err
	}
	head, err := remote.Head(r.Tag(tag), l.options(ctx)...)
	if err != nil {
		return nil, err
	}
	key := "chart-layer:" + r.Name() + "@" + head.Digest.String()
	if sum, ok := l.Known.Get(key); ok {
		if b, ok := l.Blobs.Get(sum); ok {
			return b, nil
		}
	}
	img, err := remote.Image(r.Digest(head.Digest.String()), l.options(ctx)...)
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	for _, layer := range layers {
		mt, err := layer.MediaType()
		if err != nil || string(mt) != ChartLayerMediaType {
			continue
		}
		if size, err := layer.Size(); err == nil && size > max {
			return nil, fmt.Errorf("%s:%s: the chart is %d bytes, more than %d", repo, tag, size, max)
		}
		rc, err := layer.Compressed()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		b, err := io.ReadAll(io.LimitReader(rc, max+1))
		if err != nil {
			return nil, fmt.Errorf("%s:%s: %w", repo, tag, err)
		}
		if int64(len(b)) > max {
			return nil, fmt.Errorf("%s:%s: the chart is more than %d bytes", repo, tag, max)
		}
		if d, err := layer.Digest(); err == nil && l.Blobs != nil {
			l.Blobs.Put(d.Hex, b) // kept only when the bytes match the digest
			l.Known.Put(key, d.Hex)
		}
		return b, nil
	}
	return nil, fmt.Errorf("%s:%s holds no Helm chart layer (%s)", repo, tag, ChartLayerMediaType)
}

// CreatedKey is the OCI annotation and label of a build's time.
const CreatedKey = "org.opencontainers.image.created"

// Created returns when repo:tag was built, for the minimum release age:
// the manifest's (or index's) org.opencontainers.image.created annotation
// (helm push writes it; buildkit can), else the image config's label of
// that name, else the config's created field (of the linux/amd64 image,
// or the first, of an index). Zero when none is set or the time is the
// Unix epoch reproducible builds write: unknown, not old.
func (l *Lister) Created(ctx context.Context, repo, tag string) (time.Time, error) {
	r, err := l.repository(repo)
	if err != nil {
		return time.Time{}, err
	}
	ann, cfg, err := l.inspect(ctx, r.Tag(tag), func(ann string) bool { _, ok := parseCreated(ann); return !ok }, CreatedKey)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s:%s: %w", repo, tag, err)
	}
	if t, ok := parseCreated(ann); ok {
		return t, nil
	}
	if cfg == nil {
		return time.Time{}, nil // a chart or artifact without the annotation
	}
	if t, ok := parseCreated(cfg.Config.Labels[CreatedKey]); ok {
		return t, nil
	}
	if t := cfg.Created.Time; t.Unix() > 0 {
		return t.UTC(), nil
	}
	return time.Time{}, nil
}

// SourceKey is the OCI annotation and label naming the repository an
// image was built from (GitHub's and Gitea's registries link images to
// their repositories by it).
const SourceKey = "org.opencontainers.image.source"

// Source returns the repository repo:tag was built from: the manifest's
// (or index's) org.opencontainers.image.source annotation, else the image
// config's label of that name (linux/amd64 of an index); "" when neither
// is an http(s) URL. A HEAD request finds the tag's digest (Docker Hub
// does not count it as a pull); what a digest holds never changes, so
// the answer is kept by digest in Known and a known image costs only the
// HEAD.
func (l *Lister) Source(ctx context.Context, repo, tag string) (string, error) {
	r, err := l.repository(repo)
	if err != nil {
		return "", err
	}
	head, err := remote.Head(r.Tag(tag), l.options(ctx)...)
	if err != nil {
		return "", fmt.Errorf("%s:%s: %w", repo, tag, err)
	}
	key := r.Name() + "@" + head.Digest.String()
	if src, ok := l.Known.Get(key); ok {
		return src, nil
	}
	ann, cfg, err := l.inspect(ctx, r.Digest(head.Digest.String()), func(ann string) bool { return ann == "" }, SourceKey)
	if err != nil {
		return "", fmt.Errorf("%s:%s: %w", repo, tag, err)
	}
	src := ann
	if src == "" && cfg != nil {
		src = cfg.Config.Labels[SourceKey]
	}
	src = weburl.Of(src)
	l.Known.Put(key, src)
	return src, nil
}

// inspect fetches ref's manifest (or index) and returns its annotation
// key; when needConfig says that is not enough, also the image config (of
// the linux/amd64 image, or the first, of an index; nil for a chart or
// another artifact).
func (l *Lister) inspect(ctx context.Context, ref name.Reference, needConfig func(annotation string) bool, key string) (string, *v1.ConfigFile, error) {
	desc, err := remote.Get(ref, l.options(ctx)...)
	if err != nil {
		return "", nil, err
	}
	var m struct {
		Annotations map[string]string `json:"annotations"`
		Config      struct {
			MediaType string `json:"mediaType"`
		} `json:"config"`
		Manifests []v1.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		return "", nil, fmt.Errorf("manifest: %w", err)
	}
	ann := m.Annotations[key]
	if !needConfig(ann) {
		return ann, nil, nil
	}
	var img v1.Image
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return "", nil, err
		}
		if len(m.Manifests) == 0 {
			return ann, nil, nil
		}
		pick := m.Manifests[0]
		for _, d := range m.Manifests {
			if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == "amd64" {
				pick = d
				break
			}
		}
		if img, err = idx.Image(pick.Digest); err != nil {
			return "", nil, err
		}
	case desc.MediaType.IsImage() && !strings.Contains(m.Config.MediaType, "helm"):
		if img, err = desc.Image(); err != nil {
			return "", nil, err
		}
	default:
		return ann, nil, nil
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return "", nil, err
	}
	return ann, cfg, nil
}

func parseCreated(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil || t.Unix() <= 0 {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// Images is the "docker" datasource: tags of container images.
type Images struct{ Lister *Lister }

// Name returns "docker".
func (Images) Name() string { return "docker" }

// Releases lists the image's tags.
func (d Images) Releases(ctx context.Context, dep bot.Dependency) ([]bot.Release, error) {
	tags, err := d.Lister.Tags(ctx, dep.Package)
	if err != nil {
		return nil, err
	}
	out := make([]bot.Release, 0, len(tags))
	for _, t := range tags {
		out = append(out, bot.Release{Version: t})
	}
	return out, nil
}

// Pins returns the new digest for a reference pinned as tag@digest.
func (d Images) Pins(ctx context.Context, dep bot.Dependency, version string) (map[string]string, error) {
	if _, ok := dep.Related["digest"]; !ok {
		return nil, nil
	}
	dg, err := d.Lister.Digest(ctx, dep.Package, version)
	if err != nil {
		return nil, err
	}
	return map[string]string{"digest": dg}, nil
}

// ReleasedAt is the image's build time (see Lister.Created).
func (d Images) ReleasedAt(ctx context.Context, dep bot.Dependency, version string) (time.Time, error) {
	return d.Lister.Created(ctx, dep.Package, version)
}

// Charts is the "oci" datasource: Helm charts in OCI registries.
type Charts struct{ Lister *Lister }

// Name returns "oci".
func (Charts) Name() string { return "oci" }

// ChartRepository is the registry repository of a chart: the oci:// URL
// without its scheme, then the chart name.
func ChartRepository(registryURL, chart string) string {
	return strings.TrimSuffix(strings.TrimPrefix(registryURL, "oci://"), "/") + "/" + chart
}

// Releases lists the chart's versions (tags with '_' read as '+').
func (d Charts) Releases(ctx context.Context, dep bot.Dependency) ([]bot.Release, error) {
	tags, err := d.Lister.Tags(ctx, ChartRepository(dep.RegistryURL, dep.Package))
	if err != nil {
		return nil, err
	}
	out := make([]bot.Release, 0, len(tags))
	for _, t := range tags {
		out = append(out, bot.Release{Version: TagToVersion(t)})
	}
	return out, nil
}

// ReleasedAt is the chart's push time (the annotation helm push writes).
func (d Charts) ReleasedAt(ctx context.Context, dep bot.Dependency, version string) (time.Time, error) {
	return d.Lister.Created(ctx, ChartRepository(dep.RegistryURL, dep.Package), VersionToTag(version))
}

// TagToVersion undoes Helm's OCI tag encoding ('+' is not allowed in
// tags, so helm push writes '_').
func TagToVersion(tag string) string { return strings.ReplaceAll(tag, "_", "+") }

// VersionToTag is Helm's OCI tag encoding of a chart version.
func VersionToTag(v string) string { return strings.ReplaceAll(v, "+", "_") }
