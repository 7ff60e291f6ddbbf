package validate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Masterminds/semver/v3"
	"helm.sh/helm/v3/pkg/getter"
	"helm.sh/helm/v3/pkg/registry"
	"helm.sh/helm/v3/pkg/repo"
	"hl.dev/hl/internal/chartcache"
	"hl.dev/hl/internal/httpx"
)

// PulledChart is one chart PullCharts looked at.
type PulledChart struct {
	Repository string `json:"repository"`
	Name       string `json:"name"`
	// Version as written in Chart.yaml, and Resolved the version cached.
	Version  string `json:"version"`
	Resolved string `json:"resolved,omitempty"`
	// From is the location fetched from (after mirrors), when pulled.
	From string `json:"from,omitempty"`
	// File is the archive in the cache.
	File string `json:"file,omitempty"`
	// Status is cached (already there), pulled or failed.
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	// Requiredby lists the Chart.yaml files naming the chart.
	RequiredBy []string `json:"requiredBy"`
}

// Statuses of a PulledChart.
const (
	PullCached = "cached"
	PullPulled = "pulled"
	PullFailed = "failed"
)

// PullCharts fills the chart cache with every dependency of every wrapper
// chart under opts.Dir (HTTP repositories through Helm's repo and getter
// packages, oci:// ones through Helm's registry client), honouring the
// chart mirrors. Charts already cached are not fetched again. The error
// joins every failed pull; the list is complete either way.
func PullCharts(ctx context.Context, opts Options) ([]PulledChart, error) {
	s, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	w, err := walkRepo(s.dir)
	if err != nil {
		return nil, err
	}
	type key struct{ repo, name, version string }
	byKey := map[key]*PulledChart{}
	var order []key
	deps := map[key]chartDep{}
	{
		for _, d := range repoChartDeps(s.dir, w) {
			if d.isLocal() {
				continue
			}
			k := key{chartcache.NormRepo(d.Repository), d.Name, d.Version}
			if byKey[k] == nil {
				byKey[k] = &PulledChart{Repository: d.Repository, Name: d.Name, Version: d.Version}
				order = append(order, k)
				deps[k] = d
			}
			byKey[k].RequiredBy = append(byKey[k].RequiredBy, d.File)
		}
	}
	sort.Slice(order, func(i, j int) bool {
		a, b := order[i], order[j]
		if a.name != b.name {
			return a.name < b.name
		}
		if a.repo != b.repo {
			return a.repo < b.repo
		}
		return a.version < b.version
	})
	p := newPuller(s)
	var errs []error
	var out []PulledChart
	for _, k := range order {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		pc := byKey[k]
		d := deps[k]
		if file, v, ok := findCached(s.cacheDir, d); ok && exactVersion(d.Version) {
			pc.Status, pc.File, pc.Resolved = PullCached, file, v
		} else {
			file, v, from, err := p.pull(ctx, d)
			pc.From = from
			if err != nil {
				pc.Status, pc.Error = PullFailed, err.Error()
				errs = append(errs, fmt.Errorf("%s %s from %s: %w", d.Name, d.Version, d.Repository, err))
			} else {
				pc.Status, pc.File, pc.Resolved = PullPulled, file, v
				fmt.Fprintf(s.log, "pulled %s %s from %s\n", d.Name, v, from)
			}
		}
		out = append(out, *pc)
	}
	return out, errors.Join(errs...)
}

// repoChartDeps lists the charts the repository renders from chart
// repositories: the wrapper charts' dependencies and the kustomizations'
// helmCharts.
func repoChartDeps(dir string, t *repoTree) []chartDep {
	var out []chartDep
	for _, c := range t.charts {
		deps, _, err := readChartYAML(dir, c)
		if err == nil {
			out = append(out, deps...)
		}
	}
	for _, k := range t.kusts {
		kfile := path.Join(k, t.kustFile[k])
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(kfile)))
		if err != nil {
			continue
		}
		docs, err := parseYAML(data)
		if err != nil || len(docs) == 0 {
			continue
		}
		for _, hc := range kustHelmCharts(kfile, docs[0]) {
			if hc.dep.Repository != "" {
				out = append(out, hc.dep)
			}
		}
	}
	return out
}

// puller fetches charts into the cache, reusing repository indexes and
// registry clients within one run. Every request, to chart repositories
// and registries alike, goes through hl's HTTP client (internal/httpx): a
// reset, a 5xx or an answer cut short is retried with bounded backoff,
// so a flaky mirror costs a retry, not a failed pipeline, and a torn
// index or archive never reaches the cache.
type puller struct {
	s       *settings
	hc      *http.Client
	mu      sync.Mutex
	indexes map[string]*repo.IndexFile
	clients map[bool]*registry.Client
}

// pullRetries and pullBackoff bound the retries of one request: at most
// 0.5+1+2 s of waiting before a failure is reported.
const (
	pullRetries = 3
	pullBackoff = 500 * time.Millisecond
)

