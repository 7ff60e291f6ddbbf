// Package loose is the fallback scheme for version strings that follow no
// standard but order naturally by their numbers, such as Debian installer
// builds (20230607+deb12u15): runs of digits compare as numbers, the rest
// as text; the first number is the major, the second the minor.
package loose

import (
	"strconv"
	"strings"

	"hl.dev/hl/bot"
)

// Name of the scheme.
const Name = "loose"

// Scheme implements versioning.Scheme.
type Scheme struct{}

// Name returns "loose".
func (Scheme) Name() string { return Name }

type token struct {
	num   int
	text  string
	isNum bool
}

func tokens(s string) []token {
	var out []token
	for s != "" {
		i := 0
		if s[0] >= '0' && s[0] <= '9' {
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				i++
			}
			n, err := strconv.Atoi(s[:i])
			if err != nil {
				return nil
			}
			out = append(out, token{num: n, isNum: true})
		} else {
			for i < len(s) && !(s[i] >= '0' && s[i] <= '9') {
				i++
			}
			out = append(out, token{text: s[:i]})
		}
		s = s[i:]
	}
	return out
}

// Valid: starts with a digit (or v and a digit) and has no spaces.
func (Scheme) Valid(v string) bool {
	v = strings.TrimPrefix(v, "v")
	return v != "" && v[0] >= '0' && v[0] <= '9' && !strings.ContainsAny(v, " \t/") && tokens(v) != nil
}

// Compare orders token by token.
func (Scheme) Compare(a, b string) int {
	ta, tb := tokens(strings.TrimPrefix(a, "v")), tokens(strings.TrimPrefix(b, "v"))
	for i := 0; i < len(ta) && i < len(tb); i++ {
		x, y := ta[i], tb[i]
		switch {
		case x.isNum && y.isNum:
			if x.num != y.num {
				if x.num < y.num {
					return -1
				}
				return 1
			}
		case x.isNum != y.isNum:
			if x.isNum {
				return 1
			}
			return -1
		default:
			if c := strings.Compare(x.text, y.text); c != 0 {
				return c
			}
		}
	}
	switch {
	case len(ta) < len(tb):
		return -1
	case len(ta) > len(tb):
		return 1
	}
	return 0
}

func numbers(v string) []int {
	var out []int
	for _, t := range tokens(strings.TrimPrefix(v, "v")) {
		if t.isNum {
			out = append(out, t.num)
		}
	}
	return out
}

// UpdateType: first number major, second minor, the rest patch.
func (Scheme) UpdateType(current, candidate string) string {
	a, b := numbers(current), numbers(candidate)
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
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

// IsPrerelease: rc/alpha/beta markers.
func (Scheme) IsPrerelease(v string) bool {
	l := strings.ToLower(v)
	return strings.Contains(l, "rc") || strings.Contains(l, "alpha") || strings.Contains(l, "beta")
}

// Compatible: the same shape of numbers and words.
func (Scheme) Compatible(current, candidate string) bool {
	ta, tb := tokens(strings.TrimPrefix(current, "v")), tokens(strings.TrimPrefix(candidate, "v"))
	if len(ta) != len(tb) {
		return false
	}
	for i := range ta {
		if ta[i].isNum != tb[i].isNum || (!ta[i].isNum && ta[i].text != tb[i].text) {
			return false
		}
	}
	return true
}
