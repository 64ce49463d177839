package engine

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// Diff lists the fields whose desired value differs from the live one.
// Only fields the driver reported in live.Fields are compared, so settings
// a driver cannot read never show as changes; numbers compare by value
// whatever their Go type. A change to a ForceNew field is a replacement.
func Diff(d *Desired, live *Live, forceNew []string) []FieldChange {
	var out []FieldChange
	keys := make([]string, 0, len(d.Fields))
	for k := range d.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lv, ok := live.Fields[k]
		if !ok || IsUnknown(lv) {
			// Not read, or echoed from the desired value by a driver that
			// has nothing to read (an empty set): nothing to compare.
			continue
		}
		dv := d.Fields[k]
		if equalValues(dv, lv) {
			continue
		}
		out = append(out, FieldChange{Path: k, Before: lv, After: dv, Replace: slices.Contains(forceNew, k)})
	}
	if tagsDiffer(d.Tags, live.Tags) {
		out = append(out, FieldChange{Path: "tags", Before: ownership(live.Tags), After: ownership(d.Tags)})
	}
	return out
}

// tagsDiffer compares the ownership tags other than the version: a new
// blueprint version alone changes nothing in AWS.
func tagsDiffer(want, have map[string]string) bool {
	for _, k := range []string{TagStack, TagResource, TagManaged} {
		if want[k] != have[k] {
			return true
		}
	}
	return false
}

func ownership(tags map[string]string) map[string]any {
	out := map[string]any{}
	for _, k := range []string{TagStack, TagResource, TagManaged} {
		if v, ok := tags[k]; ok {
			out[k] = v
		}
	}
	return out
}

// equalValues compares blueprint-shaped values: numbers by value, lists in
// order, maps by key; an Unknown never equals anything.
func equalValues(a, b any) bool {
	if IsUnknown(a) || IsUnknown(b) {
		return false
	}
	return reflect.DeepEqual(normalize(a), normalize(b))
}

func normalize(v any) any {
	switch x := v.(type) {
	case int:
		return float64(x)
	case int32:
		return float64(x)
	case int64:
		return float64(x)
	case float32:
		return float64(x)
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case map[string]string:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = e
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	case nil:
		return nil
	}
	return v
}

// Display renders a value for the plan page.
func Display(v any) string {
	switch x := v.(type) {
	case nil:
		return "(none)"
	case string:
		if IsUnknown(x) {
			return "(known after apply)"
		}
		return x
	case Unknown:
		return "(known after apply)"
	}
	if IsUnknown(v) {
		return "(known after apply)"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return strings.ReplaceAll(string(b), unknownMark, "")
}
