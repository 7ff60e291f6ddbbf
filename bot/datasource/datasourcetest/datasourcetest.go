// Package datasourcetest owns the real local servers the bot's tests
// talk to: a Helm repository of charts packaged with the helm SDK and
// indexed by helm's repo package, an in-process OCI registry (images and
// Helm charts) behind bearer-token auth with Link-header pagination, a
// GitHub API replaying recorded release fixtures with ETags, the k3s
// channel server, and a Debian mirror's netboot installer tree.
package datasourcetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	helmreg "helm.sh/helm/v3/pkg/registry"
	"helm.sh/helm/v3/pkg/repo"
)

// RepoRoot returns the repository root (for testdata paths).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = parent
	}
}

// HelmRepo is an HTTP Helm repository.
type HelmRepo struct {
	*httptest.Server
	t   testing.TB
	dir string

	mu    sync.Mutex
	index []byte
	// IndexGets counts GET /index.yaml; NotModified the 304s among them.
	IndexGets, NotModified atomic.Int32
}

// NewHelmRepo packages each chart version with chartutil.Save and indexes
// the folder with repo.IndexDirectory.
func NewHelmRepo(t testing.TB, charts map[string][]string) *HelmRepo {
	t.Helper()
	h := &HelmRepo{t: t, dir: t.TempDir()}
	h.Server = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.Close)
	for n, vs := range charts {
		for _, v := range vs {
			h.package_(n, v)
		}
	}
	h.Reindex()
	return h
}

func (h *HelmRepo) package_(n, v string) {
	c := &chart.Chart{Metadata: &chart.Metadata{APIVersion: chart.APIVersionV2, Name: n, Version: v, AppVersion: v, Description: "test chart " + n}}
	if _, err := chartutil.Save(c, h.dir); err != nil {
		h.t.Fatalf("package %s-%s: %v", n, v, err)
	}
}

// Add packages more versions and re-indexes (a release upstream).
func (h *HelmRepo) Add(n string, versions ...string) {
	for _, v := range versions {
		h.package_(n, v)
	}
	h.Reindex()
}

// Reindex regenerates index.yaml from the packaged charts.
func (h *HelmRepo) Reindex() {
	idx, err := repo.IndexDirectory(h.dir, h.URL)
	if err != nil {
		h.t.Fatal(err)
	}
	idx.SortEntries()
	p := filepath.Join(h.dir, "index.yaml")
	if err := idx.WriteFile(p, 0o644); err != nil {
		h.t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		h.t.Fatal(err)
	}
	h.SetIndex(b)
}

// SetIndex serves raw bytes as index.yaml (malformed-index tests).
func (h *HelmRepo) SetIndex(b []byte) {
	h.mu.Lock()
	h.index = b
	h.mu.Unlock()
}

func (h *HelmRepo) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/index.yaml" {
		if strings.HasSuffix(r.URL.Path, ".tgz") && !strings.Contains(r.URL.Path[1:], "/") {
			http.ServeFile(w, r, filepath.Join(h.dir, filepath.Base(r.URL.Path)))
			return
		}
		http.NotFound(w, r)
		return
	}
	h.IndexGets.Add(1)
	h.mu.Lock()
	b := h.index
	h.mu.Unlock()
	sum := sha256.Sum256(b)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		h.NotModified.Add(1)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/x-yaml")
	w.Write(b)
}

// Registry is an in-process OCI registry. Host is what image references
// use; pushes go through an unauthenticated side door.
type Registry struct {
	*httptest.Server
	Host       string
	User, Pass string
	pushHost   string
	token      string
	// TagPages counts tags/list requests; TokenGets token requests;
	// DigestGets GETs of a manifest by digest (HEADs are not counted:
	// Docker Hub does not count them as pulls either); BlobGets GETs of
	// blobs (layers, configs).
	TagPages, TokenGets, DigestGets, BlobGets atomic.Int32
}

// NewRegistry starts a registry that demands a bearer token obtained with
// user/pass (when user is not empty) and paginates tags/list.
func NewRegistry(t testing.TB, user, pass string) *Registry {
	t.Helper()
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	push := httptest.NewServer(inner)
	t.Cleanup(push.Close)
	r := &Registry{User: user, Pass: pass, token: fmt.Sprintf("tok-%d", time.Now().UnixNano()), pushHost: strings.TrimPrefix(push.URL, "http://")}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { r.serve(w, req, inner) }))
	t.Cleanup(r.Close)
	r.Host = strings.TrimPrefix(r.URL, "http://")
	return r
}

// Token is the bearer token the registry issues (to assert it is never
// logged).
func (r *Registry) Token() string { return r.token }

