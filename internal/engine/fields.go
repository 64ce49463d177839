package engine

import (
	"fmt"
	"strconv"
	"strings"
)

// Accessors for drivers. Paths are dotted ("hash_key.name"); a missing or
// mistyped value yields the zero value, since the blueprint schema has
// already checked types.

// Get returns the value at path.
func (d *Desired) Get(path string) (any, bool) { return lookup(d.Fields, path) }

// String returns the string at path.
func (d *Desired) String(path string) string {
	v, _ := d.Get(path)
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	case Unknown:
		return x.String()
	}
	return fmt.Sprint(v)
}

// Int returns the integer at path.
func (d *Desired) Int(path string) int64 {
	v, _ := d.Get(path)
	switch x := v.(type) {
	case int64:
		return x
	case int:
		return int64(x)
	case float64:
		return int64(x)
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

// Float returns the number at path.
func (d *Desired) Float(path string) float64 {
	v, _ := d.Get(path)
	switch x := v.(type) {
	case int64:
		return float64(x)
	case int:
		return float64(x)
	case float64:
		return x
	case string:
		f, _ := strconv.ParseFloat(x, 64)
		return f
	}
	return 0
}

// Bool returns the boolean at path.
func (d *Desired) Bool(path string) bool {
	v, _ := d.Get(path)
	b, _ := v.(bool)
	return b
}

// List returns the list at path.
func (d *Desired) List(path string) []any {
	v, _ := d.Get(path)
	l, _ := v.([]any)
	return l
}

// Strings returns the list of strings at path.
func (d *Desired) Strings(path string) []string {
	var out []string
	for _, e := range d.List(path) {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// Map returns the map at path.
func (d *Desired) Map(path string) map[string]any {
	v, _ := d.Get(path)
	m, _ := v.(map[string]any)
	return m
}

// Has reports whether path has a value.
func (d *Desired) Has(path string) bool {
	v, ok := d.Get(path)
	return ok && v != nil
}

func lookup(m map[string]any, path string) (any, bool) {
	var cur any = m
	for _, part := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = mm[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}
