package validate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextv1beta1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	runtimeschema "k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	sigsjson "sigs.k8s.io/json"

	"hl.dev/hl/schemas"
	"hl.dev/hl/validate/internal/crdschema"
)

// builtin knows every Kubernetes kind with Go types.
var builtin = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, apiextv1.AddToScheme, apiextv1beta1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// typelessGroups are built-in API groups hl has no Go types for; their
// kinds are accepted without a schema check.
var typelessGroups = map[string]bool{"apiregistration.k8s.io": true}

// builtinGroup reports whether group is served by Kubernetes itself.
func builtinGroup(group string) bool {
	if group == "" || typelessGroups[group] {
		return true
	}
	for _, gv := range builtin.PrioritizedVersionsAllGroups() {
		if gv.Group == group {
			return true
		}
	}
	return false
}

// crdSchema is a compiled schema of one custom kind version.
type crdSchema struct {
	schema *jsonschema.Schema
	scope  string
	err    error
}

// schemaSet finds schemas of custom kinds: CRDs rendered by the repo
// first, then the embedded schemas/crds.
type schemaSet struct {
	mu      sync.Mutex
	dynamic map[string]map[string]any // FileName → converted JSON
	done    map[string]*crdSchema
}

func newSchemaSet() *schemaSet {
	return &schemaSet{dynamic: map[string]map[string]any{}, done: map[string]*crdSchema{}}
}

