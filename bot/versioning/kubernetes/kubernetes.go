// Package kubernetes is the scheme of Kubernetes versions and the
// distributions that build on them: v1.30.4, v1.31.0-rc.1, 1.30.4 (kubectl
// images), v1.30.4-k3s1 (rancher/k3s image tags), v1.30.4+rke2r1. Beyond
// ordering, it keeps upgrades to one minor version at a time: Kubernetes'
// version skew policy supports upgrading a cluster from 1.30 to 1.31, not
// to 1.32, so a PR from v1.29 to v1.31 would be one nobody can apply.
package kubernetes

import (
	"regexp"
	"strconv"
	"strings"

	"hl.dev/hl/bot"
)

// Name of the scheme.
const Name = "kubernetes"

// Scheme implements versioning.Scheme and versioning.Stepwise.
type Scheme struct{}

// Name returns "kubernetes".
func (Scheme) Name() string { return Name }

var re = regexp.MustCompile(`^(v?)(\d+)\.(\d+)\.(\d+)(?:-(alpha|beta|rc)\.?(\d+))?(?:([+-])([a-z]+[a-z0-9]*?)(\d+))?$`)

// Version is a parsed version. Pre is "" for a release; Flavour is the
// distribution's build suffix (sep and name, "+k3s", "-k3s", "+rke2r")
// and Build its number.
type Version struct {
	V                   bool
	Major, Minor, Patch int
	Pre                 string
	PreN                int
	Flavour             string
	Build               int
}

// Parse returns the version; ok is false for anything else.
func Parse(s string) (Version, bool) {
	m := re.FindStringSubmatch(s)
	if m == nil {
		return Version{}, false
	}
	n := func(s string) int { v, _ := strconv.Atoi(s); return v }
	if len(m[2]) > 6 || len(m[3]) > 6 || len(m[4]) > 6 {
		return Version{}, false
	}
	return Version{V: m[1] == "v", Major: n(m[2]), Minor: n(m[3]), Patch: n(m[4]), Pre: m[5], PreN: n(m[6]), Flavour: m[7] + m[8], Build: n(m[9])}, true
}

// Valid reports a version.
func (Scheme) Valid(v string) bool { _, ok := Parse(v); return ok }

var preRank = map[string]int{"alpha": 1, "beta": 2, "rc": 3, "": 4}

// Compare orders the Kubernetes version, a release above its
// pre-releases, then the distribution build.
func (Scheme) Compare(a, b string) int {
	x, okx := Parse(a)
	y, oky := Parse(b)
	switch {
	case !okx && !oky:
		return strings.Compare(a, b)
	case !okx:
		return -1
	case !oky:
		return 1
	}
	for _, p := range [][2]int{{x.Major, y.Major}, {x.Minor, y.Minor}, {x.Patch, y.Patch}, {preRank[x.Pre], preRank[y.Pre]}, {x.PreN, y.PreN}, {x.Build, y.Build}} {
		if p[0] != p[1] {
			if p[0] < p[1] {
				return -1
			}
			return 1
		}
	}
	return strings.Compare(x.Flavour, y.Flavour)
}

// UpdateType: major, minor, and patch for a patch or a new build.
func (Scheme) UpdateType(current, candidate string) string {
	x, _ := Parse(current)
	y, _ := Parse(candidate)
	return TypeOf(x.Major, x.Minor, y.Major, y.Minor)
}

// TypeOf is the update type from one major.minor to another: major,
// minor, or patch for anything smaller (the rule the k3s and regex
// schemes share).
func TypeOf(curMajor, curMinor, major, minor int) string {
	switch {
	case curMajor != major:
		return bot.UpdateMajor
	case curMinor != minor:
		return bot.UpdateMinor
	}
	return bot.UpdatePatch
}

// IsPrerelease reports alpha, beta and rc versions.
func (Scheme) IsPrerelease(v string) bool {
	x, ok := Parse(v)
	return ok && x.Pre != ""
}

// Compatible: the same v prefix and the same distribution flavour.
func (Scheme) Compatible(current, candidate string) bool {
	x, okx := Parse(current)
	y, oky := Parse(candidate)
	return okx && oky && x.V == y.V && x.Flavour == y.Flavour
}

// Reachable reports whether candidate is at most one minor version ahead
// of current (a patch, a build, or the next minor of the same major).
func (Scheme) Reachable(current, candidate string) bool {
	x, okx := Parse(current)
	y, oky := Parse(candidate)
	return okx && oky && MinorStep(x.Major, x.Minor, y.Major, y.Minor)
}

// MinorStep reports whether y.x is at most one minor ahead of the same
// major: the rule the k3s scheme shares.
func MinorStep(curMajor, curMinor, major, minor int) bool {
	return major == curMajor && minor <= curMinor+1
}
