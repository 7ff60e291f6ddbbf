package compose_test

import (
	"testing"

	"hl.dev/hl/bot/extract/compose"
	"hl.dev/hl/bot/extract/internal/extracttest"
)

type W = extracttest.Want

func TestExtract(t *testing.T) {
	content := `name: media
services:
  jellyfin:
    image: lscr.io/linuxserver/jellyfin:10.8.13-ls219
    volumes: [./config:/config]
  db:
    image: "postgres:16.2"
  cache:
    image: redis:${REDIS_TAG:-7.2}
  built:
    build: .
  worker:
    image: ghcr.io/example/worker
x-anchors:
  image: not-a-service:1.0.0
`
	deps, err := compose.Extractor{}.Extract("compose.yaml", []byte(content))
	if err != nil {
		t.Fatal(err)
	}
	extracttest.Check(t, "compose.yaml", "docker-compose", content, deps, []W{
		{"docker", "", "lscr.io/linuxserver/jellyfin", "10.8.13-ls219", nil},
		{"docker", "", "postgres", "16.2", nil},
	})
}

func TestMatch(t *testing.T) {
	e := compose.Extractor{}
	for p, want := range map[string]bool{
		"compose.yaml": true, "stack/docker-compose.yml": true, "docker-compose.prod.yaml": true,
		"composer.json": false, "compose.md": false, "my-compose.yaml": false,
	} {
		if got := e.Match(p); got != want {
			t.Errorf("Match(%s) = %v", p, got)
		}
	}
}
