package secrets

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Annotations and labels hl puts on every Secret it renders.
const (
	AnnotationGenerator   = "hl.dev/generator"
	AnnotationGeneratedAt = "hl.dev/generated-at"
	AnnotationRotateAfter = "hl.dev/rotate-after"
	AnnotationRotatable   = "hl.dev/rotatable"
	AnnotationConsumers   = "hl.dev/consumers"
	// AnnotationCopyOf names (by repo path) the secret whose values a copy
	// carries, and AnnotationCopyKeys maps the copy's keys to the source's
	// (JSON): a copy is rotated with its source, never alone, and the
	// files say so themselves.
	AnnotationCopyOf   = "hl.dev/copy-of"
	AnnotationCopyKeys = "hl.dev/copy-keys"

	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedByHL    = "hl"

	// DateLayout is the layout of hl.dev/generated-at.
	DateLayout = "2006-01-02"
)

// Spec describes one generated Kubernetes Secret.
type Spec struct {
	Name      string
	Namespace string
	// Type is the Kubernetes Secret type; "" means Opaque.
	Type        string
	Labels      map[string]string
	Annotations map[string]string // extra annotations; hl.dev/* are reserved
	Keys        []Key
	// RotateAfter is how old the values may get before the bot proposes a
	// rotation; 0 means never.
	RotateAfter time.Duration
	// Rotatable is false when the value also lives inside an application
	// (e.g. a user password stored in the app's database), so changing it
	// in git alone would break the app instead of rotating the credential.
	Rotatable bool
	// Consumers optionally names the workloads that read the Secret
	// (e.g. "deployment/gitea"), for rotation PR bodies and restarts.
	Consumers []string
	// CopyOf is set on a copy of another secret: the source's repo path,
	// and CopyKeys maps each key here to the source's key.
	CopyOf   string
	CopyKeys map[string]string
}

// Key is one generated entry of a Secret. Multi-output generators also fill
// derived keys (Generator.Outputs).
type Key struct {
	Name      string
	Generator Generator
}

var (
	dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)
	dnsLabel     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	secretKeyRE  = regexp.MustCompile(`^[-._a-zA-Z0-9]{1,253}$`)
)

// Validate checks names, keys and generators, including collisions between
// a key and another key's derived outputs.
func (s Spec) Validate() error {
	if !dnsSubdomain.MatchString(s.Name) {
		return fmt.Errorf("secret name %q is not a valid Kubernetes name", s.Name)
	}
	if !dnsLabel.MatchString(s.Namespace) {
		return fmt.Errorf("secret %s: namespace %q is not a valid Kubernetes namespace", s.Name, s.Namespace)
	}
	if len(s.Keys) == 0 {
		return fmt.Errorf("secret %s/%s has no keys", s.Namespace, s.Name)
	}
	if s.RotateAfter < 0 {
		return fmt.Errorf("secret %s/%s: negative rotateAfter", s.Namespace, s.Name)
	}
	seen := map[string]string{}
	for _, k := range s.Keys {
		if err := k.Generator.Validate(); err != nil {
			return fmt.Errorf("secret %s/%s key %q: %w", s.Namespace, s.Name, k.Name, err)
		}
		for _, out := range k.Generator.Outputs(k.Name) {
			if !secretKeyRE.MatchString(out) {
				return fmt.Errorf("secret %s/%s: %q is not a valid Secret key", s.Namespace, s.Name, out)
			}
			if prev, dup := seen[out]; dup {
				return fmt.Errorf("secret %s/%s: key %q is produced by both %q and %q", s.Namespace, s.Name, out, prev, k.Name)
			}
			seen[out] = k.Name
		}
	}
	for k := range s.Annotations {
		if strings.HasPrefix(k, "hl.dev/") {
			return fmt.Errorf("secret %s/%s: annotation %q uses the reserved hl.dev/ prefix", s.Namespace, s.Name, k)
		}
	}
	for _, m := range []map[string]string{s.Labels, s.Annotations} {
		for k := range m {
			// encrypted_regex matches any path component, so a label or
			// annotation named like this would be encrypted too.
			if k == "data" || k == "stringData" {
				return fmt.Errorf("secret %s/%s: label/annotation key %q would be encrypted", s.Namespace, s.Name, k)
			}
		}
	}
	for _, c := range s.Consumers {
		if c == "" || strings.ContainsAny(c, ", \n") {
			return fmt.Errorf("secret %s/%s: consumer %q must be non-empty without commas or spaces", s.Namespace, s.Name, c)
		}
	}
	return nil
}

// Values returns the plaintext values for spec. Existing values (the
// decrypted previous render, may be nil) are reused key by key; only keys
// without a value are generated from r. Derived outputs are recomputed from
// an existing primary value where that is deterministic (ssh and age public
// keys) and generated only when missing (bcrypt hash). generated lists the
// keys (Key.Name) whose primary value is new. Existing keys the spec no
// longer declares are dropped.
func Values(spec Spec, existing map[string]string, r io.Reader) (values map[string]string, generated []string, err error) {
	if err := spec.Validate(); err != nil {
		return nil, nil, err
	}
	values = map[string]string{}
	for _, k := range spec.Keys {
		var out map[string]string
		if old, ok := existing[k.Name]; ok && old != "" {
			out, err = k.Generator.derive(k.Name, old, existing, r)
		} else {
			out, err = k.Generator.Generate(k.Name, r)
			generated = append(generated, k.Name)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("secret %s/%s key %q: %w", spec.Namespace, spec.Name, k.Name, err)
		}
		for name, v := range out {
			values[name] = v
		}
	}
	return values, generated, nil
}

