package blueprints

import (
	"bytes"
	_ "embed"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// schemaJSON is internal/blueprints/schema.json, the single source of truth;
// the copy editors use, blueprints/schema.json, is checked byte-identical by a test.
//
//go:embed schema.json
var schemaJSON []byte

// SchemaJSON returns a copy of the JSON Schema (2020-12) of both blueprint file kinds.
func SchemaJSON() []byte { return bytes.Clone(schemaJSON) }

const schemaURL = "https://portal.internal/blueprints/schema.json"

type compiledSchemas struct {
	file *jsonschema.Schema
	// byType holds $defs/<type> for each resource type, so a resolved
	// resource is checked against its own definition only.
	byType map[string]*jsonschema.Schema
}

// schemas compiles the embedded schema once. It is computed lazily and never
// changes afterwards, so sharing it is safe.
var schemas = sync.OnceValues(func() (compiledSchemas, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		return compiledSchemas{}, fmt.Errorf("blueprints: embedded schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaURL, doc); err != nil {
		return compiledSchemas{}, fmt.Errorf("blueprints: embedded schema: %w", err)
	}
	var s compiledSchemas
	if s.file, err = c.Compile(schemaURL); err != nil {
		return compiledSchemas{}, fmt.Errorf("blueprints: compile schema: %w", err)
	}
	s.byType = map[string]*jsonschema.Schema{}
	defs, _ := doc.(map[string]any)["$defs"].(map[string]any)
	res, _ := defs["resource"].(map[string]any)
	props, _ := res["properties"].(map[string]any)
	typ, _ := props["type"].(map[string]any)
	types, _ := typ["enum"].([]any)
	for _, t := range types {
		name, _ := t.(string)
		if s.byType[name], err = c.Compile(schemaURL + "#/$defs/" + name); err != nil {
			return compiledSchemas{}, fmt.Errorf("blueprints: compile schema for %s: %w", name, err)
		}
	}
	if len(s.byType) == 0 {
		return compiledSchemas{}, fmt.Errorf("blueprints: schema lists no resource types")
	}
	return s, nil
})

// schemaDiagnostics validates root against sch and maps every leaf error to
// the line and column of the offending value.
func schemaDiagnostics(sch *jsonschema.Schema, root *val) []Diagnostic {
	err := sch.Validate(root.plain())
	if err == nil {
		return nil
	}
	verr, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return []Diagnostic{diag(root.pos, root.path, "%v", err)}
	}
	p := message.NewPrinter(language.English)
	var ds []Diagnostic
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		switch k := e.ErrorKind.(type) {
		case *kind.AnyOf:
			// "a boolean or a ${param.x} expression": one message, not one per branch.
			var alts []string
			expr := false
			for _, c := range e.Causes {
				for _, m := range leafMessages(c, p) {
					if strings.Contains(m, `\\$\\{(param|stack)`) {
						expr = true // the "or write ${param.x}" branch: not what the author meant
						continue
					}
					alts = append(alts, m)
				}
			}
			slices.Sort(alts)
			msg := strings.Join(slices.Compact(alts), "; or ")
			if expr && len(alts) > 0 {
				msg += " (or a ${param.x} expression)"
			} else if len(alts) == 0 {
				msg = "want a ${param.x} expression"
			}
			ds = append(ds, locate(root, e.InstanceLocation, msg))
			return
		case *kind.Required:
			for _, m := range k.Missing {
				ds = append(ds, locate(root, e.InstanceLocation, fmt.Sprintf("missing required field %q", m)))
			}
			return
		case *kind.AdditionalProperties:
			for _, name := range k.Properties {
				ds = append(ds, locate(root, append(slices.Clone(e.InstanceLocation), name), fmt.Sprintf("unknown field %q", name)))
			}
			return
		}
		if len(e.Causes) == 0 {
			ds = append(ds, locate(root, e.InstanceLocation, e.ErrorKind.LocalizedString(p)))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(verr)
	return ds
}

func leafMessages(e *jsonschema.ValidationError, p *message.Printer) []string {
	if len(e.Causes) == 0 {
		return []string{e.ErrorKind.LocalizedString(p)}
	}
	var out []string
	for _, c := range e.Causes {
		out = append(out, leafMessages(c, p)...)
	}
	return out
}

func locate(root *val, loc []string, msg string) Diagnostic {
	v := root.at(loc)
	return diag(v.pos, v.path, "%s", msg)
}
