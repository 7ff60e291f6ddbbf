package validate

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Finding is one problem, located in the repository.
type Finding struct {
	// Policy is the id of the policy (one of Policies).
	Policy   string   `json:"policy"`
	Severity Severity `json:"severity"`
	// File is repo-relative with forward slashes. For rendered resources it
	// is the chart's Chart.yaml, a template of the wrapper chart, or the
	// kustomization's source file the resource came from.
	File string `json:"file"`
	// Line is 1-based; 0 when unknown.
	Line int `json:"line,omitempty"`
	// Resource is Kind/namespace/name (Kind/name when cluster-scoped) of the
	// manifest concerned, if any.
	Resource string `json:"resource,omitempty"`
	// Path is the field path inside the resource or file, e.g.
	// spec.template.spec.containers[0].image.
	Path string `json:"path,omitempty"`
	// Source is where a rendered resource came from: the Helm template
	// (chart/templates/x.yaml) or the kustomize origin.
	Source  string `json:"source,omitempty"`
	Message string `json:"message"`
}

// Location is file:line (or file when the line is unknown).
func (f Finding) Location() string {
	if f.Line > 0 {
		return f.File + ":" + strconv.Itoa(f.Line)
	}
	return f.File
}

func (f Finding) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s [%s] ", f.Location(), f.Severity, f.Policy)
	f.describe(&b)
	return b.String()
}

func (f Finding) describe(b *strings.Builder) {
	if f.Resource != "" {
		b.WriteString(f.Resource)
		if f.Source != "" {
			fmt.Fprintf(b, " (%s)", f.Source)
		}
		b.WriteString(": ")
	}
	if f.Path != "" {
		b.WriteString(f.Path + ": ")
	}
	b.WriteString(f.Message)
}

// Report is the outcome of Run.
type Report struct {
	// Dir is the validated repository.
	Dir      string    `json:"dir"`
	Findings []Finding `json:"findings"`
	// Counters of what was rendered and checked.
	Charts         int `json:"charts"`
	Kustomizations int `json:"kustomizations"`
	Files          int `json:"files"`
	Resources      int `json:"resources"`
}

// Errors counts error findings.
func (r *Report) Errors() int { return r.count(SeverityError) }

// Warnings counts warning findings.
func (r *Report) Warnings() int { return r.count(SeverityWarning) }

// HasErrors reports whether the repository fails validation (exit 1).
func (r *Report) HasErrors() bool { return r.Errors() > 0 }

func (r *Report) count(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == s {
			n++
		}
	}
	return n
}

// ByPolicy returns the findings of one policy.
func (r *Report) ByPolicy(id string) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Policy == id {
			out = append(out, f)
		}
	}
	return out
}

// WriteText writes the human report: findings grouped by file, then a
// summary line.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	file := "\x00"
	for _, f := range r.Findings {
		if f.File != file {
			if file != "\x00" {
				b.WriteString("\n")
			}
			file = f.File
			name := f.File
			if name == "" {
				name = "(repository)"
			}
			b.WriteString(name + "\n")
		}
		loc := ""
		if f.Line > 0 {
			loc = strconv.Itoa(f.Line)
		}
		fmt.Fprintf(&b, "  %-5s %-7s %-18s ", loc, f.Severity, f.Policy)
		f.describe(&b)
		b.WriteString("\n")
	}
	if len(r.Findings) > 0 {
		b.WriteString("\n")
	}
	files := map[string]bool{}
	for _, f := range r.Findings {
		files[f.File] = true
	}
	fmt.Fprintf(&b, "%s, %s", plural(r.Errors(), "error"), plural(r.Warnings(), "warning"))
	if len(files) > 0 {
		fmt.Fprintf(&b, " in %s", plural(len(files), "file"))
	}
	fmt.Fprintf(&b, " (%s, %s, %s checked)\n",
		plural(r.Charts, "chart"), plural(r.Kustomizations, "kustomization"), plural(r.Resources, "resource"))
	_, err := io.WriteString(w, b.String())
	return err
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// jsonReport is the -o json shape.
type jsonReport struct {
	*Report
	Errors   int `json:"errors"`
	Warnings int `json:"warnings"`
}

// WriteJSON writes the report as one JSON object: dir, findings (never
// null), counters, errors and warnings.
func (r *Report) WriteJSON(w io.Writer) error {
	cp := *r
	if cp.Findings == nil {
		cp.Findings = []Finding{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(jsonReport{Report: &cp, Errors: r.Errors(), Warnings: r.Warnings()})
}

// sortFindings orders by file, line, policy, resource, message and drops
// exact duplicates.
func sortFindings(fs []Finding) []Finding {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Policy != b.Policy {
			return a.Policy < b.Policy
		}
		if a.Resource != b.Resource {
			return a.Resource < b.Resource
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Message < b.Message
	})
	out := fs[:0]
	for i, f := range fs {
		if i > 0 && f == fs[i-1] {
			continue
		}
		out = append(out, f)
	}
	return out
}
