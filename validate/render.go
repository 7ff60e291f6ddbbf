package validate

import (
	"context"
	"sort"
)

// Manifest is one object of the rendered repository, as Argo CD would
// apply it.
type Manifest struct {
	// App is the folder of the app the object belongs to (bootstrap,
	// system/argocd, platform/gitea/secrets, ...).
	App string
	// File and Line locate the object or what rendered it.
	File string
	Line int
	// Object is the manifest; a namespaced object without a namespace of
	// its own has the app's (Argo CD destination) filled in.
	Object map[string]any
	// Cluster is set for cluster-scoped kinds.
	Cluster bool
	// SOPS is set for encrypted Secrets (their data is ciphertext).
	SOPS bool
}

// Render renders the repository exactly as Run checks it — every
// kustomization and Helm chart in-process — and returns the report with
// every object. hl bootstrap cluster applies parts of it; hl validate
// --server dry-runs all of it against an API server.
func Render(ctx context.Context, opts Options) (*Report, []Manifest, error) {
	rep, objs, err := run(ctx, opts)
	if err != nil {
		return rep, nil, err
	}
	out := make([]Manifest, 0, len(objs))
	for _, o := range objs {
		m := Manifest{App: o.u.dir, File: o.file, Line: o.line, Object: o.obj, Cluster: o.cluster, SOPS: o.sops}
		if !o.cluster && o.namespace == "" && o.u.namespace != "" {
			md, _ := o.obj["metadata"].(map[string]any)
			if md != nil {
				md["namespace"] = o.u.namespace
			}
		}
		out = append(out, m)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].App < out[j].App })
	return rep, out, nil
}
