package generator

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"text/template"

	"gopkg.in/yaml.v3"
)

// funcs is the one place template helpers live.
func funcs() template.FuncMap {
	return template.FuncMap{
		"toYaml":   toYAML,
		"indent":   indent,
		"nindent":  func(n int, s string) string { return "\n" + indent(n, s) },
		"quote":    func(s any) string { return fmt.Sprintf("%q", fmt.Sprint(s)) },
		"join":     func(sep string, xs []string) string { return strings.Join(xs, sep) },
		"split":    func(sep, s string) []string { return strings.Split(s, sep) },
		"sha256":   func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) },
		"trimDot":  func(s string) string { return strings.TrimSuffix(s, ".") },
		"upper":    strings.ToUpper,
		"lower":    strings.ToLower,
		"replace":  func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
		"contains": func(sub, s string) bool { return strings.Contains(s, sub) },
		"required": func(what string, v any) (any, error) {
			if v == nil || fmt.Sprint(v) == "" {
				return nil, fmt.Errorf("required value missing: %s", what)
			}
			return v, nil
		},
		"sortedKeys": func(m map[string]any) []string {
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			return keys
		},
		"list": func(xs ...any) []any { return xs },
		"dict": func(kv ...any) (map[string]any, error) {
			if len(kv)%2 != 0 {
				return nil, fmt.Errorf("dict needs key/value pairs")
			}
			m := map[string]any{}
			for i := 0; i < len(kv); i += 2 {
				m[fmt.Sprint(kv[i])] = kv[i+1]
			}
			return m, nil
		},
	}
}

// toYAML marshals v with sorted map keys (yaml.v3 sorts maps) and two-space
// indentation, without a trailing newline so templates control layout.
func toYAML(v any) (string, error) {
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "\n")
}
