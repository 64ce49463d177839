package engine

import (
	"fmt"
	"regexp"
	"strings"

	"portal/internal/blueprints"
)

// refPattern matches ${ref.id.attr} (a resource of the same stack) and
// ${xref.stack.id.attr} (another stack's, as the blueprints resolver writes
// ${layer...} and ${jurisdiction...}).
var refPattern = regexp.MustCompile(`\$\{(?:ref\.([a-z][a-z0-9_]*)|xref\.([a-z0-9-]+)\.([a-z][a-z0-9_]*))\.([a-z][a-z0-9_]*)\}`)

// Outputs are the known outputs of resources, by resource id, and of other
// stacks' resources by "stack:id".
type Outputs map[string]map[string]string

// resolveRefs returns a deep copy of v with every ${ref.id.attr} replaced
// by the referenced output. A reference to a resource without outputs (not
// created yet) becomes Unknown; a reference to an output the resource does
// not have is an error.
func resolveRefs(v any, out Outputs) (any, error) {
	switch x := v.(type) {
	case string:
		return resolveString(x, out)
	case []any:
		res := make([]any, len(x))
		for i, e := range x {
			r, err := resolveRefs(e, out)
			if err != nil {
				return nil, err
			}
			res[i] = r
		}
		return res, nil
	case map[string]any:
		res := make(map[string]any, len(x))
		for k, e := range x {
			r, err := resolveRefs(e, out)
			if err != nil {
				return nil, err
			}
			res[k] = r
		}
		return res, nil
	}
	return v, nil
}

func resolveString(s string, out Outputs) (any, error) {
	ms := refPattern.FindAllStringSubmatchIndex(s, -1)
	if len(ms) == 0 {
		return s, nil
	}
	var err error
	whole := len(ms) == 1 && ms[0][0] == 0 && ms[0][1] == len(s)
	res := refPattern.ReplaceAllStringFunc(s, func(m string) string {
		sub := refPattern.FindStringSubmatch(m)
		id, attr, key, what := sub[1], sub[4], sub[1], sub[1]
		if id == "" {
			key, what = sub[2]+":"+sub[3], sub[2]+"'s "+sub[3]
		}
		o, ok := out[key]
		if !ok {
			return unknownMark + key + "." + attr + "\x00"
		}
		val, ok := o[attr]
		if !ok && err == nil {
			err = fmt.Errorf("%s: %s has no output %q", m, what, attr)
		}
		return val
	})
	if err != nil {
		return nil, err
	}
	if whole && IsUnknown(res) {
		return Unknown{Ref: s[2 : len(s)-1]}, nil
	}
	return res, nil
}

// withAccount returns v with every ${stack.account} replaced by account,
// the AWS account of the stack's environment (blueprints leave it for the
// engine: the same blueprint runs in the dev, test and prod accounts).
func withAccount(v any, account string) any {
	switch x := v.(type) {
	case string:
		if strings.Contains(x, blueprints.AccountExpr) {
			return strings.ReplaceAll(x, blueprints.AccountExpr, account)
		}
		return x
	case []any:
		res := make([]any, len(x))
		for i, e := range x {
			res[i] = withAccount(e, account)
		}
		return res
	case map[string]any:
		res := make(map[string]any, len(x))
		for k, e := range x {
			res[k] = withAccount(e, account)
		}
		return res
	}
	return v
}
