package helmchart_test

import (
	"testing"

	"hl.dev/hl/bot/extract/helmchart"
	"hl.dev/hl/bot/extract/internal/extracttest"
)

type W = extracttest.Want

func TestExtract(t *testing.T) {
	tests := []struct {
		name, file, content string
		want                []W
	}{
		{"hl wrapper chart", "system/argocd/Chart.yaml", `apiVersion: v2
name: argocd
description: GitOps controller
version: 1.0.0
dependencies:
  - name: argo-cd
    version: 9.1.3
    repository: https://argoproj.github.io/argo-helm
`, []W{{"helm", "https://argoproj.github.io/argo-helm", "argo-cd", "9.1.3", nil}}},
		{"unindented list, quoted version, trailing slash", "system/ingress-nginx/Chart.yaml", `apiVersion: v2
name: ingress-nginx
version: 0.0.0
dependencies:
- name: ingress-nginx
  version: "4.8.3"
  repository: https://kubernetes.github.io/ingress-nginx/
- name: cert-manager
  version: 'v1.13.3'
  repository: https://charts.jetstack.io
`, []W{
			{"helm", "https://kubernetes.github.io/ingress-nginx", "ingress-nginx", "4.8.3", nil},
			{"helm", "https://charts.jetstack.io", "cert-manager", "v1.13.3", nil},
		}},
		{"oci, range, alias, aliased repos kept, local skipped", "apps/media/Chart.yaml", `apiVersion: v2
name: media
version: 0.0.0
dependencies:
  - name: app-template
    alias: jellyfin
    version: 3.7.3
    repository: oci://ghcr.io/bjw-s/helm
  - name: loki
    version: ~5.41.0
    repository: https://grafana.github.io/helm-charts
  - name: common
    version: 1.0.0
    repository: file://../common
  - name: redis
    version: 18.6.1
    repository: "@bitnami"
  - name: postgresql
    version: 12.1.0
    repository: alias:bitnami
  - {name: podinfo, version: 6.5.4, repository: "ghcr.io/stefanprodan/charts"}
`, []W{
			{"oci", "oci://ghcr.io/bjw-s/helm", "app-template", "3.7.3", nil},
			{"helm", "https://grafana.github.io/helm-charts", "loki", "~5.41.0", nil},
			{"helm", "@bitnami", "redis", "18.6.1", nil},
			{"helm", "alias:bitnami", "postgresql", "12.1.0", nil},
			{"oci", "oci://ghcr.io/stefanprodan/charts", "podinfo", "6.5.4", nil},
		}},
		{"apiVersion v1 requirements", "charts/old/requirements.yaml", `dependencies:
- name: mariadb
  version: 7.x.x
  repository: https://charts.bitnami.com/bitnami
`, []W{{"helm", "https://charts.bitnami.com/bitnami", "mariadb", "7.x.x", nil}}},
		{"no dependencies", "charts/plain/Chart.yaml", "apiVersion: v2\nname: plain\nversion: 1.2.3\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := helmchart.Extractor{}
			if !e.Match(tt.file) {
				t.Fatalf("Match(%s) = false", tt.file)
			}
			deps, err := e.Extract(tt.file, []byte(tt.content))
			if err != nil {
				t.Fatal(err)
			}
			extracttest.Check(t, tt.file, "helm-chart", tt.content, deps, tt.want)
		})
	}
}

func TestMatch(t *testing.T) {
	e := helmchart.Extractor{}
	for p, want := range map[string]bool{"Chart.yaml": true, "a/b/Chart.yaml": true, "a/values.yaml": false, "a/Chart.lock": false} {
		if got := e.Match(p); got != want {
			t.Errorf("Match(%s) = %v", p, got)
		}
	}
}

func TestMalformed(t *testing.T) {
	if _, err := (helmchart.Extractor{}).Extract("Chart.yaml", []byte("dependencies: [\n")); err == nil {
		t.Fatal("want a parse error")
	}
}