func (r *Registry) serve(w http.ResponseWriter, req *http.Request, inner http.Handler) {
	if req.URL.Path == "/token" {
		r.TokenGets.Add(1)
		u, p, ok := req.BasicAuth()
		if !ok || u != r.User || p != r.Pass {
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"token": r.token, "access_token": r.token, "expires_in": 300})
		return
	}
	if r.User != "" && req.Header.Get("Authorization") != "Bearer "+r.token {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="test-registry",scope="repository:x:pull"`, r.URL))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
		return
	}
	if !strings.HasSuffix(req.URL.Path, "/tags/list") {
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/manifests/sha256:") {
			r.DigestGets.Add(1)
		}
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/") {
			r.BlobGets.Add(1)
		}
		inner.ServeHTTP(w, req)
		return
	}
	r.TagPages.Add(1)
	// Paginate as distribution does: n, last, and a Link header.
	q := req.URL.Query()
	full := req.Clone(req.Context())
	full.URL.RawQuery = ""
	rec := httptest.NewRecorder()
	inner.ServeHTTP(rec, full)
	if rec.Code != http.StatusOK {
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
		return
	}
	var list struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	json.Unmarshal(rec.Body.Bytes(), &list)
	sort.Strings(list.Tags)
	if last := q.Get("last"); last != "" {
		i := sort.SearchStrings(list.Tags, last)
		for i < len(list.Tags) && list.Tags[i] <= last {
			i++
		}
		list.Tags = list.Tags[i:]
	}
	if n, err := strconv.Atoi(q.Get("n")); err == nil && n > 0 && n < len(list.Tags) {
		list.Tags = list.Tags[:n]
		next := url.Values{"n": {strconv.Itoa(n)}, "last": {list.Tags[n-1]}}
		w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, req.URL.Path, next.Encode()))
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(list)
}

// PushImage writes a random image under each tag of repo.
func (r *Registry) PushImage(t testing.TB, repoPath string, tags ...string) {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	r.push(t, img, repoPath, tags)
}

// push writes img under each tag of repoPath.
func (r *Registry) push(t testing.TB, img v1.Image, repoPath string, tags []string) {
	t.Helper()
	r.pushWith(t, repoPath, tags, func(ref name.Reference) error { return remote.Write(ref, img) })
}

// pushWith writes under each tag of repoPath with write.
func (r *Registry) pushWith(t testing.TB, repoPath string, tags []string, write func(name.Reference) error) {
	t.Helper()
	for _, tag := range tags {
		ref, err := name.ParseReference(r.pushHost + "/" + repoPath + ":" + tag)
		if err != nil {
			t.Fatal(err)
		}
		if err := write(ref); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
	}
}

// Stamp says where PushImageAt records an image's build time.
type Stamp int

// The places an image's build time can be.
const (
	StampNone   Stamp = iota // neither (SOURCE_DATE_EPOCH=0 builds: created is the epoch)
	StampConfig              // the config's created field
	StampLabel               // the org.opencontainers.image.created label only
)

// PushImageAt pushes one image under tags with its build time recorded
// where stamp says.
func (r *Registry) PushImageAt(t testing.TB, repoPath string, created time.Time, stamp Stamp, tags ...string) {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.Created = v1.Time{Time: time.Unix(0, 0)}
	switch stamp {
	case StampConfig:
		cfg.Created = v1.Time{Time: created}
	case StampLabel:
		cfg.Config.Labels = map[string]string{"org.opencontainers.image.created": created.UTC().Format(time.RFC3339)}
	}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	r.push(t, img, repoPath, tags)
}

// PushImageSource pushes one image under tags naming its source
// repository as image builders do: the org.opencontainers.image.source
// label of its config, or (onIndex) the annotation of an image index
// holding it as linux/amd64.
func (r *Registry) PushImageSource(t testing.TB, repoPath, source string, onIndex bool, tags ...string) {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !onIndex {
		if img, err = mutate.Config(img, v1.Config{Labels: map[string]string{"org.opencontainers.image.source": source}}); err != nil {
			t.Fatal(err)
		}
		r.push(t, img, repoPath, tags)
		return
	}
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
	idx = mutate.Annotations(idx, map[string]string{"org.opencontainers.image.source": source}).(v1.ImageIndex)
	r.pushWith(t, repoPath, tags, func(ref name.Reference) error { return remote.WriteIndex(ref, idx) })
}

// PushChart packages a chart and pushes it with helm's registry client
// (which spells '+' as '_' in the tag).
func (r *Registry) PushChart(t testing.TB, repoPath, chartName string, versions ...string) {
	t.Helper()
	dir := t.TempDir()
	c, err := helmreg.NewClient(helmreg.ClientOptPlainHTTP(), helmreg.ClientOptCredentialsFile(filepath.Join(dir, "creds.json")))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range versions {
		ch := &chart.Chart{Metadata: &chart.Metadata{APIVersion: chart.APIVersionV2, Name: chartName, Version: v}}
		p, err := chartutil.Save(ch, dir)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		ref := fmt.Sprintf("%s/%s/%s:%s", r.pushHost, repoPath, chartName, v)
		if _, err := c.Push(data, ref, helmreg.PushOptStrictMode(false)); err != nil {
			t.Fatalf("helm push %s: %v", ref, err)
		}
	}
}

// GitHub replays recorded releases from testdata/bot/github/repos/<owner>/<repo>/releases.json,
// paginated and with ETags (a matching If-None-Match gets a 304), and
// one release by its tag.
type GitHub struct {
	*httptest.Server
	dir string
	// Full counts 200 answers of release lists; NotModified 304s; Tags
	// requests for one release by tag; Auth the Authorization headers
	// seen.
	Full, NotModified, Tags atomic.Int32
	mu                      sync.Mutex
	Auth                    []string
}

// NewGitHub serves the fixtures under RepoRoot/testdata/bot/github.
func NewGitHub(t testing.TB) *GitHub {
	g := &GitHub{dir: filepath.Join(RepoRoot(t), "testdata", "bot", "github")}
	g.Server = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.Close)
	return g
}

func (g *GitHub) serve(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.Auth = append(g.Auth, r.Header.Get("Authorization"))
	g.mu.Unlock()
	// /repos/{owner}/{repo}/releases[/tags/{tag}]
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) == 6 && parts[0] == "repos" && parts[3] == "releases" && parts[4] == "tags" {
		g.serveTag(w, parts[1], parts[2], parts[5])
		return
	}
	if len(parts) != 4 || parts[0] != "repos" || parts[3] != "releases" {
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"message":"Not Found","documentation_url":"https://docs.github.com/rest"}`))
		return
	}
	b, err := os.ReadFile(filepath.Join(g.dir, "repos", parts[1], parts[2], "releases.json"))
	if err != nil {
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"message":"Not Found"}`))
		return
	}
	var all []json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	if per <= 0 {
		per = 30
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if page <= 0 {
		page = 1
	}
	start, end := min((page-1)*per, len(all)), min(page*per, len(all))
	body, _ := json.Marshal(all[start:end])
	sum := sha256.Sum256(body)
	etag := `W/"` + hex.EncodeToString(sum[:10]) + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("X-RateLimit-Limit", "5000")
	w.Header().Set("X-RateLimit-Remaining", "4999")
	if end < len(all) {
		next := *r.URL
		q := next.Query()
		q.Set("page", strconv.Itoa(page+1))
		next.RawQuery = q.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<%s%s>; rel="next"`, g.URL, next.RequestURI()))
	}
	if r.Header.Get("If-None-Match") == etag {
		g.NotModified.Add(1)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	g.Full.Add(1)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Write(body)
}

// serveTag answers GET /repos/{owner}/{repo}/releases/tags/{tag} as
// GitHub does: the release of that tag from the recorded list, or 404.
func (g *GitHub) serveTag(w http.ResponseWriter, owner, repo, tag string) {
	g.Tags.Add(1)
	b, err := os.ReadFile(filepath.Join(g.dir, "repos", owner, repo, "releases.json"))
	var all []json.RawMessage
	if err == nil {
		err = json.Unmarshal(b, &all)
	}
	for _, raw := range all {
		var r struct {
			TagName string `json:"tag_name"`
		}
		if json.Unmarshal(raw, &r) == nil && r.TagName == tag {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Write(raw)
			return
		}
	}
	w.WriteHeader(http.StatusNotFound)
	w.Write([]byte(`{"message":"Not Found","documentation_url":"https://docs.github.com/rest/releases/releases#get-a-release-by-tag-name"}`))
}

// NewK3sChannels serves testdata/bot/k3s/channels.json at
// /v1-release/channels and returns its URL.
func NewK3sChannels(t testing.TB) (string, *atomic.Int32) {
	b, err := os.ReadFile(filepath.Join(RepoRoot(t), "testdata", "bot", "k3s", "channels.json"))
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1-release/channels" {
			http.NotFound(w, r)
			return
		}
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v1-release/channels", &hits
}

// Debian serves a mirror's installer tree: for each build,
// dists/<suite>/main/installer-<arch>/<build>/images/SHA256SUMS with the
// given files, under /debian/ and under snapshot-style
// /archive/debian/<stamp>/ paths (any stamp).
type Debian struct {
	*httptest.Server
	Suite, Arch string
	// Builds maps a build to its date and its files' checksums (paths below images/).
	Builds map[string]DebianBuild
	// Stamps records the snapshot stamps asked for.
	mu     sync.Mutex
	Stamps []string
}

// DebianBuild is one installer build.
type DebianBuild struct {
	Date  time.Time
	Files map[string]string
}

// NewDebian starts the mirror.
func NewDebian(t testing.TB, suite, arch string, builds map[string]DebianBuild) *Debian {
	d := &Debian{Suite: suite, Arch: arch, Builds: builds}
	d.Server = httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(d.Close)
	return d
}

// Base returns the installer folder URL on the plain mirror.
func (d *Debian) Base() string {
	return fmt.Sprintf("%s/debian/dists/%s/main/installer-%s", d.URL, d.Suite, d.Arch)
}

// SnapshotBase returns the installer folder URL in a snapshot.
func (d *Debian) SnapshotBase(stamp string) string {
	return fmt.Sprintf("%s/archive/debian/%s/dists/%s/main/installer-%s", d.URL, stamp, d.Suite, d.Arch)
}

func (d *Debian) serve(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if strings.HasPrefix(p, "/archive/debian/") {
		rest := strings.TrimPrefix(p, "/archive/debian/")
		stamp, tail, _ := strings.Cut(rest, "/")
		d.mu.Lock()
		d.Stamps = append(d.Stamps, stamp)
		d.mu.Unlock()
		p = "/debian/" + tail
	}
	prefix := fmt.Sprintf("/debian/dists/%s/main/installer-%s/", d.Suite, d.Arch)
	if !strings.HasPrefix(p, prefix) {
		http.NotFound(w, r)
		return
	}
	rest := strings.TrimPrefix(p, prefix)
	if rest == "" {
		// An Apache-style directory index.
		var b bytes.Buffer
		b.WriteString("<html><head><title>Index</title></head><body><pre>")
		b.WriteString(`<a href="../">Parent Directory</a>                             -` + "\n")
		var names []string
		for n := range d.Builds {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(&b, `<a href="%s/">%s/</a>  %s    -`+"\n", url.PathEscape(n), n, d.Builds[n].Date.Format("2006-01-02 15:04"))
		}
		b.WriteString(`<a href="current/">current/</a>  2025-01-01 00:00    -` + "\n</pre></body></html>\n")
		w.Header().Set("Content-Type", "text/html")
		w.Write(b.Bytes())
		return
	}
	build, tail, _ := strings.Cut(rest, "/")
	if b, ok := d.Builds[build]; ok && tail == "images/SHA256SUMS" {
		var names []string
		for n := range b.Files {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(w, "%s  ./%s\n", b.Files[n], n)
		}
		return
	}
	http.NotFound(w, r)
}

// Fedora is a Fedora mirror's releases folder on disk, served by Go's
// file server (its directory index is what Releases reads): each release
// has the given variant/arch install trees with pxeboot images and a
// .treeinfo listing their sha256 as Fedora's does.
type Fedora struct {
	*httptest.Server
	Dir string
}

// NewFedora serves releases (e.g. "41", "42") of trees (e.g.
// "Everything/x86_64"), each image's content naming its release and tree.
func NewFedora(t testing.TB, releases []string, trees ...string) *Fedora {
	t.Helper()
	f := &Fedora{Dir: t.TempDir()}
	for _, r := range releases {
		for _, tr := range trees {
			f.AddTree(t, r, tr)
		}
	}
	f.Server = httptest.NewServer(http.StripPrefix("/pub/fedora/linux/releases", http.FileServer(http.Dir(f.Dir))))
	t.Cleanup(f.Close)
	return f
}

// Base is the releases folder's URL.
func (f *Fedora) Base() string { return f.URL + "/pub/fedora/linux/releases" }

// AddTree writes release's tree ("<variant>/<arch>") and returns the
// sha256 of its images by path below os/.
func (f *Fedora) AddTree(t testing.TB, release, tree string) map[string]string {
	t.Helper()
	os_ := filepath.Join(f.Dir, release, filepath.FromSlash(tree), "os")
	sums := map[string]string{}
	var ini strings.Builder
	ini.WriteString("[checksums]\n")
	for _, p := range []string{"images/install.img", "images/pxeboot/initrd.img", "images/pxeboot/vmlinuz"} {
		content := []byte(p + " of Fedora " + release + " " + tree + "\n")
		if err := os.MkdirAll(filepath.Join(os_, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(os_, p), content, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(content)
		sums[p] = hex.EncodeToString(sum[:])
		fmt.Fprintf(&ini, "%s = sha256:%s\n", p, sums[p])
	}
	variant, arch, _ := strings.Cut(tree, "/")
	fmt.Fprintf(&ini, "\n[general]\narch = %s\nfamily = Fedora\nname = Fedora %s\nversion = %s\n\n[header]\ntype = productmd.treeinfo\nversion = 1.2\n\n[release]\nname = Fedora\nshort = Fedora\nversion = %s\n\n[tree]\narch = %s\nplatforms = %s\nvariants = %s\n",
		arch, release, release, release, arch, arch, variant)
	if err := os.WriteFile(filepath.Join(os_, ".treeinfo"), []byte(ini.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return sums
}
