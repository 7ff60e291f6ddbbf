package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	sigyaml "sigs.k8s.io/yaml"

	"hl.dev/hl/generator"
	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/gitea/testserver"
	kubets "hl.dev/hl/internal/kube/testserver"
	"hl.dev/hl/internal/testcharts"
	"hl.dev/hl/secrets"
	"hl.dev/hl/validate"
)

// The seams of these tests, where a real cluster would run pods:
//
//   - Ready: the in-cluster Gitea's pods are never scheduled (no kubelet),
//     so waiting for them is replaced by a function that returns at once.
//   - Forge: the in-cluster Gitea is the Gitea test server, reached at its
//     own URL instead of through a port-forward; its site administrator is
//     made from the rendered gitea-admin Secret (name and password), as the
//     Gitea chart does at start-up.
//   - Charts: the catalog's charts come from internal/testcharts — the real
//     cert-manager and external-dns charts, content stand-ins for argo-cd
//     (Argo CD's own install manifests mapped through the values hl sets)
//     and gitea, empty stand-ins for the rest.
//
// Everything else is real: the API server (kube-apiserver + etcd from their
// modules), server-side apply, CRDs becoming Established, Gitea's API and
// git push.

type fixedForge string

func (f fixedForge) Open(context.Context) (string, func(), error) { return string(f), func() {}, nil }

// clusterFixture renders a config for a cluster bootstrap: a fresh forge
// owner in the shared Gitea, the chart cache filled.
type clusterFixture struct {
	dir, cache string
	gitea      *testserver.Server
	owner, bot string
	kube       *kubets.Server
}

func newClusterFixture(t *testing.T, configPath string, configData []byte) *clusterFixture {
	t.Helper()
	f := &clusterFixture{gitea: testserver.ForTest(t), kube: kubets.New(t, kubets.Options{})}
	f.owner, f.bot = f.gitea.UniqueName("lab"), f.gitea.UniqueName("bot")
	f.dir = t.TempDir()
	if _, err := generator.Render(t.Context(), generator.Options{
		ConfigPath: configPath, ConfigData: configData, OutDir: f.dir, Identities: identities(t),
		Rand: rand.NewChaCha8([32]byte{7}), Now: func() time.Time { return testNow },
	}); err != nil {
		t.Fatal(err)
	}
	f.cache = t.TempDir()
	doc, _, err := config.Load(filepath.Join(f.dir, config.FileName))
	if err != nil {
		t.Fatal(err)
	}
	testcharts.Catalog(t).Cache(t, f.cache, doc.Homelab.Spec.Mirrors.Charts...)
	// The Gitea chart creates its administrator from gitea-admin.
	var buf bytes.Buffer
	if err := secrets.Manifests(filepath.Join(f.dir, "platform", "gitea", "secrets"), identities(t), &buf); err != nil {
		t.Fatal(err)
	}
	var ms []validate.Manifest
	for _, doc := range strings.Split(buf.String(), "\n---\n") {
		ms = append(ms, validate.Manifest{Object: yamlMap(t, doc)})
	}
	user, pass := adminCredentials(ms)
	if err := f.gitea.CreateSiteAdmin(t.Context(), user, pass); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	return f
}

func (f *clusterFixture) options(t *testing.T) ClusterOptions {
	return ClusterOptions{
		Dir: f.dir, Kube: f.kube.RESTConfig(), Identities: identities(t),
		Render: validate.Options{CacheDir: f.cache, Offline: true},
		Forge:  fixedForge(f.gitea.URL),
		Ready:  func(context.Context, string) error { return nil },
		Seed:   Options{Owner: f.owner, BotUser: f.bot, Now: func() time.Time { return testNow }},
	}
}

var (
	gvkCRD      = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	gvrProjects = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "appprojects"}
	gvrAppSets  = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applicationsets"}
)

// TestBootstrapCluster bootstraps the control-plane harness from what
// `hl init --defaults` renders and from the full fixture: every object it
// should make is there, and a second run changes nothing, not even a
// resourceVersion.
func TestBootstrapCluster(t *testing.T) {
	for _, tc := range []struct {
		name string
		path string
		data []byte
	}{
		{"defaults", "example.yaml", config.Example()},
		{"full", fullConfig, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newClusterFixture(t, tc.path, tc.data)
			res, err := Cluster(t.Context(), f.options(t))
			if err != nil {
				t.Fatalf("bootstrap cluster: %v\n%+v", err, res)
			}
			for _, s := range res.Steps {
				t.Logf("%-15s %-9s %s", s.Name, s.Status, s.Detail)
			}
			requireBootstrapped(t, f)
			if res.Forge == nil || res.Forge.Owner != f.owner {
				t.Errorf("forge result %+v", res.Forge)
			}

			before := snapshot(t, f)
			res, err = Cluster(t.Context(), f.options(t))
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range res.Steps {
				if s.Status != StatusUnchanged && s.Status != StatusSkipped {
					t.Errorf("second run: step %s %s (%s)", s.Name, s.Status, s.Detail)
				}
			}
			if res.Forge != nil {
				for _, s := range res.Forge.Steps {
					if s.Status != StatusUnchanged && s.Status != StatusSkipped {
						t.Errorf("second run: forge step %s %s (%s)", s.Name, s.Status, s.Detail)
					}
				}
			}
			if res.Changed {
				t.Error("second run reports a change")
			}
			requireSameVersions(t, before, snapshot(t, f))
		})
	}
}

