package kustomize_test

import (
	"testing"

	"hl.dev/hl/bot/extract/internal/extracttest"
	"hl.dev/hl/bot/extract/kustomize"
)

type W = extracttest.Want

func TestExtract(t *testing.T) {
	content := `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: system-upgrade
resources:
  - https://github.com/rancher/system-upgrade-controller/releases/download/v0.13.4/crd.yaml
  - https://git.example.org/ops/tools/releases/download/1.2.0/manifest.yaml
  - plans.yaml
  - github.com/example/base?ref=v1.0.0
images:
  - name: rancher/system-upgrade-controller
    newTag: v0.13.4
  - name: nginx
    newName: registry.example.org/mirror/nginx
    newTag: "1.25.3"
    digest: sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee
  - name: postgres
    digest: sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff
helmCharts:
  - name: external-dns
    repo: https://kubernetes-sigs.github.io/external-dns
    version: 1.14.3
    releaseName: external-dns
`
	want := []W{
		{"github-releases", "", "rancher/system-upgrade-controller", "v0.13.4", nil},
		{"gitea-releases", "https://git.example.org", "ops/tools", "1.2.0", nil},
		{"docker", "", "rancher/system-upgrade-controller", "v0.13.4", nil},
		{"docker", "", "registry.example.org/mirror/nginx", "1.25.3", map[string]string{"digest": "sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"}},
		{"helm", "https://kubernetes-sigs.github.io/external-dns", "external-dns", "1.14.3", nil},
	}
	deps, err := kustomize.Extractor{}.Extract("system/system-upgrade/kustomization.yaml", []byte(content))
	if err != nil {
		t.Fatal(err)
	}
	// Sort as Scan does: by offset.
	for i := 1; i < len(deps); i++ {
		for j := i; j > 0 && deps[j].Range.Start < deps[j-1].Range.Start; j-- {
			deps[j], deps[j-1] = deps[j-1], deps[j]
		}
	}
	extracttest.Check(t, "system/system-upgrade/kustomization.yaml", "kustomize", content, deps, want)
}
