// Package versioning owns how the bot orders versions and classifies
// updates: the Scheme interface (one implementation per scheme, like
// Renovate's versioning modules), the registry, and the default scheme of
// each datasource.
package versioning

import (
	"hl.dev/hl/bot/versioning/docker"
	"hl.dev/hl/bot/versioning/k3s"
	"hl.dev/hl/bot/versioning/loose"
	"hl.dev/hl/bot/versioning/semver"
)

// Scheme orders the versions of one kind of package.
type Scheme interface {
	Name() string
	// Valid reports whether v is a version of this scheme (hashes, "latest"
	// and other tags that are not versions are not).
	Valid(v string) bool
	// Compare orders two valid versions (-1, 0, 1).
	Compare(a, b string) int
	// UpdateType classifies current → candidate as bot.UpdateMajor,
	// UpdateMinor or UpdatePatch.
	UpdateType(current, candidate string) string
	// IsPrerelease reports an unstable version (rc, beta, …).
	IsPrerelease(v string) bool
	// Compatible reports whether candidate may replace current at all
	// (Docker: same suffix and number of parts, same v prefix).
	Compatible(current, candidate string) bool
}

// Ranges is implemented by schemes whose files may pin ranges
// (Chart.yaml `version: ~1.2.0`).
type Ranges interface {
	// IsRange reports whether v is a range rather than one version.
	IsRange(v string) bool
	// Matches reports whether version satisfies rng.
	Matches(version, rng string) bool
	// Floor is the lowest version rng admits; updates are classified
	// against it.
	Floor(rng string) (string, bool)
	// Replace rewrites rng around version keeping its operator and
	// precision (^1.2.0 → ^2.0.0, 1.2.x → 2.0.x); an error means the range
	// is too complex to rewrite.
	Replace(rng, version string) (string, error)
}

// Default is the scheme used when neither the dependency nor its
// datasource names one.
const Default = semver.Name

// All returns every registered scheme.
func All() []Scheme {
	return []Scheme{semver.Scheme{}, docker.Scheme{}, k3s.Scheme{}, loose.Scheme{}}
}

// Get returns the scheme called name.
func Get(name string) (Scheme, bool) {
	for _, s := range All() {
		if s.Name() == name {
			return s, true
		}
	}
	return nil, false
}

// For returns the scheme a dependency should use: its own, else its
// datasource's default, else semver.
func For(versioning, datasource string) Scheme {
	if versioning == "" {
		versioning = byDatasource[datasource]
	}
	if s, ok := Get(versioning); ok {
		return s
	}
	return semver.Scheme{}
}

var byDatasource = map[string]string{
	"helm":            semver.Name,
	"oci":             semver.Name,
	"docker":          docker.Name,
	"github-releases": semver.Name,
	"gitea-releases":  semver.Name,
	"k3s-channel":     k3s.Name,
	"debian-netboot":  loose.Name,
}
