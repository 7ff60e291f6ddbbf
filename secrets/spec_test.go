package secrets

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"
)

func testSpec() Spec {
	return Spec{
		Name:      "gitea-admin",
		Namespace: "gitea",
		Labels:    map[string]string{"app.kubernetes.io/name": "gitea"},
		Keys: []Key{
			{Name: "password", Generator: Generator{Kind: KindBcrypt, Length: 24, Cost: bcrypt.MinCost}},
			{Name: "token", Generator: Generator{Kind: KindHex, Length: 20}},
			{Name: "deploy-key", Generator: Generator{Kind: KindEd25519SSH}},
		},
		RotateAfter: 90 * 24 * time.Hour,
		Rotatable:   true,
		Consumers:   []string{"deployment/gitea", "cronjob/hl-bot"},
	}
}

func TestRenderFirstAndReuse(t *testing.T) {
	spec := testSpec()
	first, err := Render(spec, nil, "2026-01-02", seeded(1))
	if err != nil {
		t.Fatal(err)
	}
	ex, err := ReadSecret(first)
	if err != nil {
		t.Fatal(err)
	}
	wantKeys := []string{"deploy-key", "deploy-key.pub", "password", "password-hash", "token"}
	if got := sortedKeys(ex.Values); !reflect.DeepEqual(got, wantKeys) {
		t.Fatalf("keys %v, want %v", got, wantKeys)
	}
	if ex.GeneratedAt != "2026-01-02" {
		t.Errorf("generated-at %q", ex.GeneratedAt)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(ex.Values["password-hash"]), []byte(ex.Values["password"])); err != nil {
		t.Errorf("rendered hash does not verify: %v", err)
	}
	if _, err := ssh.ParsePrivateKey([]byte(ex.Values["deploy-key"])); err != nil {
		t.Errorf("rendered ssh key does not parse: %v", err)
	}

	// Same seed, same render: golden files are reproducible.
	again, err := Render(spec, nil, "2026-01-02", seeded(1))
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(first) {
		t.Errorf("same seed rendered differently:\n%s\n---\n%s", first, again)
	}

	// Re-render later with a different random stream: everything is
	// reused, including generated-at, so the bytes are identical.
	second, err := Render(spec, first, "2026-06-30", seeded(2))
	if err != nil {
		t.Fatal(err)
	}
	if string(second) != string(first) {
		t.Errorf("re-render changed an unchanged secret:\n%s\n---\n%s", first, second)
	}

	// A new key is generated; old values and generated-at stay.
	spec.Keys = append(spec.Keys, Key{Name: "session", Generator: Generator{Kind: KindBase64}})
	third, err := Render(spec, first, "2026-06-30", seeded(3))
	if err != nil {
		t.Fatal(err)
	}
	ex3, err := ReadSecret(third)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range ex.Values {
		if ex3.Values[k] != v {
			t.Errorf("key %q changed on re-render", k)
		}
	}
	if b, err := base64.StdEncoding.DecodeString(ex3.Values["session"]); err != nil || len(b) != DefaultByteLength {
		t.Errorf("new key session = %q (%v)", ex3.Values["session"], err)
	}
	if ex3.GeneratedAt != "2026-01-02" {
		t.Errorf("generated-at moved to %q although old values were kept", ex3.GeneratedAt)
	}

	// A removed key disappears.
	spec.Keys = spec.Keys[1:]
	fourth, err := Render(spec, third, "2026-07-01", seeded(4))
	if err != nil {
		t.Fatal(err)
	}
	ex4, _ := ReadSecret(fourth)
	if _, ok := ex4.Values["password"]; ok {
		t.Errorf("removed key still rendered")
	}
	if _, ok := ex4.Values["password-hash"]; ok {
		t.Errorf("derived key of removed key still rendered")
	}
}

func TestValuesDerive(t *testing.T) {
	spec := testSpec()
	full, _, err := Values(spec, nil, seeded(1))
	if err != nil {
		t.Fatal(err)
	}
	// Derived keys missing: the hash is recomputed for the kept password,
	// the ssh public line recomputed from the kept private key.
	partial := map[string]string{"password": full["password"], "deploy-key": full["deploy-key"], "token": full["token"]}
	got, generated, err := Values(spec, partial, seeded(5))
	if err != nil {
		t.Fatal(err)
	}
	if len(generated) != 0 {
		t.Errorf("generated %v, want nothing", generated)
	}
	if got["password"] != full["password"] || got["deploy-key"] != full["deploy-key"] {
		t.Errorf("primary values changed")
	}
	if err := bcrypt.CompareHashAndPassword([]byte(got["password-hash"]), []byte(got["password"])); err != nil {
		t.Errorf("recomputed hash does not verify: %v", err)
	}
	if got["deploy-key.pub"] != full["deploy-key.pub"] {
		t.Errorf("recomputed ssh public line %q, want %q", got["deploy-key.pub"], full["deploy-key.pub"])
	}
	// A hash without its password is useless: both are generated.
	got, generated, err = Values(spec, map[string]string{"password-hash": full["password-hash"]}, seeded(6))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(generated, []string{"password", "token", "deploy-key"}) {
		t.Errorf("generated %v", generated)
	}
	if got["password-hash"] == full["password-hash"] {
		t.Errorf("orphan hash was kept")
	}
	// A corrupt existing ssh key is an error, not a silent replacement.
	if _, _, err := Values(spec, map[string]string{"deploy-key": "garbage"}, seeded(6)); err == nil {
		t.Errorf("corrupt existing ssh key accepted")
	}
}

