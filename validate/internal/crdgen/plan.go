package main

import (
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"hl.dev/hl/validate/internal/crdschema"
)

// handWritten returns schemas of CRDs whose YAML is not reachable through
// the module proxy, described from their published API.
func handWritten() []crdschema.Schema {
	return []crdschema.Schema{plan()}
}

// plan describes upgrade.cattle.io/v1 Plan (rancher/system-upgrade-
// controller), field by field as its API documents them.
func plan() crdschema.Schema {
	str := schema("string")
	integer := schema("integer")
	boolean := schema("boolean")
	strings := arrayOf(str)
	selector := fromGo(reflect.TypeFor[metav1.LabelSelector]())
	intOrString := map[string]any{"anyOf": []any{schema("integer"), schema("string")}}

	container := object(map[string]any{
		"image":           str,
		"command":         strings,
		"args":            strings,
		"envs":            arrayOf(fromGo(reflect.TypeFor[corev1.EnvVar]())),
		"envFrom":         arrayOf(fromGo(reflect.TypeFor[corev1.EnvFromSource]())),
		"securityContext": fromGo(reflect.TypeFor[corev1.SecurityContext]()),
		"volumes": arrayOf(object(map[string]any{
			"name": str, "source": str, "destination": str,
		}, "name", "source", "destination")),
	}, "image")
	days := []any{}
	for _, d := range []string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"} {
		days = append(days, d, d[:2], d[:3])
	}
	for i := range 7 {
		days = append(days, string(rune('0'+i)))
	}
	spec := object(map[string]any{
		"concurrency":           integer,
		"jobActiveDeadlineSecs": integer,
		"nodeSelector":          selector,
		"serviceAccountName":    str,
		"channel":               str,
		"version":               str,
		"secrets": arrayOf(object(map[string]any{
			"name": str, "path": str, "ignoreUpdates": boolean, "defaultMode": integer,
		}, "name", "path")),
		"tolerations": arrayOf(fromGo(reflect.TypeFor[corev1.Toleration]())),
		"exclusive":   boolean,
		"window": object(map[string]any{
			"days":      map[string]any{"type": "array", "minItems": 1, "items": map[string]any{"type": "string", "enum": days}},
			"startTime": str,
			"endTime":   str,
			"timeZone":  str,
		}),
		"prepare": container,
		"upgrade": container,
		"cordon":  boolean,
		"drain": object(map[string]any{
			"timeout":                  intOrString,
			"gracePeriod":              integer,
			"deleteLocalData":          boolean,
			"deleteEmptydirData":       boolean,
			"ignoreDaemonSets":         boolean,
			"force":                    boolean,
			"disableEviction":          boolean,
			"skipWaitForDeleteTimeout": integer,
			"podSelector":              selector,
		}),
		"imagePullSecrets":  arrayOf(fromGo(reflect.TypeFor[corev1.LocalObjectReference]())),
		"postCompleteDelay": str,
		"priorityClassName": str,
		"customNodeLabels":  map[string]any{"type": "object", "additionalProperties": str},
	}, "upgrade")
	root := object(map[string]any{
		"spec":   spec,
		"status": map[string]any{"type": "object"},
	}, "spec")
	return crdschema.Schema{
		Group: "upgrade.cattle.io", Version: "v1", Kind: "Plan", Scope: "Namespaced",
		JSON: crdschema.Root(root, "upgrade.cattle.io/v1", "Plan", "Namespaced"),
	}
}

func schema(t string) map[string]any { return map[string]any{"type": t} }

func arrayOf(items map[string]any) map[string]any {
	return map[string]any{"type": "array", "items": items}
}

func object(props map[string]any, required ...string) map[string]any {
	o := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		r := make([]any, len(required))
		for i, s := range required {
			r[i] = s
		}
		o["required"] = r
	}
	return o
}

var (
	quantityType = reflect.TypeFor[resource.Quantity]()
	intstrType   = reflect.TypeFor[intstr.IntOrString]()
	timeType     = reflect.TypeFor[metav1.Time]()
	durationType = reflect.TypeFor[metav1.Duration]()
)

// fromGo derives a closed JSON schema from a Kubernetes API Go type by its
// json tags.
func fromGo(t reflect.Type) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case quantityType, intstrType:
		return map[string]any{"anyOf": []any{schema("integer"), schema("number"), schema("string")}}
	case timeType, durationType:
		return schema("string")
	}
	switch t.Kind() {
	case reflect.String:
		return schema("string")
	case reflect.Bool:
		return schema("boolean")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return schema("integer")
	case reflect.Float32, reflect.Float64:
		return schema("number")
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return schema("string")
		}
		return arrayOf(fromGo(t.Elem()))
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": fromGo(t.Elem())}
	case reflect.Struct:
		props := map[string]any{}
		var required []string
		addFields(t, props, &required)
		return object(props, required...)
	}
	return map[string]any{}
}

func addFields(t reflect.Type, props map[string]any, required *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			addFields(ft, props, required)
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = fromGo(f.Type)
		if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") && f.Type.Kind() != reflect.Pointer && f.Type.Kind() != reflect.Slice && f.Type.Kind() != reflect.Map && f.Type.Kind() != reflect.Bool {
			*required = append(*required, name)
		}
	}
}
