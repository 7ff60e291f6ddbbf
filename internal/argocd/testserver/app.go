package testserver

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

var (
	// ApplicationGVR and ApplicationSetGVR address Argo CD's custom
	// resources with a dynamic client.
	ApplicationGVR    = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}
	ApplicationSetGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applicationsets"}
	crdGVR            = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
)

// fieldManager owns what the harness applies.
const fieldManager = "hl-argocd-testserver"

// ApplicationStatus is the part of an Application's status tests look at.
type ApplicationStatus struct {
	Sync struct {
		Status   string `json:"status"`
		Revision string `json:"revision"`
	} `json:"sync"`
	Health struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	} `json:"health"`
	OperationState *struct {
		Phase   string `json:"phase"`
		Message string `json:"message"`
	} `json:"operationState"`
	Conditions []struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"conditions"`
	Resources []struct {
		Group     string `json:"group"`
		Kind      string `json:"kind"`
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
		Status    string `json:"status"`
	} `json:"resources"`
}

// String is a one-line summary for failure messages.
func (st *ApplicationStatus) String() string {
	if st == nil {
		return "no status yet"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "sync %s at %.12s, health %s", orNone(st.Sync.Status), orNone(st.Sync.Revision), orNone(st.Health.Status))
	if op := st.OperationState; op != nil {
		fmt.Fprintf(&b, ", operation %s: %s", op.Phase, op.Message)
	}
	for _, c := range st.Conditions {
		fmt.Fprintf(&b, "; %s: %s", c.Type, c.Message)
	}
	for _, r := range st.Resources {
		if r.Status != "Synced" {
			fmt.Fprintf(&b, "; %s %s/%s %s", r.Kind, r.Namespace, r.Name, orNone(r.Status))
		}
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// Synced is a WaitApplication condition: sync status Synced, at revision
// when it is not empty. Health is not looked at: no pod runs here, so
// workloads stay Progressing or Missing.
func Synced(revision string) func(*ApplicationStatus) bool {
	return func(st *ApplicationStatus) bool {
		return st.Sync.Status == "Synced" && (revision == "" || st.Sync.Revision == revision)
	}
}

// Application returns the status of Application ns/name, nil if it has
// none yet.
func (s *Server) Application(ctx context.Context, ns, name string) (*ApplicationStatus, error) {
	u, err := s.dyn.Resource(ApplicationGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get Application %s/%s: %w", ns, name, err)
	}
	raw, ok := u.Object["status"]
	if !ok {
		return nil, nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	var st ApplicationStatus
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("Application %s/%s status: %w", ns, name, err)
	}
	return &st, nil
}

// WaitApplication polls Application ns/name until cond holds for its
// status and returns that status. A missing Application is waited for too
// (an ApplicationSet may not have made it yet). On ctx's end the error
// tells the last status seen.
func (s *Server) WaitApplication(ctx context.Context, ns, name string, cond func(*ApplicationStatus) bool) (*ApplicationStatus, error) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var (
		last    *ApplicationStatus
		lastErr error
	)
	for {
		st, err := s.Application(ctx, ns, name)
		switch {
		case err == nil && st != nil && cond(st):
			return st, nil
		case err == nil:
			last, lastErr = st, nil
		case apierrors.IsNotFound(err):
			lastErr = err
		case ctx.Err() == nil:
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return last, fmt.Errorf("Application %s/%s: %w (last: %v)", ns, name, ctx.Err(), lastErr)
			}
			return last, fmt.Errorf("Application %s/%s: %w (last: %s)", ns, name, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// HardRefresh asks the controller to regenerate Application ns/name's
// manifests without the repo-server cache, as `argocd app get
// --hard-refresh` does: through the annotation the controller watches.
func (s *Server) HardRefresh(ctx context.Context, ns, name string) error {
	patch := []byte(`{"metadata":{"annotations":{"argocd.argoproj.io/refresh":"hard"}}}`)
	if _, err := s.dyn.Resource(ApplicationGVR).Namespace(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("hard refresh Application %s/%s: %w", ns, name, err)
	}
	return nil
}

// installCRDs applies the module's manifests/crds server-side and waits
// until the API server serves them.
func (s *Server) installCRDs(ctx context.Context) error {
	dir := filepath.Join(s.bins.SourceDir, "manifests", "crds")
	files, err := filepath.Glob(filepath.Join(dir, "*-crd.yaml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no CRDs in %s (%v)", dir, err)
	}
	var names []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("read CRD: %w", err)
		}
		var u unstructured.Unstructured
		if err := yaml.Unmarshal(data, &u.Object); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if _, err := s.dyn.Resource(crdGVR).Apply(ctx, u.GetName(), &u, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
			return fmt.Errorf("apply CRD %s: %w", u.GetName(), err)
		}
		names = append(names, u.GetName())
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for _, name := range names {
		for {
			u, err := s.dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err == nil && established(u) {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("CRD %s not Established: %w (last error: %v)", name, ctx.Err(), err)
			case <-tick.C:
			}
		}
	}
	return nil
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
