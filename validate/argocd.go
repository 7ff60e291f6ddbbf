package validate

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// appTarget is what Argo CD knows about an app folder.
type appTarget struct {
	name, namespace string
	// helm is the Application source's helm section (valueFiles, values,
	// valuesObject, releaseName), if any.
	helm map[string]any
}

func isApplication(o *object) bool {
	return o.group() == "argoproj.io" && o.kind == "Application"
}

func isApplicationSet(o *object) bool {
	return o.group() == "argoproj.io" && o.kind == "ApplicationSet"
}

// appSource is one source of an Application spec, with its field path.
type appSource struct {
	m    map[string]any
	path string
}

// appSources returns an Application spec's source and sources.
func appSources(spec map[string]any, prefix string) []appSource {
	var out []appSource
	if s := mapMap(spec, "source"); s != nil {
		out = append(out, appSource{s, prefix + "source"})
	}
	for i, s := range mapList(spec, "sources") {
		if m, ok := s.(map[string]any); ok {
			out = append(out, appSource{m, fmt.Sprintf("%ssources[%d]", prefix, i)})
		}
	}
	return out
}

// cleanRepoPath normalises an Argo CD source path to a repo folder.
func cleanRepoPath(p string) string {
	p = path.Clean(strings.TrimPrefix(strings.TrimSpace(p), "/"))
	if p == "" {
		return "."
	}
	return p
}

// collectTargets learns, from the Applications and git-directory
// ApplicationSets found so far, which namespace (and release name) each
// app folder of this repo is deployed with.
func (v *validator) collectTargets(objs []*object) {
	for _, o := range objs {
		switch {
		case isApplication(o):
			spec := mapMap(o.obj, "spec")
			ns := mapStr(spec, "destination", "namespace")
			for _, s := range appSources(spec, "spec.") {
				p, ok := s.m["path"].(string)
				if !ok || mapStr(s.m, "chart") != "" || !v.ownRepo(mapStr(s.m, "repoURL")) {
					continue
				}
				v.targets[cleanRepoPath(p)] = appTarget{name: o.name, namespace: ns, helm: mapMap(s.m, "helm")}
			}
		case isApplicationSet(o):
			tmpl := mapMap(o.obj, "spec", "template")
			for _, g := range mapList(o.obj, "spec", "generators") {
				git := mapMap(g, "git")
				if git == nil || !v.ownRepo(mapStr(git, "repoURL")) {
					continue
				}
				var sets []paramSet
				for _, dir := range v.gitDirectories(git) {
					sets = append(sets, paramSet{dir, pathParams(dir)})
				}
				sets = append(sets, v.gitFiles(git)...)
				for _, set := range sets {
					dir, params := set.dir, set.params
					ns := expandTemplate(mapStr(tmpl, "spec", "destination", "namespace"), params)
					name := expandTemplate(mapStr(tmpl, "metadata", "name"), params)
					if strings.Contains(ns, "{{") {
						ns = ""
					}
					if strings.Contains(name, "{{") {
						name = ""
					}
					p := expandTemplate(mapStr(tmpl, "spec", "source", "path"), params)
					if p == "" || strings.Contains(p, "{{") {
						p = dir
					}
					if _, ok := v.targets[cleanRepoPath(p)]; !ok {
						v.targets[cleanRepoPath(p)] = appTarget{name: name, namespace: ns}
					}
				}
			}
		}
	}
}

