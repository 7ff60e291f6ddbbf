package validate

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

const benchService = `apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}-webapp
  labels: {app: {{ .Release.Name }}}
spec:
  selector: {app: {{ .Release.Name }}}
  ports:
    - name: http
      port: 80
      targetPort: http
`

const benchIngress = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ .Release.Name }}
spec:
  tls:
    - hosts: [{{ .Release.Name }}.home.example.com]
      secretName: {{ .Release.Name }}-tls
  rules:
    - host: {{ .Release.Name }}.home.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: {{ .Release.Name }}-webapp
                port: {name: http}
`

const benchConfig = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
{{- range $i, $e := until 50 }}
  key{{ $i }}: value-{{ $i }}
{{- end }}
`

// benchRepo is a synthetic homelab: nApps wrapper charts (each depending on
// an upstream chart already in the cache, with an Argo CD Application and a
// Certificate) and nKust kustomizations.
func benchRepo(b *testing.B, nApps, nKust int) (dir, cache string) {
	dir = repoFor(b, "")
	cache = b.TempDir()
	upstream := b.TempDir()
	tgz := packageChart(b, upstream, "webapp", "1.0.0", webappValues(), map[string]string{
		"deployment.yaml": webappDeployment, "servicemonitor.yaml": webappServiceMonitor,
		"service.yaml": benchService, "ingress.yaml": benchIngress, "configmap.yaml": benchConfig,
	}, nil)
	const repoURL = "https://charts.example.invalid/stable"
	files := map[string]string{}
	var apps string
	for i := range nApps {
		name := fmt.Sprintf("app%02d", i)
		layer := []string{"system", "platform", "apps"}[i%3]
		files[layer+"/"+name+"/Chart.yaml"] = fmt.Sprintf("apiVersion: v2\nname: %s\nversion: 0.0.0\ndependencies:\n  - name: webapp\n    version: 1.0.0\n    repository: %s\n", name, repoURL)
		files[layer+"/"+name+"/values.yaml"] = "webapp:\n  replicas: 2\n"
		files[layer+"/"+name+"/templates/networkpolicy.yaml"] = defaultDenyTemplate
		files[layer+"/"+name+"/templates/certificate.yaml"] = fmt.Sprintf(`apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: %s
spec:
  secretName: %s-tls
  dnsNames: [%s.home.example.com]
  issuerRef: {name: letsencrypt, kind: ClusterIssuer}
`, name, name, name)
		apps += fmt.Sprintf(`---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: %s
  namespace: argocd
spec:
  project: homelab
  source:
    repoURL: https://git.home.example.com/homelab/cluster.git
    targetRevision: main
    path: %s/%s
  destination:
    server: https://kubernetes.default.svc
    namespace: %s
`, name, layer, name, name)
	}
	for i := range nKust {
		name := fmt.Sprintf("kust%02d", i)
		base := "apps/" + name + "/"
		files[base+"kustomization.yaml"] = "namespace: " + name + "\nresources: [namespace.yaml, networkpolicy.yaml, deployment.yaml, service.yaml, configmap.yaml]\n"
		for _, f := range []string{"namespace.yaml", "networkpolicy.yaml", "deployment.yaml", "service.yaml", "configmap.yaml"} {
			data := mustRead(b, filepath.Join(casesDir, "_base", "apps", "demo", f))
			if f == "namespace.yaml" {
				data = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + name + "\n"
			}
			files[base+f] = data
		}
	}
	files["bootstrap/generated-apps.yaml"] = apps
	writeFiles(b, dir, files)
	if err := writeAtomic(CachePath(cache, repoURL, "webapp", "1.0.0"), []byte(mustRead(b, tgz))); err != nil {
		b.Fatal(err)
	}
	return dir, cache
}

// BenchmarkValidate validates a repo of 25 wrapper charts and 10
// kustomizations with a warm chart cache (the target is under 5 s).
func BenchmarkValidate(b *testing.B) {
	dir, cache := benchRepo(b, 25, 10)
	ctx := context.Background()
	start := time.Now()
	r, err := Run(ctx, Options{Dir: dir, CacheDir: cache, Offline: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("first run (schemas compiled, archives read): %v", time.Since(start).Round(time.Millisecond))
	if len(r.Findings) != 0 || r.Charts != 25 {
		b.Fatalf("synthetic repo is not clean:\n%s", runText(r))
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := Run(ctx, Options{Dir: dir, CacheDir: cache, Offline: true}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(r.Resources), "resources")
}
