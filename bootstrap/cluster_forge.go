package bootstrap

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/kubeclient"
	"hl.dev/hl/validate"
)

// The in-cluster forge's HTTP Service (the gitea chart names it
// <release>-http) and the short-lived token hl makes with the
// administrator credentials it generated, and deletes when done.
const (
	forgeService   = "gitea-http"
	forgePort      = 3000
	adminTokenName = "hl-bootstrap-cluster"
)

// forgeStep installs the in-cluster Gitea before Argo CD needs it — its
// rendered chart and its decrypted secrets — waits until it runs, reaches
// it (a port-forward) and seeds it with hl bootstrap gitea, signed in
// with the administrator credentials the generator made for it (a token
// made for this run and deleted after it; never a hand-made one).
func (r *clusterRunner) forgeStep() step {
	in, ns := r.h.InClusterForge()
	if !in {
		return step{name: "forge", skip: fmt.Sprintf("spec.forge (%s) is not this cluster's Gitea: seed it with hl bootstrap gitea", r.h.Spec.Forge.URL)}
	}
	objs := func() ([]validate.Manifest, error) {
		// Its namespace first: the app's own when it renders one (with its
		// Pod Security labels), else a bare one as Argo CD would create.
		var first, rest []validate.Manifest
		for _, m := range r.apps[path.Join("platform", config.ForgeComponent)] {
			switch {
			case m.SOPS:
			case kindOf(m.Object) == "/Namespace":
				first = append(first, m)
			default:
				rest = append(rest, m)
			}
		}
		if len(first) == 0 {
			first = []validate.Manifest{{App: "platform/gitea", Object: map[string]any{
				"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}}
		}
		sec, err := r.decrypted(path.Join("platform", config.ForgeComponent, "secrets"))
		return append(append(first, rest...), sec...), err
	}
	return step{
		name: "forge",
		check: func(ctx context.Context) (bool, string, error) {
			ms, err := objs()
			if err != nil {
				return false, "", err
			}
			done, detail, err := r.plan(ctx, ms)
			if err != nil || !done {
				return false, "gitea: " + detail, err
			}
			res, err := r.seed(ctx, ns, true)
			if err != nil {
				return false, "", err
			}
			for _, s := range res.Steps {
				if s.Status == StatusPlanned {
					return false, "gitea running; to do: " + s.Name + " (" + s.Detail + ")", nil
				}
			}
			return true, "gitea running and seeded: " + res.URL + "/" + res.Owner + "/" + res.Repo, nil
		},
		apply: func(ctx context.Context) (Status, string, error) {
			ms, err := objs()
			if err != nil {
				return StatusFailed, "", err
			}
			if _, _, err := r.apply(ctx, ms); err != nil {
				return StatusFailed, "", err
			}
			res, err := r.seed(ctx, ns, false)
			if err != nil {
				return StatusFailed, "", err
			}
			return StatusUpdated, "gitea seeded: " + res.Owner + "/" + res.Repo, nil
		},
	}
}

// seed waits for the forge, reaches it and runs hl bootstrap gitea.
func (r *clusterRunner) seed(ctx context.Context, ns string, dryRun bool) (*Result, error) {
	ready := r.o.Ready
	if ready == nil {
		ready = WaitWorkloads(kubeclient.Retrying(r.o.Kube, r.o.Seed.Logger), 10*time.Minute)
	}
	if err := ready(ctx, ns); err != nil {
		return nil, fmt.Errorf("gitea is not running: %w", err)
	}
	access := r.o.Forge
	if access == nil {
		access = &PortForward{Kube: r.o.Kube, Namespace: ns, Service: forgeService, Port: forgePort}
	}
	base, stop, err := access.Open(ctx)
	if err != nil {
		return nil, fmt.Errorf("reach gitea: %w", err)
	}
	defer stop()
	sec, err := r.decrypted(path.Join("platform", config.ForgeComponent, "secrets"))
	if err != nil {
		return nil, err
	}
	user, pass := adminCredentials(sec)
	if user == "" || pass == "" {
		return nil, errors.New("platform/gitea/secrets holds no gitea-admin username and password")
	}
	client := r.o.Seed.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 60 * time.Second}
	}
	token, err := adminToken(ctx, client, base, user, pass)
	if err != nil {
		return nil, err
	}
	defer deleteAdminToken(context.WithoutCancel(ctx), client, base, user, pass)
	o := r.o.Seed
	o.Dir, o.URL, o.Token, o.Identities, o.DryRun = r.o.Dir, base, token, r.o.Identities, dryRun
	o.Progress = func(s StepResult) {
		if r.o.Progress != nil && !dryRun {
			s.Name = "forge/" + s.Name
			r.o.Progress(s)
		}
	}
	res, err := Run(ctx, o)
	if !dryRun {
		r.res.Forge = res
	}
	return res, err
}

// adminCredentials reads the gitea-admin Secret among the decrypted ones.
func adminCredentials(ms []validate.Manifest) (user, pass string) {
	for _, m := range ms {
		if nameOf(m.Object) != "gitea-admin" {
			continue
		}
		u := unstructured.Unstructured{Object: m.Object}
		sd, _, _ := unstructured.NestedStringMap(u.Object, "stringData")
		return sd["username"], sd["password"]
	}
	return "", ""
}

// adminToken makes a fresh token of the administrator (one of that name
// left by an earlier run is deleted first: Gitea shows a token once).
func adminToken(ctx context.Context, c *http.Client, base, user, pass string) (string, error) {
	deleteAdminToken(ctx, c, base, user, pass)
	body, _ := json.Marshal(map[string]any{"name": adminTokenName, "scopes": []string{"all"}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/users/"+url.PathEscape(user)+"/tokens", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(user, pass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("gitea admin token: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("gitea admin token: POST /api/v1/users/%s/tokens: HTTP %d", user, resp.StatusCode)
	}
	var t struct {
		SHA1 string `json:"sha1"`
	}
	if err := json.Unmarshal(b, &t); err != nil || t.SHA1 == "" {
		return "", errors.New("gitea admin token: no token in the answer")
	}
	return t.SHA1, nil
}

func deleteAdminToken(ctx context.Context, c *http.Client, base, user, pass string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, base+"/api/v1/users/"+url.PathEscape(user)+"/tokens/"+adminTokenName, nil)
	if err != nil {
		return
	}
	req.SetBasicAuth(user, pass)
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
	}
}

