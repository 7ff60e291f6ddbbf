package validate

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"hl.dev/hl/internal/yamlnode"
)

// krustyMu serialises kustomize builds: kyaml keeps global state (its
// OpenAPI schema) that is not safe for concurrent first use.
var krustyMu sync.Mutex

// originFS prepares kustomizations for an offline, in-process build:
//   - every kustomization asks for origin annotations, so that each built
//     resource names the file (or generator) it came from;
//   - helmCharts are removed (hl renders them with the Helm SDK from the
//     chart cache instead of running the helm binary);
//   - KSOPS generators become plain resources: their files are the
//     SOPS-encrypted Secrets as committed (hl cannot and need not decrypt
//     them to check them).
type originFS struct{ filesys.FileSystem }

func (f originFS) ReadFile(p string) ([]byte, error) {
	data, err := f.FileSystem.ReadFile(p)
	if err != nil || !isKustomizationName(filepath.Base(p)) {
		return data, err
	}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return data, nil // let kustomize report it
	}
	m := doc.Content[0]
	yamlnode.Delete(m, "helmCharts")
	yamlnode.Delete(m, "helmGlobals")
	if gens := yamlnode.Value(m, "generators"); gens != nil && gens.Kind == yaml.SequenceNode {
		var keep []*yaml.Node
		for _, g := range gens.Content {
			files, ok := f.ksopsFiles(filepath.Dir(p), g.Value)
			if !ok {
				keep = append(keep, g)
				continue
			}
			res := yamlnode.Value(m, "resources")
			if res == nil {
				m.Content = append(m.Content,
					&yaml.Node{Kind: yaml.ScalarNode, Value: "resources"},
					&yaml.Node{Kind: yaml.SequenceNode})
				res = m.Content[len(m.Content)-1]
			}
			for _, file := range files {
				res.Content = append(res.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: file})
			}
		}
		gens.Content = keep
		if len(keep) == 0 {
			yamlnode.Delete(m, "generators")
		}
	}
	bm := yamlnode.Value(m, "buildMetadata")
	if bm == nil {
		m.Content = append(m.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Value: "buildMetadata"},
			&yaml.Node{Kind: yaml.SequenceNode})
		bm = m.Content[len(m.Content)-1]
	}
	if bm.Kind == yaml.SequenceNode {
		has := false
		for _, n := range bm.Content {
			has = has || n.Value == "originAnnotations"
		}
		if !has {
			bm.Content = append(bm.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "originAnnotations"})
		}
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return data, nil
	}
	return out, nil
}

// ksopsFiles reads a generator config and, when it is a KSOPS one that
// only lists files, returns them relative to the kustomization folder.
func (f originFS) ksopsFiles(kdir, gen string) ([]string, bool) {
	if gen == "" || remoteRe.MatchString(gen) {
		return nil, false
	}
	gp := filepath.Join(kdir, gen)
	data, err := f.FileSystem.ReadFile(gp)
	if err != nil {
		return nil, false
	}
	docs, err := parseYAML(data)
	if err != nil || len(docs) != 1 {
		return nil, false
	}
	d := docs[0].value
	if !strings.EqualFold(mapStr(d, "kind"), "ksops") || !strings.HasPrefix(mapStr(d, "apiVersion"), "viaduct.ai/") || mapGet(d, "secretFrom") != nil {
		return nil, false
	}
	var out []string
	for _, e := range mapList(d, "files") {
		name, _ := e.(string)
		if name == "" {
			continue
		}
		rel, err := filepath.Rel(kdir, filepath.Join(filepath.Dir(gp), name))
		if err != nil {
			return nil, false
		}
		out = append(out, filepath.ToSlash(rel))
	}
	return out, true
}

func isKustomizationName(name string) bool {
	for _, k := range kustomizationNames {
		if name == k {
			return true
		}
	}
	return false
}

// kustRefs lists the local folders and files a kustomization refers to
// (resources, components, bases), with their lines.
type kustRef struct {
	value string
	line  int
}

var kustRefFields = []string{"resources", "components", "bases", "crds", "patchesStrategicMerge", "configurations", "generators", "transformers", "validators"}

