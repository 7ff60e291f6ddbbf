package kubernetes_test

import (
	"testing"

	"hl.dev/hl/bot/extract/internal/extracttest"
	"hl.dev/hl/bot/extract/kubernetes"
)

type W = extracttest.Want

func TestExtract(t *testing.T) {
	tests := []struct {
		name, content string
		want          []W
	}{
		{"deployment with init container, multi-doc", `apiVersion: apps/v1
kind: Deployment
metadata:
  name: homepage
spec:
  template:
    spec:
      initContainers:
        - name: wait
          image: busybox:1.36.1
      containers:
        - name: homepage
          image: ghcr.io/gethomepage/homepage:v1.7.0
---
apiVersion: v1
kind: Service
metadata:
  name: homepage
spec:
  ports: [{port: 80}]
`, []W{
			{"docker", "", "busybox", "1.36.1", nil},
			{"docker", "", "ghcr.io/gethomepage/homepage", "v1.7.0", nil},
		}},
		{"cronjob, registry with port, digest", `apiVersion: batch/v1
kind: CronJob
metadata:
  name: backup
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: restic
              image: "registry.local:5000/tools/restic:0.16.2@sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
          restartPolicy: OnFailure
`, []W{{"docker", "", "registry.local:5000/tools/restic", "0.16.2", map[string]string{"digest": "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"}}}},
		{"system-upgrade plan: untagged upgrade image, tagged prepare image", `apiVersion: upgrade.cattle.io/v1
kind: Plan
metadata:
  name: k3s-agent
spec:
  version: v1.33.5+k3s1
  prepare:
    image: rancher/kubectl:v1.33.5
    args: [wait]
  upgrade:
    image: rancher/k3s-upgrade
`, []W{{"docker", "", "rancher/kubectl", "v1.33.5", nil}}},
		{"values-like document without kind is not a manifest", "image: nginx:1.25.3\n", nil},
		{"argo application left to its extractor", `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: x}
spec:
  source:
    helm:
      valuesObject:
        image: nginx:1.25.3
`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			deps, err := kubernetes.Extractor{}.Extract("apps/x/deployment.yaml", []byte(tt.content))
			if err != nil {
				t.Fatal(err)
			}
			extracttest.Check(t, "apps/x/deployment.yaml", "kubernetes", tt.content, deps, tt.want)
		})
	}
}

func TestMatch(t *testing.T) {
	e := kubernetes.Extractor{}
	for p, want := range map[string]bool{"a/deploy.yaml": true, "a/Chart.yaml": false, "a/kustomization.yaml": false, ".woodpecker/ci.yaml": false, "a/README.md": false} {
		if got := e.Match(p); got != want {
			t.Errorf("Match(%s) = %v", p, got)
		}
	}
}
