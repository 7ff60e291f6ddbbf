package pr

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/repo"
	"sigs.k8s.io/yaml"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/datasource"
	"hl.dev/hl/bot/datasource/oci"
	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/merge"
)

// ChartDiff is the rendered difference between two chart versions.
type ChartDiff struct {
	Summary string // e.g. "2 manifests changed, +4 −1 lines"
	Full    string // unified diff, truncated to MaxFullDiff
}

// MaxFullDiff bounds the full diff in a PR body.
const MaxFullDiff = 60000

// ChartRenderer renders the Helm chart updates of a PR in process with
// the Helm SDK, from HTTP(S) chart repositories and OCI registries,
// through spec.mirrors and the datasources' clients
// (datasource.HelmClient, datasource.OCILister), as the lookups that
// found the updates. It is safe for concurrent use and fetches each
// repository index and chart archive once (a failed fetch is tried again
// by the next caller).
type ChartRenderer struct {
	Client  *http.Client
	Mirrors config.Mirrors
	// OCI fetches charts from registries (nil: OCI charts get no diff).
	OCI *oci.Lister
	// Archives keeps chart archives of HTTP repositories by the digest
	// their index gives, across runs (nil: fetched every run).
	Archives *oci.Blobs
	// Repo is the clone URL of the repository the bot updates: Argo CD
	// value files read through a ref source of it are read from the base.
	Repo     string
	index    memo[*repo.IndexFile]
	archives memo[[]byte]
}

// IsChart reports whether d is a Helm chart from a chart repository or
// an OCI registry: a dependency of a wrapper chart (Chart.yaml) or the
// chart of an Argo CD Application or ApplicationSet source.
func IsChart(d bot.Dependency) bool {
	return (d.Manager == "helm-chart" || d.Manager == argoManager) && (d.Datasource == "helm" || d.Datasource == "oci")
}

// argoManager is the Argo CD extractor's manager name.
const argoManager = "argocd-app"

// ValuesKey is where a wrapper chart's values.yaml holds a dependency's
// values: under its alias when Chart.yaml gives one (the extractor keeps
// it as the dependency's Name), else under the chart's name.
func ValuesKey(d bot.Dependency) string {
	if d.Name != "" && d.Name != d.Package {
		return d.Name
	}
	return path.Base(d.Package)
}

// Values reads, for each Helm chart update of b (by index), what the
// chart is rendered with. A wrapper chart's dependency gets the
// wrapper's values for that subchart: the key ValuesKey names in the
// values.yaml next to Chart.yaml (empty when there is none). An Argo CD
// source's chart gets what Argo CD passes it (argoInput). read reads a
// file of the base; it is called from one goroutine.
func (r *ChartRenderer) Values(b Branch, read func(path string) ([]byte, error)) map[int]ChartInput {
	out := map[int]ChartInput{}
	for i, u := range b.Updates {
		d := u.Dependency
		if !IsChart(d) {
			continue
		}
		in := ChartInput{Values: map[string]any{}}
		if d.Manager == argoManager {
			if raw, err := read(d.File); err == nil {
				self := func(u string) bool { return r.Repo != "" && sameRepo(u, r.Repo) }
				if a, ok := argoInput(raw, d, self, read); ok {
					in = a
				}
			}
			out[i] = in
			continue
		}
		if raw, err := read(path.Join(path.Dir(d.File), "values.yaml")); err == nil {
			var all map[string]any
			if yaml.Unmarshal(raw, &all) == nil {
				if sub, ok := all[ValuesKey(d)].(map[string]any); ok {
					in.Values = sub
				}
			}
		}
		out[i] = in
	}
	return out
}

// Diffs renders each Helm chart update of b at its current and its new
// version with values (from Values) and diffs the manifests; a chart that
// cannot be rendered gets a one-line reason instead.
func (r *ChartRenderer) Diffs(ctx context.Context, b Branch, inputs map[int]ChartInput) map[int]*ChartDiff {
	diffs := map[int]*ChartDiff{}
	for i, u := range b.Updates {
		d := u.Dependency
		if !IsChart(d) {
			continue
		}
		d = datasource.Mirror(d, r.Mirrors)
		in := inputs[i]
		cd, err := r.Diff(ctx, d.RegistryURL, path.Base(d.Package), d.Current, u.NewValue, in)
		if err != nil {
			cd = &ChartDiff{Summary: "rendered diff unavailable: " + err.Error()}
		} else if len(in.Unapplied) > 0 {
			cd.Summary += " (without " + strings.Join(in.Unapplied, ", ") + ")"
		}
		diffs[i] = cd
	}
	return diffs
}

// memo runs one fetch per key, shares it with concurrent callers and keeps
// what succeeded.
type memo[T any] struct {
	mu sync.Mutex
	m  map[string]*flight[T]
}

type flight[T any] struct {
	done chan struct{}
	v    T
	err  error
}

func (m *memo[T]) get(ctx context.Context, key string, fetch func() (T, error)) (T, error) {
	m.mu.Lock()
	f := m.m[key]
	if f == nil {
		f = &flight[T]{done: make(chan struct{})}
		if m.m == nil {
			m.m = map[string]*flight[T]{}
		}
		m.m[key] = f
		m.mu.Unlock()
		f.v, f.err = fetch()
		if f.err != nil {
			m.mu.Lock()
			delete(m.m, key)
			m.mu.Unlock()
		}
		close(f.done)
		return f.v, f.err
	}
	m.mu.Unlock()
	select {
	case <-f.done:
		return f.v, f.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

func (r *ChartRenderer) client() *http.Client {
	if r.Client != nil {
		return r.Client
	}
	return http.DefaultClient
}

func (r *ChartRenderer) get(ctx context.Context, u string, max int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.client().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, max))
}

