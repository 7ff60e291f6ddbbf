package crdschema

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

const crd = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  names: {kind: Gadget, plural: gadgets}
  scope: Cluster
  versions:
    - name: v1alpha1
      served: false
      storage: false
      schema:
        openAPIV3Schema: {type: object}
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [size]
              properties:
                size: {type: integer, minimum: 1, exclusiveMinimum: true}
                port: {x-kubernetes-int-or-string: true}
                note: {type: string, nullable: true}
                labels:
                  type: object
                  additionalProperties: {type: string}
                config:
                  type: object
                  x-kubernetes-preserve-unknown-fields: true
                  properties:
                    known: {type: string}
                template:
                  type: object
                  x-kubernetes-embedded-resource: true
                  properties:
                    spec: {type: object}
                mode:
                  type: object
                  properties:
                    a: {type: string}
                    b: {type: string}
                  oneOf:
                    - required: [a]
                    - required: [b]
            status:
              type: object
              x-kubernetes-preserve-unknown-fields: true
`

func compile(t *testing.T, s Schema) *jsonschema.Schema {
	t.Helper()
	data, err := json.Marshal(s.JSON)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("mem:///s.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("mem:///s.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func TestConvert(t *testing.T) {
	ss, err := FromYAML([]byte(crd))
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 {
		t.Fatalf("want only the served version, got %d", len(ss))
	}
	s := ss[0]
	if s.FileName() != "example.com_gadget_v1.json" || s.Scope != "Cluster" || s.JSON[ScopeKey] != "Cluster" {
		t.Fatalf("%s %s %v", s.FileName(), s.Scope, s.JSON[ScopeKey])
	}
	sch := compile(t, s)
	valid := func(doc string) error {
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(doc)))
		if err != nil {
			t.Fatal(err)
		}
		return sch.Validate(inst)
	}
	good := []string{
		`{"apiVersion":"example.com/v1","kind":"Gadget","metadata":{"name":"g","labels":{"a":"b"}},"spec":{"size":2}}`,
		`{"apiVersion":"example.com/v1","kind":"Gadget","metadata":{},"spec":{"size":2,"port":"http","note":null}}`,
		`{"apiVersion":"example.com/v1","kind":"Gadget","metadata":{},"spec":{"size":2,"port":8080,"labels":{"x":"y"}}}`,
		`{"apiVersion":"example.com/v1","kind":"Gadget","metadata":{},"spec":{"size":2,"config":{"known":"k","anything":[1,2]}}}`,
		`{"apiVersion":"example.com/v1","kind":"Gadget","metadata":{},"spec":{"size":2,"template":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{}}}}`,
		`{"apiVersion":"example.com/v1","kind":"Gadget","metadata":{},"spec":{"size":2,"mode":{"a":"x"}},"status":{"free":"form"}}`,
	}
	for _, g := range good {
		if err := valid(g); err != nil {
			t.Errorf("%s: %v", g, err)
		}
	}
	bad := []string{
		`{"apiVersion":"example.com/v1","kind":"Gadget","metadata":{},"spec":{"size":2,"colour":"red"}}`,
		`{"apiVersion":"example.com/v1","kind":"Gadget","metadata":{},"spec":{}}`,
		`{"apiVersion":"example.com/v1","kind":"Gadget","metadata":{},"spec":{"size":1}}`,
		`{"apiVersion":"example.com/v1","kind":"Gadget","metadata":{},"spec":{"size":2,"port":true}}`,
		`{"apiVersion":"example.com/v1","kind":"Gadget","metadata":{},"spec":{"size":2,"labels":{"x":1}}}`,
		`{"apiVersion":"example.com/v1","kind":"Gadget","metadata":{},"spec":{"size":2},"extra":1}`,
		`{"apiVersion":"example.com/v2","kind":"Gadget","metadata":{},"spec":{"size":2}}`,
		`{"apiVersion":"example.com/v1","kind":"Gadget","metadata":{},"spec":{"size":2,"mode":{}}}`,
	}
	for _, b := range bad {
		if err := valid(b); err == nil {
			t.Errorf("%s: accepted", b)
		}
	}
}
