package actions_test

import (
	"testing"

	"hl.dev/hl/bot/extract/actions"
	"hl.dev/hl/bot/extract/internal/extracttest"
)

type W = extracttest.Want

func TestExtract(t *testing.T) {
	content := `name: ci
on: [push]
jobs:
  test:
    runs-on: ubuntu-latest
    container: node:20.11.1-bookworm
    services:
      db:
        image: postgres:16.2
    steps:
      - uses: actions/checkout@v4
      - uses: "actions/setup-go@v5.0.1"
      - uses: https://gitea.example.org/infra/deploy-action@v1.2.0
      - uses: org/monorepo/sub/action@v2
      - uses: docker://alpine:3.19
      - uses: ./local-action
      - uses: actions/cache@main
      - uses: actions/upload-artifact@0123456789abcdef0123456789abcdef01234567
      - run: echo hi
  release:
    uses: infra/workflows/.gitea/workflows/release.yaml@v3.1.0
    container:
      image: ghcr.io/example/builder:1.4.0
`
	deps, err := actions.Extractor{}.Extract(".gitea/workflows/ci.yaml", []byte(content))
	if err != nil {
		t.Fatal(err)
	}
	extracttest.Check(t, ".gitea/workflows/ci.yaml", "gitea-actions", content, deps, []W{
		{"docker", "", "node", "20.11.1-bookworm", nil},
		{"docker", "", "postgres", "16.2", nil},
		{"git-tags", "", "https://github.com/actions/checkout", "v4", nil},
		{"git-tags", "", "https://github.com/actions/setup-go", "v5.0.1", nil},
		{"git-tags", "", "https://gitea.example.org/infra/deploy-action", "v1.2.0", nil},
		{"git-tags", "", "https://github.com/org/monorepo", "v2", nil},
		{"docker", "", "alpine", "3.19", nil},
		{"git-tags", "", "https://github.com/infra/workflows", "v3.1.0", nil},
		{"docker", "", "ghcr.io/example/builder", "1.4.0", nil},
	})

	// Forgejo runners fetch owner/repo actions from data.forgejo.org.
	fj := "jobs:\n  a:\n    steps:\n      - uses: actions/checkout@v4\n"
	deps, err = actions.Extractor{}.Extract(".forgejo/workflows/a.yml", []byte(fj))
	if err != nil {
		t.Fatal(err)
	}
	extracttest.Check(t, ".forgejo/workflows/a.yml", "gitea-actions", fj, deps, []W{
		{"git-tags", "", "https://data.forgejo.org/actions/checkout", "v4", nil},
	})
}

func TestMatch(t *testing.T) {
	e := actions.Extractor{}
	for p, want := range map[string]bool{
		".gitea/workflows/ci.yaml": true, ".forgejo/workflows/x.yml": true,
		".github/workflows/ci.yaml": false, ".gitea/issue_template.yaml": false, "a/.gitea/workflows/ci.yaml": false,
	} {
		if got := e.Match(p); got != want {
			t.Errorf("Match(%s) = %v", p, got)
		}
	}
}
