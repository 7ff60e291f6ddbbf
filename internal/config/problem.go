package config

import (
	"fmt"
	"sort"
	"strings"
)

// Severity of a Problem.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// Problem is one thing wrong with an hl.yaml, located by file, line,
// column and field path so editors and humans can jump to it.
type Problem struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Column   int    `json:"column"`
	Path     string `json:"path,omitempty"`
	Message  string `json:"message"`
	Severity string `json:"severity"`
}

func (p Problem) String() string {
	loc := p.File
	if p.Line > 0 {
		loc = fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
	}
	sev := ""
	if p.Severity == SeverityWarning {
		sev = "warning: "
	}
	if p.Path == "" {
		return fmt.Sprintf("%s: %s%s", loc, sev, p.Message)
	}
	return fmt.Sprintf("%s: %s%s: %s", loc, sev, p.Path, p.Message)
}

// Problems is every problem found in one pass. As an error it reports only
// when at least one problem is an error (warnings alone do not fail).
type Problems []Problem

// Errors returns the problems of severity error.
func (ps Problems) Errors() Problems {
	var out Problems
	for _, p := range ps {
		if p.Severity != SeverityWarning {
			out = append(out, p)
		}
	}
	return out
}

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// sort orders problems by position, then path, so output is stable.
func (ps Problems) sort() {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Message < b.Message
	})
}
