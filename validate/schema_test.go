package validate

import (
	"io/fs"
	"strings"
	"testing"

	"hl.dev/hl/schemas"
)

// TestEmbeddedCRDSchemasCompile compiles every schemas/crds file and
// checks its name against its title and scope.
func TestEmbeddedCRDSchemasCompile(t *testing.T) {
	entries, err := fs.ReadDir(schemas.FS, "crds")
	if err != nil {
		t.Fatal(err)
	}
	idx := embeddedIndex()
	n := 0
	for _, e := range entries {
		n++
		if _, err := schemas.Get("crds/" + e.Name()); err != nil {
			t.Errorf("%s: %v", e.Name(), err)
		}
		info := idx[e.Name()]
		if info.kind == "" || (info.scope != "Namespaced" && info.scope != "Cluster") {
			t.Errorf("%s: title/scope not found: %+v", e.Name(), info)
		}
		if want := info.group + "_" + strings.ToLower(info.kind) + "_" + info.version + ".json"; want != e.Name() {
			t.Errorf("%s: title says %s", e.Name(), want)
		}
	}
	for _, need := range []string{
		"argoproj.io_application_v1alpha1.json", "argoproj.io_applicationset_v1alpha1.json", "argoproj.io_appproject_v1alpha1.json",
		"cert-manager.io_certificate_v1.json", "cert-manager.io_clusterissuer_v1.json", "cert-manager.io_issuer_v1.json",
		"upgrade.cattle.io_plan_v1.json", "monitoring.coreos.com_servicemonitor_v1.json", "metallb.io_ipaddresspool_v1beta1.json",
	} {
		if _, ok := idx[need]; !ok {
			t.Errorf("missing %s", need)
		}
	}
	if n < 20 {
		t.Errorf("only %d CRD schemas", n)
	}
}

func TestCRDSchemas(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		ok        bool
	}{
		{"application", `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: a, namespace: argocd}
spec:
  project: default
  source: {repoURL: https://git.example.com/o/r.git, path: apps/a, targetRevision: main}
  destination: {server: https://kubernetes.default.svc, namespace: a}
  syncPolicy: {automated: {prune: true}, syncOptions: [CreateNamespace=true]}
`, true},
		{"application unknown field", `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: a}
spec:
  project: default
  source: {repoURL: https://git.example.com/o/r.git, pathh: apps/a}
  destination: {namespace: a}
`, false},
		{"application missing destination", `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: a}
spec: {project: default, source: {repoURL: x}}
`, false},
		{"plan", `apiVersion: upgrade.cattle.io/v1
kind: Plan
metadata: {name: server, namespace: system-upgrade}
spec:
  concurrency: 1
  cordon: true
  nodeSelector:
    matchExpressions: [{key: node-role.kubernetes.io/control-plane, operator: In, values: ["true"]}]
  serviceAccountName: system-upgrade
  upgrade: {image: rancher/k3s-upgrade}
  version: v1.33.5+k3s1
  window: {days: [monday, tue], startTime: "01:00", endTime: "04:00", timeZone: UTC}
  drain: {force: true, timeout: 10m, skipWaitForDeleteTimeout: 60}
  tolerations: [{key: CriticalAddonsOnly, operator: Exists}]
`, true},
		{"plan without upgrade", `apiVersion: upgrade.cattle.io/v1
kind: Plan
metadata: {name: server}
spec: {concurrency: 1, version: v1.33.5+k3s1}
`, false},
		{"plan bad day", `apiVersion: upgrade.cattle.io/v1
kind: Plan
metadata: {name: server}
spec: {upgrade: {image: x}, window: {days: [someday]}}
`, false},
		{"clusterissuer", `apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata: {name: letsencrypt}
spec:
  acme:
    email: admin@example.com
    server: https://acme-v02.api.letsencrypt.org/directory
    privateKeySecretRef: {name: letsencrypt}
    solvers:
      - dns01:
          cloudflare:
            apiTokenSecretRef: {name: cloudflare, key: token}
`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := parseYAML([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			v := &validator{s: &settings{}, schemas: newSchemaSet()}
			o := newObject(&unit{}, "x.yaml", docs[0], docs[0].value.(map[string]any))
			v.checkSchema(o)
			if ok := len(v.findings) == 0; ok != tc.ok {
				t.Errorf("ok=%v, findings %v", ok, v.findings)
			}
		})
	}
}