// requireBootstrapped checks what a completed `hl bootstrap cluster` of
// f leaves: the namespaces, sops-age only where something decrypts, every
// rendered CRD Established, Argo CD's workloads and Services, the
// AppProjects, the root ApplicationSets, Argo CD's repository
// credentials, and the render pushed to the forge.
func requireBootstrapped(t *testing.T, f *clusterFixture) {
	t.Helper()
	cs := kubernetes.NewForConfigOrDie(f.kube.RESTConfig())
	dyn := dynamic.NewForConfigOrDie(f.kube.RESTConfig())
	ctx := t.Context()
	for _, ns := range []string{"argocd", "hl-bot", "gitea"} {
		if _, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
			t.Errorf("namespace %s: %v", ns, err)
		}
	}
	want := identities(t)[0].(interface{ String() string }).String()
	for _, ns := range []string{"argocd", "hl-bot"} {
		s, err := cs.CoreV1().Secrets(ns).Get(ctx, "sops-age", metav1.GetOptions{})
		if err != nil || !strings.Contains(string(s.Data["keys.txt"]), want) {
			t.Errorf("sops-age in %s: %v (has the identity: %v)", ns, err, err == nil && strings.Contains(string(s.Data["keys.txt"]), want))
		}
	}
	if _, err := cs.CoreV1().Secrets("gitea").Get(ctx, "sops-age", metav1.GetOptions{}); err == nil {
		t.Error("the age key went into gitea, which decrypts nothing")
	}
	// Every component's CRDs, not only Argo CD's, are served
	// before Argo CD starts (argoproj/argo-cd#21079).
	crds := renderedCRDs(t, f)
	for _, must := range []string{"applications.argoproj.io", "certificates.cert-manager.io", "ipaddresspools.metallb.io"} {
		if !slices.Contains(crds, must) {
			t.Errorf("the render has no CRD %s: the check below is stale (%v)", must, crds)
		}
	}
	for _, crd := range crds {
		u, err := dyn.Resource(gvkCRD).Get(ctx, crd, metav1.GetOptions{})
		if err != nil || !established(u) {
			t.Errorf("CRD %s not established: %v", crd, err)
		}
	}
	for _, d := range []string{"argocd-server", "argocd-repo-server", "argocd-applicationset-controller", "argocd-redis"} {
		if _, err := cs.AppsV1().Deployments("argocd").Get(ctx, d, metav1.GetOptions{}); err != nil {
			t.Errorf("deployment %s: %v", d, err)
		}
		if _, err := cs.CoreV1().Services("argocd").Get(ctx, d, metav1.GetOptions{}); err != nil {
			t.Errorf("service %s: %v", d, err)
		}
	}
	if _, err := cs.AppsV1().StatefulSets("argocd").Get(ctx, "argocd-application-controller", metav1.GetOptions{}); err != nil {
		t.Errorf("application controller: %v", err)
	}
	for _, p := range []string{"system", "platform", "apps"} {
		if _, err := dyn.Resource(gvrProjects).Namespace("argocd").Get(ctx, p, metav1.GetOptions{}); err != nil {
			t.Errorf("AppProject %s: %v", p, err)
		}
	}
	for _, a := range []string{"components", "secrets"} {
		if _, err := dyn.Resource(gvrAppSets).Namespace("argocd").Get(ctx, a, metav1.GetOptions{}); err != nil {
			t.Errorf("ApplicationSet %s: %v", a, err)
		}
	}
	rc, err := cs.CoreV1().Secrets("argocd").Get(ctx, "repo-creds", metav1.GetOptions{})
	if err != nil || rc.Labels["argocd.argoproj.io/secret-type"] != "repository" || string(rc.Data["url"]) != "http://git.home.example.com:3000/homelab/cluster.git" {
		t.Errorf("Argo CD's repository credentials: %v %v", err, rc)
	}
	// The forge was seeded: the repo holds the render.
	admin, _ := gitea.NewClient(f.gitea.URL, gitea.SetToken(f.gitea.AdminToken), gitea.SetGiteaVersion(""))
	if _, _, err := admin.GetFile(f.owner, "cluster", "main", "bootstrap/root.yaml"); err != nil {
		t.Errorf("the repo was not pushed: %v", err)
	}
}

// requireSameVersions fails for an object whose resourceVersion changed,
// or one made or deleted, between two snapshots.
func requireSameVersions(t *testing.T, before, after map[string]string) {
	t.Helper()
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: resourceVersion %s → %s", k, v, after[k])
		}
	}
	if len(after) != len(before) {
		t.Errorf("%d objects before, %d after", len(before), len(after))
	}
}

