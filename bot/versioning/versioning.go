// Package versioning owns how the bot orders versions and classifies
// updates: the Scheme interface (one implementation per scheme, like
// Renovate's versioning modules), the registry, and the default scheme of
// each datasource.
package versioning

import (
	"fmt"
	"strings"
	"sync"

	"hl.dev/hl/bot/versioning/docker"
	"hl.dev/hl/bot/versioning/k3s"
	"hl.dev/hl/bot/versioning/kubernetes"
	"hl.dev/hl/bot/versioning/loose"
	"hl.dev/hl/bot/versioning/regex"
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

// Stepwise is implemented by schemes whose upgrades may not skip a minor
// version (Kubernetes and k3s: the version skew policy allows one minor
// at a time). Candidates current cannot reach in one step are not
// proposed; the next run proposes the next minor once this one merged.
type Stepwise interface {
	Reachable(current, candidate string) bool
}

// Default is the scheme used when neither the dependency nor its
// datasource names one.
const Default = semver.Name

// All returns every registered scheme with a fixed name; regex schemes
// are made from their pattern by Get.
func All() []Scheme {
	return []Scheme{semver.Scheme{}, docker.Scheme{}, k3s.Scheme{}, kubernetes.Scheme{}, loose.Scheme{}}
}

// Names lists what a versioning setting may say: every scheme of All and
// "regex:<pattern>".
func Names() []string {
	var out []string
	for _, s := range All() {
		out = append(out, s.Name())
	}
	return append(out, regex.Prefix+"<pattern>")
}

// compiled keeps regex schemes by name: a run asks for the same one for
// every dependency a rule matches.
var compiled sync.Map

// Get returns the scheme called name; "regex:<pattern>" compiles the
// pattern (false when it is not a valid one, see Check).
func Get(name string) (Scheme, bool) {
	if pattern, ok := strings.CutPrefix(name, regex.Prefix); ok {
		if s, ok := compiled.Load(name); ok {
			return s.(Scheme), true
		}
		s, err := regex.New(pattern)
		if err != nil {
			return nil, false
		}
		compiled.Store(name, Scheme(s))
		return s, true
	}
	for _, s := range All() {
		if s.Name() == name {
			return s, true
		}
	}
	return nil, false
}

// Check explains why name is not a scheme (nil when it is one).
func Check(name string) error {
	if pattern, ok := strings.CutPrefix(name, regex.Prefix); ok {
		_, err := regex.New(pattern)
		return err
	}
	if _, ok := Get(name); !ok {
		return fmt.Errorf("unknown versioning %q; one of %s", name, strings.Join(Names(), ", "))
	}
	return nil
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
	"fedora-netboot":  loose.Name,
}
