package kubeclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// FieldManager owns the fields hl applies (server-side apply).
const FieldManager = "hl"

// Outcome is what an apply did (or, dry, would do) to one object.
type Outcome string

// Outcomes.
const (
	Created   Outcome = "created"
	Updated   Outcome = "updated"
	Unchanged Outcome = "unchanged"
)

// Applier applies manifests with server-side apply, field manager hl: an
// apply of what is already there changes nothing (not even the
// resourceVersion), so every caller is idempotent.
type Applier struct {
	dyn    dynamic.Interface
	disc   discovery.CachedDiscoveryInterface
	mu     sync.Mutex
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

// NewApplier connects to the API server of cfg, trying passing failures
// again (Retrying; log gets the details at debug level, nil: nowhere).
func NewApplier(cfg *rest.Config, log *slog.Logger) (*Applier, error) {
	cfg = Retrying(cfg, log)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	disc := memory.NewMemCacheClient(dc)
	return &Applier{dyn: dyn, disc: disc, mapper: restmapper.NewDeferredDiscoveryRESTMapper(disc)}, nil
}

// Dynamic is the applier's dynamic client.
func (a *Applier) Dynamic() dynamic.Interface { return a.dyn }

// Resource maps an object's kind to its resource, learning kinds served
// since the last call (CRDs applied a moment ago) when it does not know
// one.
func (a *Applier) Resource(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		a.mapper.Reset()
		m, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	return m, err
}

func (a *Applier) client(u *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	m, err := a.Resource(u.GroupVersionKind())
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), Summarize(err))
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := u.GetNamespace()
		if ns == "" {
			return nil, fmt.Errorf("%s %s is namespaced and has no namespace", u.GetKind(), u.GetName())
		}
		return a.dyn.Resource(m.Resource).Namespace(ns), nil
	}
	u.SetNamespace("")
	return a.dyn.Resource(m.Resource), nil
}

// Apply applies obj (dryRun: the API server checks and admits it,
// defaulting and validating, and stores nothing) and says what it changed.
func (a *Applier) Apply(ctx context.Context, obj map[string]any, dryRun bool) (Outcome, error) {
	u := &unstructured.Unstructured{Object: deepCopy(obj)}
	c, err := a.client(u)
	if err != nil {
		return "", err
	}
	existing, err := c.Get(ctx, u.GetName(), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		existing = nil
	case err != nil:
		return "", fmt.Errorf("get %s %s: %w", u.GetKind(), u.GetName(), Summarize(err))
	}
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	got, err := c.Apply(ctx, u.GetName(), u, opts)
	if err != nil {
		return "", fmt.Errorf("apply %s %s: %w", u.GetKind(), name(u), Summarize(err))
	}
	switch {
	case existing == nil:
		return Created, nil
	case same(existing, got):
		return Unchanged, nil
	}
	return Updated, nil
}

func name(u *unstructured.Unstructured) string {
	if ns := u.GetNamespace(); ns != "" {
		return ns + "/" + u.GetName()
	}
	return u.GetName()
}

// same compares two states of an object, leaving out what every write
// touches.
func same(a, b *unstructured.Unstructured) bool {
	if a.GetResourceVersion() == b.GetResourceVersion() {
		return true
	}
	strip := func(u *unstructured.Unstructured) map[string]any {
		c := u.DeepCopy()
		for _, f := range [][]string{{"metadata", "managedFields"}, {"metadata", "resourceVersion"}, {"metadata", "generation"}, {"status"}} {
			unstructured.RemoveNestedField(c.Object, f...)
		}
		return c.Object
	}
	return reflect.DeepEqual(strip(a), strip(b))
}

// deepCopy copies a manifest as JSON, so that whatever decoded it (YAML
// gives int, Helm float64) the object holds only JSON values.
func deepCopy(m map[string]any) map[string]any {
	b, err := json.Marshal(m)
	if err != nil {
		return m
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out map[string]any
	if dec.Decode(&out) != nil {
		return m
	}
	return out
}

// Get reads an object (nil, nil when it does not exist).
func (a *Applier) Get(ctx context.Context, gvk schema.GroupVersionKind, namespace, objName string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	u.SetNamespace(namespace)
	u.SetName(objName)
	c, err := a.client(u)
	if err != nil {
		return nil, err
	}
	got, err := c.Get(ctx, objName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %s: %w", gvk.Kind, objName, Summarize(err))
	}
	return got, nil
}

// CRDGVK is the kind of a CustomResourceDefinition.
var CRDGVK = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}

// WaitEstablished waits until every named CRD is Established, then makes
// the mapper learn their kinds. On timeout it names those still waiting.
func (a *Applier) WaitEstablished(ctx context.Context, names []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var waiting []string
		for _, n := range names {
			crd, err := a.Get(ctx, CRDGVK, "", n)
			if err != nil {
				return err
			}
			if crd == nil || !established(crd) {
				waiting = append(waiting, n)
			}
		}
		if len(waiting) == 0 {
			a.mu.Lock()
			a.mapper.Reset()
			a.mu.Unlock()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("CRDs not established after %s: %v", timeout, waiting)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func established(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}
