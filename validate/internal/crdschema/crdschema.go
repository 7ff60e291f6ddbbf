// Package crdschema turns a CustomResourceDefinition's openAPIV3Schema into
// a standalone JSON schema (draft 2020-12) that rejects unknown fields the
// way the API server's strict field validation does. It is shared by the
// generator of schemas/crds (validate/internal/crdgen) and by hl validate,
// which also learns the CRDs a chart renders.
package crdschema

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Draft is the JSON schema dialect of every converted schema.
const Draft = "https://json-schema.org/draft/2020-12/schema"

// ScopeKey is the root keyword recording the CRD's scope (Namespaced or
// Cluster); validators ignore it, hl validate reads it.
const ScopeKey = "x-kubernetes-scope"

// Schema is one served version of one CRD kind, converted.
type Schema struct {
	Group, Version, Kind string
	// Scope is Namespaced or Cluster.
	Scope string
	// JSON is the schema as a JSON-ready value.
	JSON map[string]any
}

// FileName is the name used under schemas/crds:
// <group>_<kind>_<version>.json with the kind in lower case.
func FileName(group, kind, version string) string {
	return fmt.Sprintf("%s_%s_%s.json", group, strings.ToLower(kind), version)
}

// FileName of s.
func (s Schema) FileName() string { return FileName(s.Group, s.Kind, s.Version) }

// FromYAML converts every CustomResourceDefinition in a (multi-document)
// YAML stream. Documents of other kinds are skipped.
func FromYAML(data []byte) ([]Schema, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []Schema
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return out, err
		}
		if doc == nil || doc["kind"] != "CustomResourceDefinition" {
			continue
		}
		ss, err := FromObject(doc)
		if err != nil {
			return out, err
		}
		out = append(out, ss...)
	}
	return out, nil
}

// FromObject converts one CRD given as a generic object (as decoded from
// YAML or JSON). Versions without a schema are skipped.
func FromObject(crd map[string]any) ([]Schema, error) {
	spec, _ := crd["spec"].(map[string]any)
	if spec == nil {
		return nil, errors.New("CRD without spec")
	}
	group, _ := spec["group"].(string)
	names, _ := spec["names"].(map[string]any)
	kind, _ := names["kind"].(string)
	scope, _ := spec["scope"].(string)
	if group == "" || kind == "" {
		return nil, errors.New("CRD without spec.group or spec.names.kind")
	}
	if scope == "" {
		scope = "Namespaced"
	}
	versions, _ := spec["versions"].([]any)
	// apiextensions.k8s.io/v1beta1 kept one schema for all versions.
	var shared map[string]any
	if v, ok := spec["validation"].(map[string]any); ok {
		shared, _ = v["openAPIV3Schema"].(map[string]any)
	}
	if len(versions) == 0 {
		if v, ok := spec["version"].(string); ok {
			versions = []any{map[string]any{"name": v}}
		}
	}
	var out []Schema
	for _, vv := range versions {
		v, _ := vv.(map[string]any)
		name, _ := v["name"].(string)
		if name == "" {
			continue
		}
		if served, ok := v["served"].(bool); ok && !served {
			continue
		}
		raw := shared
		if s, ok := v["schema"].(map[string]any); ok {
			raw, _ = s["openAPIV3Schema"].(map[string]any)
		}
		if raw == nil {
			continue
		}
		out = append(out, Schema{
			Group: group, Version: name, Kind: kind, Scope: scope,
			JSON: Root(raw, group+"/"+name, kind, scope),
		})
	}
	return out, nil
}

// Root converts an openAPIV3Schema for the object root: apiVersion, kind and
// metadata are always allowed (metadata is checked elsewhere, as ObjectMeta).
func Root(openapi map[string]any, apiVersion, kind, scope string) map[string]any {
	s := Convert(openapi)
	props, _ := s["properties"].(map[string]any)
	if props == nil {
		props = map[string]any{}
		if _, open := s["additionalProperties"]; !open && !preserves(openapi) {
			s["additionalProperties"] = false
		}
	}
	props["apiVersion"] = map[string]any{"const": apiVersion}
	props["kind"] = map[string]any{"const": kind}
	props["metadata"] = map[string]any{"type": "object"}
	s["properties"] = props
	s["type"] = "object"
	out := map[string]any{
		"$schema": Draft,
		"title":   apiVersion + " " + kind,
		ScopeKey:  scope,
	}
	for k, v := range s {
		out[k] = v
	}
	return out
}

