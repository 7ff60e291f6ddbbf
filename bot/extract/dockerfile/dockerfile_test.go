package dockerfile_test

import (
	"testing"

	"hl.dev/hl/bot/extract/dockerfile"
	"hl.dev/hl/bot/extract/internal/extracttest"
)

type W = extracttest.Want

func TestExtract(t *testing.T) {
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tt := range []struct {
		name, content string
		want          []W
	}{
		{"stages, flags, digest, scratch", `# syntax=docker/dockerfile:1
FROM --platform=$BUILDPLATFORM golang:1.22.3-alpine AS build
RUN go build ./...
from build AS test
FROM gcr.io/distroless/static:nonroot@` + digest + `
FROM scratch
`, []W{
			{"docker", "", "golang", "1.22.3-alpine", nil},
			{"docker", "", "gcr.io/distroless/static", "nonroot", map[string]string{"digest": digest}},
		}},
		{"global ARG defaults used in FROM", `ARG NODE_VERSION=20.11.1
ARG BASE="ghcr.io/linuxserver/baseimage-alpine:3.19-ls12" OTHER=x
ARG SUFFIXED=20.11.1
FROM node:${NODE_VERSION} AS web
FROM $BASE
FROM node:${SUFFIXED}-alpine
ARG LATE=1.0.0
FROM busybox:${LATE}
FROM node:$NODE_VERSION
`, []W{
			{"docker", "", "node", "20.11.1", nil},
			{"docker", "", "ghcr.io/linuxserver/baseimage-alpine", "3.19-ls12", nil},
		}},
		{"untagged and variables the bot cannot edit", "FROM alpine\nFROM ${REGISTRY}/app:1.2.3\nFROM app:${UNSET}\n", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			deps, err := dockerfile.Extractor{}.Extract("build/Dockerfile", []byte(tt.content))
			if err != nil {
				t.Fatal(err)
			}
			extracttest.Check(t, "build/Dockerfile", "dockerfile", tt.content, deps, tt.want)
		})
	}
}

func TestMatch(t *testing.T) {
	e := dockerfile.Extractor{}
	for p, want := range map[string]bool{
		"Dockerfile": true, "a/Containerfile": true, "Dockerfile.dev": true, "web.Dockerfile": true,
		"Dockerfile.md": true, "a/dockerfile": false, "docs/Dockerfiles.txt": false,
	} {
		if got := e.Match(p); got != want {
			t.Errorf("Match(%s) = %v", p, got)
		}
	}
}
