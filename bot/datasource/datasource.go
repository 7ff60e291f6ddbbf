// Package datasource owns where releases come from: the Datasource
// interface (one implementation per source, like Renovate's datasource
// modules), the registry, the cache that outlives a run (HTTP validators,
// parsed Helm indexes) and Lookup, the per-run service that applies
// spec.mirrors, asks each (datasource, registry, package) once and bounds
// how many lookups run at a time.
package datasource

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/datasource/debian"
	"hl.dev/hl/bot/datasource/fedora"
	"hl.dev/hl/bot/datasource/gitea"
	"hl.dev/hl/bot/datasource/github"
	"hl.dev/hl/bot/datasource/gittags"
	"hl.dev/hl/bot/datasource/helm"
	"hl.dev/hl/bot/datasource/k3schannel"
	"hl.dev/hl/bot/datasource/oci"
	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/httpx"
)

// Datasource lists the releases of a package.
type Datasource interface {
	// Name is the value of bot.Dependency.Datasource it serves.
	Name() string
	// Releases lists the package's releases in any order. dep has mirrors
	// applied already.
	Releases(ctx context.Context, dep bot.Dependency) ([]bot.Release, error)
}

// Pinner is implemented by datasources whose versions travel with content
// pins: once a version is chosen, Pins returns the new text of each of
// dep.Related's ranges that is not a "version@…" role (checksums,
// digests, snapshot stamps).
type Pinner interface {
	Pins(ctx context.Context, dep bot.Dependency, version string) (map[string]string, error)
}

// Timestamper is implemented by datasources whose release list carries no
// dates (registry tags) but that can tell one version's release time at
// the cost of a request or two: the lookup asks only for the candidates
// a minimum release age must check.
type Timestamper interface {
	ReleasedAt(ctx context.Context, dep bot.Dependency, version string) (time.Time, error)
}

// Preparer is implemented by datasources that do better knowing every
// dependency of a run up front (the Helm datasource keeps only the charts
// it will be asked about when it streams a large index).
type Preparer interface {
	Prepare(deps []bot.Dependency)
}

// Cache is state meant to outlive one run (hl bot serve keeps one): HTTP
// validators with their bodies and parsed Helm indexes with theirs, so the
// next run's requests are conditional.
type Cache struct {
	http  *httpx.Cache
	helm  *helm.Store
	oci   *oci.Known
	blobs *oci.Blobs
}

// NewCache returns an empty in-memory cache.
func NewCache() *Cache {
	return &Cache{http: httpx.NewCache(0), helm: helm.NewStore(), oci: &oci.Known{}, blobs: &oci.Blobs{}}
}

// NewCacheDir returns a cache that also keeps its entries under dir (a
// volume in the cluster), so a new process's first run is conditional:
// an idle run then costs revalidations, not index downloads. Files are
// written 0600 in a 0700 folder: bodies of private repositories' answers
// may be among them.
func NewCacheDir(dir string) *Cache {
	c := NewCache()
	c.http.Dir = filepath.Join(dir, "http")
	c.helm.Dir = filepath.Join(dir, "helm")
	c.oci.Dir = filepath.Join(dir, "oci")
	c.blobs.Dir = filepath.Join(dir, "charts")
	return c
}

// Revalidated counts responses served from the cache after a 304.
func (c *Cache) Revalidated() int64 {
	return c.http.Revalidated.Load() + c.helm.Revalidated.Load()
}

