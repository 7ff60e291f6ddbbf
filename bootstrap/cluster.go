package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"filippo.io/age"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	sigyaml "sigs.k8s.io/yaml"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/kubeclient"
	"hl.dev/hl/secrets"
	"hl.dev/hl/validate"
)

// ClusterOptions configure hl bootstrap cluster.
type ClusterOptions struct {
	// Dir is the rendered repository.
	Dir string
	// Kube is the cluster's API server (an admin's credentials).
	Kube *rest.Config
	// Identities decrypt the repo's secrets; those of them the repo is
	// encrypted for become the sops-age Secret of every namespace that
	// decrypts (Argo CD's hl-secrets plugin, the bot).
	Identities []age.Identity
	// Render renders the repository (its Dir is set from Dir): the chart
	// cache, offline mode and extra mirrors of hl validate.
	Render validate.Options
	// Forge reaches the in-cluster forge's HTTP API once it runs; nil
	// port-forwards to its Service (see PortForward).
	Forge ForgeAccess
	// Ready waits until the workloads of a namespace run (Deployments and
	// StatefulSets with every replica ready); nil uses WaitWorkloads.
	Ready func(ctx context.Context, namespace string) error
	// Forge seeding tunes the hl bootstrap gitea run against the
	// in-cluster forge (bot user name, HTTP client, entropy, clock).
	Seed Options
	// Wait waits until Argo CD reports every Application synced (and,
	// with Healthy, healthy), up to Timeout.
	Wait, Healthy bool
	Timeout       time.Duration
	// DryRun: every apply is a server-side dry run; nothing is created.
	DryRun   bool
	Progress func(StepResult)
}

// ForgeAccess reaches the in-cluster forge.
type ForgeAccess interface {
	// Open returns the forge's base URL and a function that stops
	// reaching it.
	Open(ctx context.Context) (url string, stop func(), err error)
}

// ClusterResult is what hl bootstrap cluster did.
type ClusterResult struct {
	DryRun   bool         `json:"dryRun"`
	Changed  bool         `json:"changed"`
	Steps    []StepResult `json:"steps"`
	Warnings []string     `json:"warnings,omitempty"`
	// Forge is the forge bootstrap's own result, when it ran.
	Forge *Result `json:"forge,omitempty"`
	// NotReady lists, after --wait, what Argo CD has not synced (or made
	// healthy) in time.
	NotReady []string `json:"notReady,omitempty"`
}

// Namespaces that read the age key: Argo CD's hl-secrets plugin
// decrypts the repo's secrets; the bot re-encrypts them when the
// recipients change.
const (
	argocdApp       = "system/argocd"
	argocdNamespace = "argocd"
	botNamespace    = "hl-bot"
	sopsAgeSecret   = "sops-age"
	sopsAgeKey      = "keys.txt"
)

type clusterRunner struct {
	o     ClusterOptions
	h     *config.Homelab
	kube  *kubeclient.Applier
	res   *ClusterResult
	all   []validate.Manifest
	apps  map[string][]validate.Manifest
	env   stepEnv
	forge *Result
}