func TestManifestShape(t *testing.T) {
	spec := testSpec()
	spec.Annotations = map[string]string{"reloader.stakater.com/match": "true"}
	out, err := Render(spec, nil, "2026-01-02", seeded(1))
	if err != nil {
		t.Fatal(err)
	}
	ex, err := ReadSecret(out)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{"apiVersion: v1\n", "kind: Secret\n", "  name: gitea-admin\n", "  namespace: gitea\n", "type: Opaque\n", "stringData:\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("manifest lacks %q:\n%s", want, s)
		}
	}
	wantAnn := map[string]string{
		AnnotationGeneratedAt:         "2026-01-02",
		AnnotationRotateAfter:         "90d",
		AnnotationRotatable:           "true",
		AnnotationConsumers:           "cronjob/hl-bot,deployment/gitea",
		"reloader.stakater.com/match": "true",
	}
	for k, v := range wantAnn {
		if ex.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, ex.Annotations[k], v)
		}
	}
	var gens map[string]Generator
	if err := json.Unmarshal([]byte(ex.Annotations[AnnotationGenerator]), &gens); err != nil {
		t.Fatalf("generator annotation: %v", err)
	}
	want := map[string]Generator{}
	for _, k := range spec.Keys {
		want[k.Name] = k.Generator
	}
	if !reflect.DeepEqual(gens, want) {
		t.Errorf("generator annotation %v, want %v", gens, want)
	}
	if ex.Labels[LabelManagedBy] != ManagedByHL || ex.Labels["app.kubernetes.io/name"] != "gitea" {
		t.Errorf("labels %v", ex.Labels)
	}
	// Not rotatable, no rotate-after: rotatable says false, rotate-after absent.
	spec.Rotatable, spec.RotateAfter = false, 0
	out, err = Render(spec, nil, "2026-01-02", seeded(1))
	if err != nil {
		t.Fatal(err)
	}
	ex, _ = ReadSecret(out)
	if ex.Annotations[AnnotationRotatable] != "false" {
		t.Errorf("rotatable = %q", ex.Annotations[AnnotationRotatable])
	}
	if _, ok := ex.Annotations[AnnotationRotateAfter]; ok {
		t.Errorf("rotate-after present with RotateAfter 0")
	}
}

func TestSpecValidate(t *testing.T) {
	mod := func(f func(*Spec)) Spec { s := testSpec(); f(&s); return s }
	bad := map[string]Spec{
		"name":            mod(func(s *Spec) { s.Name = "Gitea_Admin" }),
		"namespace":       mod(func(s *Spec) { s.Namespace = "" }),
		"no keys":         mod(func(s *Spec) { s.Keys = nil }),
		"bad key":         mod(func(s *Spec) { s.Keys[0].Name = "pass word" }),
		"bad generator":   mod(func(s *Spec) { s.Keys[0].Generator.Kind = "nope" }),
		"derived clash":   mod(func(s *Spec) { s.Keys[1].Name = "password-hash" }),
		"duplicate":       mod(func(s *Spec) { s.Keys[1].Name = "password" }),
		"reserved ann":    mod(func(s *Spec) { s.Annotations = map[string]string{"hl.dev/x": "y"} }),
		"encrypted label": mod(func(s *Spec) { s.Labels = map[string]string{"data": "x"} }),
		"negative rotate": mod(func(s *Spec) { s.RotateAfter = -time.Hour }),
		"consumer comma":  mod(func(s *Spec) { s.Consumers = []string{"a,b"} }),
	}
	for name, s := range bad {
		if err := s.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, err := Render(s, nil, "2026-01-02", seeded(1)); err == nil {
			t.Errorf("%s: Render accepted it", name)
		}
	}
	if err := testSpec().Validate(); err != nil {
		t.Errorf("valid spec rejected: %v", err)
	}
	if _, err := Render(testSpec(), nil, "02.01.2026", seeded(1)); err == nil {
		t.Errorf("bad date accepted")
	}
}

func TestReadSecret(t *testing.T) {
	doc := `apiVersion: v1
kind: Secret
metadata:
  name: x
  annotations:
    hl.dev/generated-at: "2025-12-01"
data:
  a: aGVsbG8=
  b: b2xk
stringData:
  b: new
`
	ex, err := ReadSecret([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"a": "hello", "b": "new"}; !reflect.DeepEqual(ex.Values, want) {
		t.Errorf("values %v, want %v", ex.Values, want)
	}
	if ex.GeneratedAt != "2025-12-01" {
		t.Errorf("generated-at %q", ex.GeneratedAt)
	}
	for _, bad := range []string{"kind: ConfigMap\n", "kind: Secret\ndata:\n  a: '***'\n", "kind: Secret\nsops:\n  mac: x\n", "kind: [\n"} {
		if _, err := ReadSecret([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		out  string
	}{
		{"90d", 90 * 24 * time.Hour, "90d"},
		{"2w", 14 * 24 * time.Hour, "14d"},
		{"36h", 36 * time.Hour, "36h0m0s"},
		{"48h", 48 * time.Hour, "2d"},
		{"0", 0, "0"},
		{"", 0, "0"},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if s := FormatDuration(got); s != tt.out {
			t.Errorf("FormatDuration(%v) = %q, want %q", got, s, tt.out)
		}
	}
	for _, bad := range []string{"d", "-3d", "1.5d", "ninety days", "-1h"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
