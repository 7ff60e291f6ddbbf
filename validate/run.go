package validate

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"hl.dev/hl/internal/yamlnode"
)

// validator is the state of one Run.
type validator struct {
	s      *settings
	tree   *repoTree
	puller *puller

	mu       sync.Mutex
	findings []Finding

	// parsed YAML files (repo-relative); badYAML marks files that did not
	// parse.
	parsed  map[string][]*yamlDoc
	badYAML map[string]bool
	// consumed marks files kustomize built from.
	consumed map[string]bool
	// targets maps app folders to their Argo CD destination.
	targets     map[string]appTarget
	schemas     *schemaSet
	limitRanges map[string]bool
}

func (v *validator) add(f Finding) {
	v.mu.Lock()
	v.findings = append(v.findings, f)
	v.mu.Unlock()
}

// docs returns the parsed documents of a repo file (nil if it did not
// parse or is not YAML).
func (v *validator) docs(rel string) []*yamlDoc {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.parsed[rel]
}

// Run validates the repository at opts.Dir. The error is for problems with
// the options or the file system; everything wrong in the repository is a
// finding in the report.
func Run(ctx context.Context, opts Options) (*Report, error) {
	rep, _, err := run(ctx, opts)
	return rep, err
}

// run is Run that also returns every object it rendered.
func run(ctx context.Context, opts Options) (*Report, []*object, error) {
	s, err := resolve(opts)
	if err != nil {
		return nil, nil, err
	}
	tree, err := walkRepo(s.dir)
	if err != nil {
		return nil, nil, err
	}
	v := &validator{
		s: s, tree: tree, puller: newPuller(s),
		parsed: map[string][]*yamlDoc{}, badYAML: map[string]bool{}, consumed: map[string]bool{},
		targets: map[string]appTarget{}, schemas: newSchemaSet(), limitRanges: map[string]bool{},
	}
	for _, f := range s.configErrs {
		v.add(f)
	}
	rep := &Report{Dir: s.dir, Charts: len(tree.charts)}

	// 1. Every YAML file must parse. Chart templates are Go templates, not
	// YAML; those that happen to be plain YAML are kept to give field lines
	// to the resources they render.
	for _, f := range tree.files {
		if !isYAML(f) {
			continue
		}
		template := false
		if c := tree.chartOf(f); c != "" {
			rest := strings.TrimPrefix(f, c+"/")
			if strings.HasPrefix(rest, "charts/") {
				continue
			}
			template = strings.HasPrefix(rest, "templates/")
		}
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		data, err := os.ReadFile(filepath.Join(s.dir, filepath.FromSlash(f)))
		if err != nil {
			return nil, nil, err
		}
		docs, err := parseYAML(data)
		if template {
			if err == nil {
				v.parsed[f] = docs
			}
			continue
		}
		rep.Files++
		if err != nil {
			ye := err.(*yamlError)
			v.add(Finding{Policy: PolicyYAMLSyntax, File: f, Line: ye.Line, Message: ye.Msg})
			v.badYAML[f] = true
			continue
		}
		v.parsed[f] = docs
	}

	// 2. Plain manifests and kustomizations first: they hold the Argo CD
	// Applications that say which namespace each chart renders into.
	var objs []*object
	apiVersions := v.apiVersions()
	roots := v.kustRoots()
	rep.Kustomizations = len(roots)
	for _, k := range roots {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		objs = append(objs, v.renderKustomization(ctx, k, apiVersions)...)
	}
	objs = append(objs, v.plainObjects()...)
	v.collectTargets(objs)
	v.applyTargets(objs)

	// 3. Wrapper charts, in parallel.
	var wg sync.WaitGroup
	sem := make(chan struct{}, s.Jobs)
	chartObjs := make([][]*object, len(tree.charts))
	for i, c := range tree.charts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			chartObjs[i] = v.renderChart(ctx, c, apiVersions)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	var rendered []*object
	for _, co := range chartObjs {
		rendered = append(rendered, co...)
	}
	v.collectTargets(rendered)
	objs = append(objs, rendered...)
	rep.Resources = len(objs)

	// 4. Learn the CRDs the repo renders, then check every object.
	for _, o := range objs {
		if o.group() == "apiextensions.k8s.io" && o.kind == "CustomResourceDefinition" {
			v.schemas.learn(o.obj)
		}
	}
	for _, o := range objs {
		o.cluster = clusterScopedKinds[o.group()+"/"+o.kind] || v.schemas.scope(o.group(), o.kind) == "Cluster"
		if o.group() == "" && o.kind == "LimitRange" {
			v.noteLimitRange(o)
		}
	}
	for _, o := range objs {
		v.checkSchema(o)
		v.checkObject(o)
		v.checkArgoCD(o)
	}
	v.checkDuplicates(objs)
	v.checkDefaultDeny(objs)

	// 5. Repository files.
	for _, f := range tree.files {
		if isWoodpecker(f) {
			v.checkWoodpecker(f)
		}
	}
	v.checkSOPS()
	v.checkCharts()
	v.checkAlertmanager()
	v.scanRepoFiles()
	if s.Server != nil {
		if err := v.checkServer(ctx, objs); err != nil {
			return nil, nil, err
		}
	}

	rep.Findings = v.finish()
	return rep, objs, nil
}

