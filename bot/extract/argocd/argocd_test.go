package argocd_test

import (
	"testing"

	"hl.dev/hl/bot/extract/argocd"
	"hl.dev/hl/bot/extract/internal/extracttest"
)

type W = extracttest.Want

func TestExtract(t *testing.T) {
	tests := []struct {
		name, content string
		want          []W
	}{
		{"git sources at tags, kustomize.images", `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: media
spec:
  sources:
    - repoURL: https://github.com/example/homelab-apps.git
      targetRevision: v1.4.2
      path: media
      kustomize:
        images:
          - lscr.io/linuxserver/sonarr:4.0.5-ls219
          - redis=docker.io/library/redis:7.2.4@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
          - ghcr.io/example/untagged
    - repoURL: https://git.example.org/ops/homelab
      targetRevision: HEAD
    - repoURL: git@git.example.org:ops/private.git
      targetRevision: v2.0.0
`, []W{
			{"git-tags", "", "https://github.com/example/homelab-apps.git", "v1.4.2", nil},
			{"docker", "", "lscr.io/linuxserver/sonarr", "4.0.5-ls219", nil},
			{"docker", "", "docker.io/library/redis", "7.2.4", map[string]string{"digest": "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}},
		}},
		{"application with https repo", `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: cloudnative-pg
  namespace: argocd
spec:
  project: default
  source:
    repoURL: https://cloudnative-pg.github.io/charts
    chart: cloudnative-pg
    targetRevision: 0.19.1
    helm:
      releaseName: cnpg
  destination:
    server: https://kubernetes.default.svc
    namespace: cnpg-system
`, []W{{"helm", "https://cloudnative-pg.github.io/charts", "cloudnative-pg", "0.19.1", nil}}},
		{"multi-source: scheme-less OCI, git source, valuesObject", `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: podinfo
spec:
  sources:
    - repoURL: ghcr.io/stefanprodan/charts
      chart: podinfo
      targetRevision: "6.5.0"
      helm:
        valueFiles: [$values/apps/podinfo/values.yaml]
        valuesObject:
          image:
            repository: ghcr.io/stefanprodan/podinfo
            tag: 6.5.0
    - repoURL: https://git.example.org/ops/homelab.git
      targetRevision: main
      ref: values
`, []W{
			{"oci", "oci://ghcr.io/stefanprodan/charts", "podinfo", "6.5.0", nil},
			{"docker", "", "ghcr.io/stefanprodan/podinfo", "6.5.0", nil},
		}},
		{"applicationset template, oci:// with chart in URL (Argo CD 3.1)", `apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: clusters
spec:
  generators:
    - list:
        elements: [{cluster: home}]
  template:
    metadata:
      name: '{{.cluster}}-metrics'
    spec:
      project: default
      source:
        repoURL: oci://registry-1.docker.io/bitnamicharts/metrics-server
        targetRevision: 7.2.16
        path: .
      destination:
        name: '{{.cluster}}'
        namespace: kube-system
---
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: default
spec:
  sourceRepos: ['*']
`, []W{{"oci", "oci://registry-1.docker.io/bitnamicharts", "metrics-server", "7.2.16", nil}}},
		{"templated revision and git sources ignored", `apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: components
spec:
  template:
    spec:
      source:
        repoURL: ssh://git@git.home.example.com/homelab/cluster.git
        targetRevision: main
        path: '{{ .path.path }}'
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: templated
spec:
  source:
    repoURL: https://charts.example.org
    chart: thing
    targetRevision: '{{ .Values.version }}'
`, nil},
		{"not argo", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			deps, err := argocd.Extractor{}.Extract("apps/x/app.yaml", []byte(tt.content))
			if err != nil {
				t.Fatal(err)
			}
			extracttest.Check(t, "apps/x/app.yaml", "argocd-app", tt.content, deps, tt.want)
		})
	}
}
