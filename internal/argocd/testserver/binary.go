package testserver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"hl.dev/hl/internal/testharness"
)

// Version is the Argo CD release the harness builds and runs.
// scripts/build-argocd.sh reads this line, so it is the only place the
// version is written.
const Version = "3.2.11"

const (
	// EnvCache overrides the cache root used by scripts/build-argocd.sh.
	EnvCache = "HL_ARGOCD_CACHE"
	// EnvBinary names an argocd multi-call binary to use instead of the
	// cached build (helm and kustomize are still looked for beside it).
	EnvBinary = "HL_ARGOCD_BIN"
)

// ErrNoBinary is returned (wrapped) when a binary of the build is missing.
var ErrNoBinary = errors.New("argocd/helm/kustomize binary not found; run `make argocd` (scripts/build-argocd.sh) to build them")

// Binaries are the executables and the module source of one build.
type Binaries struct {
	// Argocd is the multi-call binary; the component is picked by
	// ARGOCD_BINARY_NAME.
	Argocd string
	// Helm and Kustomize are the tools repo-server runs, put on its PATH.
	Helm, Kustomize string
	// SourceDir is the github.com/argoproj/argo-cd/v3 module folder
	// (manifests/install.yaml, manifests/crds/).
	SourceDir string
}

// FindBinaries returns the cached build: $HL_ARGOCD_BIN or
// <cache>/v<Version>/argocd, with helm, kustomize and source-dir beside it.
// The cache root is $HL_ARGOCD_CACHE, else <repo root>/.cache/argocd where
// the repo root is the nearest folder above the working directory that
// holds go.mod.
func FindBinaries() (Binaries, error) {
	var dir string
	if p := os.Getenv(EnvBinary); p != "" {
		dir = filepath.Dir(p)
	} else {
		root, err := testharness.CacheRoot(EnvCache, "argocd")
		if err != nil {
			return Binaries{}, err
		}
		dir = filepath.Join(root, "v"+Version)
	}
	b := Binaries{
		Argocd:    filepath.Join(dir, "argocd"),
		Helm:      filepath.Join(dir, "helm"),
		Kustomize: filepath.Join(dir, "kustomize"),
	}
	if p := os.Getenv(EnvBinary); p != "" {
		b.Argocd = p
	}
	for _, p := range []string{b.Argocd, b.Helm, b.Kustomize} {
		if err := testharness.CheckExecutable(p); err != nil {
			if errors.Is(err, testharness.ErrNoBinary) {
				err = ErrNoBinary
			}
			return Binaries{}, fmt.Errorf("%w (looked for %s)", err, p)
		}
	}
	src, err := os.ReadFile(filepath.Join(dir, "source-dir"))
	if err != nil {
		return Binaries{}, fmt.Errorf("%w (no source-dir beside %s: %v)", ErrNoBinary, b.Argocd, err)
	}
	b.SourceDir = strings.TrimSpace(string(src))
	if _, err := os.Stat(filepath.Join(b.SourceDir, "manifests", "install.yaml")); err != nil {
		return Binaries{}, fmt.Errorf("argo-cd module source %q (from %s): %w; run `make argocd`", b.SourceDir, filepath.Join(dir, "source-dir"), err)
	}
	return b, nil
}
