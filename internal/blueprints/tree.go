package blueprints

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// val is a YAML value with where it came from. v holds nil, bool, int64,
// float64, string, []*val or *omap.
type val struct {
	v   any
	pos Position
	// path is where the value was written, in its own file: "params.asg.min",
	// "resources.web_asg.max". A value substituted from a parameter keeps the
	// parameter's path and position, so messages point where the fix goes.
	path string
}

// omap is a mapping that keeps key order (the order ops wrote it).
type omap struct {
	keys []string
	m    map[string]*val
}

func (o *omap) get(k string) *val {
	if o == nil {
		return nil
	}
	return o.m[k]
}

func (v *val) mapping() *omap {
	if v == nil {
		return nil
	}
	m, _ := v.v.(*omap)
	return m
}

func (v *val) list() []*val {
	if v == nil {
		return nil
	}
	l, _ := v.v.([]*val)
	return l
}

func (v *val) str() string {
	if v == nil {
		return ""
	}
	s, _ := v.v.(string)
	return s
}

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 64

// fromNode converts a yaml node, reporting (not stopping at) every problem.
// keyPos is the position of the mapping key that holds n, used as the value's
// position so messages point at "min:" rather than at "3".
func fromNode(file string, n *yaml.Node, keyPos *Position, path string, depth int, ds *[]Diagnostic) *val {
	pos := Position{File: file, Line: n.Line, Column: n.Column}
	if keyPos != nil {
		pos = *keyPos
	}
	v := fromNode1(file, n, pos, path, depth, ds)
	v.path = path
	return v
}

func fromNode1(file string, n *yaml.Node, pos Position, path string, depth int, ds *[]Diagnostic) *val {
	if depth > maxDepth {
		*ds = append(*ds, diag(pos, path, "nested more than %d levels deep", maxDepth))
		return &val{pos: pos}
	}
	if n.Anchor != "" {
		*ds = append(*ds, diag(pos, path, "YAML anchors (&%s) are not allowed: write values out so reviewers see them", n.Anchor))
	}
	switch n.Kind {
	case yaml.AliasNode:
		*ds = append(*ds, diag(pos, path, "YAML aliases (*%s) are not allowed: write values out so reviewers see them", n.Value))
		return &val{pos: pos}
	case yaml.MappingNode:
		o := &omap{m: map[string]*val{}}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, vn := n.Content[i], n.Content[i+1]
			kp := Position{File: file, Line: k.Line, Column: k.Column}
			if k.Kind != yaml.ScalarNode || (k.ShortTag() != "!!str" && k.ShortTag() != "!!int" && k.ShortTag() != "!!bool") {
				*ds = append(*ds, diag(kp, path, "mapping keys must be plain strings"))
				continue
			}
			cp := joinPath(path, k.Value)
			if _, dup := o.m[k.Value]; dup {
				*ds = append(*ds, diag(kp, cp, "duplicate key %q", k.Value))
				continue
			}
			o.keys = append(o.keys, k.Value)
			o.m[k.Value] = fromNode(file, vn, &kp, cp, depth+1, ds)
		}
		return &val{v: o, pos: pos}
	case yaml.SequenceNode:
		l := make([]*val, 0, len(n.Content))
		for i, c := range n.Content {
			l = append(l, fromNode(file, c, nil, fmt.Sprintf("%s[%d]", path, i), depth+1, ds))
		}
		return &val{v: l, pos: pos}
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return &val{pos: pos}
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err == nil {
				return &val{v: b, pos: pos}
			}
		case "!!int":
			if i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64); err == nil {
				return &val{v: i, pos: pos}
			}
			var i int64
			if err := n.Decode(&i); err == nil {
				return &val{v: i, pos: pos}
			}
			*ds = append(*ds, diag(pos, path, "integer %s out of range", n.Value))
			return &val{pos: pos}
		case "!!float":
			var f float64
			if err := n.Decode(&f); err == nil {
				if math.IsNaN(f) || math.IsInf(f, 0) {
					*ds = append(*ds, diag(pos, path, "%s is not a finite number", n.Value))
					return &val{pos: pos}
				}
				return &val{v: f, pos: pos}
			}
		}
		return &val{v: n.Value, pos: pos}
	}
	*ds = append(*ds, diag(pos, path, "unsupported YAML node"))
	return &val{pos: pos}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// plain converts to the plain Go values JSON Schema validation and digests
// use: map[string]any, []any, string, int64, float64, bool, nil.
func (v *val) plain() any {
	if v == nil {
		return nil
	}
	switch x := v.v.(type) {
	case *omap:
		m := make(map[string]any, len(x.keys))
		for _, k := range x.keys {
			m[k] = x.m[k].plain()
		}
		return m
	case []*val:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = e.plain()
		}
		return l
	}
	return v.v
}

// at follows a JSON Schema instance location.
func (v *val) at(loc []string) *val {
	cur := v
	for _, tok := range loc {
		switch x := cur.v.(type) {
		case *omap:
			next := x.get(tok)
			if next == nil {
				return cur
			}
			cur = next
		case []*val:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) {
				return cur
			}
			cur = x[i]
		default:
			return cur
		}
	}
	return cur
}