// learn records the schemas of a rendered CustomResourceDefinition.
func (ss *schemaSet) learn(crd map[string]any) {
	list, err := crdschema.FromObject(crd)
	if err != nil {
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, s := range list {
		ss.dynamic[s.FileName()] = s.JSON
	}
}

// scope returns the scope of group/kind from any known version.
func (ss *schemaSet) scope(group, kindName string) string {
	ss.mu.Lock()
	prefix := fmt.Sprintf("%s_%s_", group, strings.ToLower(kindName))
	for name, j := range ss.dynamic {
		if strings.HasPrefix(name, prefix) {
			sc, _ := j[crdschema.ScopeKey].(string)
			ss.mu.Unlock()
			return sc
		}
	}
	ss.mu.Unlock()
	return embeddedScope(prefix)
}

// embeddedInfo is what the embedded schemas/crds files say about their
// kind, read from their first lines.
type embeddedInfo struct{ group, version, kind, scope string }

var (
	embeddedOnce sync.Once
	embedded     map[string]embeddedInfo // file name → info
	scopeRe      = regexp.MustCompile(`"` + crdschema.ScopeKey + `":\s*"(\w+)"`)
	titleRe      = regexp.MustCompile(`"title":\s*"([^"/ ]+)/([^" ]+) ([^"]+)"`)
)

func embeddedIndex() map[string]embeddedInfo {
	embeddedOnce.Do(func() {
		embedded = map[string]embeddedInfo{}
		entries, _ := fs.ReadDir(schemas.FS, "crds")
		for _, e := range entries {
			data, err := fs.ReadFile(schemas.FS, "crds/"+e.Name())
			if err != nil {
				continue
			}
			// Both keywords sit at the root; search only the head and tail
			// of big files instead of decoding them.
			var info embeddedInfo
			if m := scopeRe.FindSubmatch(data); m != nil {
				info.scope = string(m[1])
			}
			if m := titleRe.FindSubmatch(data); m != nil {
				info.group, info.version, info.kind = string(m[1]), string(m[2]), string(m[3])
			}
			embedded[e.Name()] = info
		}
	})
	return embedded
}

func embeddedScope(prefix string) string {
	for name, info := range embeddedIndex() {
		if strings.HasPrefix(name, prefix) {
			return info.scope
		}
	}
	return ""
}

// known lists group, version, kind of every custom kind with a schema.
func (ss *schemaSet) known() [][3]string {
	var out [][3]string
	for _, info := range embeddedIndex() {
		if info.kind != "" {
			out = append(out, [3]string{info.group, info.version, info.kind})
		}
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, j := range ss.dynamic {
		title, _ := j["title"].(string)
		gv, k, ok := strings.Cut(title, " ")
		g, ver, ok2 := strings.Cut(gv, "/")
		if ok && ok2 {
			out = append(out, [3]string{g, ver, k})
		}
	}
	sort.Slice(out, func(i, j int) bool { return strings.Join(out[i][:], "/") < strings.Join(out[j][:], "/") })
	return out
}

// get returns the schema of group/version kind, or nil when none is known.
func (ss *schemaSet) get(group, version, kindName string) *crdSchema {
	name := crdschema.FileName(group, kindName, version)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if c, ok := ss.done[name]; ok {
		return c
	}
	var c *crdSchema
	if j, ok := ss.dynamic[name]; ok {
		c = &crdSchema{}
		c.scope, _ = j[crdschema.ScopeKey].(string)
		data, err := json.Marshal(j)
		if err == nil {
			var doc any
			doc, err = jsonschema.UnmarshalJSON(bytes.NewReader(data))
			if err == nil {
				comp := jsonschema.NewCompiler()
				url := "mem:///rendered/" + name
				if err = comp.AddResource(url, doc); err == nil {
					c.schema, err = comp.Compile(url)
				}
			}
		}
		c.err = err
	} else if _, err := fs.Stat(schemas.FS, "crds/"+name); err == nil {
		c = &crdSchema{scope: embeddedScope(name)}
		c.schema, c.err = schemas.Get("crds/" + name)
	}
	ss.done[name] = c
	return c
}

var printer = message.NewPrinter(language.English)

// schemaProblem is one violation at a JSON path.
type schemaProblem struct {
	path []string
	msg  string
}

// validateJSONSchema checks a JSON-compatible value and flattens the
// violations to leaves (at most max).
func validateJSONSchema(s *jsonschema.Schema, v any, max int) ([]schemaProblem, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	err = s.Validate(inst)
	if err == nil {
		return nil, nil
	}
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return nil, err
	}
	var out []schemaProblem
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(out) >= max {
			return
		}
		if len(e.Causes) > 0 {
			switch e.ErrorKind.(type) {
			case *kind.AnyOf, *kind.OneOf:
				// No alternative matched: explain the one that got
				// furthest into the value (the others usually just fail on
				// its type).
				best, depth := e.Causes[0], -1
				for _, c := range e.Causes {
					if d := errDepth(c); d > depth {
						best, depth = c, d
					}
				}
				walk(best)
				return
			}
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		p := append([]string(nil), e.InstanceLocation...)
		msg := e.ErrorKind.LocalizedString(printer)
		switch k := e.ErrorKind.(type) {
		case *kind.AdditionalProperties:
			sort.Strings(k.Properties)
			p = append(p, k.Properties[0])
			msg = "unknown field"
			if len(k.Properties) > 1 {
				msg = fmt.Sprintf("unknown fields %s", strings.Join(quoteAll(k.Properties), ", "))
			}
		case *kind.Required:
			msg = "missing required field " + strings.Join(quoteAll(k.Missing), ", ")
		case *kind.Type:
			msg = fmt.Sprintf("wrong type: got %s, want %s", k.Got, strings.Join(k.Want, " or "))
		}
		out = append(out, schemaProblem{path: p, msg: msg})
	}
	walk(ve)
	return out, nil
}

// errDepth is the deepest instance location among an error's leaves.
func errDepth(e *jsonschema.ValidationError) int {
	d := len(e.InstanceLocation)
	if _, ok := e.ErrorKind.(*kind.AdditionalProperties); ok {
		d++
	}
	for _, c := range e.Causes {
		if cd := errDepth(c); cd > d {
			d = cd
		}
	}
	return d
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

var typeErrRe = regexp.MustCompile(`cannot unmarshal (.+?) into Go struct field [A-Za-z0-9_]+\.(\S+) of type (\S+)`)

// checkSchema validates one object: built-in kinds by strict decoding into
// their Go types, custom kinds against their JSON schema.
func (v *validator) checkSchema(o *object) {
	if o.apiVersion == "" || o.kind == "" {
		missing := "apiVersion"
		if o.apiVersion != "" {
			missing = "kind"
		}
		v.add(o.finding(PolicySchema, missing, "missing required field %q", missing))
		return
	}
	if o.name == "" && o.kind != "List" {
		v.add(o.finding(PolicySchema, "metadata.name", "missing required field \"metadata.name\""))
	}
	group, version := o.group(), o.version()
	gvk := runtimeschema.GroupVersionKind{Group: group, Version: version, Kind: o.kind}
	if builtin.Recognizes(gvk) {
		v.checkBuiltin(o, gvk)
		return
	}
	if s := v.schemas.get(group, version, o.kind); s != nil {
		if s.err != nil {
			v.add(o.finding(PolicyUnknownKind, "", "the schema of %s %s does not compile: %v", o.apiVersion, o.kind, s.err))
			return
		}
		v.checkMetadata(o)
		obj := o.obj
		if o.sops {
			obj = withoutKey(obj, "sops")
		}
		probs, err := validateJSONSchema(s.schema, obj, 10)
		if err != nil {
			v.add(o.finding(PolicySchema, "", "%v", err))
		}
		for _, p := range probs {
			v.add(o.finding(PolicySchema, joinPath(p.path), "%s", p.msg))
		}
		return
	}
	if typelessGroups[group] {
		return
	}
	if builtinGroup(group) {
		v.add(o.finding(PolicyUnknownKind, "apiVersion", "%s %s is not a kind of Kubernetes %s", o.apiVersion, o.kind, v.s.kube.Version))
		return
	}
	v.add(o.finding(PolicyUnknownKind, "apiVersion", "no schema for %s %s: not in schemas/crds and no CustomResourceDefinition for it is rendered from this repo", o.apiVersion, o.kind))
}

func withoutKey(m map[string]any, key string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

// lifecycle is implemented by beta API types that are removed in some
// Kubernetes release.
type lifecycle interface {
	APILifecycleRemoved() (major, minor int)
}

func (v *validator) checkBuiltin(o *object, gvk runtimeschema.GroupVersionKind) {
	typed, err := builtin.New(gvk)
	if err != nil {
		v.add(o.finding(PolicyUnknownKind, "", "%v", err))
		return
	}
	if lc, ok := typed.(lifecycle); ok {
		maj, min := lc.APILifecycleRemoved()
		if maj > 0 && versionAtLeast(v.s.kube.Major, v.s.kube.Minor, maj, min) {
			v.add(o.finding(PolicyUnknownKind, "apiVersion", "%s %s was removed in Kubernetes %d.%d (cluster runs %s)", o.apiVersion, o.kind, maj, min, v.s.kube.Version))
			return
		}
	}
	obj := o.obj
	if o.sops {
		// SOPS keeps its metadata beside the object and encrypts the
		// values: only the structure outside data is checked.
		obj = withoutKey(withoutKey(withoutKey(obj, "sops"), "data"), "stringData")
	}
	data, err := json.Marshal(obj)
	if err != nil {
		v.add(o.finding(PolicySchema, "", "%v", err))
		return
	}
	strict, err := sigsjson.UnmarshalStrict(data, typed)
	for _, se := range strict {
		path := ""
		if fe, ok := se.(sigsjson.FieldError); ok {
			path = fe.FieldPath()
		}
		msg := se.Error()
		if strings.HasPrefix(msg, "unknown field") {
			msg = "unknown field"
		} else if strings.HasPrefix(msg, "duplicate field") {
			msg = "duplicate field"
		}
		v.add(o.finding(PolicySchema, path, "%s", msg))
	}
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "json: ")
		path := ""
		if m := typeErrRe.FindStringSubmatch(msg); m != nil {
			path = m[2]
			msg = fmt.Sprintf("wrong type: got %s, want %s", m[1], m[3])
		}
		v.add(o.finding(PolicySchema, path, "%s", msg))
	}
}

// checkMetadata strictly decodes a custom resource's metadata.
func (v *validator) checkMetadata(o *object) {
	md, ok := o.obj["metadata"]
	if !ok {
		return
	}
	data, err := json.Marshal(md)
	if err != nil {
		return
	}
	var om metav1.ObjectMeta
	strict, err := sigsjson.UnmarshalStrict(data, &om)
	for _, se := range strict {
		path := "metadata"
		if fe, ok := se.(sigsjson.FieldError); ok {
			path = "metadata." + fe.FieldPath()
		}
		v.add(o.finding(PolicySchema, path, "unknown field"))
	}
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "json: ")
		path := "metadata"
		if m := typeErrRe.FindStringSubmatch(msg); m != nil {
			path = "metadata." + m[2]
			msg = fmt.Sprintf("wrong type: got %s, want %s", m[1], m[3])
		}
		v.add(o.finding(PolicySchema, path, "%s", msg))
	}
}

func versionAtLeast(major, minor string, wantMajor, wantMinor int) bool {
	var ma, mi int
	fmt.Sscanf(strings.TrimSuffix(major, "+"), "%d", &ma)
	fmt.Sscanf(strings.TrimSuffix(minor, "+"), "%d", &mi)
	return ma > wantMajor || ma == wantMajor && mi >= wantMinor
}