// Existing is what ReadSecret finds in a decrypted Secret manifest.
type Existing struct {
	// Values holds data (base64 decoded) overlaid with stringData, as the
	// API server merges them.
	Values      map[string]string
	GeneratedAt string
	Annotations map[string]string
	Labels      map[string]string
}

// ReadSecret parses a plaintext (decrypted) Secret manifest.
func ReadSecret(plainYAML []byte) (Existing, error) {
	var doc struct {
		Kind     string `yaml:"kind"`
		Metadata struct {
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"metadata"`
		Data       map[string]string `yaml:"data"`
		StringData map[string]string `yaml:"stringData"`
		Sops       any               `yaml:"sops"`
	}
	if err := yaml.Unmarshal(plainYAML, &doc); err != nil {
		return Existing{}, fmt.Errorf("parsing secret manifest: %w", err)
	}
	if doc.Sops != nil {
		return Existing{}, errors.New("secret manifest is still sops-encrypted; decrypt it first")
	}
	if doc.Kind != "Secret" {
		return Existing{}, fmt.Errorf("manifest kind is %q, not Secret", doc.Kind)
	}
	ex := Existing{
		Values:      map[string]string{},
		Annotations: doc.Metadata.Annotations,
		Labels:      doc.Metadata.Labels,
		GeneratedAt: doc.Metadata.Annotations[AnnotationGeneratedAt],
	}
	for k, v := range doc.Data {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return Existing{}, fmt.Errorf("data key %q is not base64: %w", k, err)
		}
		ex.Values[k] = string(b)
	}
	for k, v := range doc.StringData {
		ex.Values[k] = v
	}
	return ex, nil
}

// Render returns the plaintext Secret manifest for spec. existingPlain is
// the decrypted previous render (nil on first render); its values are reused
// key by key. today (YYYY-MM-DD, from the caller's clock) becomes
// hl.dev/generated-at when nothing was reused; otherwise the previous
// generated-at is kept, so an unchanged secret renders byte-identically.
func Render(spec Spec, existingPlain []byte, today string, r io.Reader) ([]byte, error) {
	if _, err := time.Parse(DateLayout, today); err != nil {
		return nil, fmt.Errorf("today %q is not a YYYY-MM-DD date", today)
	}
	var ex Existing
	if existingPlain != nil {
		var err error
		if ex, err = ReadSecret(existingPlain); err != nil {
			return nil, err
		}
	}
	values, generated, err := Values(spec, ex.Values, r)
	if err != nil {
		return nil, err
	}
	generatedAt := ex.GeneratedAt
	if _, err := time.Parse(DateLayout, generatedAt); err != nil || len(generated) == len(spec.Keys) {
		generatedAt = today
	}
	return Manifest(spec, values, generatedAt)
}

// Manifest renders the plaintext Secret for spec with the given values
// (stringData) and generated-at date.
func Manifest(spec Spec, values map[string]string, generatedAt string) ([]byte, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if _, err := time.Parse(DateLayout, generatedAt); err != nil {
		return nil, fmt.Errorf("generated-at %q is not a YYYY-MM-DD date", generatedAt)
	}
	gens := map[string]Generator{}
	for _, k := range spec.Keys {
		gens[k.Name] = k.Generator
		for _, out := range k.Generator.Outputs(k.Name) {
			if _, ok := values[out]; !ok {
				return nil, fmt.Errorf("secret %s/%s: no value for key %q", spec.Namespace, spec.Name, out)
			}
		}
	}
	genJSON, err := json.Marshal(gens) // map keys are sorted
	if err != nil {
		return nil, err
	}
	ann := map[string]string{
		AnnotationGenerator:   string(genJSON),
		AnnotationGeneratedAt: generatedAt,
		AnnotationRotatable:   strconv.FormatBool(spec.Rotatable),
	}
	if spec.RotateAfter > 0 {
		ann[AnnotationRotateAfter] = FormatDuration(spec.RotateAfter)
	}
	if len(spec.Consumers) > 0 {
		c := slices.Clone(spec.Consumers)
		sort.Strings(c)
		ann[AnnotationConsumers] = strings.Join(slices.Compact(c), ",")
	}
	if spec.CopyOf != "" {
		ann[AnnotationCopyOf] = spec.CopyOf
		keys, err := json.Marshal(spec.CopyKeys) // map keys are sorted
		if err != nil {
			return nil, err
		}
		ann[AnnotationCopyKeys] = string(keys)
	}
	for k, v := range spec.Annotations {
		ann[k] = v
	}
	labels := map[string]string{LabelManagedBy: ManagedByHL}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	typ := spec.Type
	if typ == "" {
		typ = "Opaque"
	}
	doc := struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name        string            `yaml:"name"`
			Namespace   string            `yaml:"namespace"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"metadata"`
		Type       string            `yaml:"type"`
		StringData map[string]string `yaml:"stringData"`
	}{APIVersion: "v1", Kind: "Secret", Type: typ, StringData: values}
	doc.Metadata.Name = spec.Name
	doc.Metadata.Namespace = spec.Namespace
	doc.Metadata.Labels = labels
	doc.Metadata.Annotations = ann
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ParseDuration parses a rotation interval: "90d", "2w", or anything
// time.ParseDuration accepts ("36h"). "0" or "" means never.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	unit := map[byte]time.Duration{'d': 24 * time.Hour, 'w': 7 * 24 * time.Hour}
	if u, ok := unit[s[len(s)-1]]; ok {
		n, err := strconv.ParseUint(s[:len(s)-1], 10, 32)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: want e.g. 90d, 2w or 36h", s)
		}
		return time.Duration(n) * u, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: want e.g. 90d, 2w or 36h", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("invalid duration %q: negative", s)
	}
	return d, nil
}

// FormatDuration is the inverse of ParseDuration: whole days print as "90d".
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	if d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}
