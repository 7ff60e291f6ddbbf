package validate

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
)

// archives caches the files of chart archives, so that a chart used by
// several wrappers (or runs) is read and unpacked once.
var archives = struct {
	sync.Mutex
	files map[string][]*loader.BufferedFile
}{files: map[string][]*loader.BufferedFile{}}

func loadArchive(file string) (*chart.Chart, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%s\x00%d\x00%d", file, fi.Size(), fi.ModTime().UnixNano())
	archives.Lock()
	files, ok := archives.files[key]
	archives.Unlock()
	if !ok {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		files, err = loader.LoadArchiveFiles(f)
		f.Close()
		if err != nil {
			return nil, err
		}
		archives.Lock()
		if len(archives.files) >= 256 {
			clear(archives.files)
		}
		archives.files[key] = files
		archives.Unlock()
	}
	return loader.LoadFiles(files)
}

// fetchDep loads a chart dependency: a local one (file://, relative to
// base) or one from the chart cache, pulling it first when online. It
// reports chart-missing itself.
func (v *validator) fetchDep(ctx context.Context, base string, d chartDep) (*chart.Chart, bool) {
	missing := func(format string, args ...any) (*chart.Chart, bool) {
		v.add(Finding{Policy: PolicyChartMissing, File: d.File, Line: d.Line, Message: fmt.Sprintf(format, args...)})
		return nil, false
	}
	if d.isLocal() {
		p := strings.TrimPrefix(d.Repository, "file://")
		if p == "" {
			return missing("chart %s has no repository and is not vendored", d.Name)
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(base, p)
		}
		sub, err := loader.Load(p)
		if err != nil {
			return missing("chart %s from %s: %v", d.Name, d.Repository, err)
		}
		return sub, true
	}
	file, _, ok := findCached(v.s.cacheDir, d)
	if !ok && !v.s.Offline {
		var err error
		if file, _, _, err = v.puller.pull(ctx, d); err != nil {
			return missing("chart %s %s from %s could not be pulled: %v", d.Name, d.Version, d.Repository, err)
		}
		ok = true
	}
	if !ok {
		return missing("chart %s %s from %s is not in the chart cache (%s); run hl charts pull",
			d.Name, d.Version, d.Repository, CachePath(v.s.cacheDir, d.Repository, d.Name, d.Version))
	}
	sub, err := loadArchive(file)
	if err != nil {
		return missing("cached chart %s is unreadable (%v); delete it and run hl charts pull", file, err)
	}
	return sub, true
}

