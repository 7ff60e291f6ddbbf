package helmvalues_test

import (
	"testing"

	"hl.dev/hl/bot/extract/helmvalues"
	"hl.dev/hl/bot/extract/internal/extracttest"
)

type W = extracttest.Want

func TestExtract(t *testing.T) {
	tests := []struct {
		name, content string
		want          []W
	}{
		{"keyed by dependency name", `app-template:
  controllers:
    main:
      containers:
        main:
          image:
            repository: ghcr.io/gethomepage/homepage
            tag: v0.8.4
        redis:
          image: docker.io/library/redis:7.2.3-alpine
`, []W{
			{"docker", "", "ghcr.io/gethomepage/homepage", "v0.8.4", nil},
			{"docker", "", "docker.io/library/redis", "7.2.3-alpine", nil},
		}},
		{"registry, quoted and flow tags, digest", `gitea:
  image:
    registry: docker.gitea.com
    repository: gitea
    tag: "1.21.4-rootless"
grafana:
  image: {registry: docker.io, repository: grafana/grafana, tag: 10.2.2}
kured:
  image:
    repository: ghcr.io/kubereboot/kured
    tag: '1.14.2'
    digest: sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
`, []W{
			{"docker", "", "docker.gitea.com/gitea", "1.21.4-rootless", nil},
			{"docker", "", "docker.io/grafana/grafana", "10.2.2", nil},
			{"docker", "", "ghcr.io/kubereboot/kured", "1.14.2", map[string]string{"digest": "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}},
		}},
		{"image lists, tag@digest string, unicode before", `# Größe: the umlauts shift rune columns against bytes
sidecars:
  - name: exporter
    image: "quay.io/prometheus/node-exporter:v1.7.0@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  - {name: tool, image: busybox:1.36}
`, []W{
			{"docker", "", "quay.io/prometheus/node-exporter", "v1.7.0", map[string]string{"digest": "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}},
			{"docker", "", "busybox", "1.36", nil},
		}},
		{"not images: no tag, templates, git repositories, latest untagged", `postgresql:
  image:
    tag: 16.1.0-debian-11-r20
source:
  repository: https://github.com/example/app
  tag: v1.0.0
tmpl:
  image: "{{ .Values.registry }}/app:1.0"
plain:
  image: nginx
digestOnly:
  image: nginx@sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc
multiline:
  image: >-
    nginx:1.25
`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			deps, err := helmvalues.Extractor{}.Extract("apps/x/values.yaml", []byte(tt.content))
			if err != nil {
				t.Fatal(err)
			}
			extracttest.Check(t, "apps/x/values.yaml", "helm-values", tt.content, deps, tt.want)
		})
	}
}

func TestMatch(t *testing.T) {
	e := helmvalues.Extractor{}
	for p, want := range map[string]bool{
		"values.yaml": true, "a/values.yml": true, "a/values-prod.yaml": true, "bootstrap/argocd-values.yaml": true,
		"a/Chart.yaml": false, "a/deployment.yaml": false, "a/myvalues.txt": false,
	} {
		if got := e.Match(p); got != want {
			t.Errorf("Match(%s) = %v", p, got)
		}
	}
}
