//go:build loop

package loop

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"
	"filippo.io/age"
	"github.com/Masterminds/semver/v3"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	sigyaml "sigs.k8s.io/yaml"

	"hl.dev/hl/bootstrap"
	"hl.dev/hl/e2e"
	"hl.dev/hl/e2e/hlimage"
	argocd "hl.dev/hl/internal/argocd/testserver"
	"hl.dev/hl/internal/asrendered"
	"hl.dev/hl/internal/chaos"
	"hl.dev/hl/internal/config"
	giteats "hl.dev/hl/internal/gitea/testserver"
	kubets "hl.dev/hl/internal/kube/testserver"
	"hl.dev/hl/internal/testcharts"
	"hl.dev/hl/internal/testharness"
	"hl.dev/hl/secrets"
	"hl.dev/hl/templates"
	"hl.dev/hl/validate"
)

func TestMain(m *testing.M) { kubets.Main(m) }

var gvrApps = argocd.ApplicationGVR

// loop is the state of one run of the loop.
type loop struct {
	t       *testing.T
	hl      string // the built hl binary
	dir     string // the rendered repository (hl init --out)
	ageKey  string
	forge   *giteats.Server
	kube    *kubets.Server
	set     *testcharts.Set
	charts  *testcharts.Repos
	cache   string // chart cache for in-process renders
	homelab *config.Homelab
	argo    *argocd.Server
	kc      kubernetes.Interface
	dyn     dynamic.Interface
	gc      *gitea.Client
	due     dueSecret
	hooks   *webhooks
	// giteaSvc is the in-cluster forge's Service (the Service seam).
	giteaSvc *e2e.Service
	// forgeProxy sits between that Service and the forge, passing
	// everything on; it counts requests, so that a kill can land after a
	// chosen one.
	forgeProxy *chaos.Proxy
	// forgeIP is the cluster IP the repo-server's hostAliases give the
	// forge's hostname.
	forgeIP string
}

// TestLoop runs the loop. Its phases are subtests so a failure names the
// link of the chain that broke; each later phase needs the earlier ones.
func TestLoop(t *testing.T) {
	l := &loop{t: t}
	l.hl = buildHL(t)
	l.forge = giteats.ForTest(t)
	l.set = testcharts.Catalog(t)
	l.charts = l.set.Serve(t)

	steps := []struct {
		name string
		run  func(*testing.T)
	}{
		{"init and render", l.initAndRender},
		{"bootstrap cluster", l.bootstrapCluster},
		{"argo cd syncs everything", l.syncEverything},
		{"bot upgrade PRs validated, merged and applied", l.botUpgrade},
		{"bot rotation PR validated, merged and applied", l.botRotation},
		{"a broken link is caught", l.brokenLinks},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.run) {
			t.Fatalf("the loop broke at %q", s.name)
		}
	}
}

// buildHL builds hl as the tests' go command builds it (the Makefile's
// GOFLAGS) into a temporary folder.
func buildHL(t *testing.T) string {
	t.Helper()
	root, err := testharness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "bin", "hl")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/hl")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/hl: %v\n%s", err, out)
	}
	return bin
}

// hlRun runs the hl binary in the repository with a private HOME.
func (l *loop) hlRun(t *testing.T, args ...string) string {
	t.Helper()
	return l.hlRunIn(t, l.dir, args...)
}

// hlRunIn runs the hl binary in dir, as hlRun.
func (l *loop) hlRunIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(l.hl, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+filepath.Dir(l.ageKey), "XDG_CONFIG_HOME="+filepath.Dir(l.ageKey), "SOPS_AGE_KEY_FILE="+l.ageKey)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("hl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// initAndRender: `hl init --defaults`, then the edits a user makes to
// hl.yaml here (a forge owner of its own in the shared Gitea, the chart
// mirrors), then `hl render` through the three-way merge.
func (l *loop) initAndRender(t *testing.T) {
	// Folders live as long as the whole loop (a subtest's TempDir goes
	// with the subtest).
	l.dir = filepath.Join(l.t.TempDir(), "homelab")
	l.ageKey = filepath.Join(l.t.TempDir(), "age.key")
	cmd := exec.Command(l.hl, "init", "--defaults", "--out", l.dir, "--age-key", l.ageKey)
	cmd.Env = append(os.Environ(), "HOME="+filepath.Dir(l.ageKey))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hl init --defaults: %v\n%s", err, out)
	}
	cfgPath := filepath.Join(l.dir, config.FileName)
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := sigyaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	spec := doc["spec"].(map[string]any)
	spec["forge"].(map[string]any)["owner"] = l.forge.UniqueName("loop")
	var charts []any
	for _, m := range l.charts.Mirrors {
		charts = append(charts, map[string]any{"from": m.From, "to": m.To})
	}
	mirrors, _ := spec["mirrors"].(map[string]any)
	if mirrors == nil {
		mirrors = map[string]any{}
		spec["mirrors"] = mirrors
	}
	mirrors["charts"] = charts
	// The app image the upgrade phase bumps comes from the local registry.
	mirrors["registries"] = []any{map[string]any{"from": "ghcr.io/gethomepage", "to": l.charts.Host + "/ghcr/gethomepage"}}
	pushImage(t, l.charts.Host+bumpImageMirr+":"+bumpImageFrom)
	// The bot may open every PR of the loop in one run, and takes the
	// test's fresh releases (their age is minutes; the default holds a
	// release for three days).
	bot, _ := spec["bot"].(map[string]any)
	if bot == nil {
		bot = map[string]any{}
		spec["bot"] = bot
	}
	bot["minimumReleaseAge"] = "0s"
	bot["limits"] = map[string]any{"maxPRsPerHour": 20, "maxPRsPerRun": 20, "maxOpenPRs": 20}
	out, err := sigyaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, out, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Log(strings.TrimSpace(l.hlRun(t, "render")))
	l.due = l.makeOneDue(t)
	d, _, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	l.homelab = d.Homelab
	l.cache = l.t.TempDir()
	l.set.Cache(t, l.cache, l.homelab.Spec.Mirrors.Charts...)
	// What the pipeline checks on every PR holds for the first render.
	t.Log(strings.TrimSpace(l.hlRun(t, "validate", "--chart-cache", l.cache)))
}

type fixedForge string

func (f fixedForge) Open(context.Context) (string, func(), error) { return string(f), func() {}, nil }