// plainObjects are the manifests of YAML files no chart or kustomization
// owns: each folder is an app of plain manifests.
func (v *validator) plainObjects() []*object {
	units := map[string]*unit{}
	var out []*object
	for _, f := range v.tree.files {
		docs := v.parsed[f]
		if docs == nil || v.consumed[f] || !isPlainManifestFile(f, v.s.configRel) {
			continue
		}
		if v.tree.chartOwns(f) || v.tree.kustOf(path.Dir(f)) != "" {
			continue
		}
		dir := path.Dir(f)
		u := units[dir]
		if u == nil {
			u = &unit{kind: unitDir, dir: dir}
			units[dir] = u
		}
		for _, d := range docs {
			m, ok := d.value.(map[string]any)
			if !ok || !looksLikeManifest(m) {
				continue
			}
			items := splitList(m)
			itemNodes := yamlnode.Value(d.root, "items")
			for i, item := range items {
				o := newObject(u, f, d, item)
				o.committed = true
				if mapGet(m, "items") != nil && len(items) > 0 && itemNodes != nil && i < len(itemNodes.Content) && mapStr(m, "kind") != mapStr(item, "kind") {
					o.node, o.line = itemNodes.Content[i], itemNodes.Content[i].Line
				}
				out = append(out, o)
			}
		}
	}
	return out
}

// applyTargets gives apps without a namespace the one Argo CD deploys
// them into.
func (v *validator) applyTargets(objs []*object) {
	for _, o := range objs {
		if o.u.namespace != "" {
			continue
		}
		if t, ok := v.targets[o.u.dir]; ok {
			o.u.namespace = t.namespace
		}
	}
}

// isPlainManifestFile excludes the repository's own configuration files.
func isPlainManifestFile(rel, configRel string) bool {
	if !isYAML(rel) || rel == configRel || rel == ".sops.yaml" || isWoodpecker(rel) {
		return false
	}
	return true
}

// looksLikeManifest: a document with apiVersion and kind, or with one of
// them and metadata (a manifest missing a field).
func looksLikeManifest(m map[string]any) bool {
	_, av := m["apiVersion"]
	_, k := m["kind"]
	_, md := m["metadata"]
	return av && k || (av || k) && md
}

func (v *validator) noteLimitRange(o *object) {
	for _, l := range mapList(o.obj, "spec", "limits") {
		if mapStr(l, "type") != "Container" {
			continue
		}
		dr := mapMap(l, "defaultRequest")
		if dr == nil {
			dr = mapMap(l, "default")
		}
		if dr["cpu"] != nil && dr["memory"] != nil {
			v.limitRanges[o.ns()] = true
		}
	}
}

