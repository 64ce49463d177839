package analysis_test

import (
	"strings"
	"testing"

	"portal/internal/analysis"
	"portal/internal/blueprints"
	"portal/internal/regions"
)

const shipped = "../../blueprints"

// environment resolves env's layer and jurisdiction stacks from set.
func environment(t testing.TB, set *blueprints.Set, env string) []analysis.Stack {
	t.Helper()
	ids := []string{regions.LayerID(env)}
	for _, j := range regions.Jurisdictions() {
		ids = append(ids, regions.StackID(env, j.ID))
	}
	var out []analysis.Stack
	for _, id := range ids {
		st, ds := set.Resolve(id)
		if st == nil {
			t.Fatalf("resolve %s: %v", id, ds)
		}
		out = append(out, st)
	}
	return out
}

func TestShippedEstateWorks(t *testing.T) {
	set, ds := blueprints.LoadDir(shipped)
	if len(ds) > 0 {
		t.Fatal(ds)
	}
	for _, env := range regions.EnvironmentNames() {
		rep := analysis.Analyze(env, environment(t, set, env))
		if len(rep.Missing) > 0 {
			t.Errorf("%s: missing %v", env, rep.Missing)
		}
		for _, c := range rep.Checks {
			for _, h := range c.Hops {
				mark := "ok  "
				if !h.OK {
					mark = "FAIL"
					t.Errorf("%s %s: %s -> %s: %s (fix: %s)", c.Stack, c.Title, h.From, h.To, h.Problem, h.Fix)
				}
				if testing.Verbose() && env == "prod" {
					t.Logf("%s %s | %s | %s -> %s | %s", mark, c.Stack, c.Title, h.From, h.To, h.Via)
				}
			}
		}
		if n := len(rep.Checks); n < 20 {
			t.Errorf("%s: only %d checks", env, n)
		}
	}
}

// A stack judged without the rest of its environment reports no failure
// for what it cannot see.
func TestStackAloneHasNoFalseFailures(t *testing.T) {
	set, _ := blueprints.LoadDir(shipped)
	for _, id := range set.StackIDs() {
		st, _ := set.Resolve(id)
		env, _, _ := strings.Cut(id, "-")
		rep := analysis.Analyze(env, []analysis.Stack{st})
		for _, c := range rep.Checks {
			for _, h := range c.Failed() {
				t.Errorf("%s alone: %s: %s -> %s: %s", id, c.Title, h.From, h.To, h.Problem)
			}
		}
		if len(rep.Missing) != 3 {
			t.Errorf("%s alone: missing %v, want the other three", id, rep.Missing)
		}
	}
}
