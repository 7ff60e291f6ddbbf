package validate

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/internal/yamlnode"
	"hl.dev/hl/schemas"
)

// isWoodpecker reports whether rel is a Woodpecker pipeline file.
func isWoodpecker(rel string) bool {
	if rel == ".woodpecker.yaml" || rel == ".woodpecker.yml" {
		return true
	}
	d, f := path.Split(rel)
	return d == ".woodpecker/" && isYAML(f)
}

// checkWoodpecker validates pipelines against Woodpecker's schema.
func (v *validator) checkWoodpecker(file string) {
	docs := v.docs(file)
	if len(docs) == 0 {
		return
	}
	s, err := schemas.Get(schemas.Woodpecker)
	if err != nil {
		v.add(Finding{Policy: PolicyWoodpeckerSchema, File: file, Line: 1, Message: err.Error()})
		return
	}
	for _, d := range docs {
		probs, err := validateJSONSchema(s, d.value, 5)
		if err != nil {
			v.add(Finding{Policy: PolicyWoodpeckerSchema, File: file, Line: d.line(), Message: err.Error()})
		}
		for _, p := range probs {
			v.add(Finding{Policy: PolicyWoodpeckerSchema, File: file, Line: lineOf(d.root, p.path),
				Path: joinPath(p.path), Message: p.msg})
		}
	}
}

// ageList reads age recipients from a string (comma or newline separated)
// or a list.
func ageList(v any) []string {
	var out []string
	add := func(s string) {
		for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == ' ' }) {
			out = append(out, strings.TrimSpace(f))
		}
	}
	switch t := v.(type) {
	case string:
		add(t)
	case []any:
		for _, e := range t {
			if s, ok := e.(string); ok {
				add(s)
			}
		}
	}
	return out
}

// diffSets describes how got differs from want, or "".
func diffSets(got, want []string) string {
	g, w := map[string]bool{}, map[string]bool{}
	for _, s := range got {
		g[s] = true
	}
	for _, s := range want {
		w[s] = true
	}
	var missing, extra []string
	for s := range w {
		if !g[s] {
			missing = append(missing, s)
		}
	}
	for s := range g {
		if !w[s] {
			extra = append(extra, s)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "missing "+strings.Join(missing, ", "))
	}
	if len(extra) > 0 {
		parts = append(parts, "not in hl.yaml "+strings.Join(extra, ", "))
	}
	return strings.Join(parts, "; ")
}

// isSOPSFile reports whether rel is a SOPS-encrypted file by name
// (x.sops.yaml; not the .sops.yaml configuration).
func isSOPSFile(rel string) bool {
	base := path.Base(rel)
	if base == ".sops.yaml" || base == ".sops.yml" {
		return false
	}
	return strings.HasSuffix(base, ".sops.yaml") || strings.HasSuffix(base, ".sops.yml")
}

// sopsRule is one creation rule of .sops.yaml.
type sopsRule struct {
	pathRegex *regexp.Regexp
	age       []string
	line      int
}

func (v *validator) sopsRules() []sopsRule {
	docs := v.docs(".sops.yaml")
	if len(docs) == 0 {
		return nil
	}
	var out []sopsRule
	seq := yamlnode.Value(docs[0].root, "creation_rules")
	for i, r := range mapList(docs[0].value, "creation_rules") {
		rule := sopsRule{age: ageList(mapGet(r, "age")), line: 1}
		for _, kg := range mapList(r, "key_groups") {
			rule.age = append(rule.age, ageList(mapGet(kg, "age"))...)
		}
		if seq != nil && i < len(seq.Content) {
			rule.line = seq.Content[i].Line
			if a := yamlnode.Key(seq.Content[i], "age"); a != nil {
				rule.line = a.Line
			}
		}
		if re := mapStr(r, "path_regex"); re != "" {
			rule.pathRegex, _ = regexp.Compile(re)
		}
		out = append(out, rule)
	}
	return out
}

// checkSOPS compares .sops.yaml and every *.sops.yaml file's recipients
// with hl.yaml (or, without hl.yaml, each file with its .sops.yaml rule),
// and flags sops files that are not (fully) encrypted.
func (v *validator) checkSOPS() {
	var want []string
	haveCfg := v.s.homelab != nil
	if haveCfg {
		want = v.s.homelab.Spec.Secrets.AgeRecipients
	}
	rules := v.sopsRules()
	if haveCfg {
		for _, r := range rules {
			if d := diffSets(r.age, want); d != "" {
				v.add(Finding{Policy: PolicySOPSRecipients, File: ".sops.yaml", Line: r.line,
					Message: "creation rule age recipients differ from hl.yaml spec.secrets.ageRecipients: " + d})
			}
		}
	}
	for _, f := range v.tree.files {
		if !isSOPSFile(f) {
			continue
		}
		expect, haveExpect := want, haveCfg
		if !haveCfg {
			for _, r := range rules {
				if r.pathRegex == nil || r.pathRegex.MatchString(f) {
					expect, haveExpect = r.age, true
					break
				}
			}
		}
		for _, d := range v.docs(f) {
			meta := mapMap(d.value, "sops")
			if meta == nil {
				v.add(Finding{Policy: PolicyPlaintextSecret, File: f, Line: d.line(),
					Message: "file is named *.sops.yaml but is not SOPS-encrypted"})
				continue
			}
			var got []string
			for _, a := range mapList(meta, "age") {
				if r := mapStr(a, "recipient"); r != "" {
					got = append(got, r)
				}
			}
			if haveExpect {
				if diff := diffSets(got, expect); diff != "" {
					line := lineOf(d.root, []string{"sops", "age"})
					src := "hl.yaml spec.secrets.ageRecipients"
					if !haveCfg {
						src = ".sops.yaml"
					}
					v.add(Finding{Policy: PolicySOPSRecipients, File: f, Line: line,
						Message: fmt.Sprintf("encrypted for recipients that differ from %s: %s; run sops updatekeys", src, diff)})
				}
			}
			v.checkSOPSValues(f, d)
		}
	}
}

// checkSOPSValues flags the data and stringData values of a document
// with a sops block that are not ENC[...] (encrypted_regex missed them).
func (v *validator) checkSOPSValues(f string, d *yamlDoc) {
	for _, field := range []string{"data", "stringData"} {
		dn := yamlnode.Value(d.root, field)
		if dn == nil || dn.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(dn.Content); i += 2 {
			val := dn.Content[i+1]
			if val.Kind == yaml.ScalarNode && val.Value != "" && !strings.HasPrefix(val.Value, "ENC[") {
				v.add(Finding{Policy: PolicyPlaintextSecret, File: f, Line: dn.Content[i].Line,
					Path: field + "." + dn.Content[i].Value, Message: "value is not encrypted (check encrypted_regex in .sops.yaml)"})
			}
		}
	}
}

// checkCharts flags unpinned chart versions (wrapper dependencies and
// kustomize helmCharts) and literal credentials in the wrapper charts'
// values.
func (v *validator) checkCharts() {
	for _, d := range repoChartDeps(v.s.dir, v.tree) {
		if d.isLocal() || exactVersion(d.Version) {
			continue
		}
		msg := fmt.Sprintf("chart %s version %q is not one exact version", d.Name, d.Version)
		if d.Version == "" {
			msg = fmt.Sprintf("chart %s has no version", d.Name)
		}
		v.add(Finding{Policy: PolicyUnpinnedChart, File: d.File, Line: d.VersionLine, Message: msg})
	}
	for _, c := range v.tree.charts {
		vf := path.Join(c, "values.yaml")
		v.scanValues(vf, v.docs(vf))
	}
}