// Cluster bootstraps a cluster from the rendered repository: namespaces,
// the age key where it is read, Argo CD's CRDs (waited for until
// Established) and Argo CD itself, the in-cluster forge seeded with the
// repo, Argo CD's repository credentials, the AppProjects and the root
// ApplicationSets. Every step applies server-side with field manager hl,
// so a second run changes nothing and a run stopped anywhere completes
// when run again.
func Cluster(ctx context.Context, o ClusterOptions) (*ClusterResult, error) {
	if o.Dir == "" {
		o.Dir = "."
	}
	if o.Timeout == 0 {
		o.Timeout = 15 * time.Minute
	}
	if o.Kube == nil {
		return nil, errors.New("bootstrap cluster: no Kubernetes API")
	}
	r := &clusterRunner{o: o, res: &ClusterResult{DryRun: o.DryRun}}
	r.env = stepEnv{dryRun: o.DryRun, progress: o.Progress, changed: &r.res.Changed, steps: &r.res.Steps}
	doc, _, err := config.Load(filepath.Join(o.Dir, config.FileName))
	if err != nil {
		return nil, fmt.Errorf("%w in %s: %v", ErrNotRendered, o.Dir, err)
	}
	r.h = doc.Homelab
	if r.kube, err = kubeclient.NewApplier(o.Kube, o.Seed.Logger); err != nil {
		return nil, err
	}
	if err := r.render(ctx); err != nil {
		return r.res, err
	}
	for _, s := range r.steps() {
		if err := runStep(ctx, s, r.env); err != nil {
			return r.res, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return r.res, nil
}

// render renders the repository as hl validate does. Findings in what
// this command applies stop it; others are warnings (Argo CD will report
// them once it syncs those apps).
func (r *clusterRunner) render(ctx context.Context) error {
	vo := r.o.Render
	vo.Dir = r.o.Dir
	rep, all, err := validate.Render(ctx, vo)
	if err != nil {
		return err
	}
	r.all = all
	r.apps = map[string][]validate.Manifest{}
	for _, m := range all {
		r.apps[m.App] = append(r.apps[m.App], m)
	}
	var stop []string
	for _, f := range rep.Findings {
		if f.Severity != validate.SeverityError {
			continue
		}
		// What cannot be rendered or applied stops the bootstrap; a
		// policy finding (a missing resource request) does not: Argo CD
		// would apply it all the same, and hl validate reports it.
		if r.applied(f.File) && renderPolicy[f.Policy] {
			stop = append(stop, f.String())
		} else {
			r.res.Warnings = append(r.res.Warnings, f.String())
		}
	}
	if len(stop) > 0 {
		return fmt.Errorf("the repo does not render what bootstrap applies:\n  %s", strings.Join(stop, "\n  "))
	}
	if len(r.apps["bootstrap"]) == 0 || len(r.apps[argocdApp]) == 0 {
		return fmt.Errorf("%w: %s has no bootstrap/ or system/argocd/ app", ErrNotRendered, r.o.Dir)
	}
	return nil
}

// renderPolicy are the findings that mean an object cannot be rendered
// or would be refused by the API server.
var renderPolicy = map[string]bool{
	validate.PolicyYAMLSyntax: true, validate.PolicySchema: true, validate.PolicyUnknownKind: true,
	validate.PolicyChartMissing: true, validate.PolicyKustomizeBuild: true, validate.PolicyHelmRender: true,
	validate.PolicyDuplicateResource: true,
}

// applied reports whether a repo file is one this command applies.
func (r *clusterRunner) applied(file string) bool {
	for _, p := range []string{"bootstrap/", "platform/gitea/", "system/argocd/"} {
		if strings.HasPrefix(file, p) {
			return true
		}
	}
	return false
}

func (r *clusterRunner) steps() []step {
	// bootstrap/ holds the namespace, the AppProjects and the root
	// ApplicationSets; Argo CD itself is system/argocd, installed from
	// there now and managed from there by Argo CD afterwards.
	var ns, argocd, root []validate.Manifest
	for _, m := range append(slices.Clone(r.apps["bootstrap"]), r.apps[argocdApp]...) {
		switch kindOf(m.Object) {
		case "/Namespace":
			ns = append(ns, m)
		case "apiextensions.k8s.io/CustomResourceDefinition":
			// Every component's CRDs go in below.
		case "argoproj.io/AppProject", "argoproj.io/ApplicationSet", "argoproj.io/Application":
			root = append(root, m)
		default:
			if !m.SOPS {
				argocd = append(argocd, m)
			}
		}
	}
	return []step{
		r.applyStep("namespaces", r.namespaces(ns), nil),
		r.applyStep("sops-age", nil, r.sopsAge),
		r.crdStep(r.crds()),
		r.applyStep("argocd", argocd, nil),
		r.forgeStep(),
		r.applyStep("argocd-secrets", nil, r.argocdSecrets),
		r.applyStep("root", root, nil),
		r.waitStep(),
	}
}

// crds are the CustomResourceDefinitions of every component, not only
// Argo CD's: all of them are in place and served before Argo CD starts.
// A CRD Argo CD creates in the same sync as other objects can stay out of
// its cluster cache (argoproj/argo-cd#21079: the Application then waits
// forever "for healthy state of" the CRD and stays OutOfSync; the loop
// test hit it with cert-manager's and MetalLB's chart-template CRDs), and
// a custom resource of a later sync wave waits for its CRD anyway. Argo CD
// takes the objects over on its first sync (server-side apply, forced).
func (r *clusterRunner) crds() []validate.Manifest {
	byName := map[string]validate.Manifest{}
	for _, m := range r.all {
		if !m.SOPS && kindOf(m.Object) == "apiextensions.k8s.io/CustomResourceDefinition" {
			byName[nameOf(m.Object)] = m
		}
	}
	out := make([]validate.Manifest, 0, len(byName))
	for _, n := range slices.Sorted(maps.Keys(byName)) {
		out = append(out, byName[n])
	}
	return out
}

// kindOf is group/kind of a manifest.
func kindOf(obj map[string]any) string {
	gv, _ := obj["apiVersion"].(string)
	k, _ := obj["kind"].(string)
	g := ""
	if i := strings.IndexByte(gv, '/'); i >= 0 {
		g = gv[:i]
	}
	return g + "/" + k
}

// namespaces adds the namespaces the age key goes into and the forge's
// to those the bootstrap app renders.
func (r *clusterRunner) namespaces(rendered []validate.Manifest) []validate.Manifest {
	have := map[string]bool{}
	out := slices.Clone(rendered)
	for _, m := range rendered {
		have[nameOf(m.Object)] = true
	}
	for _, n := range r.decryptingNamespaces() {
		if !have[n] {
			have[n] = true
			out = append(out, validate.Manifest{App: "bootstrap", Object: map[string]any{
				"apiVersion": "v1", "kind": "Namespace",
				"metadata": map[string]any{"name": n, "labels": map[string]any{
					"pod-security.kubernetes.io/enforce": "restricted", "app.kubernetes.io/managed-by": "hl"}},
			}})
		}
	}
	return out
}

func nameOf(obj map[string]any) string {
	md, _ := obj["metadata"].(map[string]any)
	n, _ := md["name"].(string)
	return n
}

// decryptingNamespaces are the namespaces that get the age key.
func (r *clusterRunner) decryptingNamespaces() []string {
	out := []string{argocdNamespace}
	if r.h.Enabled("hl-bot") {
		out = append(out, botNamespace)
	}
	return out
}

// sopsAge is the sops-age Secret of every decrypting namespace: only the
// identities the repo's secrets are encrypted for (an identity of another
// repo given by $SOPS_AGE_KEY does not go into the cluster).
func (r *clusterRunner) sopsAge() ([]validate.Manifest, error) {
	want := r.h.Spec.Secrets.AgeRecipients
	var lines []string
	for _, id := range r.o.Identities {
		x, ok := id.(*age.X25519Identity)
		if ok && slices.Contains(want, x.Recipient().String()) {
			lines = append(lines, x.String())
		}
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("none of the age identities given is one of spec.secrets.ageRecipients (%s): the cluster could not decrypt the repo", strings.Join(want, ", "))
	}
	sort.Strings(lines)
	key := "# age identity of " + r.h.Metadata.Name + ", put here by hl bootstrap cluster\n" + strings.Join(lines, "\n") + "\n"
	var out []validate.Manifest
	for _, ns := range r.decryptingNamespaces() {
		out = append(out, validate.Manifest{App: "bootstrap", Object: map[string]any{
			"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
			"metadata": map[string]any{"name": sopsAgeSecret, "namespace": ns,
				"labels": map[string]any{"app.kubernetes.io/managed-by": "hl"}},
			"stringData": map[string]any{sopsAgeKey: key},
		}})
	}
	return out, nil
}

// needed reports whether an object must be applied now: everything but
// objects of kinds another app brings (Argo CD's or Gitea's
// ServiceMonitors: the monitoring app installs their CRD; Gitea's
// IngressRouteTCP: the traefik app's), which Argo CD applies once that
// app has synced.
func (r *clusterRunner) needed(m validate.Manifest) bool {
	return m.App == "bootstrap" || !laterKinds[kindOf(m.Object)]
}

// laterKinds are the kinds needed leaves to Argo CD, by group/Kind.
var laterKinds = map[string]bool{
	"monitoring.coreos.com/ServiceMonitor": true,
	"monitoring.coreos.com/PrometheusRule": true,
	"traefik.io/IngressRouteTCP":           true,
	"traefik.io/Middleware":                true,
}

// decrypted are the Secrets of one secrets/ folder, decrypted.
func (r *clusterRunner) decrypted(rel string) ([]validate.Manifest, error) {
	dir := filepath.Join(r.o.Dir, filepath.FromSlash(rel))
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var buf bytes.Buffer
	if err := secrets.Manifests(dir, r.o.Identities, &buf); err != nil {
		return nil, err
	}
	var out []validate.Manifest
	for _, doc := range bytes.Split(buf.Bytes(), []byte("\n---\n")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var obj map[string]any
		if err := sigyaml.Unmarshal(doc, &obj); err != nil {
			return nil, fmt.Errorf("%s: %w", rel, err)
		}
		out = append(out, validate.Manifest{App: rel, Object: obj})
	}
	return out, nil
}

func (r *clusterRunner) argocdSecrets() ([]validate.Manifest, error) {
	return r.decrypted(path.Join("system", "argocd", "secrets"))
}

// applyStep applies a fixed list of objects, or the list objs returns
// (computed when the step runs: files an earlier step wrote).
func (r *clusterRunner) applyStep(name string, fixed []validate.Manifest, objs func() ([]validate.Manifest, error)) step {
	list := func() ([]validate.Manifest, error) {
		if objs != nil {
			return objs()
		}
		return fixed, nil
	}
	return step{
		name: name,
		check: func(ctx context.Context) (bool, string, error) {
			ms, err := list()
			if err != nil {
				return false, "", err
			}
			return r.plan(ctx, ms)
		},
		apply: func(ctx context.Context) (Status, string, error) {
			ms, err := list()
			if err != nil {
				return StatusFailed, "", err
			}
			return r.apply(ctx, ms)
		},
	}
}

// plan dry-runs every object: done when none would change.
func (r *clusterRunner) plan(ctx context.Context, ms []validate.Manifest) (bool, string, error) {
	counts := map[kubeclient.Outcome]int{}
	later := 0
	for _, m := range ms {
		out, err := r.kube.Apply(ctx, m.Object, true)
		if err != nil {
			// The namespace or the CRD an object needs may come from this
			// step or an earlier one that has not run (in a dry run, never
			// will): the object is to be created; applying says the rest.
			if isNoMatch(err) && !r.needed(m) {
				continue // left to Argo CD, as apply does
			}
			if apierrors.IsNotFound(err) || isNoMatch(err) {
				later++
				continue
			}
			return false, "", err
		}
		counts[out]++
	}
	if counts[kubeclient.Created]+counts[kubeclient.Updated]+later == 0 {
		return true, fmt.Sprintf("%d objects in place", len(ms)), nil
	}
	detail := fmt.Sprintf("%d to create, %d to update, %d in place", counts[kubeclient.Created]+later, counts[kubeclient.Updated], counts[kubeclient.Unchanged])
	return false, detail, nil
}

func isNoMatch(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if meta.IsNoMatchError(e) {
			return true
		}
	}
	return false
}

func (r *clusterRunner) apply(ctx context.Context, ms []validate.Manifest) (Status, string, error) {
	counts := map[kubeclient.Outcome]int{}
	for _, m := range ms {
		out, err := r.kube.Apply(ctx, m.Object, false)
		if err != nil && isNoMatch(err) && !r.needed(m) {
			// An app's object of a kind whose CRD another app installs
			// (the forge's ServiceMonitor): Argo CD applies it once that
			// app has synced.
			r.res.Warnings = append(r.res.Warnings, fmt.Sprintf("%s %s of %s left to Argo CD: its kind is not served yet", kindOf(m.Object), nameOf(m.Object), m.App))
			continue
		}
		if err != nil {
			return StatusFailed, "", err
		}
		counts[out]++
	}
	st := StatusUpdated
	if counts[kubeclient.Created] > 0 && counts[kubeclient.Updated] == 0 {
		st = StatusCreated
	}
	return st, fmt.Sprintf("%d created, %d updated, %d in place", counts[kubeclient.Created], counts[kubeclient.Updated], counts[kubeclient.Unchanged]), nil
}

// crdStep applies the CRDs and waits until the API server serves them.
func (r *clusterRunner) crdStep(crds []validate.Manifest) step {
	s := r.applyStep("crds", crds, nil)
	inner := s.apply
	names := make([]string, 0, len(crds))
	for _, c := range crds {
		names = append(names, nameOf(c.Object))
	}
	s.apply = func(ctx context.Context) (Status, string, error) {
		st, detail, err := inner(ctx)
		if err != nil {
			return st, detail, err
		}
		if err := r.kube.WaitEstablished(ctx, names, 2*time.Minute); err != nil {
			return StatusFailed, detail, err
		}
		return st, detail + "; established", nil
	}
	check := s.check
	s.check = func(ctx context.Context) (bool, string, error) {
		done, detail, err := check(ctx)
		if done && err == nil && !r.o.DryRun {
			// In place but maybe not served yet (a run stopped right
			// after applying them).
			if werr := r.kube.WaitEstablished(ctx, names, 2*time.Minute); werr != nil {
				return false, detail, werr
			}
		}
		return done, detail, err
	}
	return s
}

// gvk of a manifest.
func gvk(obj map[string]any) schema.GroupVersionKind {
	u := unstructured.Unstructured{Object: obj}
	return u.GroupVersionKind()
}