func preserves(s map[string]any) bool {
	b, _ := s["x-kubernetes-preserve-unknown-fields"].(bool)
	return b
}

// Convert translates one OpenAPI v3 (Kubernetes structural) schema node.
func Convert(s map[string]any) map[string]any { return convert(s, false) }

// copied keywords whose values are kept as they are.
var plain = map[string]bool{
	"type": true, "required": true, "enum": true, "pattern": true,
	"minimum": true, "maximum": true, "minLength": true, "maxLength": true,
	"minItems": true, "maxItems": true, "uniqueItems": true, "multipleOf": true,
	"minProperties": true, "maxProperties": true,
}

// convert: value is set inside allOf/anyOf/oneOf/not, where Kubernetes
// schemas only add value validations and must not close objects.
func convert(s map[string]any, value bool) map[string]any {
	out := map[string]any{}
	for k, v := range s {
		switch {
		case plain[k]:
			out[k] = v
		case k == "properties":
			m, _ := v.(map[string]any)
			props := make(map[string]any, len(m))
			for name, sub := range m {
				if sm, ok := sub.(map[string]any); ok {
					props[name] = convert(sm, value)
				}
			}
			out[k] = props
		case k == "items":
			if sm, ok := v.(map[string]any); ok {
				out[k] = convert(sm, value)
			}
		case k == "additionalProperties":
			switch a := v.(type) {
			case bool:
				out[k] = a
			case map[string]any:
				out[k] = convert(a, value)
			}
		case k == "allOf" || k == "anyOf" || k == "oneOf":
			list, _ := v.([]any)
			var conv []any
			for _, item := range list {
				if sm, ok := item.(map[string]any); ok {
					conv = append(conv, convert(sm, true))
				}
			}
			if len(conv) > 0 {
				out[k] = conv
			}
		case k == "not":
			if sm, ok := v.(map[string]any); ok {
				out[k] = convert(sm, true)
			}
		}
	}
	// OpenAPI 3.0's boolean exclusive bounds are numbers in 2020-12.
	for _, b := range [][2]string{{"exclusiveMinimum", "minimum"}, {"exclusiveMaximum", "maximum"}} {
		if ex, _ := s[b[0]].(bool); ex {
			if n, ok := out[b[1]]; ok {
				out[b[0]] = n
				delete(out, b[1])
			}
		}
	}
	if ios, _ := s["x-kubernetes-int-or-string"].(bool); ios {
		delete(out, "type")
		out["anyOf"] = []any{map[string]any{"type": "integer"}, map[string]any{"type": "string"}}
	}
	if nullable, _ := s["nullable"].(bool); nullable {
		if t, ok := out["type"].(string); ok {
			out["type"] = []any{t, "null"}
		}
		if e, ok := out["enum"].([]any); ok {
			out["enum"] = append(append([]any{}, e...), nil)
		}
	}
	if emb, _ := s["x-kubernetes-embedded-resource"].(bool); emb {
		props, _ := out["properties"].(map[string]any)
		if props != nil {
			for _, f := range []string{"apiVersion", "kind"} {
				if _, ok := props[f]; !ok {
					props[f] = map[string]any{"type": "string"}
				}
			}
			if _, ok := props["metadata"]; !ok {
				props["metadata"] = map[string]any{"type": "object"}
			}
		}
	}
	if !value && !preserves(s) {
		if _, hasProps := out["properties"]; hasProps {
			if _, ok := out["additionalProperties"]; !ok {
				out["additionalProperties"] = false
			}
		}
	}
	return out
}

// Sort orders schemas by file name (stable generator output).
func Sort(ss []Schema) {
	sort.Slice(ss, func(i, j int) bool { return ss[i].FileName() < ss[j].FileName() })
}