func newPuller(s *settings) *puller {
	log := slog.New(slog.NewTextHandler(s.log, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	// Repository indexes of big chart collections run to tens of MB.
	backoff := s.retryBackoff
	if backoff <= 0 {
		backoff = pullBackoff
	}
	hc := httpx.Client(httpx.Options{MaxBytes: 256 << 20, Retries: pullRetries, Backoff: backoff, Logger: log})
	return &puller{s: s, hc: hc, indexes: map[string]*repo.IndexFile{}, clients: map[bool]*registry.Client{}}
}

// hxGetter is Helm's getter interface over hl's HTTP client, for the
// repository index (Helm's repo package fetches it through a getter).
type hxGetter struct {
	ctx context.Context
	hc  *http.Client
}

func (g hxGetter) Get(u string, _ ...getter.Option) (*bytes.Buffer, error) {
	b, _, err := httpx.Get(g.ctx, g.hc, u, http.Header{"User-Agent": {"hl (+https://hl.dev)"}})
	if err != nil {
		return nil, err
	}
	return bytes.NewBuffer(b), nil
}

func (p *puller) providers(ctx context.Context) getter.Providers {
	return getter.Providers{{Schemes: []string{"http", "https"}, New: func(...getter.Option) (getter.Getter, error) {
		return hxGetter{ctx: ctx, hc: p.hc}, nil
	}}}
}

// pull fetches dep into the cache and returns the archive, the version
// and where it came from.
func (p *puller) pull(ctx context.Context, d chartDep) (file, version, from string, err error) {
	src := applyMirrors(chartcache.NormRepo(d.Repository), p.s.mirrors)
	var data []byte
	if strings.HasPrefix(src, "oci://") {
		data, version, from, err = p.pullOCI(src, d)
	} else {
		data, version, from, err = p.pullHTTP(ctx, src, d)
	}
	if err != nil {
		return "", "", from, err
	}
	file = CachePath(p.s.cacheDir, d.Repository, d.Name, version)
	if err := writeAtomic(file, data); err != nil {
		return "", "", from, err
	}
	return file, version, from, nil
}

func (p *puller) index(ctx context.Context, repoURL string) (*repo.IndexFile, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if idx, ok := p.indexes[repoURL]; ok {
		return idx, nil
	}
	tmp, err := os.MkdirTemp("", "hl-index-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	cr, err := repo.NewChartRepository(&repo.Entry{Name: "hl", URL: repoURL}, p.providers(ctx))
	if err != nil {
		return nil, err
	}
	cr.CachePath = tmp
	path, err := cr.DownloadIndexFile()
	if err != nil {
		return nil, fmt.Errorf("repository index: %w", err)
	}
	idx, err := repo.LoadIndexFile(path)
	if err != nil {
		return nil, fmt.Errorf("repository index: %w", err)
	}
	p.indexes[repoURL] = idx
	return idx, nil
}

func (p *puller) pullHTTP(ctx context.Context, repoURL string, d chartDep) ([]byte, string, string, error) {
	idx, err := p.index(ctx, repoURL)
	if err != nil {
		return nil, "", repoURL, err
	}
	cv, err := idx.Get(d.Name, d.Version)
	if err != nil {
		return nil, "", repoURL, err
	}
	if len(cv.URLs) == 0 {
		return nil, "", repoURL, fmt.Errorf("index has no URL for %s %s", d.Name, cv.Version)
	}
	u, err := repo.ResolveReferenceURL(repoURL, cv.URLs[0])
	if err != nil {
		return nil, "", repoURL, err
	}
	u = applyMirrors(u, p.s.mirrors)
	buf, err := (hxGetter{ctx: ctx, hc: p.hc}).Get(u)
	if err != nil {
		return nil, "", u, err
	}
	data := buf.Bytes()
	if cv.Digest != "" {
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, cv.Digest) {
			return nil, "", u, fmt.Errorf("digest mismatch: index says %s, archive is %s", cv.Digest, got)
		}
	}
	return data, cv.Version, u, nil
}

func (p *puller) client(host string) (*registry.Client, error) {
	plain := p.s.PlainHTTP || isLoopback(host)
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[plain]; ok {
		return c, nil
	}
	opts := []registry.ClientOption{registry.ClientOptWriter(io.Discard), registry.ClientOptHTTPClient(p.hc)}
	if plain {
		opts = append(opts, registry.ClientOptPlainHTTP())
	}
	c, err := registry.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	p.clients[plain] = c
	return c, nil
}

func isLoopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (p *puller) pullOCI(repoURL string, d chartDep) ([]byte, string, string, error) {
	base := strings.TrimPrefix(repoURL, "oci://") + "/" + d.Name
	host := base
	if i := strings.IndexByte(host, '/'); i >= 0 {
		host = host[:i]
	}
	c, err := p.client(host)
	if err != nil {
		return nil, "", repoURL, err
	}
	version := d.Version
	if !exactVersion(version) {
		tags, err := c.Tags(base)
		if err != nil {
			return nil, "", "oci://" + base, err
		}
		cons, err := semver.NewConstraint(orStar(version))
		if err != nil {
			return nil, "", "oci://" + base, err
		}
		version = ""
		for _, t := range tags { // Tags returns semver tags, highest first
			if v, err := semver.NewVersion(t); err == nil && cons.Check(v) {
				version = t
				break
			}
		}
		if version == "" {
			return nil, "", "oci://" + base, fmt.Errorf("no tag matches %q", d.Version)
		}
	}
	ref := base + ":" + strings.ReplaceAll(version, "+", "_")
	res, err := c.Pull(ref, registry.PullOptWithChart(true), registry.PullOptIgnoreMissingProv(true))
	if err != nil {
		return nil, "", "oci://" + ref, err
	}
	if res.Chart == nil || len(res.Chart.Data) == 0 {
		return nil, "", "oci://" + ref, errors.New("registry returned no chart layer")
	}
	return bytes.Clone(res.Chart.Data), version, "oci://" + ref, nil
}