// WaitWorkloads waits until every Deployment and StatefulSet of a
// namespace has all its replicas ready.
func WaitWorkloads(cfg *rest.Config, timeout time.Duration) func(ctx context.Context, namespace string) error {
	return func(ctx context.Context, namespace string) error {
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return err
		}
		deadline := time.Now().Add(timeout)
		for {
			waiting, err := notReady(ctx, cs, namespace)
			if err != nil {
				return err
			}
			if len(waiting) == 0 {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("not ready after %s: %s", timeout, strings.Join(waiting, ", "))
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(2 * time.Second):
			}
		}
	}
}

func notReady(ctx context.Context, cs kubernetes.Interface, ns string) ([]string, error) {
	var out []string
	deps, err := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, d := range deps.Items {
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		if d.Status.ReadyReplicas < want {
			out = append(out, "deployment/"+d.Name)
		}
	}
	sts, err := cs.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, s := range sts.Items {
		want := int32(1)
		if s.Spec.Replicas != nil {
			want = *s.Spec.Replicas
		}
		if s.Status.ReadyReplicas < want {
			out = append(out, "statefulset/"+s.Name)
		}
	}
	if len(deps.Items)+len(sts.Items) == 0 {
		out = append(out, "no workloads yet")
	}
	return out, nil
}

// PortForward reaches a Service's port through a ready pod behind it, the
// way kubectl port-forward does, on a free loopback port.
type PortForward struct {
	Kube               *rest.Config
	Namespace, Service string
	Port               int
}

