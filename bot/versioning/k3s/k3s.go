// Package k3s is the k3s release scheme vX.Y.Z[-rcN]+k3sN: semantic
// versioning on the Kubernetes version, then the k3s build number, so
// v1.33.5+k3s1 < v1.33.5+k3s2 < v1.34.0+k3s1 (plain semver ignores build
// metadata and cannot order the first two). Upgrades go one Kubernetes
// minor at a time (see bot/versioning/kubernetes).
package k3s

import (
	"regexp"
	"strconv"

	"hl.dev/hl/bot/versioning/kubernetes"
)

// Name of the scheme.
const Name = "k3s"

// Scheme implements versioning.Scheme.
type Scheme struct{}

// Name returns "k3s".
func (Scheme) Name() string { return Name }

var re = regexp.MustCompile(`^v(\d+)\.(\d+)\.(\d+)(?:-rc(\d+))?\+k3s(\d+)$`)

// Version is a parsed k3s version; RC is 0 for a release.
type Version struct{ Major, Minor, Patch, RC, Build int }

// Parse returns the version; ok is false for anything else.
func Parse(s string) (Version, bool) {
	m := re.FindStringSubmatch(s)
	if m == nil {
		return Version{}, false
	}
	n := func(s string) int { v, _ := strconv.Atoi(s); return v }
	return Version{n(m[1]), n(m[2]), n(m[3]), n(m[4]), n(m[5])}, true
}

// Valid reports a k3s version.
func (Scheme) Valid(v string) bool { _, ok := Parse(v); return ok }

// Compare orders Kubernetes version, then release above rc, then build.
func (Scheme) Compare(a, b string) int {
	x, okx := Parse(a)
	y, oky := Parse(b)
	switch {
	case !okx && !oky:
		return 0
	case !okx:
		return -1
	case !oky:
		return 1
	}
	for _, p := range [][2]int{{x.Major, y.Major}, {x.Minor, y.Minor}, {x.Patch, y.Patch}} {
		if p[0] != p[1] {
			return cmp(p[0], p[1])
		}
	}
	if x.RC != y.RC {
		switch {
		case x.RC == 0:
			return 1
		case y.RC == 0:
			return -1
		}
		return cmp(x.RC, y.RC)
	}
	return cmp(x.Build, y.Build)
}

func cmp(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// UpdateType: Kubernetes major/minor/patch; a new k3s build of the same
// Kubernetes version is a patch.
func (Scheme) UpdateType(current, candidate string) string {
	x, _ := Parse(current)
	y, _ := Parse(candidate)
	return kubernetes.TypeOf(x.Major, x.Minor, y.Major, y.Minor)
}

// IsPrerelease reports a release candidate.
func (Scheme) IsPrerelease(v string) bool {
	x, ok := Parse(v)
	return ok && x.RC > 0
}

// Compatible: every k3s version.
func (Scheme) Compatible(_, _ string) bool { return true }

// Reachable keeps k3s upgrades to one Kubernetes minor at a time, as the
// Kubernetes version skew policy requires.
func (Scheme) Reachable(current, candidate string) bool {
	x, okx := Parse(current)
	y, oky := Parse(candidate)
	return okx && oky && kubernetes.MinorStep(x.Major, x.Minor, y.Major, y.Minor)
}
