package validate

import (
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"

	"hl.dev/hl/internal/chartcache"
	"hl.dev/hl/internal/config"
)

// chartDep is one dependency of a wrapper chart's Chart.yaml.
type chartDep struct {
	Name, Version, Repository, Alias, Condition string
	// File is the repo-relative Chart.yaml and Line the dependency's line.
	File string
	Line int
	// VersionLine is the line of the version field (for unpinned-chart).
	VersionLine int
}

func (d chartDep) isOCI() bool { return strings.HasPrefix(d.Repository, "oci://") }

func (d chartDep) isLocal() bool {
	return d.Repository == "" || strings.HasPrefix(d.Repository, "file://")
}

// CachePath is where the chart cache keeps name-version from repoURL (the
// layout is internal/chartcache's).
func CachePath(cacheDir, repoURL, name, version string) string {
	return chartcache.Path(cacheDir, repoURL, name, version)
}

// exactVersion reports whether v pins one version (a semver, optionally
// with a leading v), not a range.
func exactVersion(v string) bool {
	return v != "" && isPlainSemver(v)
}

func isPlainSemver(v string) bool {
	_, err := semver.StrictNewVersion(strings.TrimPrefix(v, "v"))
	return err == nil
}

// findCached returns the cached archive of dep and its version: the exact
// file for a pinned version, else the highest cached version matching the
// constraint.
func findCached(cacheDir string, dep chartDep) (string, string, bool) {
	if exactVersion(dep.Version) {
		p := CachePath(cacheDir, dep.Repository, dep.Name, dep.Version)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, dep.Version, true
		}
		return "", "", false
	}
	c, err := semver.NewConstraint(orStar(dep.Version))
	if err != nil {
		return "", "", false
	}
	files, _ := filepath.Glob(filepath.Join(cacheDir, chartcache.RepoKey(dep.Repository), dep.Name+"-*.tgz"))
	type cand struct {
		v    *semver.Version
		path string
	}
	var cands []cand
	for _, f := range files {
		vs := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), dep.Name+"-"), ".tgz")
		v, err := semver.NewVersion(vs)
		if err != nil || !c.Check(v) {
			continue
		}
		cands = append(cands, cand{v, f})
	}
	if len(cands) == 0 {
		return "", "", false
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].v.GreaterThan(cands[j].v) })
	return cands[0].path, cands[0].v.Original(), true
}

func orStar(v string) string {
	if strings.TrimSpace(v) == "" {
		return "*"
	}
	return v
}

// applyMirrors rewrites u by the longest matching mirror prefix.
func applyMirrors(u string, mirrors []config.Mirror) string {
	if to, ok := config.RewritePrefix(u, mirrors); ok {
		return to
	}
	return u
}

// writeAtomic writes data to path through a temporary file in its folder.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}
