package engine

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"portal/internal/analysis"
	"portal/internal/blueprints"
	"portal/internal/guardrails"
)

// WorksSection is a plan's answer to "will it work?": the checks of the
// stack's paths, keys, certificates and routing (package analysis).
type WorksSection struct {
	// Source is "blueprint" (the resolved blueprint and its environment's)
	// or "live" (the stack as AWS reports it).
	Source string           `json:"source"`
	Checks []analysis.Check `json:"checks"`
	// Missing names the environment's stacks the analysis could not read.
	Missing []string `json:"missing,omitempty"`
	// Note says why a section is partial or absent.
	Note string `json:"note,omitempty"`
}

// Failed returns the number of checks that fail.
func (w *WorksSection) Failed() int {
	n := 0
	for _, c := range w.Checks {
		if !c.OK() {
			n++
		}
	}
	return n
}

func worksSection(rep analysis.Report, stack, note string) *WorksSection {
	src := "blueprint"
	if note == "live" {
		src, note = "live", ""
	}
	return &WorksSection{Source: src, Checks: rep.For(stack), Missing: rep.Missing, Note: note}
}

// liveWorks runs the analysis on the stack as AWS reports it: each
// resource's fields as its driver read them (references to other resources
// written back as ${ref...} from their recorded outputs), beside the
// blueprints of the rest of its environment. It needs every resource to
// exist; before that it says so.
func (e *Engine) liveWorks(t Target, changes map[string]Change, outputs Outputs) *WorksSection {
	missing := 0
	for _, r := range t.Stack.Resources {
		if changes[r.ID].Action == Create {
			missing++
		}
	}
	if missing > 0 {
		return &WorksSection{Source: "live", Note: fmt.Sprintf("the live re-check reads the stack from AWS once it exists: %d resource(s) are still to be created", missing)}
	}
	rev := reverseOutputs(outputs, t.Stack.ID, t.Info.AccountID)
	res := make([]blueprints.Resource, 0, len(t.Stack.Resources))
	for _, r := range t.Stack.Resources {
		ch := changes[r.ID]
		drifted := map[string]bool{}
		for _, f := range ch.Fields {
			drifted[f.Path] = true
		}
		r.Fields = overlay(r.ID, r.Fields, ch.live, drifted, rev, t.Info.AccountID)
		res = append(res, r)
	}
	live := blueprints.NewStack(t.Stack.ID, t.Stack.Environment, t.Stack.Jurisdiction, t.Stack.Region, t.Stack.Version, res)
	env := []analysis.Stack{live}
	for _, s := range t.Stack.EnvironmentStacks() {
		if s.StackID() != t.Stack.ID {
			env = append(env, s)
		}
	}
	return worksSection(analysis.Analyze(t.Stack.Environment, env), t.Stack.ID, "live")
}

// reverseOutputs maps output values back to the references that name them,
// preferring the attributes blueprints refer to.
func reverseOutputs(out Outputs, stack, account string) map[string]string {
	rank := map[string]int{"arn": 0, "id": 1, "zone_id": 2, "dns_name": 3, "name": 4, "fqdn": 5}
	type cand struct {
		expr string
		rank int
	}
	best := map[string]cand{}
	keys := make([]string, 0, len(out))
	for k := range out {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for attr, v := range out[k] {
			if len(v) < 4 || v == account {
				continue
			}
			expr := "${ref." + k + "." + attr + "}"
			if st, id, ok := strings.Cut(k, ":"); ok {
				expr = "${xref." + st + "." + id + "." + attr + "}"
			}
			r, ok := rank[attr]
			if !ok {
				r = 10
			}
			if c, ok := best[v]; !ok || r < c.rank || r == c.rank && expr < c.expr {
				best[v] = cand{expr, r}
			}
		}
	}
	m := make(map[string]string, len(best))
	for v, c := range best {
		m[v] = c.expr
	}
	return m
}

var accountNumber = regexp.MustCompile(`^[0-9]{12}$`)

// overlay returns the resource as AWS has it: the blueprint's fields where
// AWS agrees with them (the plan found no difference), AWS's value where it
// does not (drift: JSON-normalised, references written back), and what AWS
// reports beyond the blueprint (network ACLs, whether a key policy keeps
// the account's statement, whether a zone is delegated).
func overlay(self string, fields, live map[string]any, drifted map[string]bool, rev map[string]string, account string) map[string]any {
	out := make(map[string]any, len(fields)+len(live))
	for k, v := range fields {
		out[k] = v
	}
	if live == nil {
		return out
	}
	var norm map[string]any
	if b, err := json.Marshal(live); err == nil {
		_ = json.Unmarshal(b, &norm)
	}
	for k, v := range norm {
		if _, inBlueprint := fields[k]; IsUnknown(v) || inBlueprint && !drifted[k] {
			continue
		}
		out[k] = backToRefs(self, v, rev, account)
	}
	return out
}

// backToRefs writes values that are another resource's outputs back as
// references to it (never to the resource itself: a record's name is also
// its own fqdn).
func backToRefs(self string, v any, rev map[string]string, account string) any {
	switch x := v.(type) {
	case string:
		for _, k := range []string{x, strings.TrimSuffix(x, ".")} {
			if e, ok := rev[k]; ok && !strings.HasPrefix(e, "${ref."+self+".") {
				return e
			}
		}
		if accountNumber.MatchString(account) {
			x = strings.ReplaceAll(x, ":"+account+":", ":"+blueprints.AccountExpr+":")
		}
		return x
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = backToRefs(self, e, rev, account)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = backToRefs(self, e, rev, account)
		}
		return out
	case float64:
		if x == float64(int64(x)) {
			return int64(x)
		}
	}
	return v
}

// compile-time check: plans judge stacks through the guardrails' view.
var _ guardrails.Stack = (*blueprints.Stack)(nil)
