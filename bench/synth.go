// Package bench owns hl's benchmark helpers: synthetic repositories of a
// chosen size for the bot's scan, and a way to read a child process's peak
// RSS without GNU time.
package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// WriteRepo writes a homelab-shaped repo with exactly deps dependencies
// into dir: wrapper charts (Chart.yaml + values keyed by the dependency
// name), raw manifests, kustomizations, Argo CD Applications, k3s Plans
// and an OS image pin. It returns the number of files written.
func WriteRepo(dir string, deps int) (int, error) {
	files := 0
	put := func(p, s string) error {
		p = filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		files++
		return os.WriteFile(p, []byte(s), 0o644)
	}
	left := deps
	// Fixed pieces: the OS pin and a Plan (2 dependencies).
	if left >= 2 {
		if err := put("metal/os.yaml", `name: debian
repo: http://snapshot.debian.org/archive/debian/20260801T000000Z
kernel:
  url: http://snapshot.debian.org/archive/debian/20260801T000000Z/dists/bookworm/main/installer-amd64/20230607+deb12u15/images/netboot/debian-installer/amd64/linux
  sha256: "d8808aa4ca188560da1e6d749dcb930c87a5fd8b11ebff1f3fa6d728af35203d"
`); err != nil {
			return files, err
		}
		if err := put("system/system-upgrade/plans.yaml", "apiVersion: upgrade.cattle.io/v1\nkind: Plan\nmetadata:\n  name: server\nspec:\n  upgrade:\n    image: rancher/k3s-upgrade\n  version: v1.33.5+k3s1\n"); err != nil {
			return files, err
		}
		left -= 2
	}
	layers := []string{"system", "platform", "apps"}
	for i := 0; left > 0; i++ {
		c := fmt.Sprintf("%s/component-%04d", layers[i%3], i)
		name := fmt.Sprintf("chart-%04d", i)
		var err error
		switch i % 4 {
		case 0, 1: // wrapper chart: 1 chart + 2 values images (3)
			n := min(left, 3)
			err = put(c+"/Chart.yaml", fmt.Sprintf("apiVersion: v2\nname: %s\nversion: 0.0.0\ndependencies:\n  - name: %s\n    version: %d.%d.0\n    repository: https://charts.example.org/%s\n", name, name, i%9+1, i%20, name))
			if err == nil && n > 1 {
				var b strings.Builder
				fmt.Fprintf(&b, "%s:\n  replicaCount: 1\n  resources:\n    requests: {cpu: 10m, memory: 64Mi}\n  image:\n    registry: ghcr.io\n    repository: example/app-%04d\n    tag: v1.%d.%d\n", name, i, i%30, i%7)
				if n > 2 {
					fmt.Fprintf(&b, "  sidecar:\n    image: docker.io/example/sidecar-%04d:2.%d.%d-alpine\n  # a comment line to make files realistic\n  ingress:\n    enabled: true\n    hosts: [app-%04d.example.org]\n", i, i%11, i%5, i)
				}
				err = put(c+"/values.yaml", b.String())
			}
			left -= n
		case 2: // raw manifests + kustomization (3)
			n := min(left, 3)
			var b strings.Builder
			fmt.Fprintf(&b, "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-%04d\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: ghcr.io/example/app-%04d:%d.%d.%d\n", i, i, i%5, i%13, i%3)
			if n > 1 {
				fmt.Fprintf(&b, "---\napiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: job-%04d\nspec:\n  schedule: \"0 3 * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n            - name: job\n              image: quay.io/example/job-%04d:2024.%d.%d\n", i, i, i%12+1, i%28+1)
			}
			err = put(c+"/deployment.yaml", b.String())
			if err == nil && n > 2 {
				err = put(c+"/kustomization.yaml", fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - deployment.yaml\nimages:\n  - name: example/tool-%04d\n    newTag: 3.%d.0\n", i, i%17))
			}
			left -= n
		case 3: // Argo CD Application (1)
			err = put(c+"/application.yaml", fmt.Sprintf("apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: %s\n  namespace: argocd\nspec:\n  project: default\n  source:\n    repoURL: ghcr.io/example/charts\n    chart: %s\n    targetRevision: 0.%d.%d\n  destination:\n    name: in-cluster\n    namespace: %s\n", name, name, i%40, i%9, name))
			left--
		}
		if err != nil {
			return files, err
		}
		// Files without dependencies, as real repos have.
		if err := put(c+"/namespace.yaml", fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns-%04d\n", i)); err != nil {
			return files, err
		}
	}
	return files, nil
}
