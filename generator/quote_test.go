package generator

import (
	"encoding/csv"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// quoteSamples are strings every quoting function must carry unchanged.
var quoteSamples = append([]string{
	"", "plain", " leading and trailing ", "tab\there", "nul\x00byte", "del\x7f",
	"\ufeffbom", "\u0085nel", "emoji 🏠", "\U0010fffd", "\ufffe\uffff",
	"`backtick`", "a`b\\`c", "trailing\\",
}, hostileStrings...)

// TestYAMLQuote checks the claim quote rests on: Go's quoting of valid
// UTF-8 is a YAML double-quoted scalar that yaml.v3 reads back as the same
// string, for every rune (in batches) and every sample, as a block value,
// a flow list item and a flow mapping value.
func TestYAMLQuote(t *testing.T) {
	var all []string
	var b strings.Builder
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		b.WriteRune(r)
		if b.Len() > 16<<10 {
			all = append(all, b.String())
			b.Reset()
		}
	}
	all = append(append(all, b.String()), quoteSamples...)
	for _, s := range all {
		q, err := yamlQuote(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range []string{"k: " + q + "\n", "k: [" + q + ", x]\n", "k: {v: " + q + ", w: x}\n"} {
			var v map[string]any
			if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
				t.Fatalf("%.60q: %v", doc, err)
			}
			got := v["k"]
			switch g := got.(type) {
			case []any:
				got = g[0]
			case map[string]any:
				got = g["v"]
			}
			if got != s {
				t.Fatalf("%.60q read back as %.60q", s, got)
			}
		}
	}
	if _, err := yamlQuote("\xff"); err == nil {
		t.Error("invalid UTF-8 quoted")
	}
}

// TestShQuote runs each quoted sample through a real shell.
func TestShQuote(t *testing.T) {
	for _, s := range quoteSamples {
		q, err := shQuote(s)
		if strings.ContainsRune(s, 0) {
			if err == nil {
				t.Errorf("%q: NUL accepted", s)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("sh", "-c", "printf %s "+q).Output()
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if string(out) != s {
			t.Errorf("%q came out of sh as %q", s, out)
		}
	}
}

// TestJMESPathLiteral checks jmesq against JMESPath's literal rule (as
// go-jmespath's lexer reads it): the text between backticks, with \`
// unescaped, is JSON. It must be one backtick-free JSON string equal to
// the value.
func TestJMESPathLiteral(t *testing.T) {
	for _, s := range quoteSamples {
		q, err := jmespathLiteral(s)
		if err != nil {
			t.Fatal(err)
		}
		inner, ok := strings.CutPrefix(q, "`")
		inner, ok2 := strings.CutSuffix(inner, "`")
		if !ok || !ok2 || strings.Contains(inner, "`") {
			t.Fatalf("%q: %s is not one JMESPath literal", s, q)
		}
		var got string
		if err := json.Unmarshal([]byte(inner), &got); err != nil || got != s {
			t.Errorf("%q: literal %s reads as %q (%v)", s, q, got, err)
		}
	}
}

// TestCSVField reads each field back the way Argo CD reads an RBAC policy
// line (encoding/csv, leading space trimmed).
func TestCSVField(t *testing.T) {
	for _, s := range quoteSamples {
		q, err := csvField(s)
		if strings.ContainsAny(s, "\r\n") {
			if err == nil {
				t.Errorf("%q: line break accepted", s)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		r := csv.NewReader(strings.NewReader("g, " + q + ", role:admin"))
		r.TrimLeadingSpace = true
		rec, err := r.Read()
		if err != nil || len(rec) != 3 || rec[1] != s || rec[2] != "role:admin" {
			t.Errorf("%q: line %q reads as %q (%v)", s, "g, "+q+", role:admin", rec, err)
		}
	}
}
