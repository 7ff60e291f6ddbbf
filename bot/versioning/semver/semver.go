// Package semver is the semantic-versioning scheme (Helm charts, release
// tags): Masterminds/semver ordering, with the ranges Helm accepts in
// Chart.yaml (^, ~, >=, x-ranges) rewritten around a new version.
package semver

import (
	"fmt"
	"regexp"
	"strings"

	msv "github.com/Masterminds/semver/v3"

	"hl.dev/hl/bot"
)

// Name of the scheme.
const Name = "semver"

// Scheme implements versioning.Scheme and versioning.Ranges.
type Scheme struct{}

// Name returns "semver".
func (Scheme) Name() string { return Name }

// strict: a full or partial version with optional v prefix, nothing else
// (Masterminds alone accepts "1" and "latest-ish" shapes we do not want).
var strict = regexp.MustCompile(`^v?\d+(\.\d+){0,2}(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

// Parse returns the version or nil.
func Parse(v string) *msv.Version {
	if !strict.MatchString(v) {
		return nil
	}
	sv, err := msv.NewVersion(v)
	if err != nil {
		return nil
	}
	return sv
}

// Valid reports a version.
func (Scheme) Valid(v string) bool { return Parse(v) != nil }

// Compare orders versions; invalid ones sort first.
func (Scheme) Compare(a, b string) int {
	va, vb := Parse(a), Parse(b)
	switch {
	case va == nil && vb == nil:
		return strings.Compare(a, b)
	case va == nil:
		return -1
	case vb == nil:
		return 1
	}
	if c := va.Compare(vb); c != 0 {
		return c
	}
	// Equal by precedence: build metadata still orders deterministically.
	return strings.Compare(va.Metadata(), vb.Metadata())
}

// UpdateType classifies by the first differing component.
func (Scheme) UpdateType(current, candidate string) string {
	return Classify(Parse(current), Parse(candidate))
}

// Classify is UpdateType on parsed versions.
func Classify(a, b *msv.Version) string {
	switch {
	case a == nil || b == nil:
		return bot.UpdateMajor
	case a.Major() != b.Major():
		return bot.UpdateMajor
	case a.Minor() != b.Minor():
		return bot.UpdateMinor
	}
	return bot.UpdatePatch
}

// IsPrerelease reports a pre-release component.
func (Scheme) IsPrerelease(v string) bool {
	sv := Parse(v)
	return sv != nil && sv.Prerelease() != ""
}

// Compatible: any two versions.
func (Scheme) Compatible(_, _ string) bool { return true }

// IsRange reports a constraint that is not a single version.
func (Scheme) IsRange(v string) bool {
	if Parse(v) != nil {
		return false
	}
	_, err := msv.NewConstraint(v)
	return err == nil
}

// Matches reports whether version satisfies rng.
func (Scheme) Matches(version, rng string) bool {
	c, err := msv.NewConstraint(rng)
	sv := Parse(version)
	if err != nil || sv == nil {
		return false
	}
	return c.Check(sv)
}

// simple is one operator and one (possibly partial or wildcard) version.
var simple = regexp.MustCompile(`^(\^|~>|~|>=|=|)\s*(v?)(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?$`)

var firstVersion = regexp.MustCompile(`v?\d+(\.\d+){0,2}`)

// Floor returns the lowest version a simple range admits.
func (Scheme) Floor(rng string) (string, bool) {
	m := simple.FindStringSubmatch(strings.TrimSpace(rng))
	if m == nil {
		// ">=1.2.0 <2.0.0" and friends: the first version is the floor.
		if f := firstVersion.FindString(rng); f != "" && strings.HasPrefix(strings.TrimSpace(rng), ">") {
			return f, true
		}
		return "", false
	}
	parts := []string{m[3], m[4], m[5]}
	for i, p := range parts {
		if p == "" || p == "x" || p == "X" || p == "*" {
			parts[i] = "0"
		}
	}
	return strings.Join(parts, "."), true
}

// Replace rewrites a simple range around version, keeping the operator and
// how many components (and which wildcards) were written.
func (Scheme) Replace(rng, version string) (string, error) {
	m := simple.FindStringSubmatch(strings.TrimSpace(rng))
	nv := Parse(version)
	if m == nil || nv == nil {
		return "", fmt.Errorf("cannot rewrite range %q for %s", rng, version)
	}
	newParts := []string{fmt.Sprint(nv.Major()), fmt.Sprint(nv.Minor()), fmt.Sprint(nv.Patch())}
	var out []string
	for i, p := range []string{m[3], m[4], m[5]} {
		switch p {
		case "":
		case "x", "X", "*":
			out = append(out, p)
		default:
			out = append(out, newParts[i])
		}
	}
	return m[1] + m[2] + strings.Join(out, "."), nil
}
