package up

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"hl.dev/hl/templates"
)

// ApplicationGVR is Argo CD's Application resource.
var ApplicationGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}

// AppWait waits until Argo CD reports every Application of the repo
// Synced and Healthy. It reads only what Argo CD writes into each
// Application's status, so it holds for any Argo CD that runs the root
// ApplicationSets, and a test can play Argo CD by writing that status.
type AppWait struct {
	dyn dynamic.Interface
	// Namespace is Argo CD's (the catalog's argocd component).
	Namespace string
	// Want are the Applications the root ApplicationSets make from the
	// repo: the name in every <layer>/<component>/app.yaml and
	// <layer>/<component>/secrets/app.yaml, sorted.
	Want []string
	Poll time.Duration
	Log  io.Writer
}

// NewAppWait reads the Applications dir's root ApplicationSets make.
func NewAppWait(cfg *rest.Config, dir string) (*AppWait, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	cat, err := templates.LoadCatalog()
	if err != nil {
		return nil, err
	}
	w := &AppWait{dyn: dyn, Namespace: "argocd", Poll: 2 * time.Second, Log: io.Discard}
	for _, c := range cat.Components {
		if c.Name == "argocd" {
			w.Namespace = c.Namespace
		}
	}
	var files []string
	for _, pattern := range []string{"*/*/app.yaml", "*/*/secrets/app.yaml"} {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return nil, err
		}
		files = append(files, m...)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var app struct {
			Name string `yaml:"name"`
		}
		if err := yaml.Unmarshal(b, &app); err != nil || app.Name == "" {
			return nil, fmt.Errorf("%s: no Application name (%v)", f, err)
		}
		w.Want = append(w.Want, app.Name)
	}
	if len(w.Want) == 0 {
		return nil, fmt.Errorf("%s has no <layer>/<component>/app.yaml: not a rendered repository", dir)
	}
	slices.Sort(w.Want)
	return w, nil
}

// NotReady lists, sorted, each wanted Application that is missing, not
// Synced or not Healthy, with what Argo CD says of it.
func (w *AppWait) NotReady(ctx context.Context) ([]string, error) {
	list, err := w.dyn.Resource(ApplicationGVR).Namespace(w.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list Argo CD Applications: %w", err)
	}
	have := map[string]unstructured.Unstructured{}
	for _, a := range list.Items {
		have[a.GetName()] = a
	}
	var bad []string
	for _, name := range w.Want {
		a, ok := have[name]
		if !ok {
			bad = append(bad, name+" (no Application yet)")
			continue
		}
		sync, _, _ := unstructured.NestedString(a.Object, "status", "sync", "status")
		health, _, _ := unstructured.NestedString(a.Object, "status", "health", "status")
		if sync != "Synced" || health != "Healthy" {
			bad = append(bad, fmt.Sprintf("%s (%s, %s)", name, orUnknown(sync), orUnknown(health)))
		}
	}
	return bad, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "Unknown"
	}
	return s
}

// Wait polls until nothing is NotReady, or timeout passes; it logs what
// is left whenever that changes.
func (w *AppWait) Wait(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(w.Poll)
	defer tick.Stop()
	last := ""
	for {
		bad, err := w.NotReady(ctx)
		if err != nil {
			return err
		}
		if len(bad) == 0 {
			return nil
		}
		if now := strings.Join(bad, "; "); now != last {
			fmt.Fprintf(w.Log, "%d of %d Applications Synced and Healthy; waiting for %s\n", len(w.Want)-len(bad), len(w.Want), now)
			last = now
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s, not Synced and Healthy: %s (Argo CD's UI says why)", timeout, strings.Join(bad, "; "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