func kustRefs(doc *yamlDoc) []kustRef {
	var out []kustRef
	if doc == nil {
		return nil
	}
	for _, field := range kustRefFields {
		seq := yamlnode.Value(doc.root, field)
		if seq == nil || seq.Kind != yaml.SequenceNode {
			continue
		}
		for _, n := range seq.Content {
			if n.Kind == yaml.ScalarNode {
				out = append(out, kustRef{n.Value, n.Line})
			}
		}
	}
	for _, field := range []string{"patches", "patchesJson6902"} {
		seq := yamlnode.Value(doc.root, field)
		if seq == nil || seq.Kind != yaml.SequenceNode {
			continue
		}
		for _, item := range seq.Content {
			if p := yamlnode.Value(item, "path"); p != nil {
				out = append(out, kustRef{p.Value, p.Line})
			}
		}
	}
	out = append(out, generatorInputs(doc, "configMapGenerator")...)
	return append(out, generatorInputs(doc, "secretGenerator")...)
}

// generatorInputs lists the files a kustomization's configMapGenerator
// or secretGenerator (field) reads: files, envs and env.
func generatorInputs(doc *yamlDoc, field string) []kustRef {
	seq := yamlnode.Value(doc.root, field)
	if seq == nil || seq.Kind != yaml.SequenceNode {
		return nil
	}
	var out []kustRef
	for _, item := range seq.Content {
		for _, sub := range []string{"files", "envs"} {
			if l := yamlnode.Value(item, sub); l != nil && l.Kind == yaml.SequenceNode {
				for _, n := range l.Content {
					v := n.Value
					if _, after, ok := strings.Cut(v, "="); ok {
						v = after
					}
					out = append(out, kustRef{v, n.Line})
				}
			}
		}
		if e := yamlnode.Value(item, "env"); e != nil {
			out = append(out, kustRef{e.Value, e.Line})
		}
	}
	return out
}

var remoteRe = regexp.MustCompile(`^(https?://|git@|ssh://|git::|github\.com/|gitlab\.com/|bitbucket\.org/)|\?ref=|\.git($|/|//)`)

// kustRoots returns the kustomization folders no other kustomization
// refers to: the apps.
func (v *validator) kustRoots() []string {
	referenced := map[string]bool{}
	for _, k := range v.tree.kusts {
		for _, r := range kustRefs(v.kustDoc(k)) {
			referenced[path.Clean(path.Join(k, r.value))] = true
		}
	}
	var roots []string
	for _, k := range v.tree.kusts {
		if !referenced[k] {
			roots = append(roots, k)
		}
	}
	return roots
}

func (v *validator) kustFile(k string) string { return path.Join(k, v.tree.kustFile[k]) }

func (v *validator) kustDoc(k string) *yamlDoc {
	docs := v.docs(v.kustFile(k))
	if len(docs) == 0 {
		return nil
	}
	return docs[0]
}

// kustHelmChart is one helmCharts entry of a kustomization.
type kustHelmChart struct {
	dep                    chartDep
	release, namespace     string
	includeCRDs, skipHooks bool
	valuesFile             string
	additionalValuesFiles  []string
	valuesInline           map[string]any
	chartHome              string
}

// kustHelmCharts reads a kustomization's helmCharts.
func kustHelmCharts(kfile string, doc *yamlDoc) []kustHelmChart {
	if doc == nil {
		return nil
	}
	seq := yamlnode.Value(doc.root, "helmCharts")
	home := mapStr(doc.value, "helmGlobals", "chartHome")
	if home == "" {
		home = "charts"
	}
	var out []kustHelmChart
	for i, item := range mapList(doc.value, "helmCharts") {
		m, _ := item.(map[string]any)
		if m == nil {
			continue
		}
		hc := kustHelmChart{
			dep: chartDep{
				Name: str(m["name"]), Version: str(m["version"]), Repository: str(m["repo"]),
				File: kfile, Line: 1, VersionLine: 1,
			},
			release:      str(m["releaseName"]),
			namespace:    str(m["namespace"]),
			valuesFile:   str(m["valuesFile"]),
			valuesInline: mapMap(m, "valuesInline"),
			chartHome:    home,
		}
		hc.includeCRDs, _ = m["includeCRDs"].(bool)
		hc.skipHooks, _ = m["skipHooks"].(bool)
		for _, f := range mapList(m, "additionalValuesFiles") {
			hc.additionalValuesFiles = append(hc.additionalValuesFiles, str(f))
		}
		if hc.release == "" {
			hc.release = "release-name" // helm template's default, as kustomize
		}
		if seq != nil && i < len(seq.Content) {
			hc.dep.Line, hc.dep.VersionLine = seq.Content[i].Line, seq.Content[i].Line
			if vn := yamlnode.Key(seq.Content[i], "version"); vn != nil {
				hc.dep.VersionLine = vn.Line
			}
		}
		out = append(out, hc)
	}
	return out
}

