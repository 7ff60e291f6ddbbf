package generator

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// funcs is the one place template helpers live.
func funcs() template.FuncMap {
	return template.FuncMap{
		"toYaml":  toYAML,
		"indent":  indent,
		"nindent": func(n int, s string) string { return "\n" + indent(n, s) },
		// Each quoting function emits a value as data in one format; a
		// template uses the one of the file (or the embedded language) the
		// value lands in. See quote_test.go for the proofs.
		"quote":   yamlQuote,
		"shq":     shQuote,
		"jmesq":   jmespathLiteral,
		"csvq":    csvField,
		"join":    func(sep string, xs []string) string { return strings.Join(xs, sep) },
		"split":   func(sep, s string) []string { return strings.Split(s, sep) },
		"sha256":  func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) },
		"trimDot": func(s string) string { return strings.TrimSuffix(s, ".") },
		// bracketIPv6 writes an IPv6 address as host:port needs it.
		"bracketIPv6": func(s string) string {
			if strings.Contains(s, ":") {
				return "[" + s + "]"
			}
			return s
		},
		"upper":       strings.ToUpper,
		"lower":       strings.ToLower,
		"replace":     func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
		"contains":    func(sub, s string) bool { return strings.Contains(s, sub) },
		"traefikName": traefikName,
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

// traefikName is name as Traefik's providers turn it into a router or
// service name (provider.Normalize in github.com/traefik/traefik/v3): every
// run of characters other than letters and digits becomes one "-", with
// none at either end. The SLO rules match Traefik's per-router metrics by
// it.
func traefikName(name string) string {
	notAlnum := func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) }
	return strings.Join(strings.FieldsFunc(name, notAlnum), "-")
}

// yamlQuote is s as a YAML double-quoted scalar (also a JSON string and
// a PromQL string). Go's quoting escapes exactly what YAML's double-quoted
// style needs for valid UTF-8 (\n, \", \\, \uXXXX for what is not
// printable, U+2028 and U+2029 included); invalid UTF-8 would come out as
// \xNN, which YAML reads as a different character, so it is refused.
func yamlQuote(v any) (string, error) {
	s := fmt.Sprint(v)
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("quote: %q is not valid UTF-8", s)
	}
	return strconv.Quote(s), nil
}

// shQuote is s as one single-quoted POSIX shell word: nothing inside
// single quotes is special, and a quote closes, adds an escaped quote and
// reopens. A NUL byte cannot be passed to a shell at all.
func shQuote(v any) (string, error) {
	s := fmt.Sprint(v)
	if strings.ContainsRune(s, 0) {
		return "", fmt.Errorf("shq: %q holds a NUL byte", s)
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'", nil
}

// jmespathLiteral is s as a JMESPath JSON literal (`"..."`), the one
// string form JMESPath can carry any value in: raw strings ('...') cannot
// end in a backslash. Backticks, which would end the literal, are written
// as the JSON escape \u0060. Grafana's role_attribute_path is JMESPath.
func jmespathLiteral(v any) (string, error) {
	s := fmt.Sprint(v)
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("jmesq: %q is not valid UTF-8", s)
	}
	b, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	return "`" + strings.ReplaceAll(string(b), "`", `\u0060`) + "`", nil
}

// csvField is s as one field of a CSV line (RFC 4180, as Go's
// encoding/csv reads it): quoted when it holds a separator or a quote, or
// starts with white space (the reader trims it). A line break cannot be
// carried: Argo CD's RBAC policy, the CSV hl writes, is split into lines
// before the CSV reader sees it.
func csvField(v any) (string, error) {
	s := fmt.Sprint(v)
	if strings.ContainsAny(s, "\r\n") {
		return "", fmt.Errorf("csvq: %q holds a line break", s)
	}
	if r, _ := utf8.DecodeRuneInString(s); s == "" || unicode.IsSpace(r) || strings.ContainsAny(s, ",\"") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`, nil
	}
	return s, nil
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