func (l *loop) identities(t *testing.T) []age.Identity {
	t.Helper()
	ids, err := secrets.LoadIdentities(l.ageKey)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// bootstrapCluster runs hl bootstrap cluster's steps against the API
// server, with the in-cluster forge played by the Gitea harness.
func (l *loop) bootstrapCluster(t *testing.T) {
	ctx := t.Context()
	l.hooks = startWebhooks(l.t, l.dir, l.cache)
	l.kube = kubets.New(l.t, kubets.Options{})
	l.kc = kubernetes.NewForConfigOrDie(l.kube.RESTConfig())
	l.dyn = dynamic.NewForConfigOrDie(l.kube.RESTConfig())
	// The Gitea chart creates its administrator from gitea-admin.
	admin := l.secretData(t, "platform/gitea/secrets", "gitea-admin", "username", "password")
	user, pass := admin["username"], admin["password"]
	if err := l.forge.CreateSiteAdmin(ctx, user, pass); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := bootstrap.Cluster(ctx, bootstrap.ClusterOptions{
		Dir: l.dir, Kube: l.kube.RESTConfig(), Identities: l.identities(t),
		Render: validate.Options{CacheDir: l.cache, Offline: true},
		Forge:  fixedForge(l.forge.URL),
		Ready:  func(context.Context, string) error { return nil },
	})
	if err != nil {
		t.Fatalf("bootstrap cluster: %v\n%+v", err, res)
	}
	for _, s := range res.Steps {
		t.Logf("%-15s %-9s %s", s.Name, s.Status, s.Detail)
	}
	t.Logf("hl bootstrap cluster in %v", time.Since(start).Round(time.Millisecond))
	gc, err := gitea.NewClient(l.forge.URL, gitea.SetBasicAuth(user, pass))
	if err != nil {
		t.Fatal(err)
	}
	l.gc = gc
}

// secretData decrypts a rendered SOPS Secret of folder once and returns
// the values of keys (each must be there).
func (l *loop) secretData(t *testing.T, folder, name string, keys ...string) map[string]string {
	t.Helper()
	var buf strings.Builder
	if err := secrets.Manifests(filepath.Join(l.dir, folder), l.identities(t), &buf); err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(buf.String(), "\n---\n") {
		var s struct {
			Metadata   struct{ Name string }
			StringData map[string]string `json:"stringData"`
		}
		if err := sigyaml.Unmarshal([]byte(doc), &s); err != nil {
			t.Fatal(err)
		}
		if s.Metadata.Name != name {
			continue
		}
		for _, k := range keys {
			if _, ok := s.StringData[k]; !ok {
				t.Fatalf("%s: Secret %s has no key %s", folder, name, k)
			}
		}
		return s.StringData
	}
	t.Fatalf("%s: no Secret %s", folder, name)
	return nil
}

// syncEverything starts Argo CD on what bootstrap applied and waits until
// every Application the root ApplicationSets generate is Synced.
func (l *loop) syncEverything(t *testing.T) {
	ctx := t.Context()
	// The in-cluster forge's Service, as the rendered repo URL names it.
	proxy, err := chaos.NewProxy(l.forge.URL, chaos.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	l.t.Cleanup(func() { proxy.Close() })
	l.forgeProxy = proxy
	svc, err := e2e.StartService(ctx, "gitea-http", "gitea", 3000, strings.TrimPrefix(proxy.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	l.t.Cleanup(func() { svc.Close() })
	l.giteaSvc = svc
	cmp, err := l.kc.CoreV1().ConfigMaps("argocd").Get(ctx, "argocd-cmp-cm", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the rendered argocd-cmp-cm: %v", err)
	}
	plugin, ok := cmp.Data["hl-secrets.yaml"]
	if !ok {
		t.Fatalf("argocd-cmp-cm has no hl-secrets.yaml: %v", cmp.Data)
	}
	age, err := l.kc.CoreV1().Secrets("argocd").Get(ctx, "sops-age", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("sops-age in argocd: %v", err)
	}
	keyFile := filepath.Join(l.t.TempDir(), "keys.txt")
	if err := os.WriteFile(keyFile, age.Data["keys.txt"], 0o600); err != nil {
		t.Fatal(err)
	}
	// The repo-server reaches the forge under Gitea's own hostname through
	// its rendered hostAliases (the gitea-http Service's fixed cluster
	// IP in a cluster; the Service seam's address here).
	hosts := svc.Hosts()
	repoServer, err := l.kc.AppsV1().Deployments("argocd").Get(ctx, "argocd-repo-server", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range repoServer.Spec.Template.Spec.HostAliases {
		l.forgeIP = a.IP
		for _, h := range a.Hostnames {
			hosts[h] = svc.IP
		}
	}
	if !strings.Contains(l.homelab.ClusterRepoURL(), "://"+l.homelab.ForgeHost()+":") || hosts[l.homelab.ForgeHost()] == "" {
		t.Fatalf("the repo-server's hostAliases %v do not name the repo URL's host (%s)", repoServer.Spec.Template.Spec.HostAliases, l.homelab.ClusterRepoURL())
	}
	start := time.Now()
	l.argo = argocd.New(l.t, argocd.Options{
		Kubeconfig: l.kube.Kubeconfig,
		Plugins: []argocd.Plugin{{
			Config: plugin, PATH: []string{filepath.Dir(l.hl)},
			Env: []string{"SOPS_AGE_KEY_FILE=" + keyFile},
		}},
		Hosts: hosts,
	})
	t.Logf("Argo CD started in %v", time.Since(start).Round(time.Millisecond))
	ready, stopReady := context.WithCancel(context.Background())
	var readyDone sync.WaitGroup
	readyDone.Go(func() { l.reportReady(ready) })
	l.t.Cleanup(func() { stopReady(); readyDone.Wait() })
	l.pointHooks(t)

	want := l.expectedApps(t)
	deadline := time.Now().Add(10 * time.Minute)
	var last string
	for {
		got, summary := l.appStates(t)
		synced := 0
		for _, name := range want {
			if got[name] == "Synced" {
				synced++
			}
		}
		if synced == len(want) && len(got) == len(want) {
			break
		}
		if summary != last {
			t.Logf("%d/%d Synced: %s", synced, len(want), summary)
			last = summary
		}
		if time.Now().After(deadline) {
			l.hold(t)
			t.Fatalf("after %v, %d of %d Applications Synced:\n%s\n%s", time.Since(start).Round(time.Second), synced, len(want), l.describeApps(t), l.argo.LogTails())
		}
		time.Sleep(2 * time.Second)
	}
	t.Logf("bootstrap to every Application Synced (%d): %v", len(want), time.Since(start).Round(time.Millisecond))
	gsvc, err := l.kc.CoreV1().Services("gitea").Get(ctx, "gitea-http", metav1.GetOptions{})
	if err != nil || gsvc.Spec.ClusterIP != l.forgeIP {
		t.Fatalf("the gitea-http Service Argo CD applied is not at the repo-server's hostAliases address %s: %v %v", l.forgeIP, err, gsvc)
	}
}

// hold keeps a failed loop's servers up for $HL_LOOP_HOLD (a duration)
// so that a person can look at them; the kubeconfig and Argo CD's logs
// are under the test's temporary folders.
func (l *loop) hold(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("HL_LOOP_HOLD"))
	if err != nil || d <= 0 {
		return
	}
	t.Logf("holding for %v: kubeconfig %s, forge %s", d, l.kube.Kubeconfig, l.forge.URL)
	time.Sleep(d)
}

// expectedApps lists the Applications the root ApplicationSets generate
// from the rendered tree: one per app.yaml their generators match.
func (l *loop) expectedApps(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, g := range []string{"system/*/app.yaml", "platform/*/app.yaml", "apps/*/app.yaml", "*/*/secrets/app.yaml"} {
		files, err := filepath.Glob(filepath.Join(l.dir, g))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var a struct{ Name string }
			if err := sigyaml.Unmarshal(data, &a); err != nil || a.Name == "" {
				t.Fatalf("%s: no name (%v)", f, err)
			}
			names = append(names, a.Name)
		}
	}
	sort.Strings(names)
	if len(names) < 10 {
		t.Fatalf("only %d Applications expected: %v", len(names), names)
	}
	return names
}

// appStates maps each Application to its sync status, with a one-line
// summary of those not Synced.
func (l *loop) appStates(t *testing.T) (map[string]string, string) {
	t.Helper()
	list, err := l.dyn.Resource(gvrApps).Namespace("argocd").List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	var pending []string
	for _, a := range list.Items {
		st, _, _ := unstructured.NestedString(a.Object, "status", "sync", "status")
		got[a.GetName()] = st
		if st != "Synced" {
			pending = append(pending, a.GetName()+"="+orNone(st))
		}
	}
	slices.Sort(pending)
	return got, fmt.Sprintf("%d Applications; not Synced: %s", len(got), strings.Join(pending, " "))
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// describeApps is every Application not Synced, with its status summary.
func (l *loop) describeApps(t *testing.T) string {
	t.Helper()
	list, err := l.dyn.Resource(gvrApps).Namespace("argocd").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, a := range list.Items {
		st, err := l.argo.Application(context.Background(), "argocd", a.GetName())
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", a.GetName(), err)
			continue
		}
		if st.Sync.Status != "Synced" {
			fmt.Fprintf(&b, "%s: %s\n", a.GetName(), st)
		}
	}
	sets, err := l.dyn.Resource(argocd.ApplicationSetGVR).Namespace("argocd").List(context.Background(), metav1.ListOptions{})
	if err == nil {
		for _, s := range sets.Items {
			conds, _, _ := unstructured.NestedSlice(s.Object, "status", "conditions")
			fmt.Fprintf(&b, "ApplicationSet %s: %v\n", s.GetName(), conds)
		}
	}
	return b.String()
}

// pointHooks is the webhook half of the Service seam: Gitea's hook to
// argocd-server's Service goes to the harness's argocd-server.
func (l *loop) pointHooks(t *testing.T) {
	t.Helper()
	owner, repo := l.homelab.Spec.Forge.Owner, l.homelab.Spec.Forge.Repo
	hooks, _, err := l.gc.ListRepoHooks(owner, repo, gitea.ListHooksOptions{})
	if err != nil {
		t.Fatal(err)
	}
	relay := l.startRelay(t)
	n := 0
	for _, h := range hooks {
		if strings.HasPrefix(h.Config["url"], "http://argocd-server.argocd.svc") {
			if _, err := l.gc.EditRepoHook(owner, repo, h.ID, gitea.EditHookOption{
				Config: map[string]string{"url": relay, "content_type": "json"}, Events: h.Events,
			}); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d webhooks to argocd-server, want 1: %v", n, hooks)
	}
}

// startRelay is the forge URL seam. The Gitea harness's ROOT_URL is its
// loopback URL, so its push payloads name the repository
// http://127.0.0.1:PORT/owner/repo where a homelab's Gitea names it by its
// hostname, https://git.<domain>/owner/repo. The relay rewrites that
// prefix in each payload, signs it again with the webhook secret as Gitea
// does (argocd-secret's webhook.gogs.secret, which the hook was created
// with) and forwards it to argocd-server's /api/webhook. Argo CD then
// matches the payload to the Applications by hostname, as in a cluster.
func (l *loop) startRelay(t *testing.T) string {
	t.Helper()
	sec, err := l.kc.CoreV1().Secrets("argocd").Get(t.Context(), "argocd-secret", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secret := sec.Data["webhook.gogs.secret"]
	if ref, ok := strings.CutPrefix(string(secret), "$"); ok {
		// A reference to another Secret's key, as Argo CD resolves it.
		name, key, _ := strings.Cut(ref, ":")
		other, err := l.kc.CoreV1().Secrets("argocd").Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("argocd-secret's webhook.gogs.secret refers to %s: %v", ref, err)
		}
		secret = other.Data[key]
	}
	if len(secret) == 0 {
		t.Fatal("argocd-secret has no webhook.gogs.secret: Gitea's push webhooks would not be verified")
	}
	from, to := []byte(strings.TrimSuffix(l.forge.URL, "/")+"/"), []byte("https://"+l.homelab.ForgeHost()+"/")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = bytes.ReplaceAll(body, from, to)
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		sig := hex.EncodeToString(mac.Sum(nil))
		req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, l.argo.WebhookURL, bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		for k, v := range r.Header {
			if strings.HasPrefix(k, "X-") || k == "Content-Type" {
				req.Header[k] = v
			}
		}
		req.Header.Set("X-Gogs-Signature", sig)
		req.Header.Set("X-Gitea-Signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	l.t.Cleanup(srv.Close)
	return srv.URL
}

// What the upgrade phase bumps: a chart whose objects carry its version
// (cert-manager labels every object helm.sh/chart: cert-manager-<version>)
// and an app image. The newer versions are the next minor of the
// catalog's pins, so the test follows the catalog.
const (
	bumpChart      = "cert-manager"
	bumpImageComp  = "homepage"
	bumpImageMirr  = "/ghcr/gethomepage/homepage"
	bumpDeployment = "homepage"
)

var (
	bumpChartTo   = nextMinor(catalogComponent(bumpChart).Chart.Version)
	bumpImageFrom = catalogComponent(bumpImageComp).Images["homepage"].Tag
	bumpImageTo   = nextMinor(bumpImageFrom)
)

// catalogComponent is the catalog's entry of a component.
func catalogComponent(name string) templates.Component {
	c, ok := templates.MustCatalog().Component(name)
	if !ok || name == bumpChart && c.Chart == nil {
		panic("no component " + name + " (with its chart) in the catalog")
	}
	return c
}

// nextMinor is v's next minor release, with v's "v" prefix if it has one.
func nextMinor(v string) string {
	sv := semver.MustParse(v)
	next := sv.IncMinor()
	if strings.HasPrefix(v, "v") {
		return "v" + next.String()
	}
	return next.String()
}

// runBot runs the rendered hl-bot Deployment's container as rendered
// (hl's real image, its command, arguments, environment and mounts) with
// the Secrets the API server holds in its namespace — those Argo CD
// applied through the hl-secrets plugin, and sops-age from hl bootstrap
// cluster — until stop is called.
func (l *loop) runBot(t *testing.T) (logs func() string, stop, kill func()) {
	t.Helper()
	ctx := t.Context()
	img, err := hlimage.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(l.ageKey)
	if err != nil {
		t.Fatal(err)
	}
	lab := &e2e.Homelab{Dir: l.dir, AgeKey: key, Identities: l.identities(t)}
	pod, err := e2e.Pod(ctx, e2e.PodOptions{Lab: lab, File: "platform/hl-bot/deployment.yaml", Kind: "Deployment", Name: "hl-bot",
		Decrypter: img, Hosts: l.giteaSvc.Hosts()})
	if err != nil {
		t.Fatal(err)
	}
	held, err := l.kc.CoreV1().Secrets(pod.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Secrets = held.Items
	pod.Images = map[string]*asrendered.Image{}
	for _, c := range pod.Spec.Containers {
		pod.Images[c.Image] = img
	}
	var buf testharness.SyncBuffer
	pod.Stdout, pod.Stderr = &buf, &buf
	// The rendered bot listens on :8080 of the host here (the Pods seam).
	release := e2e.HoldPort(t, 8080)
	proc, err := pod.Start(ctx)
	if err != nil {
		release()
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			if _, err := proc.Stop(30 * time.Second); err != nil {
				t.Logf("stopping the bot: %v", err)
			}
			release()
		})
	}
	// kill is an OOM kill or a node losing power: SIGKILL, no shutdown.
	kill = func() {
		once.Do(func() {
			proc.Kill()
			_, _ = proc.Wait()
			release()
		})
	}
	l.t.Cleanup(stop)
	return buf.String, stop, kill
}

// waitPRs waits until an open pull request matches each of want.
func (l *loop) waitPRs(t *testing.T, bound time.Duration, logs func() string, want map[string]func(*gitea.PullRequest) bool) map[string]*gitea.PullRequest {
	t.Helper()
	owner, repo := l.homelab.Spec.Forge.Owner, l.homelab.Spec.Forge.Repo
	found := map[string]*gitea.PullRequest{}
	deadline := time.Now().Add(bound)
	for {
		prs, _, err := l.gc.ListRepoPullRequests(owner, repo, gitea.ListPullRequestsOptions{State: gitea.StateOpen, ListOptions: gitea.ListOptions{PageSize: 50}})
		if err != nil {
			t.Fatal(err)
		}
		for what, match := range want {
			for _, pr := range prs {
				if match(pr) {
					found[what] = pr
				}
			}
		}
		if len(found) == len(want) {
			return found
		}
		if time.Now().After(deadline) {
			var titles []string
			for _, pr := range prs {
				titles = append(titles, pr.Head.Ref+": "+pr.Title)
			}
			t.Fatalf("after %v: found %d of %d pull requests; open: %v\nbot log:\n%s", bound, len(found), len(want), titles, logs())
		}
		time.Sleep(2 * time.Second)
	}
}

// loopChaosSeed picks where the loop's chaos lands (CHAOS_SEED replays
// another).
var loopChaosSeed = func() uint64 {
	if v, err := strconv.ParseUint(os.Getenv(chaos.EnvSeed), 10, 64); err == nil {
		return v
	}
	return 1
}()

// waitRequests waits until p has seen n requests; false after bound.
func waitRequests(p *chaos.Proxy, n int, bound time.Duration) bool {
	deadline := time.Now().Add(bound)
	for len(p.Events()) < n {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// requireOnePRPerChange fails unless each of want matches exactly one
// pull request of the repository in any state (a run killed mid-way and
// its successor opened no duplicate) and every hl-bot/ branch has a PR.
func (l *loop) requireOnePRPerChange(t *testing.T, want map[string]func(*gitea.PullRequest) bool) {
	t.Helper()
	owner, repo := l.homelab.Spec.Forge.Owner, l.homelab.Spec.Forge.Repo
	prs, _, err := l.gc.ListRepoPullRequests(owner, repo, gitea.ListPullRequestsOptions{State: gitea.StateAll, ListOptions: gitea.ListOptions{PageSize: 50}})
	if err != nil {
		t.Fatal(err)
	}
	heads := map[string]bool{}
	for _, pr := range prs {
		heads[pr.Head.Name] = true
	}
	for what, match := range want {
		var got []string
		for _, pr := range prs {
			if match(pr) {
				got = append(got, fmt.Sprintf("#%d %s (%s)", pr.Index, pr.Head.Name, pr.State))
			}
		}
		if len(got) != 1 {
			t.Errorf("%d pull requests for the %s, want 1: %v", len(got), what, got)
		}
	}
	branches, _, err := l.gc.ListRepoBranches(owner, repo, gitea.ListRepoBranchesOptions{ListOptions: gitea.ListOptions{PageSize: 50}})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range branches {
		if strings.HasPrefix(b.Name, "hl-bot/") && !heads[b.Name] {
			t.Errorf("orphan branch %s: no PR", b.Name)
		}
	}
}

// validatePR runs every step of the rendered validate pipeline on the pull
// request's head, as Woodpecker's Kubernetes backend would (hl's image,
// the step's commands through its shell, CI_* metadata), and reports the
// result to Gitea as Woodpecker does (the Woodpecker seam: no server or
// agent; the status context is Woodpecker's).
func (l *loop) validatePR(t *testing.T, pr *gitea.PullRequest) {
	t.Helper()
	ctx := t.Context()
	img, err := hlimage.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The pipeline as the pull request's head has it, on its checkout.
	ws := filepath.Join(t.TempDir(), "ws")
	if out, err := e2e.Git(filepath.Dir(ws), nil, "clone", "-q", "--branch", pr.Head.Ref, l.cloneURL(t), ws); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	if err := e2e.OpenPath(ws); err != nil {
		t.Fatal(err)
	}
	steps, err := e2e.PipelineSteps(ws)
	if err != nil {
		t.Fatal(err)
	}
	pipeline := filepath.Join(ws, ".woodpecker", "validate.yaml")
	if !whenAccepts(t, pipeline, "pull_request", pr.Base.Ref) {
		t.Fatalf("%s does not run for a pull request into %s", pipeline, pr.Base.Ref)
	}
	ran := 0
	for _, s := range steps {
		if s.File != "validate.yaml" {
			continue
		}
		meta := e2e.PullRequest{ForgeURL: l.forge.URL, Owner: l.homelab.Spec.Forge.Owner, Repo: l.homelab.Spec.Forge.Repo,
			Number: int(pr.Index), Source: pr.Head.Ref, Target: pr.Base.Ref, SHA: pr.Head.Sha}
		res, err := (&asrendered.StepRun{Image: img, Step: s.WoodpeckerStep, Workspace: ws, CI: meta.CI(), Hosts: l.giteaSvc.Hosts()}).Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.ExitCode != 0 {
			t.Fatalf("step %s on %s: exit %d\n%s%s", s.ID(), pr.Head.Ref, res.ExitCode, res.Stdout, res.Stderr)
		}
		t.Logf("step %s on %s: exit 0", s.ID(), pr.Head.Ref)
		ran++
	}
	if ran == 0 {
		t.Fatal("the rendered repo has no .woodpecker/validate.yaml step")
	}
	owner, repo := l.homelab.Spec.Forge.Owner, l.homelab.Spec.Forge.Repo
	if _, _, err := l.gc.CreateStatus(owner, repo, pr.Head.Sha, gitea.CreateStatusOption{
		State: gitea.StatusSuccess, Context: "ci/woodpecker/pr/validate", Description: "validate passed",
	}); err != nil {
		t.Fatal(err)
	}
}

// whenAccepts evaluates a pipeline's when: filters for an event into a
// branch as Woodpecker does for the event and branch fields (any entry
// matching is enough; an entry without event or branch takes all).
func whenAccepts(t *testing.T, file, event, branch string) bool {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		When []struct {
			Event  any `json:"event"`
			Branch any `json:"branch"`
		} `json:"when"`
	}
	if err := sigyaml.Unmarshal(data, &p); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(p.When) == 0 {
		return true
	}
	in := func(v any, s string) bool {
		switch v := v.(type) {
		case nil:
			return true
		case string:
			return v == s
		case []any:
			for _, x := range v {
				if x == s {
					return true
				}
			}
		}
		return false
	}
	for _, w := range p.When {
		if in(w.Event, event) && in(w.Branch, branch) {
			return true
		}
	}
	return false
}

// merge merges the pull request through Gitea's API as its reviewer would
// and returns the merge commit's time and id on the default branch.
func (l *loop) merge(t *testing.T, pr *gitea.PullRequest) (time.Time, string) {
	t.Helper()
	owner, repo := l.homelab.Spec.Forge.Owner, l.homelab.Spec.Forge.Repo
	start := time.Now()
	ok, _, err := l.gc.MergePullRequest(owner, repo, pr.Index, gitea.MergePullRequestOption{Style: gitea.MergeStyleMerge})
	if err != nil || !ok {
		t.Fatalf("merge #%d (%s): %v", pr.Index, pr.Head.Ref, err)
	}
	br, _, err := l.gc.GetRepoBranch(owner, repo, l.homelab.Spec.Forge.DefaultBranch)
	if err != nil {
		t.Fatal(err)
	}
	return start, br.Commit.ID
}

// waitApplied waits until the Application is Synced at revision and check
// passes on what the API server holds.
func (l *loop) waitApplied(t *testing.T, app, revision string, bound time.Duration, check func() error) {
	t.Helper()
	if err := l.applied(t.Context(), app, revision, bound, check); err != nil {
		t.Fatalf("%v\n%s", err, l.argo.LogTails())
	}
}

// applied is waitApplied's wait: nil once the Application is Synced at
// revision and check (if any) passes, else what was last seen at bound.
func (l *loop) applied(ctx context.Context, app, revision string, bound time.Duration, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	var last error
	for {
		st, err := l.argo.Application(ctx, "argocd", app)
		switch {
		case err != nil:
			last = err
		case st != nil && st.Sync.Status == "Synced" && st.Sync.Revision == revision:
			if check == nil {
				return nil
			}
			if last = check(); last == nil {
				return nil
			}
		default:
			last = fmt.Errorf("application %s: %s", app, summary(st))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not applied at %.12s within %v: %w", app, revision, bound, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// summary is an Application's sync state in one line.
func summary(st *argocd.ApplicationStatus) string {
	if st == nil {
		return "no status yet"
	}
	out := fmt.Sprintf("%s at %.12s, health %s", st.Sync.Status, st.Sync.Revision, st.Health.Status)
	for _, c := range st.Conditions {
		out += "; " + c.Type + ": " + c.Message
	}
	if st.OperationState != nil {
		out += "; operation " + st.OperationState.Phase + ": " + st.OperationState.Message
	}
	return out
}

// appOf is the Application generated for a component folder.
func (l *loop) appOf(t *testing.T, folder string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(l.dir, folder, "app.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var a struct{ Name string }
	if err := sigyaml.Unmarshal(data, &a); err != nil || a.Name == "" {
		t.Fatalf("%s/app.yaml: no name (%v)", folder, err)
	}
	return a.Name
}

// botUpgrade: newer versions appear upstream; the bot, run as rendered,
// opens their pull requests; the pipeline validates each; they are merged;
// Argo CD applies them.
func (l *loop) botUpgrade(t *testing.T) {
	ctx := t.Context()
	c, ok := l.set.Get(bumpChart)
	if !ok {
		t.Fatalf("no chart %s in the catalog", bumpChart)
	}
	l.charts.Publish(t, c, bumpChartTo)
	pushImage(t, l.charts.Host+bumpImageMirr+":"+bumpImageTo)

	want := map[string]func(*gitea.PullRequest) bool{
		"chart": func(pr *gitea.PullRequest) bool {
			return strings.HasPrefix(pr.Head.Ref, "hl-bot/") && strings.Contains(pr.Title+pr.Body, bumpChart) && strings.Contains(pr.Title+pr.Body, bumpChartTo)
		},
		"image": func(pr *gitea.PullRequest) bool {
			return strings.HasPrefix(pr.Head.Ref, "hl-bot/") && strings.Contains(pr.Title+pr.Body, "homepage") && strings.Contains(pr.Title+pr.Body, bumpImageTo)
		},
	}
	// Chaos inside the loop: the bot's container SIGKILLed mid-run (an
	// OOM kill, its node losing power) after a seeded number of its
	// requests to the forge, then started again as a kubelet restarts a
	// container; what it opens then is one PR per change.
	// A whole run makes about 25 requests: the kill comes within its
	// first 12.
	n := len(l.forgeProxy.Events()) + 1 + int(chaos.Moment(loopChaosSeed, 0, 12*time.Millisecond)/time.Millisecond)
	killedLogs, _, kill := l.runBot(t)
	if !waitRequests(l.forgeProxy, n, 5*time.Minute) {
		t.Fatalf("the bot made fewer than %d requests to the forge in 5 minutes:\n%s", n, killedLogs())
	}
	kill()
	ev := l.forgeProxy.Events()
	t.Logf("the bot SIGKILLed after forge request %d of the loop (%s), started again", len(ev), ev[len(ev)-1])
	logs, stop, _ := l.runBot(t)
	prs := l.waitPRs(t, 8*time.Minute, logs, want)
	stop()
	l.requireOnePRPerChange(t, want)

	for _, what := range []string{"chart", "image"} {
		pr := prs[what]
		l.validatePR(t, pr)
		merged, rev := l.merge(t, pr)
		switch what {
		case "chart":
			app := l.appOf(t, "system/"+bumpChart)
			l.waitApplied(t, app, rev, 5*time.Minute, func() error {
				d, err := l.kc.AppsV1().Deployments(bumpChart).Get(ctx, bumpChart, metav1.GetOptions{})
				if err != nil {
					return err
				}
				if got := d.Labels["helm.sh/chart"]; got != bumpChart+"-"+bumpChartTo {
					return fmt.Errorf("Deployment %s/%s is labelled helm.sh/chart=%s", bumpChart, bumpChart, got)
				}
				return nil
			})
		case "image":
			app := l.appOf(t, "apps/"+bumpDeployment)
			l.waitApplied(t, app, rev, 5*time.Minute, func() error {
				d, err := l.kc.AppsV1().Deployments(bumpDeployment).Get(ctx, bumpDeployment, metav1.GetOptions{})
				if err != nil {
					return err
				}
				if got := d.Spec.Template.Spec.Containers[0].Image; !strings.HasSuffix(got, ":"+bumpImageTo) {
					return fmt.Errorf("Deployment %s runs %s", bumpDeployment, got)
				}
				return nil
			})
		}
		t.Logf("%s PR #%d: merge to the new version in the API server: %v", what, pr.Index, time.Since(merged).Round(time.Millisecond))
	}
}

func pushImage(t *testing.T, ref string) {
	t.Helper()
	if err := e2e.PushImage(ref); err != nil {
		t.Fatal(err)
	}
}

// reportReady is the status seam: with no kube-controller-manager and no
// kubelet, nothing would ever report a workload ready, and Argo CD waits
// for a sync wave's workloads to be healthy before the next wave. Until
// ctx ends it writes, for every Deployment, StatefulSet and DaemonSet at a
// generation not yet reported, the status its controller writes once
// every replica runs the current template; every Job gets the status of
// a Job that succeeded, every PersistentVolumeClaim is Bound, every
// LoadBalancer Service gets the address MetalLB would assign, and objects
// deleted in the foreground lose the finalizer the garbage collector
// would drop. Only status
// is written (the status subresource); what Argo CD applied stays as it
// applied it.
func (l *loop) reportReady(ctx context.Context) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		l.readyOnce(ctx)
		l.readyConditions(ctx)
		l.hooks.inject(ctx, l)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (l *loop) readyOnce(ctx context.Context) {
	apps := l.kc.AppsV1()
	if list, err := apps.Deployments("").List(ctx, metav1.ListOptions{}); err == nil {
		for _, d := range list.Items {
			if d.Status.ObservedGeneration == d.Generation && d.Status.AvailableReplicas == replicas(d.Spec.Replicas) {
				continue
			}
			n := replicas(d.Spec.Replicas)
			d.Status = appsv1.DeploymentStatus{
				ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
				Conditions: []appsv1.DeploymentCondition{
					{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"},
					{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"},
				},
			}
			_, _ = apps.Deployments(d.Namespace).UpdateStatus(ctx, &d, metav1.UpdateOptions{})
		}
	}
	if list, err := apps.StatefulSets("").List(ctx, metav1.ListOptions{}); err == nil {
		for _, s := range list.Items {
			if s.Status.ObservedGeneration == s.Generation && s.Status.ReadyReplicas == replicas(s.Spec.Replicas) {
				continue
			}
			n := replicas(s.Spec.Replicas)
			rev := fmt.Sprintf("%s-%d", s.Name, s.Generation)
			s.Status = appsv1.StatefulSetStatus{
				ObservedGeneration: s.Generation, Replicas: n, ReadyReplicas: n, CurrentReplicas: n, UpdatedReplicas: n, AvailableReplicas: n,
				CurrentRevision: rev, UpdateRevision: rev,
			}
			_, _ = apps.StatefulSets(s.Namespace).UpdateStatus(ctx, &s, metav1.UpdateOptions{})
		}
	}
	if list, err := apps.DaemonSets("").List(ctx, metav1.ListOptions{}); err == nil {
		for _, d := range list.Items {
			if d.Status.ObservedGeneration == d.Generation && d.Status.NumberReady == 1 {
				continue
			}
			d.Status = appsv1.DaemonSetStatus{
				ObservedGeneration: d.Generation, DesiredNumberScheduled: 1, CurrentNumberScheduled: 1,
				NumberReady: 1, UpdatedNumberScheduled: 1, NumberAvailable: 1,
			}
			_, _ = apps.DaemonSets(d.Namespace).UpdateStatus(ctx, &d, metav1.UpdateOptions{})
		}
	}
	if list, err := l.kc.BatchV1().Jobs("").List(ctx, metav1.ListOptions{}); err == nil {
		for _, j := range list.Items {
			if j.Status.Succeeded > 0 {
				continue
			}
			now := metav1.Now()
			j.Status = batchv1.JobStatus{
				StartTime: &now, CompletionTime: &now, Succeeded: 1,
				Conditions: []batchv1.JobCondition{
					{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now},
					{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now},
				},
			}
			_, _ = l.kc.BatchV1().Jobs(j.Namespace).UpdateStatus(ctx, &j, metav1.UpdateOptions{})
		}
	}
	l.collectGarbage(ctx)
	// MetalLB's controller gives a LoadBalancer Service the address it
	// asks for (metallb.io/loadBalancerIPs), else one from the pool.
	if list, err := l.kc.CoreV1().Services("").List(ctx, metav1.ListOptions{}); err == nil {
		for _, svc := range list.Items {
			if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || len(svc.Status.LoadBalancer.Ingress) > 0 {
				continue
			}
			ip, _, _ := strings.Cut(svc.Annotations["metallb.io/loadBalancerIPs"], ",")
			if ip == "" {
				ip = "192.0.2.240"
			}
			svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
			_, _ = l.kc.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, &svc, metav1.UpdateOptions{})
		}
	}
	if list, err := l.kc.CoreV1().PersistentVolumeClaims("").List(ctx, metav1.ListOptions{}); err == nil {
		for _, p := range list.Items {
			if p.Status.Phase == corev1.ClaimBound {
				continue
			}
			p.Status.Phase = corev1.ClaimBound
			_, _ = l.kc.CoreV1().PersistentVolumeClaims(p.Namespace).UpdateStatus(ctx, &p, metav1.UpdateOptions{})
		}
	}
}

// foregroundKinds are what Argo CD deletes with foreground propagation
// here: chart hooks it replaces on the next sync (cert-manager's
// startupapicheck Job and its ServiceAccount, Role and RoleBinding) and
// what a sync prunes.
var foregroundKinds = []schema.GroupVersionResource{
	{Group: "batch", Version: "v1", Resource: "jobs"},
	{Version: "v1", Resource: "serviceaccounts"},
	{Version: "v1", Resource: "configmaps"},
	{Version: "v1", Resource: "secrets"},
	{Version: "v1", Resource: "services"},
	{Group: "apps", Version: "v1", Resource: "deployments"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"},
}

// collectGarbage is the garbage collector's part of the status seam (it
// runs in kube-controller-manager, which does not run here): an object
// deleted in the foreground waits for the collector to delete its
// dependents and drop the foregroundDeletion finalizer. None of these
// objects has dependents here (no pods run), so the finalizer goes.
func (l *loop) collectGarbage(ctx context.Context) {
	for _, gvr := range foregroundKinds {
		list, err := l.dyn.Resource(gvr).Namespace("").List(ctx, metav1.ListOptions{})
		if err != nil {
			continue
		}
		for _, o := range list.Items {
			fin := o.GetFinalizers()
			if o.GetDeletionTimestamp() == nil || !slices.Contains(fin, metav1.FinalizerDeleteDependents) {
				continue
			}
			o.SetFinalizers(slices.DeleteFunc(slices.Clone(fin), func(f string) bool { return f == metav1.FinalizerDeleteDependents }))
			_, _ = l.dyn.Resource(gvr).Namespace(o.GetNamespace()).Update(ctx, &o, metav1.UpdateOptions{FieldManager: "loop-test-garbage-collector"})
		}
	}
}

func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

// dueSecret is the secret the rotation phase expects the bot to rotate.
type dueSecret struct {
	secrets.Secret
	consumer string // Deployment name whose pod template carries its checksum
}

// makeOneDue makes a secret that a Deployment of gitea's folder reads
// due (e2e.MakeDue: hl's own rotation with a clock 200 days back); the
// gitea stand-in renders that Deployment with the wrapper's podAnnotations,
// where the rotation writes the checksum.
func (l *loop) makeOneDue(t *testing.T) dueSecret {
	t.Helper()
	s, err := e2e.MakeDue(l.dir, 200, func(s secrets.Secret) bool {
		return slices.Contains(s.Consumers, "deployment/gitea") && s.Name != "gitea-admin"
	})
	if err != nil {
		t.Fatal(err)
	}
	return dueSecret{Secret: s, consumer: "gitea"}
}

// botRotation: the bot's rotation PR for the due secret is validated,
// merged and applied: the Secret in the API server holds a new value and
// its consumer's checksum annotation changed.
func (l *loop) botRotation(t *testing.T) {
	ctx := t.Context()
	d := l.due
	before, err := l.kc.CoreV1().Secrets(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the due secret in the API server: %v", err)
	}
	dep, err := l.kc.AppsV1().Deployments(d.Namespace).Get(ctx, d.consumer, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	key := secrets.ChecksumAnnotation(d.Name)
	oldSum := dep.Spec.Template.Annotations[key]

	logs, stop, _ := l.runBot(t)
	prs := l.waitPRs(t, 8*time.Minute, logs, map[string]func(*gitea.PullRequest) bool{
		"rotation": func(pr *gitea.PullRequest) bool {
			return strings.HasPrefix(pr.Head.Ref, "hl-bot/rotate/") && strings.Contains(pr.Title, d.Namespace+"/"+d.Name)
		},
	})
	stop()
	pr := prs["rotation"]
	l.validatePR(t, pr)
	merged, rev := l.merge(t, pr)
	l.waitApplied(t, l.appOf(t, filepath.Dir(d.File)), rev, 5*time.Minute, func() error {
		s, err := l.kc.CoreV1().Secrets(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if reflect.DeepEqual(s.Data, before.Data) {
			return fmt.Errorf("Secret %s/%s still holds its old value", d.Namespace, d.Name)
		}
		return nil
	})
	l.waitApplied(t, l.appOf(t, filepath.Dir(filepath.Dir(d.File))), rev, 5*time.Minute, func() error {
		dep, err := l.kc.AppsV1().Deployments(d.Namespace).Get(ctx, d.consumer, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if sum := dep.Spec.Template.Annotations[key]; sum == "" || sum == oldSum {
			return fmt.Errorf("Deployment %s/%s annotation %s = %q (was %q)", d.Namespace, d.consumer, key, sum, oldSum)
		}
		return nil
	})
	t.Logf("rotation PR #%d: merge to the new value and restart annotation in the API server: %v", pr.Index, time.Since(merged).Round(time.Millisecond))
}

// cert-manager's kinds whose Ready condition Argo CD's health checks read
// (resource_customizations/cert-manager.io): cert-manager writes it once a
// certificate is issued or an issuer registered.
var certManagerKinds = []schema.GroupVersionResource{
	{Group: "cert-manager.io", Version: "v1", Resource: "certificates"},
	{Group: "cert-manager.io", Version: "v1", Resource: "clusterissuers"},
	{Group: "cert-manager.io", Version: "v1", Resource: "issuers"},
}

// readyConditions marks cert-manager's objects Ready, as its controller
// would (part of the status seam).
func (l *loop) readyConditions(ctx context.Context) {
	for _, gvr := range certManagerKinds {
		list, err := l.dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
		if err != nil {
			continue
		}
		for _, o := range list.Items {
			conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
			if len(conds) > 0 {
				continue
			}
			cond := map[string]any{"type": "Ready", "status": "True", "reason": "Ready", "message": "ready (loop test status seam)",
				"lastTransitionTime": time.Now().UTC().Format(time.RFC3339), "observedGeneration": o.GetGeneration()}
			if err := unstructured.SetNestedSlice(o.Object, []any{cond}, "status", "conditions"); err != nil {
				continue
			}
			if o.GetNamespace() == "" {
				_, _ = l.dyn.Resource(gvr).UpdateStatus(ctx, &o, metav1.UpdateOptions{})
			} else {
				_, _ = l.dyn.Resource(gvr).Namespace(o.GetNamespace()).UpdateStatus(ctx, &o, metav1.UpdateOptions{})
			}
		}
	}
}

// cloneURL is the private repository's URL with the forge
// administrator's login (Woodpecker clones with its user's; the bot
// pushes with its own).
func (l *loop) cloneURL(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(l.forge.URL + "/" + l.homelab.Spec.Forge.Owner + "/" + l.homelab.Spec.Forge.Repo + ".git")
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(l.forge.AdminUser, l.forge.AdminToken)
	return u.String()
}

// landCommit lands a change on the default branch the only way its
// protection allows: a branch, a pull request with the validate status, a
// merge. It returns the merge commit.
func (l *loop) landCommit(t *testing.T, branch, msg string, edit func(dir string)) string {
	t.Helper()
	owner, repo := l.homelab.Spec.Forge.Owner, l.homelab.Spec.Forge.Repo
	dir := filepath.Join(t.TempDir(), "clone")
	if out, err := e2e.Git(filepath.Dir(dir), nil, "clone", "-q", l.cloneURL(t), dir); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	if out, err := e2e.Git(dir, nil, "checkout", "-q", "-b", branch); err != nil {
		t.Fatalf("git checkout: %v\n%s", err, out)
	}
	edit(dir)
	sha, err := e2e.CommitAll(dir, msg)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := e2e.Git(dir, nil, "push", "-q", "origin", branch); err != nil {
		t.Fatalf("git push: %v\n%s", err, out)
	}
	pr, _, err := l.gc.CreatePullRequest(owner, repo, gitea.CreatePullRequestOption{
		Head: branch, Base: l.homelab.Spec.Forge.DefaultBranch, Title: msg})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.gc.CreateStatus(owner, repo, sha, gitea.CreateStatusOption{
		State: gitea.StatusSuccess, Context: bootstrap.StatusCheckContext, Description: "set by the loop test"}); err != nil {
		t.Fatal(err)
	}
	_, rev := l.merge(t, pr)
	return rev
}

// brokenLinks breaks one link of the chain at a time, shows that the
// loop's own wait (applied) reports it — so the phases above would fail
// on it — and mends it:
//   - the credential Argo CD pulls with no longer valid at the forge (its
//     reader's password changed in Gitea): the next commit never syncs;
//   - the SOPS files encrypted to a recipient the cluster lacks (hl.yaml's
//     ageRecipients switched to a new key and re-rendered, as a user who
//     rotates the key but forgets the cluster would): the secrets
//     Application cannot decrypt, and the Secret in the API server keeps
//     its value (nothing is pruned);
//   - the bot's pull requests into a branch the validate pipeline does not
//     run for: the pipeline check validatePR starts with refuses it.
func (l *loop) brokenLinks(t *testing.T) {
	ctx := t.Context()
	const bound = 90 * time.Second
	homepage := l.appOf(t, "apps/"+bumpDeployment)

	t.Run("credential", func(t *testing.T) {
		creds, err := l.kc.CoreV1().Secrets("argocd").Get(ctx, "repo-creds", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		owner, repo, reader := l.homelab.Spec.Forge.Owner, l.homelab.Spec.Forge.Repo, string(creds.Data["username"])
		if _, err := l.gc.DeleteCollaborator(owner, repo, reader); err != nil {
			t.Fatalf("take %s's access: %v", reader, err)
		}
		rev := l.landCommit(t, "loop/credential", "Touch the README (credential broken)", func(dir string) {
			appendFile(t, filepath.Join(dir, "README.md"), "\n<!-- loop: credential broken -->\n")
		})
		err = l.applied(ctx, homepage, rev, bound, nil)
		if err == nil {
			t.Fatal("Argo CD synced a commit its credential gives no access to")
		}
		t.Logf("as expected: %v", err)
		read := gitea.AccessModeRead
		if _, err := l.gc.AddCollaborator(owner, repo, reader, gitea.AddCollaboratorOption{Permission: &read}); err != nil {
			t.Fatalf("give %s its access back: %v", reader, err)
		}
		mended := l.landCommit(t, "loop/credential-back", "Touch the README (credential mended)", func(dir string) {
			appendFile(t, filepath.Join(dir, "README.md"), "\n<!-- loop: credential mended -->\n")
		})
		l.waitApplied(t, homepage, mended, 5*time.Minute, nil)
	})

	t.Run("recipient", func(t *testing.T) {
		app := l.appOf(t, filepath.Dir(l.due.File))
		before, err := l.kc.CoreV1().Secrets(l.due.Namespace).Get(ctx, l.due.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var prev string
		rev := l.landCommit(t, "loop/recipient", "Encrypt the secrets to a key the cluster lacks", func(dir string) {
			out, err := e2e.Git(dir, nil, "rev-parse", "HEAD")
			if err != nil {
				t.Fatal(err)
			}
			prev = strings.TrimSpace(out)
			var id bytes.Buffer
			recipient, err := secrets.GenerateIdentity(&id)
			if err != nil {
				t.Fatal(err)
			}
			cfg := filepath.Join(dir, config.FileName)
			data, err := os.ReadFile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := sigyaml.Unmarshal(data, &doc); err != nil {
				t.Fatal(err)
			}
			doc["spec"].(map[string]any)["secrets"].(map[string]any)["ageRecipients"] = []any{recipient}
			if data, err = sigyaml.Marshal(doc); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(cfg, data, 0o644); err != nil {
				t.Fatal(err)
			}
			l.hlRunIn(t, dir, "render")
		})
		err = l.applied(ctx, app, rev, bound, nil)
		if err == nil {
			t.Fatal("Argo CD synced secrets encrypted to a key the cluster does not hold")
		}
		t.Logf("as expected: %v", err)
		after, err := l.kc.CoreV1().Secrets(l.due.Namespace).Get(ctx, l.due.Name, metav1.GetOptions{})
		if err != nil || !reflect.DeepEqual(after.Data, before.Data) {
			t.Fatalf("Secret %s/%s changed or went while its file could not be decrypted: %v", l.due.Namespace, l.due.Name, err)
		}
		fixed := l.landCommit(t, "loop/recipient-back", "Encrypt the secrets to the cluster's key again", func(dir string) {
			if out, err := e2e.Git(dir, nil, "checkout", prev, "--", "."); err != nil {
				t.Fatalf("git checkout %s: %v\n%s", prev, err, out)
			}
		})
		l.waitApplied(t, app, fixed, 5*time.Minute, nil)
	})

	t.Run("pipeline branch", func(t *testing.T) {
		pipeline := filepath.Join(l.dir, ".woodpecker", "validate.yaml")
		base := l.homelab.Spec.Forge.DefaultBranch
		if !whenAccepts(t, pipeline, "pull_request", base) {
			t.Fatalf("the rendered validate pipeline does not run for pull requests into %s", base)
		}
		data, err := os.ReadFile(pipeline)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := sigyaml.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		doc["when"] = []any{map[string]any{"event": "pull_request", "branch": "release"}}
		out, err := sigyaml.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		mutated := filepath.Join(t.TempDir(), "validate.yaml")
		if err := os.WriteFile(mutated, out, 0o644); err != nil {
			t.Fatal(err)
		}
		if whenAccepts(t, mutated, "pull_request", base) {
			t.Fatalf("a pipeline that runs only for pull requests into release was taken to validate the bot's into %s", base)
		}
	})
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