// dirs lists every folder of the repository.
func (v *validator) dirs() []string {
	seen := map[string]bool{}
	for _, f := range v.tree.files {
		for d := path.Dir(f); d != "." && !seen[d]; d = path.Dir(d) {
			seen[d] = true
		}
	}
	out := make([]string, 0, len(seen))
	for d := range seen {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// gitDirectories evaluates a git generator's directories globs.
func (v *validator) gitDirectories(git map[string]any) []string {
	var include, exclude []string
	for _, d := range mapList(git, "directories") {
		p := cleanRepoPath(mapStr(d, "path"))
		if ex, _ := mapGet(d, "exclude").(bool); ex {
			exclude = append(exclude, p)
		} else {
			include = append(include, p)
		}
	}
	var out []string
	for _, d := range v.dirs() {
		in := false
		for _, p := range include {
			if ok, _ := path.Match(p, d); ok {
				in = true
			}
		}
		for _, p := range exclude {
			if ok, _ := path.Match(p, d); ok {
				in = false
			}
		}
		if in {
			out = append(out, d)
		}
	}
	return out
}

// paramSet is the parameters one generated Application gets.
type paramSet struct {
	dir    string
	params map[string]string
}

// gitFiles evaluates a git files generator: one parameter set per
// matching file, from the file's keys and its path.
func (v *validator) gitFiles(git map[string]any) []paramSet {
	var include, exclude []string
	for _, f := range mapList(git, "files") {
		p := cleanRepoPath(mapStr(f, "path"))
		if ex, _ := mapGet(f, "exclude").(bool); ex {
			exclude = append(exclude, p)
		} else {
			include = append(include, p)
		}
	}
	var out []paramSet
	for _, file := range v.tree.files {
		in := false
		for _, p := range include {
			if ok, _ := path.Match(p, file); ok {
				in = true
			}
		}
		for _, p := range exclude {
			if ok, _ := path.Match(p, file); ok {
				in = false
			}
		}
		if !in {
			continue
		}
		dir := path.Dir(file)
		params := pathParams(dir)
		params["path.filename"] = path.Base(file)
		params["path.filenameNormalized"] = nonDNSRe.ReplaceAllString(strings.ToLower(path.Base(file)), "-")
		for _, d := range v.docs(file) {
			flatten(d.value, "", params)
		}
		out = append(out, paramSet{dir, params})
	}
	return out
}

// flatten adds a document's values as dotted keys.
func flatten(v any, prefix string, out map[string]string) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			flatten(e, key, out)
		}
	case []any:
		for i, e := range t {
			flatten(e, fmt.Sprintf("%s[%d]", prefix, i), out)
		}
	case nil:
	default:
		if prefix != "" {
			if _, taken := out[prefix]; !taken {
				out[prefix] = fmt.Sprint(t)
			}
		}
	}
}

// pathParams are the git directory generator's parameters for dir.
func pathParams(dir string) map[string]string {
	segs := strings.Split(dir, "/")
	base := segs[len(segs)-1]
	norm := nonDNSRe.ReplaceAllString(strings.ToLower(base), "-")
	p := map[string]string{
		"path": dir, "path.path": dir, "path.basename": base, "path.basenameNormalized": norm,
	}
	for i, s := range segs {
		p[fmt.Sprintf("path[%d]", i)] = s
		p[fmt.Sprintf("path.segments[%d]", i)] = s
	}
	return p
}

var nonDNSRe = regexp.MustCompile(`[^a-z0-9-.]`)

var tmplExpr = regexp.MustCompile(`\{\{-?\s*(.*?)\s*-?\}\}`)

// expandTemplate substitutes ApplicationSet parameters, in both the
// fasttemplate ({{path.basename}}) and the Go template ({{.path.basename}},
// {{index .path.segments 1}}) syntax. Unknown expressions stay.
func expandTemplate(s string, params map[string]string) string {
	return tmplExpr.ReplaceAllStringFunc(s, func(m string) string {
		expr := strings.TrimSpace(tmplExpr.FindStringSubmatch(m)[1])
		expr = strings.TrimPrefix(expr, ".")
		if rest, ok := strings.CutPrefix(expr, "index .path.segments "); ok {
			if i, err := strconv.Atoi(strings.TrimSpace(rest)); err == nil {
				expr = fmt.Sprintf("path[%d]", i)
			}
		}
		if v, ok := params[expr]; ok {
			return v
		}
		return m
	})
}

var scpRepoRe = regexp.MustCompile(`^[\w.-]+@([\w.-]+):(.+)$`)

// repoSlug reduces a git URL to owner/repo (lower case, without .git).
func repoSlug(u string) string {
	u = strings.TrimSpace(u)
	if m := scpRepoRe.FindStringSubmatch(u); m != nil {
		u = m[2]
	} else {
		if i := strings.Index(u, "://"); i >= 0 {
			u = u[i+3:]
		}
		if i := strings.IndexByte(u, '/'); i >= 0 {
			u = u[i+1:]
		} else {
			u = ""
		}
	}
	u = strings.TrimSuffix(strings.TrimSuffix(strings.Trim(u, "/"), ".git"), "/")
	parts := strings.Split(u, "/")
	if len(parts) >= 2 {
		u = parts[len(parts)-2] + "/" + parts[len(parts)-1]
	}
	return strings.ToLower(u)
}