// renderKustHelm renders one helmCharts entry with the Helm SDK, as
// `kustomize build --enable-helm` would with the helm binary.
func (v *validator) renderKustHelm(ctx context.Context, k string, hc kustHelmChart, kustNS string, u *unit, apiVersions chartutil.VersionSet) []*object {
	kabs := filepath.Join(v.s.dir, filepath.FromSlash(k))
	d := hc.dep
	var ch *chart.Chart
	local := filepath.Join(kabs, filepath.FromSlash(hc.chartHome), d.Name)
	if _, err := os.Stat(filepath.Join(local, "Chart.yaml")); err == nil && d.Repository == "" {
		c, err := loader.Load(local)
		if err != nil {
			v.add(Finding{Policy: PolicyHelmRender, File: d.File, Line: d.Line, Message: err.Error()})
			return nil
		}
		ch = c
	} else {
		if d.Repository == "" {
			v.add(Finding{Policy: PolicyChartMissing, File: d.File, Line: d.Line,
				Message: fmt.Sprintf("helm chart %s has no repo and %s/%s is not a chart", d.Name, hc.chartHome, d.Name)})
			return nil
		}
		c, ok := v.fetchDep(ctx, kabs, d)
		if !ok {
			return nil
		}
		ch = c
	}
	vals := map[string]any{}
	for _, f := range append([]string{hc.valuesFile}, hc.additionalValuesFiles...) {
		if f == "" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(kabs, filepath.FromSlash(f)))
		if err != nil {
			v.add(Finding{Policy: PolicyKustomizeBuild, File: d.File, Line: d.Line, Message: fmt.Sprintf("helm chart %s values: %v", d.Name, err)})
			return nil
		}
		m, err := chartutil.ReadValues(data)
		if err != nil {
			v.add(Finding{Policy: PolicyKustomizeBuild, File: d.File, Line: d.Line, Message: fmt.Sprintf("helm chart %s values %s: %v", d.Name, f, err)})
			return nil
		}
		vals = mergeValues(vals, m)
	}
	if hc.valuesInline != nil {
		vals = mergeValues(vals, hc.valuesInline)
	}
	hu := &unit{kind: unitKustomize, dir: u.dir, namespace: hc.namespace}
	if hu.namespace == "" {
		hu.namespace = kustNS
	}
	if hu.namespace == "" {
		hu.namespace = "default"
	}
	objs, err := v.helmTemplate(ctx, helmRun{
		u: hu, ch: ch, vals: vals, release: hc.release, includeCRDs: hc.includeCRDs, skipHooks: hc.skipHooks,
		apiVersions: apiVersions,
		locate:      func(string) (string, int) { return d.File, d.Line },
	})
	if err != nil {
		v.add(Finding{Policy: PolicyHelmRender, File: d.File, Line: d.Line, Message: fmt.Sprintf("helm chart %s: %v", d.Name, err)})
		return nil
	}
	for _, o := range objs {
		o.u = u
		if kustNS != "" {
			o.namespace = kustNS // kustomize's namespace transformer
		}
	}
	return objs
}

// renderKustomization builds one root kustomization in-process.
func (v *validator) renderKustomization(ctx context.Context, k string, apiVersions chartutil.VersionSet) []*object {
	kfile := v.kustFile(k)
	if v.badYAML[kfile] {
		return nil
	}
	// Remote bases would need the network (and are unpinned by nature).
	doc := v.kustDoc(k)
	for _, r := range kustRefs(doc) {
		if remoteRe.MatchString(r.value) {
			v.add(Finding{Policy: PolicyKustomizeBuild, File: kfile, Line: r.line,
				Message: fmt.Sprintf("remote resource %s: hl validate builds offline; vendor it into the repository", r.value)})
			return nil
		}
	}
	abs := filepath.Join(v.s.dir, filepath.FromSlash(k))
	opts := krusty.MakeDefaultOptions()
	krustyMu.Lock()
	m, err := krusty.MakeKustomizer(opts).Run(originFS{filesys.MakeFsOnDisk()}, abs)
	krustyMu.Unlock()
	if err != nil {
		if !v.brokenInput(k, doc) {
			v.add(v.kustomizeError(k, doc, err))
		}
		return nil
	}
	u := &unit{kind: unitKustomize, dir: k}
	if t, ok := v.targets[k]; ok {
		u.namespace = t.namespace
	}
	var out []*object
	for _, res := range m.Resources() {
		origin, _ := res.GetOrigin()
		_ = res.SetOrigin(nil)
		obj, err := res.Map()
		if err != nil {
			v.add(Finding{Policy: PolicyKustomizeBuild, File: kfile, Line: 1, Message: err.Error()})
			continue
		}
		if ann := mapMap(obj, "metadata", "annotations"); ann != nil && len(ann) == 0 {
			delete(mapMap(obj, "metadata"), "annotations")
		}
		o := newObject(u, kfile, nil, obj)
		o.committed = true
		switch {
		case origin != nil && origin.Path != "" && origin.Repo == "":
			file := path.Clean(path.Join(k, origin.Path))
			o.file = file
			v.consumed[file] = true
			if d := findDoc(v.docs(file), obj); d != nil {
				o.node, o.line = d.root, d.line()
			}
		case origin != nil && origin.ConfiguredIn != "":
			file := path.Clean(path.Join(k, origin.ConfiguredIn))
			o.file = file
			o.source = origin.ConfiguredBy.Kind
			o.line = generatorLine(v.docs(file), origin.ConfiguredBy.Kind, o.name)
		}
		out = append(out, o)
	}
	kustNS := ""
	if doc != nil {
		kustNS = mapStr(doc.value, "namespace")
	}
	for _, hc := range kustHelmCharts(kfile, doc) {
		out = append(out, v.renderKustHelm(ctx, k, hc, kustNS, u, apiVersions)...)
	}
	return out
}