// apiVersions are the custom API versions announced to charts as
// capabilities (.Capabilities.APIVersions.Has), so that charts render
// their ServiceMonitors, Certificates, ... as they would in the cluster.
func (v *validator) apiVersions() chartutil.VersionSet {
	seen := map[string]bool{}
	var out chartutil.VersionSet
	for _, gvk := range v.schemas.known() {
		for _, s := range []string{gvk[0] + "/" + gvk[1], gvk[0] + "/" + gvk[1] + "/" + gvk[2]} {
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// renderChart renders one wrapper chart with its dependencies from the
// cache and returns its manifests.
func (v *validator) renderChart(ctx context.Context, dir string, apiVersions chartutil.VersionSet) []*object {
	chartFile := path.Join(dir, "Chart.yaml")
	if v.badYAML[chartFile] || v.badYAML[path.Join(dir, "values.yaml")] {
		return nil // reported as yaml-syntax
	}
	deps, _, err := readChartYAML(v.s.dir, dir)
	if err != nil {
		v.add(Finding{Policy: PolicyHelmRender, File: chartFile, Line: 1, Message: err.Error()})
		return nil
	}
	abs := filepath.Join(v.s.dir, filepath.FromSlash(dir))
	ch, err := loader.LoadDir(abs)
	if err != nil {
		v.add(Finding{Policy: PolicyHelmRender, File: chartFile, Line: 1, Message: "load chart: " + err.Error()})
		return nil
	}
	present := map[string]bool{}
	for _, d := range ch.Dependencies() {
		present[d.Name()] = true
	}
	missing := false
	for _, d := range deps {
		if present[d.Name] {
			continue
		}
		sub, ok := v.fetchDep(ctx, abs, d)
		if !ok {
			missing = true
			continue
		}
		ch.AddDependency(sub)
	}
	if missing {
		return nil
	}

	u := &unit{kind: unitChart, dir: dir}
	release := path.Base(abs)
	vals := map[string]any{}
	if t, ok := v.targets[dir]; ok {
		u.namespace = t.namespace
		if t.name != "" {
			release = t.name
		}
		if rn := mapStr(t.helm, "releaseName"); rn != "" {
			release = rn
		}
		var err error
		if vals, err = v.argoValues(dir, t.helm); err != nil {
			v.add(Finding{Policy: PolicyHelmRender, File: chartFile, Line: 1, Message: err.Error()})
			return nil
		}
	}
	if u.namespace == "" {
		u.namespace = path.Base(abs)
	}
	objs, err := v.helmTemplate(ctx, helmRun{
		u: u, ch: ch, vals: vals, release: release, includeCRDs: true, apiVersions: apiVersions,
		locate: func(source string) (string, int) { return v.locate(dir, ch.Name(), deps, source) },
	})
	if err != nil {
		v.add(v.helmError(dir, ch.Name(), deps, err))
		return nil
	}
	return objs
}

// helmRun is one client-only Helm render.
type helmRun struct {
	u                      *unit
	ch                     *chart.Chart
	vals                   map[string]any
	release                string
	includeCRDs, skipHooks bool
	apiVersions            chartutil.VersionSet
	// locate maps a template path to the repo file and line findings about
	// its resources point at.
	locate func(source string) (string, int)
}

// helmTemplate renders a chart as `helm template` would (Argo CD's way):
// client-only, the cluster's version as capabilities, hooks included,
// test hooks left out.
func (v *validator) helmTemplate(ctx context.Context, r helmRun) ([]*object, error) {
	cfg := &action.Configuration{Log: func(string, ...any) {}}
	inst := action.NewInstall(cfg)
	inst.ClientOnly = true
	inst.DryRun = true
	inst.Replace = true
	inst.IncludeCRDs = r.includeCRDs
	inst.DisableHooks = r.skipHooks
	inst.ReleaseName = r.release
	inst.Namespace = r.u.namespace
	kv := v.s.kube
	inst.KubeVersion = &kv
	inst.APIVersions = r.apiVersions
	rel, err := inst.RunWithContext(ctx, r.ch, r.vals)
	if err != nil {
		return nil, err
	}
	objs := v.helmManifests(r.u, r.locate, rel.Manifest)
	if !r.skipHooks {
		for _, h := range rel.Hooks {
			if isTestHook(h) {
				continue
			}
			objs = append(objs, v.helmManifests(r.u, r.locate, "# Source: "+h.Path+"\n"+h.Manifest)...)
		}
	}
	return objs, nil
}

// argoValues are the values an Argo CD Application adds to the chart's
// values.yaml: spec.source.helm valueFiles (relative to the chart), values
// and valuesObject, later ones winning.
func (v *validator) argoValues(dir string, helm map[string]any) (map[string]any, error) {
	vals := map[string]any{}
	for _, f := range mapList(helm, "valueFiles") {
		name, _ := f.(string)
		if name == "" || name == "values.yaml" {
			continue
		}
		rel := path.Clean(path.Join(dir, name))
		data, err := os.ReadFile(filepath.Join(v.s.dir, filepath.FromSlash(rel)))
		if err != nil {
			if ignore, _ := helm["ignoreMissingValueFiles"].(bool); ignore && os.IsNotExist(err) {
				continue
			}
			return nil, fmt.Errorf("values file of the Argo CD Application: %w", err)
		}
		m, err := chartutil.ReadValues(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rel, err)
		}
		vals = mergeValues(vals, m)
	}
	if s := mapStr(helm, "values"); s != "" {
		m, err := chartutil.ReadValues([]byte(s))
		if err != nil {
			return nil, fmt.Errorf("spec.source.helm.values of the Argo CD Application: %w", err)
		}
		vals = mergeValues(vals, m)
	}
	if obj := mapMap(helm, "valuesObject"); obj != nil {
		vals = mergeValues(vals, obj)
	}
	return vals, nil
}

// mergeValues merges b over a, recursing into maps (helm -f semantics).
func mergeValues(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if bm, ok := v.(map[string]any); ok {
			if am, ok := out[k].(map[string]any); ok {
				out[k] = mergeValues(am, bm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

func isTestHook(h *release.Hook) bool {
	for _, e := range h.Events {
		if strings.HasPrefix(string(e), "test") {
			return true
		}
	}
	return false
}

var (
	manifestSep   = regexp.MustCompile(`(?m)^---[ \t]*$`)
	sourceComment = regexp.MustCompile(`(?m)^# Source: (.+)$`)
	helmTplErr    = regexp.MustCompile(`([\w.-]+(?:/[\w.-]+)*\.(?:yaml|yml|tpl|txt|json)):(\d+)`)
)

// locate maps a Helm template path (chart/templates/x.yaml or
// chart/charts/sub/...) to the repo file and line that findings point at:
// the wrapper's own file, or the Chart.yaml line of the dependency.
func (v *validator) locate(dir, chartName string, deps []chartDep, source string) (string, int) {
	rest, ok := strings.CutPrefix(source, chartName+"/")
	if !ok {
		return path.Join(dir, "Chart.yaml"), 1
	}
	if sub, ok := strings.CutPrefix(rest, "charts/"); ok {
		name, _, _ := strings.Cut(sub, "/")
		name = strings.TrimSuffix(name, ".tgz")
		for _, d := range deps {
			if d.Name == name || d.Alias == name {
				return d.File, d.Line
			}
		}
		return path.Join(dir, "Chart.yaml"), 1
	}
	return path.Join(dir, rest), 1
}

// helmManifests parses rendered manifests into objects.
func (v *validator) helmManifests(u *unit, locate func(string) (string, int), manifest string) []*object {
	var out []*object
	seen := map[string]int{}
	for _, part := range manifestSep.Split(manifest, -1) {
		if strings.TrimSpace(part) == "" {
			continue
		}
		source := ""
		if m := sourceComment.FindStringSubmatch(part); m != nil {
			source = strings.TrimSpace(m[1])
		}
		file, line := locate(source)
		docs, err := parseYAML([]byte(part))
		if err != nil {
			v.add(Finding{Policy: PolicyHelmRender, File: file, Line: line, Source: source,
				Message: "rendered manifest is not valid YAML: " + err.Error()})
			continue
		}
		// A wrapper's own template that is plain YAML gives field lines.
		var fileDocs []*yamlDoc
		if strings.Contains(file, "/templates/") {
			fileDocs = v.docs(file)
		}
		for _, d := range docs {
			i := seen[source]
			seen[source]++
			for _, m := range splitList(d.value) {
				o := newObject(u, file, nil, m)
				o.line = line
				o.source = source
				if i < len(fileDocs) && sameKind(fileDocs[i].value, m) {
					o.node, o.line = fileDocs[i].root, fileDocs[i].line()
				}
				out = append(out, o)
			}
		}
	}
	return out
}

func sameKind(a any, b map[string]any) bool {
	return mapStr(a, "kind") != "" && mapStr(a, "kind") == mapStr(b, "kind")
}

// splitList returns the object, or the items of a v1 List.
func splitList(v any) []map[string]any {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	if k, _ := m["kind"].(string); strings.HasSuffix(k, "List") && m["items"] != nil {
		if av, _ := m["apiVersion"].(string); av == "v1" {
			var out []map[string]any
			for _, it := range mapList(m, "items") {
				if im, ok := it.(map[string]any); ok {
					out = append(out, im)
				}
			}
			return out
		}
	}
	return []map[string]any{m}
}

// helmError turns a render error into a finding, at the wrapper's
// template line when the error names one.
func (v *validator) helmError(dir, chartName string, deps []chartDep, err error) Finding {
	msg := err.Error()
	f := Finding{Policy: PolicyHelmRender, File: path.Join(dir, "Chart.yaml"), Line: 1, Message: msg}
	if m := helmTplErr.FindStringSubmatch(msg); m != nil {
		file, line := v.locate(dir, chartName, deps, m[1])
		f.File, f.Line, f.Source = file, line, m[1]
		if !strings.Contains(m[1], "/charts/") && strings.HasPrefix(m[1], chartName+"/") {
			f.Line, _ = strconv.Atoi(m[2])
		}
	}
	return f
}
