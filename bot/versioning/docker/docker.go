// Package docker is the Docker tag scheme, after Renovate's: a tag is
// [v]N(.N)*[pre][-suffix]; only tags with the same v prefix, the same number
// of numeric parts and the same suffix (-alpine, -bookworm) are candidates
// for each other, and hash-like tags (commit SHAs, sha256-…) and words
// (latest, stable) are not versions at all.
package docker

import (
	"regexp"
	"strconv"
	"strings"

	"hl.dev/hl/bot"
)

// Name of the scheme.
const Name = "docker"

// Scheme implements versioning.Scheme.
type Scheme struct{}

// Name returns "docker".
func (Scheme) Name() string { return Name }

// Tag is a parsed tag.
type Tag struct {
	V      bool
	Parts  []int
	Pre    string // letters glued to the numbers (1.0.0rc1) or a -rc.1 style suffix
	Suffix string // flavour after '-': alpine, bookworm, debian-12
}

var (
	tagRe  = regexp.MustCompile(`^(v?)(\d+(?:\.\d+)*)([a-zA-Z]+\d*)?(?:[-_](.+))?$`)
	hashRe = regexp.MustCompile(`^[0-9a-f]{7,64}$`)
	// A suffix that is a pre-release marker, not a flavour.
	preSuffix = regexp.MustCompile(`^(?i)(alpha|beta|rc|pre|preview|dev|snapshot|nightly)[.\-]?\d*$`)
)

// Parse returns the tag's parts; ok is false for tags that are not
// versions.
func Parse(s string) (Tag, bool) {
	if hashRe.MatchString(s) && strings.ContainsAny(s, "abcdef") {
		return Tag{}, false
	}
	m := tagRe.FindStringSubmatch(s)
	if m == nil {
		return Tag{}, false
	}
	t := Tag{V: m[1] == "v", Pre: m[3], Suffix: m[4]}
	for _, p := range strings.Split(m[2], ".") {
		n, err := strconv.Atoi(p)
		if err != nil || len(p) > 9 {
			return Tag{}, false // 20-digit build numbers and the like
		}
		t.Parts = append(t.Parts, n)
	}
	if t.Pre == "" && preSuffix.MatchString(t.Suffix) {
		t.Pre, t.Suffix = t.Suffix, ""
	}
	if t.Suffix != "" && hashRe.MatchString(t.Suffix) && strings.ContainsAny(t.Suffix, "abcdef") {
		return Tag{}, false // 1.2.3-9f8e7d6: a build of a commit, not a flavour
	}
	return t, true
}

// Valid reports a version tag.
func (Scheme) Valid(v string) bool { _, ok := Parse(v); return ok }

// Compare orders numeric parts, then release above pre-release.
func (Scheme) Compare(a, b string) int {
	ta, oka := Parse(a)
	tb, okb := Parse(b)
	switch {
	case !oka && !okb:
		return strings.Compare(a, b)
	case !oka:
		return -1
	case !okb:
		return 1
	}
	for i := 0; i < max(len(ta.Parts), len(tb.Parts)); i++ {
		var x, y int
		if i < len(ta.Parts) {
			x = ta.Parts[i]
		}
		if i < len(tb.Parts) {
			y = tb.Parts[i]
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	if c := len(ta.Parts) - len(tb.Parts); c != 0 {
		return sign(c)
	}
	switch {
	case ta.Pre == "" && tb.Pre != "":
		return 1
	case ta.Pre != "" && tb.Pre == "":
		return -1
	}
	if c := naturalCompare(ta.Pre, tb.Pre); c != 0 {
		return c
	}
	return strings.Compare(ta.Suffix, tb.Suffix)
}

// UpdateType: first part major, second minor, the rest patch.
func (Scheme) UpdateType(current, candidate string) string {
	a, _ := Parse(current)
	b, _ := Parse(candidate)
	for i := 0; i < min(len(a.Parts), len(b.Parts)); i++ {
		if a.Parts[i] != b.Parts[i] {
			switch i {
			case 0:
				return bot.UpdateMajor
			case 1:
				return bot.UpdateMinor
			}
			return bot.UpdatePatch
		}
	}
	return bot.UpdatePatch
}

// IsPrerelease reports a pre-release marker.
func (Scheme) IsPrerelease(v string) bool {
	t, ok := Parse(v)
	return ok && t.Pre != ""
}

// Compatible: same v prefix, number of parts and suffix.
func (Scheme) Compatible(current, candidate string) bool {
	a, oka := Parse(current)
	b, okb := Parse(candidate)
	return oka && okb && a.V == b.V && len(a.Parts) == len(b.Parts) && a.Suffix == b.Suffix
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// naturalCompare orders strings with embedded numbers numerically
// (rc2 < rc10).
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := isDigit(a[0]), isDigit(b[0])
		if da && db {
			i, j := digits(a), digits(b)
			x, _ := strconv.Atoi(a[:i])
			y, _ := strconv.Atoi(b[:j])
			if x != y {
				return sign(x - y)
			}
			a, b = a[i:], b[j:]
			continue
		}
		if a[0] != b[0] {
			return sign(int(a[0]) - int(b[0]))
		}
		a, b = a[1:], b[1:]
	}
	return sign(len(a) - len(b))
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digits(s string) int {
	i := 0
	for i < len(s) && isDigit(s[i]) && i < 9 {
		i++
	}
	return i
}
