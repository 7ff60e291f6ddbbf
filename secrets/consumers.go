package secrets

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/internal/repofs"
	"hl.dev/hl/internal/yamlnode"
)

// ChecksumAnnotationPrefix + secret name is the pod template annotation
// that makes a workload restart when the secret's ciphertext changes.
const ChecksumAnnotationPrefix = "hl.dev/secret-checksum-"

// ChecksumAnnotation is the annotation key for one secret; the name part
// of an annotation key is at most 63 characters.
func ChecksumAnnotation(secretName string) string {
	k := "secret-checksum-" + secretName
	if len(k) > 63 {
		k = strings.TrimRight(k[:63], "-.")
	}
	return "hl.dev/" + k
}

// Workload is a consumer the rotation marked for restart.
type Workload struct {
	Kind string `json:"kind"` // Deployment, StatefulSet, DaemonSet, or "helm values"
	Name string `json:"name"`
	File string `json:"file"`
	// Secret is the name of the Secret it reads.
	Secret string `json:"secret"`
}

var workloadKinds = map[string]bool{"Deployment": true, "StatefulSet": true, "DaemonSet": true}

// target is one rotated Secret whose consumers must restart.
type target struct {
	Name, Namespace string
	File            string // the Secret's file
	Consumers       []string
	Checksum        string
}

// markConsumers annotates, in the working tree at dir, every workload that
// reads one of the targets: raw manifests get the checksum under
// spec.template.metadata.annotations; a Helm wrapper chart's values.yaml in
// the secret's component folder gets it under every podAnnotations map it
// already has. It returns the marked workloads and the declared consumers
// no annotation could be set for (to restart by hand).
func markConsumers(dir string, targets []target) (marked []Workload, manual []string, err error) {
	files, err := yamlFiles(dir)
	if err != nil {
		return nil, nil, err
	}
	found := map[string]bool{} // namespace/kind/name (lower case) marked
	for _, t := range targets {
		comp := componentDir(t.File)
		for _, f := range files {
			ws, err := annotateFile(dir, f, func(kind, name, ns string, podSpec *yaml.Node) bool {
				if ns != "" && ns != t.Namespace {
					return false
				}
				declared := hasConsumer(t.Consumers, kind, name)
				if ns == "" && !declared && !strings.HasPrefix(f, comp+"/") {
					return false
				}
				return declared || references(podSpec, t.Name)
			}, ChecksumAnnotation(t.Name), t.Checksum)
			if err != nil {
				return nil, nil, err
			}
			for _, w := range ws {
				w.Secret = t.Name
				marked = append(marked, w)
				found[strings.ToLower(t.Namespace+"/"+w.Kind+"/"+w.Name)] = true
			}
		}
		for _, vals := range valuesFiles(dir, files, comp, t.Namespace) {
			if ok, err := annotateValues(dir, vals, t.Name, ChecksumAnnotation(t.Name), t.Checksum); err != nil {
				return nil, nil, err
			} else if ok {
				marked = append(marked, Workload{Kind: "Helm values", Name: path.Base(path.Dir(vals)), File: vals, Secret: t.Name})
				for _, c := range t.Consumers {
					found[strings.ToLower(t.Namespace+"/"+c)] = true
				}
			}
		}
		for _, c := range t.Consumers {
			if !found[strings.ToLower(t.Namespace+"/"+c)] {
				manual = append(manual, fmt.Sprintf("kubectl -n %s rollout restart %s", t.Namespace, c))
			}
		}
	}
	sort.Strings(manual)
	return marked, manual, nil
}

func hasConsumer(consumers []string, kind, name string) bool {
	for _, c := range consumers {
		if strings.EqualFold(c, kind+"/"+name) {
			return true
		}
	}
	return false
}

// yamlFiles lists the plain YAML files of the repo (no SOPS files).
func yamlFiles(dir string) ([]string, error) {
	return repofs.Files(dir, func(p string) bool {
		n := path.Base(p)
		return !strings.Contains(n, ".sops.") && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml"))
	})
}

// references reports whether a pod spec reads the Secret: volumes
// (secretName, projected secret.name), env valueFrom.secretKeyRef,
// envFrom.secretRef, imagePullSecrets.
func references(n *yaml.Node, secret string) bool {
	if n == nil {
		return false
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i].Value, n.Content[i+1]
			if v.Kind == yaml.ScalarNode && v.Value == secret && strings.Contains(strings.ToLower(k), "secret") {
				return true // secretName, existingSecret, ...
			}
			switch k {
			case "secretRef", "secretKeyRef", "secret":
				if m := yamlnode.Value(v, "name"); m != nil && m.Value == secret {
					return true
				}
			case "imagePullSecrets":
				for _, e := range v.Content {
					if m := yamlnode.Value(e, "name"); m != nil && m.Value == secret {
						return true
					}
				}
			}
			if references(v, secret) {
				return true
			}
		}
	case yaml.SequenceNode, yaml.DocumentNode:
		for _, c := range n.Content {
			if references(c, secret) {
				return true
			}
		}
	}
	return false
}

