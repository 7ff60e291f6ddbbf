package generator

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/templates"
)

// RoadmapItem is one capability of the homelab with the rendered files
// that implement it (templates/roadmap.yaml).
type RoadmapItem struct {
	ID    string   `json:"id"`
	Title string   `json:"title"`
	Files []string `json:"files,omitempty"`
	// NotApplicable says why a capability has no files for this config
	// (e.g. the Fedora kickstart when the OS is Debian).
	NotApplicable string `json:"notApplicable,omitempty"`
}

type roadmapEntry struct {
	ID    string   `yaml:"id"`
	Title string   `yaml:"title"`
	Globs []string `yaml:"files"`
	// When names the component or condition the item depends on:
	// "component:<name>", "os:<name>", "servers>1".
	When string `yaml:"when,omitempty"`
}

// Roadmap matches templates/roadmap.yaml against a plan.
func Roadmap(plan *Plan, d *Data) ([]RoadmapItem, error) {
	raw, err := templates.FS.ReadFile("roadmap.yaml")
	if err != nil {
		return nil, err
	}
	var entries []roadmapEntry
	if err := yaml.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("roadmap.yaml: %w", err)
	}
	paths := plan.Paths()
	out := make([]RoadmapItem, 0, len(entries))
	for _, e := range entries {
		it := RoadmapItem{ID: e.ID, Title: e.Title}
		seen := map[string]bool{}
		for _, g := range e.Globs {
			for _, p := range paths {
				if ok, _ := path.Match(g, p); ok && !seen[p] {
					seen[p] = true
					it.Files = append(it.Files, p)
				}
			}
		}
		sort.Strings(it.Files)
		if len(it.Files) == 0 {
			it.NotApplicable = notApplicable(e.When, d)
		}
		out = append(out, it)
	}
	return out, nil
}

func notApplicable(when string, d *Data) string {
	kind, arg, _ := strings.Cut(when, ":")
	switch {
	case kind == "component" && !d.On(arg):
		return fmt.Sprintf("spec.apps.%s is disabled", arg)
	case kind == "os" && d.Spec.Metal.OS.Name != arg:
		return fmt.Sprintf("spec.metal.os.name is %s", d.Spec.Metal.OS.Name)
	case when == "servers>1" && len(d.Homelab.Servers()) < 2:
		return "a single server needs no VIP manager"
	case when == "slo" && len(d.Spec.SLO) == 0:
		return "spec.slo is empty"
	}
	return ""
}
