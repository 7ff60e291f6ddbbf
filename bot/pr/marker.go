package pr

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"

	"hl.dev/hl/bot"
)

// Marker is the machine-readable state hidden in a PR body.
type Marker struct {
	Branch string      `json:"branch"`
	Type   string      `json:"type"`
	Deps   []MarkerDep `json:"deps"`
	// Superseded is set by the bot when it closes the PR itself, so a
	// later run can tell its own closes from a human's.
	Superseded bool `json:"superseded,omitempty"`
}

// MarkerDep is one update in the marker.
type MarkerDep struct {
	Package string `json:"package"`
	File    string `json:"file"`
	From    string `json:"from"`
	To      string `json:"to"`
	Type    string `json:"type"`
}

// MarkerOf describes b.
func MarkerOf(b Branch) Marker {
	m := Marker{Branch: b.Name, Type: b.Type}
	for _, u := range b.Updates {
		m.Deps = append(m.Deps, MarkerDep{Package: u.Dependency.Package, File: u.Dependency.File, From: u.Dependency.Current, To: u.NewValue, Type: u.Type})
	}
	return m
}

// SameVersions reports whether two markers propose the same new versions
// for the same packages (the old versions may differ after a rebase).
func (m Marker) SameVersions(o Marker) bool {
	key := func(m Marker) []string {
		var out []string
		for _, d := range m.Deps {
			out = append(out, d.Package+"@"+d.To)
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	return slices.Equal(key(m), key(o))
}

// Render is the HTML comment form.
func (m Marker) Render() string {
	b, _ := json.Marshal(m)
	// "--" may not appear inside an HTML comment.
	return "<!-- hl-bot: " + strings.ReplaceAll(string(b), "--", `-\u002d`) + " -->"
}

var markerRE = regexp.MustCompile(`<!-- hl-bot: (\{.*?\}) -->`)

// ParseMarker finds the marker in a PR body.
func ParseMarker(body string) (Marker, bool) {
	var m Marker
	sub := markerRE.FindStringSubmatch(body)
	if sub == nil || json.Unmarshal([]byte(sub[1]), &m) != nil {
		return Marker{}, false
	}
	return m, true
}

// WithMarker replaces (or appends) the marker in body.
func WithMarker(body string, m Marker) string {
	if markerRE.MatchString(body) {
		return markerRE.ReplaceAllLiteralString(body, m.Render())
	}
	return body + "\n\n" + m.Render() + "\n"
}

var _ = bot.UpdateMajor