func parseDocs(b []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(n.Content) > 0 {
			out = append(out, n.Content[0])
		}
	}
}

// annotateFile sets key: value in the pod template annotations of every
// workload of file f that match selects. Edits are textual (one line
// replaced or a few inserted) so the rest of the file stays byte for byte.
func annotateFile(dir, f string, match func(kind, name, ns string, podSpec *yaml.Node) bool, key, value string) ([]Workload, error) {
	full := filepath.Join(dir, filepath.FromSlash(f))
	b, err := os.ReadFile(full)
	if err != nil {
		return nil, err
	}
	if !bytes.Contains(b, []byte("kind:")) {
		return nil, nil
	}
	var out []Workload
	seen := map[int]bool{}
	changed := false
	// One edit at a time, re-parsing after each: edits shift lines.
	for guard := 0; guard < 1000; guard++ {
		docs, err := parseDocs(b)
		if err != nil {
			return nil, nil // not plain YAML (e.g. a Helm template): not ours to edit
		}
		edited := false
		for i, d := range docs {
			kind := yamlnode.Value(d, "kind")
			if kind == nil || !workloadKinds[kind.Value] {
				continue
			}
			md := yamlnode.Value(d, "metadata")
			name, ns := "", ""
			if n := yamlnode.Value(md, "name"); n != nil {
				name = n.Value
			}
			if n := yamlnode.Value(md, "namespace"); n != nil {
				ns = n.Value
			}
			tmpl := yamlnode.Value(yamlnode.Value(d, "spec"), "template")
			if tmpl == nil || !match(kind.Value, name, ns, yamlnode.Value(tmpl, "spec")) {
				continue
			}
			if !seen[i] {
				seen[i] = true
				out = append(out, Workload{Kind: kind.Value, Name: name, File: f})
			}
			tk, tv := yamlnode.Pair(yamlnode.Value(d, "spec"), "template")
			nb, did, err := setPath(b, tv, tk, []string{"metadata", "annotations"}, key, value)
			if err != nil {
				return nil, fmt.Errorf("%s: %s/%s: %w", f, kind.Value, name, err)
			}
			if did {
				b, edited, changed = nb, true, true
				break
			}
		}
		if !edited {
			break
		}
	}
	if changed {
		if err := os.WriteFile(full, b, 0o644); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// annotateValues handles Helm wrapper charts: in values.yaml, every
// top-level block (a subchart's values) that references the secret gets
// the checksum in a podAnnotations map: the deepest map that references
// the secret and already has podAnnotations (e.g. server.podAnnotations),
// else a podAnnotations key added to the top-level block (the common
// chart convention: dex, grafana, ...). false when nothing references it.
func annotateValues(dir, f, secret, key, value string) (bool, error) {
	full := filepath.Join(dir, filepath.FromSlash(f))
	b, err := os.ReadFile(full)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	found, changed := false, false
	done := map[string]bool{}
	for guard := 0; guard < 100; guard++ {
		docs, err := parseDocs(b)
		if err != nil || len(docs) == 0 || docs[0].Kind != yaml.MappingNode {
			return false, nil
		}
		root := docs[0]
		edited := false
		for i := 0; i+1 < len(root.Content); i += 2 {
			k, v := root.Content[i], root.Content[i+1]
			if done[k.Value] || v.Kind != yaml.MappingNode || v.Style&yaml.FlowStyle != 0 || !references(v, secret) {
				continue
			}
			done[k.Value] = true
			found = true
			var nb []byte
			var did bool
			if pk, pv := deepestPodAnnotations(v, secret); pv != nil {
				nb, did, err = setIn(b, pk, pv, key, value)
			} else {
				nb, did, err = setPath(b, v, k, []string{"podAnnotations"}, key, value)
			}
			if err != nil {
				return false, fmt.Errorf("%s: %s: %w", f, k.Value, err)
			}
			if did {
				b, edited, changed = nb, true, true
				break
			}
		}
		if !edited {
			break
		}
	}
	if changed {
		if err := os.WriteFile(full, b, 0o644); err != nil {
			return false, err
		}
	}
	return found, nil
}

// deepestPodAnnotations finds, below m, the deepest map referencing the
// secret with a podAnnotations key; it returns that key and value.
func deepestPodAnnotations(m *yaml.Node, secret string) (*yaml.Node, *yaml.Node) {
	if m.Kind != yaml.MappingNode || !references(m, secret) {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k, v := deepestPodAnnotations(m.Content[i+1], secret); v != nil {
			return k, v
		}
	}
	if k, v := yamlnode.Pair(m, "podAnnotations"); k != nil {
		if v.Kind == yaml.MappingNode || (v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
			return k, v
		}
	}
	return nil, nil
}

// setPath ensures the mapping at keyPath below parent (whose key node is
// parentKey) holds key: value, creating the missing maps.
func setPath(b []byte, parent, parentKey *yaml.Node, keyPath []string, key, value string) ([]byte, bool, error) {
	if len(keyPath) == 0 {
		return setIn(b, parentKey, parent, key, value)
	}
	if parent.Kind != yaml.MappingNode || parent.Style&yaml.FlowStyle != 0 {
		return nil, false, errors.New("flow-style map: cannot add an annotation")
	}
	childKey, child := yamlnode.Pair(parent, keyPath[0])
	if child != nil && !(child.Kind == yaml.ScalarNode && child.Tag == "!!null") {
		return setPath(b, child, childKey, keyPath[1:], key, value)
	}
	if child != nil {
		return nil, false, fmt.Errorf("%s is null: cannot add an annotation", keyPath[0])
	}
	// Insert the missing maps as the first entries of parent.
	if len(parent.Content) == 0 {
		return nil, false, errors.New("empty map: cannot add an annotation")
	}
	indent := parent.Content[0].Column - 1
	var ins []string
	for i, k := range keyPath {
		ins = append(ins, strings.Repeat(" ", indent+2*i)+k+":")
	}
	ins = append(ins, strings.Repeat(" ", indent+2*len(keyPath))+key+": "+quote(value))
	return insertBefore(b, parent.Content[0].Line, ins), true, nil
}

// setIn sets key: value in the map v (key node k): replaces the value when
// the key exists, inserts it as the first entry otherwise. An empty flow
// map ({}) or a null value is turned into a block map.
func setIn(b []byte, k, v *yaml.Node, key, value string) ([]byte, bool, error) {
	lines := strings.SplitAfter(string(b), "\n")
	if v.Kind == yaml.MappingNode && v.Style&yaml.FlowStyle == 0 && len(v.Content) > 0 {
		if old := yamlnode.Value(v, key); old != nil {
			if old.Value == value {
				return b, false, nil
			}
			l := lines[old.Line-1]
			nl := ""
			if strings.HasSuffix(l, "\n") {
				nl = "\n"
			}
			lines[old.Line-1] = l[:old.Column-1] + quote(value) + nl
			return []byte(strings.Join(lines, "")), true, nil
		}
		indent := v.Content[0].Column - 1
		return insertBefore(b, v.Content[0].Line, []string{strings.Repeat(" ", indent) + key + ": " + quote(value)}), true, nil
	}
	empty := (v.Kind == yaml.MappingNode && len(v.Content) == 0) || (v.Kind == yaml.ScalarNode && v.Tag == "!!null")
	if !empty {
		return nil, false, errors.New("flow-style map: cannot add an annotation")
	}
	// key: {} / key: / key: null on k's line: cut after "key:" and add a block.
	l := lines[k.Line-1]
	colon := strings.Index(l[k.Column-1:], ":")
	if colon < 0 || v.Line != k.Line {
		return nil, false, errors.New("unexpected layout")
	}
	rest := strings.TrimSpace(l[k.Column-1+colon+1:])
	if c := strings.Index(rest, "#"); c >= 0 {
		rest = strings.TrimSpace(rest[:c])
	}
	if rest != "" && rest != "{}" && rest != "null" && rest != "~" {
		return nil, false, errors.New("unexpected layout")
	}
	lines[k.Line-1] = l[:k.Column-1+colon+1] + "\n"
	child := strings.Repeat(" ", k.Column-1+2) + key + ": " + quote(value) + "\n"
	lines = append(lines[:k.Line], append([]string{child}, lines[k.Line:]...)...)
	return []byte(strings.Join(lines, "")), true, nil
}

// insertBefore inserts whole lines before 1-based line n.
func insertBefore(b []byte, n int, ins []string) []byte {
	lines := strings.SplitAfter(string(b), "\n")
	var add []string
	for _, l := range ins {
		add = append(add, l+"\n")
	}
	lines = append(lines[:n-1], append(add, lines[n-1:]...)...)
	return []byte(strings.Join(lines, ""))
}

func quote(s string) string { return `"` + s + `"` }

// valuesFiles are the Helm values files that may read a secret of
// namespace ns: the secret's own component's, and those of components
// whose app.yaml deploys to ns.
func valuesFiles(dir string, files []string, comp, ns string) []string {
	var out []string
	for _, f := range files {
		if path.Base(f) != "values.yaml" {
			continue
		}
		d := path.Dir(f)
		if d == comp {
			out = append(out, f)
			continue
		}
		app, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(d), "app.yaml"))
		if err == nil && bytes.Contains(app, []byte("namespace: "+ns+"\n")) {
			out = append(out, f)
		}
	}
	return out
}