// Options configure the datasources of one run.
type Options struct {
	// Transport is the innermost HTTP transport (tests, proxies); retries,
	// caps and caching wrap it.
	Transport http.RoundTripper
	// MaxBytes caps each response (default 32 MiB; Helm indexes 256 MiB,
	// streamed).
	MaxBytes int64
	// Retries and Backoff bound retries on 5xx and network errors.
	Retries int
	Backoff time.Duration
	// Cache carries validators across runs; nil: a fresh one.
	Cache *Cache

	GitHubToken  string
	GitHubAPIURL string // default https://api.github.com/
	GiteaToken   string
	GiteaURL     string // for gitea-releases dependencies without a registry URL
	// K3sChannelURL defaults to https://update.k3s.io/v1-release/channels.
	K3sChannelURL string
	// Keychain authenticates to OCI registries (default: docker config).
	Keychain authn.Keychain
	// OCIPageSize is the tags/list page size (default 1000).
	OCIPageSize int
	// InsecureRegistries are spoken to over plain HTTP (host[:port]).
	InsecureRegistries []string
	// Now is the clock (snapshot stamps); default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// All returns every registered datasource configured by o.
func All(o Options) []Datasource {
	if o.Cache == nil {
		o.Cache = NewCache()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	hx := httpx.Options{Base: o.Transport, MaxBytes: o.MaxBytes, Retries: o.Retries, Backoff: o.Backoff, Logger: o.Logger}
	cached := hx
	cached.Cache = o.Cache.http
	plain := httpx.Client(hx)
	conditional := httpx.Client(cached)
	ociLister := OCILister(o)
	gh := github.New(conditional, o.GitHubAPIURL, o.GitHubToken)
	k3s := k3schannel.New(conditional, o.K3sChannelURL)
	k3s.Times = gh
	forge := gitea.New(conditional, o.GiteaURL, o.GiteaToken)
	tags := gittags.New(conditional, o.GiteaURL, o.GiteaToken)
	tags.GitHub, tags.Forge = gh, forge
	return []Datasource{
		helm.New(HelmClient(o), o.Cache.helm),
		oci.Charts{Lister: ociLister},
		oci.Images{Lister: ociLister},
		gh,
		forge,
		tags,
		k3s,
		debian.New(plain, o.Now),
		fedora.New(plain),
	}
}

// ConditionalClient is the HTTP client of the lookups that revalidate
// (forge APIs): o's transport, retries and caps, through o's cache, so an
// unchanged answer costs a 304. The PR side reads release notes with it.
func ConditionalClient(o Options) *http.Client {
	if o.Cache == nil {
		o.Cache = NewCache()
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return httpx.Client(httpx.Options{Base: o.Transport, MaxBytes: o.MaxBytes, Retries: o.Retries, Backoff: o.Backoff, Logger: log, Cache: o.Cache.http})
}

// OCILister reads OCI registries as the lookups do: o's transport,
// retries and caps, keychain and insecure registries, and what o's cache
// knows of digests. The PR side fetches OCI charts and images' source
// labels with it too.
func OCILister(o Options) *oci.Lister {
	known, blobs := &oci.Known{}, &oci.Blobs{}
	if o.Cache != nil {
		known, blobs = o.Cache.oci, o.Cache.blobs
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hx := httpx.Options{Base: o.Transport, MaxBytes: o.MaxBytes, Retries: o.Retries, Backoff: o.Backoff, Logger: log}
	return &oci.Lister{Transport: httpx.Transport(hx), Keychain: o.Keychain, PageSize: o.OCIPageSize, Insecure: o.InsecureRegistries, Known: known, Blobs: blobs}
}

// ChartClient is the HTTP client the PR side reads Helm repositories
// with, for rendered diffs: HelmClient's room for large indexes, through
// o's cache, so an index read by the last run costs a revalidation.
func ChartClient(o Options) *http.Client {
	if o.MaxBytes == 0 {
		o.MaxBytes = 256 << 20
	}
	return ConditionalClient(o)
}

// HelmClient is the HTTP client Helm repositories are read with (indexes
// and chart archives): o's transport, retries and caps, with room for
// large indexes. The PR side fetches charts with it too.
func HelmClient(o Options) *http.Client {
	max := o.MaxBytes
	if max == 0 {
		max = 256 << 20
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return httpx.Client(httpx.Options{Base: o.Transport, MaxBytes: max, Retries: o.Retries, Backoff: o.Backoff, Logger: log})
}

// Names lists the registered datasources.
func Names() []string {
	var out []string
	for _, d := range All(Options{}) {
		out = append(out, d.Name())
	}
	return out
}

// Key identifies one lookup: dependencies with the same key share it.
type Key struct{ Datasource, Registry, Package string }

// KeyOf returns dep's lookup key (after mirrors).
func KeyOf(dep bot.Dependency) Key { return Key{dep.Datasource, dep.RegistryURL, dep.Package} }

// Lookup asks datasources for releases during one run: each key once,
// at most Concurrency at a time, through spec.mirrors.
type Lookup struct {
	byName  map[string]Datasource
	mirrors config.Mirrors
	sem     chan struct{}

	mu   sync.Mutex
	memo map[Key]*call
	// Calls counts datasource calls made (for tests and metrics).
	calls int
}

type call struct {
	done chan struct{}
	rels []bot.Release
	err  error
}

// NewLookup returns a run's lookup service over ds.
func NewLookup(ds []Datasource, concurrency int, mirrors config.Mirrors) *Lookup {
	if concurrency <= 0 {
		concurrency = 8
	}
	l := &Lookup{byName: map[string]Datasource{}, mirrors: mirrors, sem: make(chan struct{}, concurrency), memo: map[Key]*call{}}
	for _, d := range ds {
		l.byName[d.Name()] = d
	}
	return l
}

// Calls returns how many datasource calls the lookup made.
func (l *Lookup) Calls() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls
}

// Mirror rewrites dep's registry through spec.mirrors: chart repositories
// (https:// and oci://) by spec.mirrors.charts, image repositories
// (Docker Hub names expanded first) by spec.mirrors.registries. The
// longest matching prefix wins.
func (l *Lookup) Mirror(dep bot.Dependency) bot.Dependency {
	return Mirror(dep, l.mirrors)
}

// Mirror is Lookup.Mirror without a lookup.
func Mirror(dep bot.Dependency, m config.Mirrors) bot.Dependency {
	switch dep.Datasource {
	case "helm", "oci":
		if to, ok := config.RewritePrefix(dep.RegistryURL, m.Charts); ok {
			dep.RegistryURL = to
		}
	case "docker":
		if to, ok := config.RewritePrefix(config.NormaliseImage(dep.Package), m.Registries); ok {
			dep.Package = to
		}
	}
	return dep
}

// NormaliseImage is config.NormaliseImage (kept for the extractors).
func NormaliseImage(ref string) string { return config.NormaliseImage(ref) }

// Releases returns dep's releases, asking its datasource at most once per
// key for the lifetime of l.
func (l *Lookup) Releases(ctx context.Context, dep bot.Dependency) ([]bot.Release, error) {
	dep = l.Mirror(dep)
	ds, ok := l.byName[dep.Datasource]
	if !ok {
		return nil, fmt.Errorf("no datasource %q", dep.Datasource)
	}
	k := KeyOf(dep)
	l.mu.Lock()
	c, ok := l.memo[k]
	if !ok {
		c = &call{done: make(chan struct{})}
		l.memo[k] = c
		l.calls++
	}
	l.mu.Unlock()
	if ok {
		select {
		case <-c.done:
			return c.rels, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	defer close(c.done)
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		c.err = ctx.Err()
		return nil, c.err
	}
	defer func() { <-l.sem }()
	c.rels, c.err = ds.Releases(ctx, dep)
	if c.err != nil {
		c.err = fmt.Errorf("%s %s: %w", dep.Datasource, describe(dep), httpx.RedactErr(c.err))
	}
	return c.rels, c.err
}

func describe(dep bot.Dependency) string {
	if dep.RegistryURL != "" {
		return dep.RegistryURL + " " + dep.Package
	}
	return dep.Package
}

// Result is the answer for one dependency of ReleasesAll.
type Result struct {
	Releases []bot.Release
	Err      error
}

// ReleasesAll looks up every dependency (each key once, bounded) and
// returns results in the order of deps.
func (l *Lookup) ReleasesAll(ctx context.Context, deps []bot.Dependency) []Result {
	mirrored := make([]bot.Dependency, len(deps))
	for i, d := range deps {
		mirrored[i] = l.Mirror(d)
	}
	for _, ds := range l.byName {
		if p, ok := ds.(Preparer); ok {
			var mine []bot.Dependency
			for _, d := range mirrored {
				if d.Datasource == ds.Name() {
					mine = append(mine, d)
				}
			}
			p.Prepare(mine)
		}
	}
	// One goroutine per key; the semaphore in Releases bounds the work.
	first := map[Key]int{}
	var wg sync.WaitGroup
	for i, d := range mirrored {
		k := KeyOf(d)
		if _, seen := first[k]; seen {
			continue
		}
		first[k] = i
		wg.Add(1)
		go func(orig bot.Dependency) {
			defer wg.Done()
			_, _ = l.Releases(ctx, orig)
		}(deps[i])
	}
	wg.Wait()
	out := make([]Result, len(deps))
	for i, d := range deps {
		out[i].Releases, out[i].Err = l.Releases(ctx, d)
	}
	return out
}

// CanTimestamp reports whether dep's datasource is a Timestamper.
func (l *Lookup) CanTimestamp(dep bot.Dependency) bool {
	_, ok := l.byName[dep.Datasource].(Timestamper)
	return ok
}

// ReleasedAt asks dep's datasource when version was released (zero:
// unknown), through mirrors and the concurrency bound.
func (l *Lookup) ReleasedAt(ctx context.Context, dep bot.Dependency, version string) (time.Time, error) {
	dep = l.Mirror(dep)
	ts, ok := l.byName[dep.Datasource].(Timestamper)
	if !ok {
		return time.Time{}, nil
	}
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
	defer func() { <-l.sem }()
	t, err := ts.ReleasedAt(ctx, dep, version)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %s %s: %w", dep.Datasource, describe(dep), version, httpx.RedactErr(err))
	}
	return t, nil
}

// Pins asks dep's datasource for the new text of its related ranges, if
// it has any to give.
func (l *Lookup) Pins(ctx context.Context, dep bot.Dependency, version string) (map[string]string, error) {
	dep = l.Mirror(dep)
	ds, ok := l.byName[dep.Datasource]
	if !ok {
		return nil, fmt.Errorf("no datasource %q", dep.Datasource)
	}
	p, ok := ds.(Pinner)
	if !ok {
		return nil, nil
	}
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-l.sem }()
	pins, err := p.Pins(ctx, dep, version)
	if err != nil {
		return nil, fmt.Errorf("%s %s %s: %w", dep.Datasource, describe(dep), version, httpx.RedactErr(err))
	}
	return pins, nil
}
