package web

import (
	"encoding/json"
	"slices"
	"testing"

	"portal/internal/guardrails"
	"portal/internal/versions"
)

// TestOpenAPIEnumsMatchTheCatalogue keeps the document's lists of stacks
// and guardrail rules the server's: a stack or rule added to the code and
// not to the document would be refused by every client generated from it.
func TestOpenAPIEnumsMatchTheCatalogue(t *testing.T) {
	var doc any
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("the document is not JSON: %v", err)
	}
	stacks := append(versions.StackIDs(), versions.LayerIDs()...)
	var rules []string
	for _, r := range guardrails.Rules() {
		rules = append(rules, r.ID)
	}
	want := map[string][]string{"stack": stacks, "rule_id": rules}
	found := map[string]int{}
	var walk func(v any, path string)
	walk = func(v any, path string) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if w, ok := want[k]; ok {
					if schema, ok := e.(map[string]any); ok {
						if enum, ok := schema["enum"].([]any); ok {
							found[k]++
							var got []string
							for _, s := range enum {
								got = append(got, s.(string))
							}
							a, b := slices.Clone(got), slices.Clone(w)
							slices.Sort(a)
							slices.Sort(b)
							if !slices.Equal(a, b) {
								t.Errorf("%s.%s: enum %v, want the server's %v", path, k, got, w)
							}
						}
					}
				}
				walk(e, path+"."+k)
			}
		case []any:
			for _, e := range v {
				walk(e, path+"[]")
			}
		}
	}
	walk(doc, "")
	if found["stack"] == 0 || found["rule_id"] == 0 {
		t.Errorf("no enum of stacks or rules found in the document (%v)", found)
	}
}