// snapshot maps every object bootstrap made to its resourceVersion.
func snapshot(t *testing.T, f *clusterFixture) map[string]string {
	t.Helper()
	dyn := dynamic.NewForConfigOrDie(f.kube.RESTConfig())
	out := map[string]string{}
	for _, r := range []struct {
		gvr schema.GroupVersionResource
		ns  []string
	}{
		{schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, nil},
		{gvkCRD, nil},
		{schema.GroupVersionResource{Version: "v1", Resource: "secrets"}, []string{"argocd", "hl-bot", "gitea"}},
		{schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, []string{"argocd", "gitea"}},
		{schema.GroupVersionResource{Version: "v1", Resource: "services"}, []string{"argocd", "gitea"}},
		{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, []string{"argocd", "gitea"}},
		{gvrProjects, []string{"argocd"}},
		{gvrAppSets, []string{"argocd"}},
	} {
		nss := r.ns
		if nss == nil {
			nss = []string{""}
		}
		for _, ns := range nss {
			l, err := dyn.Resource(r.gvr).Namespace(ns).List(t.Context(), metav1.ListOptions{})
			if apierrors.IsNotFound(err) {
				continue // a kind not served yet (Argo CD's CRDs on a fresh cluster)
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range l.Items {
				out[r.gvr.Resource+"/"+ns+"/"+it.GetName()] = it.GetResourceVersion()
			}
		}
	}
	return out
}

// A run stopped right after any step completes on the next run.
func TestBootstrapClusterResumes(t *testing.T) {
	names := []string{"namespaces", "sops-age", "crds", "argocd", "forge", "argocd-secrets", "root"}
	for _, stopAfter := range names {
		t.Run(stopAfter, func(t *testing.T) {
			f := newClusterFixture(t, fullConfig, nil)
			ctx, cancel := context.WithCancel(t.Context())
			o := f.options(t)
			o.Progress = func(s StepResult) {
				if s.Name == stopAfter && s.Status != StatusRunning {
					cancel() // the process dies here
				}
			}
			res, err := Cluster(ctx, o)
			if err == nil && stopAfter != "root" {
				t.Fatalf("the interrupted run went on: %+v", res)
			}
			if !errors.Is(err, context.Canceled) && err != nil {
				t.Fatalf("interrupted run: %v", err)
			}
			res, err = Cluster(t.Context(), f.options(t))
			if err != nil {
				t.Fatalf("run after stopping after %s: %v", stopAfter, err)
			}
			// Everything up to the stop is in place; what follows is made.
			i := slices.Index(names, stopAfter)
			for _, s := range res.Steps {
				j := slices.Index(names, s.Name)
				switch {
				case j < 0:
				case j <= i && s.Status != StatusUnchanged:
					t.Errorf("step %s before the stop: %s, want unchanged", s.Name, s.Status)
				case j > i && s.Status == StatusUnchanged:
					t.Errorf("step %s after the stop: unchanged, want it done now", s.Name)
				}
			}
			res, err = Cluster(t.Context(), f.options(t))
			if err != nil || res.Changed {
				t.Fatalf("third run: %v, changed %v", err, res != nil && res.Changed)
			}
		})
	}
}

// --dry-run asks the API server about everything and creates nothing, on
// a fresh cluster: no namespace, no CRD, no repository in the forge.
func TestBootstrapClusterDryRun(t *testing.T) {
	f := newClusterFixture(t, fullConfig, nil)
	o := f.options(t)
	o.DryRun = true
	before := snapshot(t, f)
	res, err := Cluster(t.Context(), o)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	planned := 0
	for _, s := range res.Steps {
		if s.Status == StatusPlanned {
			planned++
		}
		if s.Status == StatusCreated || s.Status == StatusUpdated {
			t.Errorf("dry run step %s: %s", s.Name, s.Status)
		}
	}
	if planned < 5 {
		t.Errorf("only %d steps planned: %+v", planned, res.Steps)
	}
	after := snapshot(t, f)
	if len(after) != len(before) {
		for k := range after {
			if _, ok := before[k]; !ok {
				t.Errorf("dry run created %s", k)
			}
		}
	}
	admin, _ := gitea.NewClient(f.gitea.URL, gitea.SetToken(f.gitea.AdminToken), gitea.SetGiteaVersion(""))
	if _, resp, err := admin.GetRepo(f.owner, "cluster"); err == nil || statusOf(resp) != 404 {
		t.Errorf("dry run made the repository: %v", err)
	}
}

func yamlMap(t *testing.T, doc string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := sigyaml.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// renderedCRDs are the names of the CRDs the fixture's repo renders.
func renderedCRDs(t *testing.T, f *clusterFixture) []string {
	t.Helper()
	_, ms, err := validate.Render(t.Context(), validate.Options{Dir: f.dir, CacheDir: f.cache, Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range ms {
		if kindOf(m.Object) == "apiextensions.k8s.io/CustomResourceDefinition" && !slices.Contains(out, nameOf(m.Object)) {
			out = append(out, nameOf(m.Object))
		}
	}
	return out
}

func established(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}
