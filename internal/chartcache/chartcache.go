// Package chartcache owns the layout of hl's Helm chart cache, the folder
// `hl charts pull` fills and `hl validate` renders from:
//
//	<cache>/<first 16 hex digits of sha256(repository URL)>/<name>-<version>.tgz
//
// The repository URL is the one written in Chart.yaml or the
// kustomization (before spec.mirrors), trimmed of spaces and trailing
// slashes, so one chart has one place however a mirror rewrites where it is
// fetched from. It is a leaf package so that the validator and the test
// fixtures (internal/testcharts) share the layout without the fixtures
// importing a capability package.
package chartcache

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"
)

// NormRepo is a repository URL as used for cache keys.
func NormRepo(u string) string { return strings.TrimRight(strings.TrimSpace(u), "/") }

// RepoKey is the cache folder of a repository.
func RepoKey(repoURL string) string {
	sum := sha256.Sum256([]byte(NormRepo(repoURL)))
	return hex.EncodeToString(sum[:])[:16]
}

// Path is where the cache keeps chart name at version from repoURL.
func Path(cacheDir, repoURL, name, version string) string {
	return filepath.Join(cacheDir, RepoKey(repoURL), name+"-"+version+".tgz")
}
