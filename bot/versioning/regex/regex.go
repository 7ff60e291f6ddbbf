// Package regex is the scheme for tags no built-in scheme reads, after
// Renovate's regex versioning: a pattern (RE2, anchored by its author)
// with named groups picks the numbers out of a tag. Groups major, minor,
// patch, build and revision are numbers compared in that order;
// prerelease marks an unstable version (ordered below the release it
// precedes); compatibility must be equal for two tags to replace each
// other. linuxserver's 4.0.5-ls219 is
//
//	^(?<major>\d+)\.(?<minor>\d+)\.(?<patch>\d+)-ls(?<build>\d+)$
//
// and bitnami's 1.25.3-debian-12-r5 is
//
//	^(?<major>\d+)\.(?<minor>\d+)\.(?<patch>\d+)-(?<compatibility>.+)-r(?<build>\d+)$
package regex

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"hl.dev/hl/bot/versioning/kubernetes"
)

// Prefix starts a regex scheme's name: "regex:<pattern>".
const Prefix = "regex:"

// Groups are the named groups a pattern may use.
var Groups = []string{"major", "minor", "patch", "build", "revision", "prerelease", "compatibility"}

// numeric are the groups compared as numbers, in order.
var numeric = []string{"major", "minor", "patch", "build", "revision"}

// Scheme is one compiled pattern.
type Scheme struct {
	name string
	re   *regexp.Regexp
	idx  map[string]int
}

// New compiles a pattern: it must compile as RE2 (Go accepts the
// (?<name>…) groups Renovate's JavaScript patterns use), name a major
// group and use no group name but Groups.
func New(pattern string) (*Scheme, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	s := &Scheme{name: Prefix + pattern, re: re, idx: map[string]int{}}
	for i, n := range re.SubexpNames() {
		if n == "" {
			continue
		}
		known := false
		for _, g := range Groups {
			known = known || g == n
		}
		if !known {
			return nil, fmt.Errorf("group %q is none of %s", n, strings.Join(Groups, ", "))
		}
		s.idx[n] = i
	}
	if _, ok := s.idx["major"]; !ok {
		return nil, errors.New("no (?<major>…) group")
	}
	return s, nil
}

// Name is "regex:" and the pattern.
func (s *Scheme) Name() string { return s.name }

type parsed struct {
	nums        [5]int
	pre, compat string
	present     [5]bool
}

func (s *Scheme) parse(v string) (parsed, bool) {
	m := s.re.FindStringSubmatch(v)
	if m == nil {
		return parsed{}, false
	}
	var p parsed
	for i, g := range numeric {
		j, ok := s.idx[g]
		if !ok || m[j] == "" {
			continue
		}
		n, err := strconv.Atoi(m[j])
		if err != nil || len(m[j]) > 9 {
			return parsed{}, false
		}
		p.nums[i], p.present[i] = n, true
	}
	if !p.present[0] {
		return parsed{}, false
	}
	if j, ok := s.idx["prerelease"]; ok {
		p.pre = m[j]
	}
	if j, ok := s.idx["compatibility"]; ok {
		p.compat = m[j]
	}
	return p, true
}

// Valid reports whether v matches the pattern with a numeric major.
func (s *Scheme) Valid(v string) bool { _, ok := s.parse(v); return ok }

// Compare orders the numbers, then a release above its pre-releases.
func (s *Scheme) Compare(a, b string) int {
	x, okx := s.parse(a)
	y, oky := s.parse(b)
	switch {
	case !okx && !oky:
		return strings.Compare(a, b)
	case !okx:
		return -1
	case !oky:
		return 1
	}
	for i := range x.nums {
		if x.nums[i] != y.nums[i] {
			if x.nums[i] < y.nums[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case x.pre == y.pre:
		return strings.Compare(x.compat, y.compat)
	case x.pre == "":
		return 1
	case y.pre == "":
		return -1
	}
	return strings.Compare(x.pre, y.pre)
}

// UpdateType: major, minor, and patch for anything smaller (a new build
// of the same version is a patch).
func (s *Scheme) UpdateType(current, candidate string) string {
	x, _ := s.parse(current)
	y, _ := s.parse(candidate)
	return kubernetes.TypeOf(x.nums[0], x.nums[1], y.nums[0], y.nums[1])
}

// IsPrerelease reports a non-empty prerelease group.
func (s *Scheme) IsPrerelease(v string) bool {
	p, ok := s.parse(v)
	return ok && p.pre != ""
}

// Compatible: both match and their compatibility groups are equal.
func (s *Scheme) Compatible(current, candidate string) bool {
	x, okx := s.parse(current)
	y, oky := s.parse(candidate)
	return okx && oky && x.compat == y.compat
}
