package config

import (
	_ "embed"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"strings"

	"github.com/invopop/jsonschema"
)

// typesSource is types.go itself: its doc comments become the schema's
// descriptions, so editors show the same text as the Go docs.
//
//go:embed types.go
var typesSource string

// SchemaID is the $id of the generated hl.yaml schema.
const SchemaID = "https://hl.dev/schemas/hl.schema.json"

// SchemaModeline is the first line of every hl.yaml hl writes, so
// yaml-language-server editors validate and complete it. The path is
// relative to the rendered repo root, which carries a copy of the schema.
const SchemaModeline = "# yaml-language-server: $schema=.hl/hl.schema.json"

// Schema returns the JSON schema of hl.yaml generated from the Go types,
// indented and newline-terminated (the bytes of schemas/hl.schema.json).
func Schema() []byte {
	r := &jsonschema.Reflector{
		ExpandedStruct: true,
		// Fields are required unless tagged omitempty, matching Validate.
		RequiredFromJSONSchemaTags: false,
		LookupComment:              lookupComment(),
	}
	s := r.Reflect(&Homelab{})
	applyRules(s)
	s.ID = SchemaID
	s.Title = "hl.yaml"
	s.Description = "A homelab rendered by hl (" + APIVersion + ")."
	out, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		panic(err) // a schema of static types always marshals
	}
	return append(out, '\n')
}

// lookupComment indexes the doc comments of types.go by "Type" and
// "Type.Field".
func lookupComment() func(reflect.Type, string) string {
	docs := map[string]string{}
	f, err := parser.ParseFile(token.NewFileSet(), "types.go", typesSource, parser.ParseComments)
	if err != nil {
		panic(err) // types.go compiled, so it parses
	}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.TYPE {
			continue
		}
		for _, spec := range gd.Specs {
			ts := spec.(*ast.TypeSpec)
			docs[ts.Name.Name] = clean(gd.Doc.Text())
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				continue
			}
			for _, fld := range st.Fields.List {
				for _, name := range fld.Names {
					docs[ts.Name.Name+"."+name.Name] = clean(fld.Doc.Text())
				}
			}
		}
	}
	pkg := reflect.TypeOf(Homelab{}).PkgPath()
	return func(t reflect.Type, field string) string {
		if t.PkgPath() != pkg {
			return ""
		}
		if field == "" {
			return docs[t.Name()]
		}
		return docs[t.Name()+"."+field]
	}
}

func clean(s string) string { return strings.Join(strings.Fields(s), " ") }