// checkDuplicates reports every resource rendered a second time. When the
// repo has Argo CD Applications, only the folders they deploy count (the
// bootstrap install and metal/ files are applied by other means).
func (v *validator) checkDuplicates(objs []*object) {
	first := map[string]*object{}
	for _, o := range objs {
		if o.kind == "" || o.name == "" {
			continue
		}
		if _, deployed := v.targets[o.u.dir]; len(v.targets) > 0 && !deployed {
			continue
		}
		key := o.group() + "/" + o.id()
		if f, ok := first[key]; ok {
			where := "also rendered by " + f.u.dir
			if f.u == o.u {
				where = "rendered twice by " + f.u.dir
			}
			v.add(o.finding(PolicyDuplicateResource, "metadata.name", "%s (%s:%d)", where, f.file, f.line))
			continue
		}
		first[key] = o
	}
}

// systemNamespaces are not required to have a default-deny policy.
var systemNamespaces = map[string]bool{"kube-system": true, "kube-public": true, "kube-node-lease": true}

// checkDefaultDeny requires, in every namespace with workloads, a
// NetworkPolicy selecting all pods that denies ingress by default.
func (v *validator) checkDefaultDeny(objs []*object) {
	denied := map[string]bool{}
	declared := map[string]*object{}
	firstWorkload := map[string]*object{}
	var order []string
	for _, o := range objs {
		switch {
		case o.group() == "networking.k8s.io" && o.kind == "NetworkPolicy":
			if defaultDeny(o) {
				denied[o.ns()] = true
			}
		case o.group() == "" && o.kind == "Namespace":
			if declared[o.name] == nil {
				declared[o.name] = o
			}
		case podSpecPath(o) != nil:
			ns := o.ns()
			if ns == "" || systemNamespaces[ns] {
				continue
			}
			if firstWorkload[ns] == nil {
				firstWorkload[ns] = o
				order = append(order, ns)
			}
		}
	}
	sort.Strings(order)
	for _, ns := range order {
		if denied[ns] {
			continue
		}
		o := firstWorkload[ns]
		if d := declared[ns]; d != nil {
			o = d
		}
		f := o.finding(PolicyDefaultDeny, "", "namespace %s runs workloads (%s) but has no default-deny ingress NetworkPolicy (podSelector: {}, policyTypes: [Ingress])", ns, firstWorkload[ns].id())
		if o.kind == "Namespace" {
			f.Path = ""
		}
		v.add(f)
	}
}

// defaultDeny: selects every pod, governs ingress and allows no ingress
// from everywhere.
func defaultDeny(o *object) bool {
	spec := mapMap(o.obj, "spec")
	if sel := mapMap(spec, "podSelector"); len(mapMap(sel, "matchLabels")) > 0 || len(mapList(sel, "matchExpressions")) > 0 {
		return false
	}
	types := mapList(spec, "policyTypes")
	ingress := len(types) == 0 // defaults to Ingress
	for _, t := range types {
		if t == "Ingress" {
			ingress = true
		}
	}
	if !ingress {
		return false
	}
	for _, r := range mapList(spec, "ingress") {
		if m, _ := r.(map[string]any); len(m) == 0 {
			return false // allows everything
		}
	}
	return true
}

// finish applies severities, drops findings of policies turned off and
// sorts.
func (v *validator) finish() []Finding {
	out := make([]Finding, 0, len(v.findings))
	for _, f := range v.findings {
		sev := v.s.severity[f.Policy]
		if sev == "" {
			sev = SeverityError
		}
		if sev == SeverityOff {
			continue
		}
		if f.Severity == SeverityWarning {
			sev = SeverityWarning
		}
		f.Severity = sev
		if f.File == "" {
			f.File = "."
		}
		out = append(out, f)
	}
	return sortFindings(out)
}
