package validate

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"

	"hl.dev/hl/internal/kubeclient"
)

// checkServer dry-run applies every rendered object against Options.Server
// (server-side apply, nothing stored): CRDs first, then namespaces, then
// the rest. On a scratch server the CRDs and namespaces are created for
// real first, so that custom resources meet their CRD's CEL rules and
// namespaced objects their namespace's admission.
func (v *validator) checkServer(ctx context.Context, objs []*object) error {
	// The API server's warnings (Pod Security "would violate ...",
	// deprecated APIs) are findings too, for the object that drew them.
	warned := &warnings{}
	cfg := rest.CopyConfig(v.s.Server)
	cfg.WarningHandler = warned
	kube, err := kubeclient.NewApplier(cfg, nil)
	if err != nil {
		return fmt.Errorf("--server: %w", err)
	}
	var crds, namespaces, rest []*object
	for _, o := range objs {
		switch {
		case o.sops:
			// Encrypted data is not what the cluster gets; the plugin
			// decrypts it. Its metadata was checked offline.
		case strings.HasPrefix(o.file, "metal/"):
			// Static pods and node files: the kubelet and the installer
			// read them, not the API server.
		case o.group() == "apiextensions.k8s.io" && o.kind == "CustomResourceDefinition":
			crds = append(crds, o)
		case o.group() == "" && o.kind == "Namespace":
			namespaces = append(namespaces, o)
		default:
			rest = append(rest, o)
		}
	}
	apply := func(o *object, dry bool) error {
		obj := o.obj
		if !o.cluster && o.namespace == "" {
			if ns := o.u.namespace; ns != "" {
				obj = withNamespace(obj, ns)
			}
		}
		warned.take()
		_, err := kube.Apply(ctx, obj, dry)
		for _, w := range warned.take() {
			v.add(Finding{Policy: PolicyServerDryRun, Severity: SeverityWarning, File: o.file, Line: o.line, Resource: o.id(),
				Message: "the API server warns: " + w})
		}
		return err
	}
	var names []string
	for _, o := range crds {
		if err := apply(o, !v.s.Scratch); err != nil {
			v.serverFinding(o, err)
			continue
		}
		names = append(names, o.name)
	}
	if v.s.Scratch && len(names) > 0 {
		if err := kube.WaitEstablished(ctx, names, 2*time.Minute); err != nil {
			return fmt.Errorf("--server: %w", err)
		}
	}
	// The namespaces the objects land in, rendered or not (Argo CD makes
	// an app's destination namespace with CreateNamespace=true).
	wantNS := map[string]bool{}
	for _, o := range rest {
		if o.namespace != "" {
			wantNS[o.namespace] = true
		} else if !o.cluster && o.u.namespace != "" {
			wantNS[o.u.namespace] = true
		}
	}
	for _, o := range namespaces {
		delete(wantNS, o.name)
		if err := apply(o, !v.s.Scratch); err != nil {
			v.serverFinding(o, err)
		}
	}
	if v.s.Scratch {
		var extra []string
		for ns := range wantNS {
			extra = append(extra, ns)
		}
		sort.Strings(extra)
		for _, ns := range extra {
			if _, err := kube.Apply(ctx, map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}, false); err != nil {
				return fmt.Errorf("--server: namespace %s: %w", ns, err)
			}
		}
	}
	for _, o := range rest {
		if err := apply(o, true); err != nil {
			v.serverFinding(o, err)
		}
	}
	return nil
}

func withNamespace(obj map[string]any, ns string) map[string]any {
	c := make(map[string]any, len(obj))
	for k, val := range obj {
		c[k] = val
	}
	md := map[string]any{}
	if m, ok := obj["metadata"].(map[string]any); ok {
		for k, val := range m {
			md[k] = val
		}
	}
	md["namespace"] = ns
	c["metadata"] = md
	return c
}

// serverFinding turns an API server's refusal into a finding at the
// object; a namespace or CRD the server lacks (not a scratch server) is a
// warning that the object went unchecked.
func (v *validator) serverFinding(o *object, err error) {
	f := Finding{Policy: PolicyServerDryRun, File: o.file, Line: o.line, Resource: o.id()}
	var status apierrors.APIStatus
	switch {
	case isNoMatch(err):
		f.Severity = SeverityWarning
		f.Message = "not checked: the server does not serve " + o.apiVersion + " " + o.kind + " (its CRD is not installed; --scratch installs the repo's CRDs on a throw-away server)"
	case apierrors.IsNotFound(err) && !o.cluster:
		f.Severity = SeverityWarning
		f.Message = "not checked: its namespace does not exist on the server (--scratch creates namespaces on a throw-away server)"
	case asStatus(err, &status):
		f.Message = "the API server rejects it: " + strings.TrimSpace(status.Status().Message)
	default:
		f.Message = "the API server rejects it: " + err.Error()
	}
	v.add(f)
}

func isNoMatch(err error) bool {
	for e := err; e != nil; {
		if meta.IsNoMatchError(e) {
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

func asStatus(err error, target *apierrors.APIStatus) bool {
	for e := err; e != nil; {
		if s, ok := e.(apierrors.APIStatus); ok {
			*target = s
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

// warnings collects the API server's warnings of one request.
type warnings struct {
	mu  sync.Mutex
	got []string
}

func (w *warnings) HandleWarningHeader(code int, agent, text string) {
	if code != 299 || text == "" {
		return
	}
	w.mu.Lock()
	w.got = append(w.got, text)
	w.mu.Unlock()
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.got
	w.got = nil
	return out
}