// ownSlug is this repository's owner/repo from hl.yaml's forge, or "".
func (v *validator) ownSlug() string {
	if v.s.homelab == nil {
		return ""
	}
	f := v.s.homelab.Spec.Forge
	if f.Owner == "" || f.Repo == "" {
		return ""
	}
	return strings.ToLower(f.Owner + "/" + strings.TrimSuffix(f.Repo, ".git"))
}

// ownRepo reports whether a repoURL is this repository (any host: Argo CD
// may reach the forge through an in-cluster address). Without hl.yaml
// every repoURL is taken as this repository.
func (v *validator) ownRepo(u string) bool {
	own := v.ownSlug()
	return own == "" || repoSlug(u) == own
}

func (v *validator) ownRepoDesc() string {
	f := v.s.homelab.Spec.Forge
	return fmt.Sprintf("%s/%s/%s", strings.TrimRight(f.URL, "/"), f.Owner, f.Repo)
}

func (v *validator) dirExists(p string) bool {
	fi, err := os.Stat(filepath.Join(v.s.dir, filepath.FromSlash(cleanRepoPath(p))))
	return err == nil && fi.IsDir()
}

// checkArgoCD runs argocd-target (and unpinned-chart for Helm sources) on
// one Application or ApplicationSet.
func (v *validator) checkArgoCD(o *object) {
	switch {
	case isApplication(o):
		v.checkSources(o, mapMap(o.obj, "spec"), "spec.", false)
	case isApplicationSet(o):
		for i, g := range mapList(o.obj, "spec", "generators") {
			git := mapMap(g, "git")
			if git == nil {
				continue
			}
			gp := fmt.Sprintf("spec.generators[%d].git", i)
			repo := mapStr(git, "repoURL")
			if !v.ownRepo(repo) {
				v.add(o.finding(PolicyArgoCDTarget, gp+".repoURL", "repoURL %s is not this repository (%s)", repo, v.ownRepoDesc()))
				continue
			}
			for j, d := range mapList(git, "directories") {
				if ex, _ := mapGet(d, "exclude").(bool); ex {
					continue
				}
				pat := cleanRepoPath(mapStr(d, "path"))
				found := false
				for _, dir := range v.dirs() {
					if ok, _ := path.Match(pat, dir); ok {
						found = true
						break
					}
				}
				if !found && !v.dirExists(pat) {
					v.add(o.finding(PolicyArgoCDTarget, fmt.Sprintf("%s.directories[%d].path", gp, j), "no folder of the repository matches %s", pat))
				}
			}
			for j, f := range mapList(git, "files") {
				pat := cleanRepoPath(mapStr(f, "path"))
				found := false
				for _, file := range v.tree.files {
					if ok, _ := path.Match(pat, file); ok {
						found = true
						break
					}
				}
				if !found {
					v.add(o.finding(PolicyArgoCDTarget, fmt.Sprintf("%s.files[%d].path", gp, j), "no file of the repository matches %s", pat))
				}
			}
		}
		v.checkSources(o, mapMap(o.obj, "spec", "template", "spec"), "spec.template.spec.", true)
	}
}

func (v *validator) checkSources(o *object, spec map[string]any, prefix string, templated bool) {
	for _, s := range appSources(spec, prefix) {
		repo := mapStr(s.m, "repoURL")
		if templated && strings.Contains(repo, "{{") {
			continue
		}
		if chart := mapStr(s.m, "chart"); chart != "" {
			rev := mapStr(s.m, "targetRevision")
			if !exactVersion(rev) && !(templated && strings.Contains(rev, "{{")) {
				v.add(o.finding(PolicyUnpinnedChart, s.path+".targetRevision", "chart %s targetRevision %q is not one exact version", chart, rev))
			}
			continue
		}
		if !v.ownRepo(repo) {
			v.add(o.finding(PolicyArgoCDTarget, s.path+".repoURL", "repoURL %s is not this repository (%s)", repo, v.ownRepoDesc()))
			continue
		}
		p, ok := s.m["path"].(string)
		if !ok || (templated && strings.Contains(p, "{{")) {
			continue
		}
		if !v.dirExists(p) {
			v.add(o.finding(PolicyArgoCDTarget, s.path+".path", "path %s does not exist in the repository", p))
		}
	}
}
