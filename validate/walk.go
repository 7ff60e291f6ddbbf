package validate

import (
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/internal/repofs"
	"hl.dev/hl/internal/yamlnode"
)

// repoTree is what walking the repository found.
type repoTree struct {
	// files are every regular file, repo-relative with forward slashes.
	files []string
	// charts are folders with a Chart.yaml (Helm wrapper charts); nothing
	// below one is looked at for other apps.
	charts []string
	// kusts are folders with a kustomization file, and kustFile its name.
	kusts    []string
	kustFile map[string]string
}

var kustomizationNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

func walkRepo(dir string) (*repoTree, error) {
	t := &repoTree{kustFile: map[string]string{}}
	files, err := repofs.Files(dir, nil)
	if err != nil {
		return nil, err
	}
	t.files = files
	for _, f := range t.files {
		d, base := path.Split(f)
		d = strings.TrimSuffix(d, "/")
		if d == "" {
			d = "."
		}
		if base == "Chart.yaml" && t.chartOf(d) == "" {
			t.charts = append(t.charts, d)
		}
	}
	for _, f := range t.files {
		d, base := path.Split(f)
		d = strings.TrimSuffix(d, "/")
		if d == "" {
			d = "."
		}
		for _, k := range kustomizationNames {
			if base == k && !t.chartOwns(d+"/"+base) && t.kustFile[d] == "" {
				t.kusts = append(t.kusts, d)
				t.kustFile[d] = base
			}
		}
	}
	sort.Strings(t.charts)
	sort.Strings(t.kusts)
	return t, nil
}

// chartOf returns the wrapper chart folder containing rel (a file or a
// folder), or "".
func (t *repoTree) chartOf(rel string) string {
	for _, c := range t.charts {
		if c == "." || rel == c || strings.HasPrefix(rel, c+"/") {
			return c
		}
	}
	return ""
}

// chartOwns reports whether a file belongs to a wrapper chart: it sits
// in the chart's folder itself or under its templates/, charts/ or crds/.
// Other subfolders (a secrets/ kustomization, say) are apps of their own.
func (t *repoTree) chartOwns(rel string) bool {
	c := t.chartOf(rel)
	if c == "" {
		return false
	}
	rest := rel
	if c != "." {
		rest = strings.TrimPrefix(rel, c+"/")
	}
	if !strings.Contains(rest, "/") {
		return true
	}
	for _, sub := range []string{"templates/", "charts/", "crds/"} {
		if strings.HasPrefix(rest, sub) {
			return true
		}
	}
	return false
}

// kustOf returns the innermost kustomization folder containing rel, or "".
func (t *repoTree) kustOf(rel string) string {
	best := ""
	for _, k := range t.kusts {
		if k == "." || rel == k || strings.HasPrefix(rel, k+"/") {
			if len(k) > len(best) || best == "" {
				best = k
			}
		}
	}
	return best
}

func isYAML(name string) bool {
	return strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
}

// readChartYAML reads a wrapper chart's Chart.yaml dependencies with their
// lines.
func readChartYAML(dir, chartRel string) ([]chartDep, *yamlDoc, error) {
	file := path.Join(chartRel, "Chart.yaml")
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(file)))
	if err != nil {
		return nil, nil, err
	}
	docs, err := parseYAML(data)
	if err != nil {
		return nil, nil, err
	}
	if len(docs) == 0 {
		return nil, &yamlDoc{}, nil
	}
	doc := docs[0]
	var deps []chartDep
	seq := yamlnode.Value(doc.root, "dependencies")
	for i, item := range mapList(doc.value, "dependencies") {
		m, _ := item.(map[string]any)
		if m == nil {
			continue
		}
		d := chartDep{
			Name:       str(m["name"]),
			Version:    str(m["version"]),
			Repository: str(m["repository"]),
			Alias:      str(m["alias"]),
			Condition:  str(m["condition"]),
			File:       file,
			Line:       1,
		}
		if seq != nil && i < len(seq.Content) {
			d.Line = seq.Content[i].Line
			d.VersionLine = d.Line
			if vn := yamlnode.Key(seq.Content[i], "version"); vn != nil {
				d.VersionLine = vn.Line
			}
		}
		deps = append(deps, d)
	}
	return deps, doc, nil
}

// str renders a scalar (YAML may read a version like 1.10 as a number).
func str(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	default:
		b, _ := yaml.Marshal(t)
		return strings.TrimSpace(string(b))
	}
}