// brokenInput reports whether a kustomization reads a file already
// reported as yaml-syntax (its build error would say the same again).
func (v *validator) brokenInput(k string, doc *yamlDoc) bool {
	for f := range v.badYAML {
		if strings.HasPrefix(f, k+"/") || k == "." {
			return true
		}
	}
	for _, r := range kustRefs(doc) {
		p := path.Clean(path.Join(k, r.value))
		for f := range v.badYAML {
			if f == p || strings.HasPrefix(f, p+"/") {
				return true
			}
		}
	}
	return false
}

// findDoc finds the document in a source file a built resource came from:
// same kind, and the same name or one the build decorated (prefix,
// suffix, hash).
func findDoc(docs []*yamlDoc, obj map[string]any) *yamlDoc {
	kind := mapStr(obj, "kind")
	name := mapStr(obj, "metadata", "name")
	var byKind []*yamlDoc
	for _, d := range docs {
		if mapStr(d.value, "kind") != kind {
			continue
		}
		if mapStr(d.value, "metadata", "name") == name {
			return d
		}
		byKind = append(byKind, d)
	}
	for _, d := range byKind {
		if n := mapStr(d.value, "metadata", "name"); n != "" && strings.Contains(name, n) {
			return d
		}
	}
	if len(byKind) > 0 {
		return byKind[0]
	}
	return nil
}

// generatorLine is the line of the secretGenerator/configMapGenerator
// entry that made name.
func generatorLine(docs []*yamlDoc, by, name string) int {
	if len(docs) == 0 {
		return 1
	}
	field := "secretGenerator"
	if by == "ConfigMapGenerator" {
		field = "configMapGenerator"
	}
	seq := yamlnode.Value(docs[0].root, field)
	if seq == nil {
		return 1
	}
	line := seq.Line
	for _, item := range seq.Content {
		if n := yamlnode.Value(item, "name"); n != nil && strings.HasPrefix(name, n.Value) {
			return item.Line
		}
	}
	return line
}

// kustomizeError points a build error at the kustomization entry it
// names, when it names one (a KSOPS generator for the files it lists).
func (v *validator) kustomizeError(k string, doc *yamlDoc, err error) Finding {
	msg := strings.ReplaceAll(err.Error(), v.s.dir+string(filepath.Separator), "")
	f := Finding{Policy: PolicyKustomizeBuild, File: v.kustFile(k), Line: 1, Message: msg}
	mentions := func(ref string) bool {
		return ref != "" && (strings.Contains(msg, "'"+ref+"'") || strings.Contains(msg, "\""+ref+"\"") ||
			strings.Contains(msg, path.Join(k, ref)+"'") || strings.Contains(msg, path.Join(k, ref)+":"))
	}
	best := ""
	for _, r := range kustRefs(doc) {
		if mentions(r.value) && len(r.value) > len(best) {
			best, f.Line = r.value, r.line
		}
	}
	if best == "" && doc != nil {
		if gens := yamlnode.Value(doc.root, "generators"); gens != nil {
			fsys := originFS{filesys.MakeFsOnDisk()}
			for _, g := range gens.Content {
				files, _ := fsys.ksopsFiles(filepath.Join(v.s.dir, filepath.FromSlash(k)), g.Value)
				for _, file := range files {
					if mentions(file) {
						best, f.Line = file, g.Line
					}
				}
			}
		}
	}
	if best != "" && strings.Contains(msg, "no such file or directory") {
		f.Message = best + " does not exist"
	}
	return f
}
