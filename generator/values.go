package generator

import (
	"bytes"
	"fmt"
	"sort"

	"gopkg.in/yaml.v3"
)

// mergeValues applies spec.apps.<name>.values to every enabled wrapper
// chart: the overrides are the upstream chart's values, so they go under
// the dependency's key of values.yaml, deep-merged over what the template
// rendered (maps merge, everything else replaces).
func mergeValues(plan *Plan, d *Data) error {
	for _, c := range d.Enabled {
		if len(c.Values) == 0 || c.Chart == nil {
			continue
		}
		p := c.Layer + "/" + c.Name + "/values.yaml"
		f, ok := plan.Files[p]
		if !ok {
			return fmt.Errorf("spec.apps.%s.values: the component has no values.yaml to merge into", c.Name)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(f.Content, &doc); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if len(doc.Content) == 0 {
			doc.Content = []*yaml.Node{{Kind: yaml.MappingNode}}
		}
		var over yaml.Node
		if err := over.Encode(map[string]any{c.Chart.Name: c.Values}); err != nil {
			return fmt.Errorf("spec.apps.%s.values: %w", c.Name, err)
		}
		mergeNode(doc.Content[0], &over)
		var b bytes.Buffer
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		if err := enc.Encode(&doc); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		f.Content = b.Bytes()
	}
	return nil
}

// mergeNode deep-merges the mapping src into dst in place.
func mergeNode(dst, src *yaml.Node) {
	if dst.Kind != yaml.MappingNode || src.Kind != yaml.MappingNode {
		*dst = *src
		return
	}
	idx := map[string]int{}
	for i := 0; i+1 < len(dst.Content); i += 2 {
		idx[dst.Content[i].Value] = i
	}
	keys := make([]int, 0, len(src.Content)/2)
	for i := 0; i+1 < len(src.Content); i += 2 {
		keys = append(keys, i)
	}
	sort.SliceStable(keys, func(a, b int) bool { return src.Content[keys[a]].Value < src.Content[keys[b]].Value })
	for _, i := range keys {
		k, v := src.Content[i], src.Content[i+1]
		if j, ok := idx[k.Value]; ok {
			mergeNode(dst.Content[j+1], v)
			continue
		}
		dst.Content = append(dst.Content, k, v)
	}
}
