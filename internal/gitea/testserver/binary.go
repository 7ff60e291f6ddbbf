package testserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"hl.dev/hl/internal/testharness"
)

// Version is the Gitea release the harness builds and expects to talk to.
const Version = "1.26.0"

const (
	// EnvBinary names a Gitea binary to use instead of the cached build.
	EnvBinary = "HL_GITEA_BIN"
	// EnvCache overrides the cache root used by scripts/build-gitea.sh.
	EnvCache = "HL_GITEA_CACHE"

	modulePath = "code.gitea.io/gitea"
)

// ErrNoBinary is returned (wrapped) when no Gitea binary can be found.
var ErrNoBinary = errors.New("gitea binary not found; run `make gitea` (scripts/build-gitea.sh) to build it")

// Binary returns the Gitea binary to run: $HL_GITEA_BIN if set, else
// $HL_GITEA_CACHE/v<Version>/gitea, else <repo root>/.cache/gitea/v<Version>/gitea
// where the repo root is the nearest folder above the working directory that
// holds go.mod.
func Binary() (string, error) {
	p, err := testharness.Binary(EnvBinary, EnvCache, "gitea", "v"+Version+"/gitea")
	if errors.Is(err, testharness.ErrNoBinary) {
		return "", fmt.Errorf("%w: %v", ErrNoBinary, err)
	}
	return p, err
}

// cacheDir is the versioned folder the build script writes into.
func cacheDir() (string, error) {
	root, err := testharness.CacheRoot(EnvCache, "gitea")
	return filepath.Join(root, "v"+Version), err
}

// SourceDir returns the code.gitea.io/gitea module folder, which a
// non-bindata build needs as STATIC_ROOT_PATH (templates, locales, options).
// It prefers the source-dir file the build script writes beside the cached
// binary and falls back to `go mod download`, which is fast when cached.
func SourceDir(ctx context.Context) (string, error) {
	if dir, err := cacheDir(); err == nil {
		if b, err := os.ReadFile(filepath.Join(dir, "source-dir")); err == nil {
			if src := strings.TrimSpace(string(b)); isGiteaSource(src) {
				return src, nil
			}
		}
	}
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", modulePath+"@v"+Version)
	// Outside any module on purpose: the hl go.mod need not require gitea.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s@v%s: %w: %s", modulePath, Version, err, strings.TrimSpace(stderr.String()))
	}
	var info struct{ Dir string }
	if err := json.Unmarshal(out, &info); err != nil {
		return "", fmt.Errorf("go mod download %s@v%s: decode: %w", modulePath, Version, err)
	}
	if !isGiteaSource(info.Dir) {
		return "", fmt.Errorf("go mod download %s@v%s: no source folder in %q", modulePath, Version, info.Dir)
	}
	return info.Dir, nil
}

func isGiteaSource(dir string) bool {
	if dir == "" {
		return false
	}
	_, err := os.Stat(filepath.Join(dir, "options", "locale"))
	return err == nil
}