// Open starts forwarding and returns the local base URL.
func (p *PortForward) Open(ctx context.Context) (string, func(), error) {
	cs, err := kubernetes.NewForConfig(p.Kube)
	if err != nil {
		return "", nil, err
	}
	svc, err := cs.CoreV1().Services(p.Namespace).Get(ctx, p.Service, metav1.GetOptions{})
	if err != nil {
		return "", nil, err
	}
	pods, err := cs.CoreV1().Pods(p.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(svc.Spec.Selector).String()})
	if err != nil {
		return "", nil, err
	}
	var pod string
	for _, po := range pods.Items {
		for _, c := range po.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				pod = po.Name
			}
		}
	}
	if pod == "" {
		return "", nil, fmt.Errorf("no ready pod behind service %s/%s", p.Namespace, p.Service)
	}
	transport, upgrader, err := spdy.RoundTripperFor(p.Kube)
	if err != nil {
		return "", nil, err
	}
	u := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(p.Namespace).Name(pod).SubResource("portforward").URL()
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)
	stop, ready := make(chan struct{}), make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", p.Port)}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		return "", nil, err
	}
	errc := make(chan error, 1)
	go func() { errc <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-errc:
		return "", nil, fmt.Errorf("port-forward to %s/%s: %w", p.Namespace, pod, err)
	case <-ctx.Done():
		close(stop)
		return "", nil, ctx.Err()
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) == 0 {
		close(stop)
		return "", nil, fmt.Errorf("port-forward: no local port: %v", err)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", ports[0].Local), func() { close(stop) }, nil
}

// appGVR is Argo CD's Application resource.
var appGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}

// waitStep waits until Argo CD has an Application for every app folder
// and reports each synced (and healthy, when asked).
func (r *clusterRunner) waitStep() step {
	if !r.o.Wait {
		return step{name: "sync", skip: "not waiting (--wait)"}
	}
	if r.o.DryRun {
		return step{name: "sync", skip: "dry run"}
	}
	want := r.expectedApps()
	check := func(ctx context.Context) (bool, []string, error) {
		list, err := r.kube.Dynamic().Resource(appGVR).Namespace(argocdNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil, err
		}
		seen := map[string]bool{}
		var bad []string
		for _, a := range list.Items {
			seen[a.GetName()] = true
			sync, _, _ := unstructured.NestedString(a.Object, "status", "sync", "status")
			health, _, _ := unstructured.NestedString(a.Object, "status", "health", "status")
			if sync != "Synced" || (r.o.Healthy && health != "Healthy") {
				bad = append(bad, fmt.Sprintf("%s (sync %s, health %s)", a.GetName(), orDash(sync), orDash(health)))
			}
		}
		for _, n := range want {
			if !seen[n] {
				bad = append(bad, n+" (no Application yet)")
			}
		}
		sort.Strings(bad)
		return len(bad) == 0, bad, nil
	}
	return step{
		name: "sync",
		check: func(ctx context.Context) (bool, string, error) {
			done, _, err := check(ctx)
			return done, fmt.Sprintf("%d Applications synced", len(want)), err
		},
		apply: func(ctx context.Context) (Status, string, error) {
			deadline := time.Now().Add(r.o.Timeout)
			for {
				done, bad, err := check(ctx)
				if err != nil {
					return StatusFailed, "", err
				}
				if done {
					return StatusUpdated, fmt.Sprintf("%d Applications synced", len(want)), nil
				}
				if time.Now().After(deadline) {
					r.res.NotReady = bad
					return StatusFailed, "", fmt.Errorf("after %s, not ready: %s", r.o.Timeout, strings.Join(bad, "; "))
				}
				select {
				case <-ctx.Done():
					return StatusFailed, "", ctx.Err()
				case <-time.After(2 * time.Second):
				}
			}
		},
	}
}

// expectedApps are the Applications the root ApplicationSets make: one
// per component with an app.yaml, one per component secrets/ folder.
func (r *clusterRunner) expectedApps() []string {
	var out []string
	apps, _ := filepath.Glob(filepath.Join(r.o.Dir, "*", "*", "app.yaml"))
	for _, a := range apps {
		out = append(out, filepath.Base(filepath.Dir(a)))
	}
	dirs, _ := filepath.Glob(filepath.Join(r.o.Dir, "*", "*", "secrets"))
	for _, d := range dirs {
		out = append(out, filepath.Base(filepath.Dir(d))+"-secrets")
	}
	sort.Strings(out)
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
