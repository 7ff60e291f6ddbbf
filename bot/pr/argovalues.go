package pr

import (
	"bytes"
	"path"
	"strings"

	"gopkg.in/yaml.v3"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/strvals"

	"hl.dev/hl/bot"
)

// ChartInput is what a chart update is rendered with: the values, the
// release name and namespace the chart sees, and the value sources the
// rendered diff leaves out (named in its summary).
type ChartInput struct {
	Values    map[string]any
	Release   string
	Namespace string
	Unapplied []string
}

// argoInput reads, from the Argo CD Application or ApplicationSet file
// content, the Helm source whose targetRevision the dependency d pins,
// what Argo CD renders that chart with, in Argo CD's order: helm.
// valueFiles, overlaid by helm.values, by helm.valuesObject, then
// helm.parameters; the release name (helm.releaseName, else the
// Application's name) and the destination namespace. A value file read
// through a ref source ($ref/path) of this repository (self says which
// repoURLs are) is read from the base with read; value files inside the
// chart or another repository, and fileParameters, are listed as
// unapplied. ok is false when no source of the file matches d.
func argoInput(content []byte, d bot.Dependency, self func(repoURL string) bool, read func(path string) ([]byte, error)) (in ChartInput, ok bool) {
	line := bytes.Count(content[:min(d.Range.Start, len(content))], []byte("\n")) + 1
	dec := yaml.NewDecoder(bytes.NewReader(content))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			return in, false // the end, or a document Argo CD could not read either
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		if !strings.HasPrefix(str(get(root, "apiVersion")), "argoproj.io/") {
			continue
		}
		meta, spec := get(root, "metadata"), get(root, "spec")
		switch str(get(root, "kind")) {
		case "Application":
		case "ApplicationSet":
			tmpl := get(spec, "template")
			meta, spec = get(tmpl, "metadata"), get(tmpl, "spec")
		default:
			continue
		}
		var sources []*yaml.Node
		if s := get(spec, "source"); s != nil {
			sources = append(sources, s)
		}
		if ss := get(spec, "sources"); ss != nil && ss.Kind == yaml.SequenceNode {
			sources = append(sources, ss.Content...)
		}
		refs := map[string]string{} // ref name → repoURL
		for _, src := range sources {
			if r := str(get(src, "ref")); r != "" {
				refs[r] = str(get(src, "repoURL"))
			}
		}
		for _, src := range sources {
			rev := get(src, "targetRevision")
			if rev == nil || rev.Line != line || str(rev) != d.Current {
				continue
			}
			in = ChartInput{Values: map[string]any{}, Release: str(get(meta, "name")), Namespace: str(get(get(spec, "destination"), "namespace"))}
			helm := get(src, "helm")
			if rn := str(get(helm, "releaseName")); rn != "" {
				in.Release = rn
			}
			if strings.Contains(in.Release, "{{") {
				in.Release = "" // an ApplicationSet's templated name
			}
			if strings.Contains(in.Namespace, "{{") {
				in.Namespace = ""
			}
			ignoreMissing := str(get(helm, "ignoreMissingValueFiles")) == "true"
			if vf := get(helm, "valueFiles"); vf != nil && vf.Kind == yaml.SequenceNode {
				for _, f := range vf.Content {
					m, why := valueFile(str(f), refs, self, read)
					switch {
					case why == "" && m != nil:
						in.Values = chartutil.MergeTables(m, in.Values)
					case why == "missing" && ignoreMissing:
					case why != "":
						in.Unapplied = append(in.Unapplied, "helm.valueFiles "+str(f)+" ("+why+")")
					}
				}
			}
			if v := str(get(helm, "values")); v != "" {
				var m map[string]any
				if err := yaml.Unmarshal([]byte(v), &m); err != nil {
					in.Unapplied = append(in.Unapplied, "helm.values (not YAML: "+oneLine(err.Error())+")")
				} else if m != nil {
					in.Values = chartutil.MergeTables(m, in.Values)
				}
			}
			if vo := get(helm, "valuesObject"); vo != nil {
				var m map[string]any
				if vo.Decode(&m) == nil && m != nil {
					in.Values = chartutil.MergeTables(m, in.Values) // valuesObject wins
				}
			}
			if ps := get(helm, "parameters"); ps != nil && ps.Kind == yaml.SequenceNode {
				for _, p := range ps.Content {
					name, val := str(get(p, "name")), str(get(p, "value"))
					if name == "" {
						continue
					}
					parse := strvals.ParseInto
					if str(get(p, "forceString")) == "true" {
						parse = strvals.ParseIntoString
					}
					if err := parse(name+"="+val, in.Values); err != nil {
						in.Unapplied = append(in.Unapplied, "helm.parameters "+name)
					}
				}
			}
			if n := get(helm, "fileParameters"); n != nil && len(n.Content) > 0 {
				in.Unapplied = append(in.Unapplied, "helm.fileParameters")
			}
			return in, true
		}
	}
}

// valueFile reads a helm.valueFiles entry that names a file of this
// repository through a ref source ("$ref/path"); why says why it was not
// read ("missing" for a file that is not there).
func valueFile(f string, refs map[string]string, self func(string) bool, read func(string) ([]byte, error)) (map[string]any, string) {
	ref, p, ok := strings.Cut(strings.TrimPrefix(f, "$"), "/")
	if !strings.HasPrefix(f, "$") || !ok {
		return nil, "inside the chart"
	}
	repo, ok := refs[ref]
	if !ok {
		return nil, "no source with ref " + ref
	}
	if self == nil || !self(repo) {
		return nil, "another repository"
	}
	raw, err := read(path.Clean(p))
	if err != nil {
		return nil, "missing"
	}
	var m map[string]any
	if err := yaml.Unmarshal(raw, &m); err != nil {
		return nil, "not YAML: " + oneLine(err.Error())
	}
	return m, ""
}

// sameRepo reports whether two git URLs name the same repository: the
// same owner/name at the end of their paths (".git" and case aside), as
// Argo CD may reach the forge under another host name than the bot.
func sameRepo(a, b string) bool {
	tail := func(u string) string {
		u = strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(u, "/"), ".git"))
		parts := strings.Split(strings.ReplaceAll(u, ":", "/"), "/")
		if len(parts) < 2 {
			return ""
		}
		return parts[len(parts)-2] + "/" + parts[len(parts)-1]
	}
	ta := tail(a)
	return ta != "" && ta == tail(b)
}

// get is the value of key in mapping m (nil when m is not a mapping or
// has no such key).
func get(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func str(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
