package woodpecker_test

import (
	"testing"

	"hl.dev/hl/bot/extract/internal/extracttest"
	"hl.dev/hl/bot/extract/woodpecker"
)

type W = extracttest.Want

func TestExtract(t *testing.T) {
	content := `when:
  - event: pull_request
steps:
  validate:
    image: ghcr.io/hl-dev/hl:v0.1.0
    commands: [hl validate]
  lint:
    image: golangci/golangci-lint:v1.55.2-alpine
services:
  - name: db
    image: postgres:16
`
	deps, err := woodpecker.Extractor{}.Extract(".woodpecker/validate.yaml", []byte(content))
	if err != nil {
		t.Fatal(err)
	}
	extracttest.Check(t, ".woodpecker/validate.yaml", "woodpecker", content, deps, []W{
		{"docker", "", "ghcr.io/hl-dev/hl", "v0.1.0", nil},
		{"docker", "", "golangci/golangci-lint", "v1.55.2-alpine", nil},
		{"docker", "", "postgres", "16", nil},
	})
}