func (r *ChartRenderer) loadIndex(ctx context.Context, repoURL string) (*repo.IndexFile, error) {
	return r.index.get(ctx, repoURL, func() (*repo.IndexFile, error) {
		b, err := r.get(ctx, strings.TrimSuffix(repoURL, "/")+"/index.yaml", 64<<20)
		if err != nil {
			return nil, err
		}
		idx := &repo.IndexFile{}
		if err := yaml.Unmarshal(b, idx); err != nil {
			return nil, fmt.Errorf("index of %s: %w", repoURL, err)
		}
		return idx, nil
	})
}

func (r *ChartRenderer) chart(ctx context.Context, repoURL, name, version string) (*chart.Chart, error) {
	idx, err := r.loadIndex(ctx, repoURL)
	if err != nil {
		return nil, err
	}
	cv, err := idx.Get(name, version)
	if err != nil || len(cv.URLs) == 0 {
		return nil, fmt.Errorf("chart %s %s not in %s", name, version, repoURL)
	}
	base, err := url.Parse(strings.TrimSuffix(repoURL, "/") + "/")
	if err != nil {
		return nil, err
	}
	ref, err := url.Parse(cv.URLs[0])
	if err != nil {
		return nil, err
	}
	u := base.ResolveReference(ref).String()
	b, err := r.archives.get(ctx, u, func() ([]byte, error) {
		if b, ok := r.Archives.Get(cv.Digest); ok {
			return b, nil
		}
		b, err := r.get(ctx, u, 32<<20)
		if err == nil {
			r.Archives.Put(cv.Digest, b) // kept only when it matches the index's digest
		}
		return b, err
	})
	if err != nil {
		return nil, err
	}
	return loader.LoadArchive(bytes.NewReader(b))
}

func render(ch *chart.Chart, in ChartInput) (map[string]string, error) {
	opts := chartutil.ReleaseOptions{Name: in.Release, Namespace: in.Namespace, IsInstall: true}
	if opts.Name == "" {
		opts.Name = "release"
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	rv, err := chartutil.ToRenderValues(ch, in.Values, opts, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	out, err := engine.Render(ch, rv)
	if err != nil {
		return nil, err
	}
	for k, v := range out {
		if strings.HasSuffix(k, "NOTES.txt") || strings.TrimSpace(v) == "" {
			delete(out, k)
		}
	}
	return out, nil
}

// ociChart fetches chart name at version from the OCI registry
// repository repoURL (oci://host/path).
func (r *ChartRenderer) ociChart(ctx context.Context, repoURL, name, version string) (*chart.Chart, error) {
	if r.OCI == nil {
		return nil, fmt.Errorf("rendered diff: no registry client for %s", repoURL)
	}
	repo, tag := oci.ChartRepository(repoURL, name), oci.VersionToTag(version)
	b, err := r.archives.get(ctx, "oci://"+repo+":"+tag, func() ([]byte, error) { return r.OCI.ChartArchive(ctx, repo, tag, 32<<20) })
	if err != nil {
		return nil, err
	}
	return loader.LoadArchive(bytes.NewReader(b))
}

// Diff renders chart name at from and at to from repoURL (an HTTP chart
// repository or an oci:// registry repository) with in (values,
// release name and namespace) and diffs the manifests.
func (r *ChartRenderer) Diff(ctx context.Context, repoURL, name, from, to string, in ChartInput) (*ChartDiff, error) {
	fetch := r.chart
	switch {
	case strings.HasPrefix(repoURL, "oci://"):
		fetch = r.ociChart
	case !strings.HasPrefix(repoURL, "http://") && !strings.HasPrefix(repoURL, "https://"):
		return nil, fmt.Errorf("rendered diff: %s is neither an HTTP chart repository nor an oci:// registry", repoURL)
	}
	var rendered [2]map[string]string
	for i, v := range []string{from, to} {
		ch, err := fetch(ctx, repoURL, name, v)
		if err != nil {
			return nil, err
		}
		if rendered[i], err = render(ch, in); err != nil {
			return nil, fmt.Errorf("render %s %s: %w", name, v, err)
		}
	}
	return diffManifests(rendered[0], rendered[1]), nil
}

func diffManifests(a, b map[string]string) *ChartDiff {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var full strings.Builder
	files, plus, minus := 0, 0, 0
	for _, k := range keys {
		if a[k] == b[k] {
			continue
		}
		d := merge.Diff([]byte(a[k]), []byte(b[k]), "a/"+k, "b/"+k, 3)
		files++
		for _, l := range strings.Split(d, "\n") {
			switch {
			case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
			case strings.HasPrefix(l, "+"):
				plus++
			case strings.HasPrefix(l, "-"):
				minus++
			}
		}
		full.WriteString(d)
	}
	if files == 0 {
		return &ChartDiff{Summary: "no change in the rendered manifests"}
	}
	f := full.String()
	if len(f) > MaxFullDiff {
		f = f[:MaxFullDiff] + "\n… (truncated)"
	}
	return &ChartDiff{Summary: fmt.Sprintf("%d manifests changed, +%d −%d lines", files, plus, minus), Full: strings.TrimRight(f, "\n")}
}
