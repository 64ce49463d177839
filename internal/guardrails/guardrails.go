// Package guardrails checks a resolved stack against the compliance rules of
// its jurisdiction (HIPAA, GDPR, Singapore PDPA) before anything is planned
// or applied. Every rule has an id, a severity, a plain-language explanation
// and the legal citation for each jurisdiction.
package guardrails

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"portal/internal/analysis"
	"portal/internal/regions"
)

// Stack is the resolved stack the rules read. *blueprints.Stack implements
// it; values returned by Lookup are string, int64, float64, bool, []any or
// map[string]any.
type Stack interface {
	StackID() string
	EnvironmentName() string
	JurisdictionID() string
	ResourceIDs() []string
	ResourceType(id string) string
	ResourceRegion(id string) string
	Lookup(id, path string) (any, bool)
	PositionOf(id, path string) (file string, line, column int)
}

// Severity says whether a failing rule stops a deployment.
type Severity string

const (
	// Blocking failures stop plan and apply unless excepted.
	Blocking Severity = "blocking"
	// Warning failures are shown but do not stop anything.
	Warning Severity = "warning"
)

// Status is the outcome of a rule for one resource (or the whole stack).
type Status string

const (
	Pass     Status = "pass"
	Fail     Status = "fail"
	Excepted Status = "excepted"
)

// Rule is one guardrail.
type Rule struct {
	ID       string
	Severity Severity
	Title    string
	// Explanation says in plain language what is required and why.
	Explanation string
	// Citations maps a jurisdiction id ("us", "eu", "apac") to the legal
	// provision the rule implements there.
	Citations map[string]string
	// ProdOnly rules are only evaluated for the prod environment.
	ProdOnly bool
	// StacksOnly rules are not evaluated for environment layers (which hold
	// no database or alarms).
	StacksOnly bool
	// ProdBlocking rules block in prod and warn elsewhere (the "will it
	// work" rules: dev and test may try a broken path; prod may not).
	ProdBlocking bool
	check        func(c *checker)
}

// Exception is an accepted, owned and time-limited deviation from a rule for
// one resource of one stack. Resource is the resource id, or "" for a
// stack-wide finding (such as a missing alarm); it must match exactly.
type Exception struct {
	RuleID, Stack, Resource, Owner, Reason string
	Expires                                time.Time
}

// Validate reports missing fields; an invalid exception never applies.
func (e Exception) Validate() error {
	var errs []error
	for _, f := range []struct{ name, v string }{{"rule id", e.RuleID}, {"stack", e.Stack}, {"owner", e.Owner}, {"reason", e.Reason}} {
		if f.v == "" {
			errs = append(errs, fmt.Errorf("%s is empty", f.name))
		}
	}
	if e.Expires.IsZero() {
		errs = append(errs, errors.New("expiry is not set"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("guardrails: exception: %w", errors.Join(errs...))
	}
	return nil
}

// Active reports whether the exception is valid and not expired at now.
func (e Exception) Active(now time.Time) bool {
	return e.Validate() == nil && now.Before(e.Expires)
}

// Result is the outcome of one rule for one resource. A passing rule has one
// Result with an empty Resource.
type Result struct {
	RuleID      string
	Title       string
	Severity    Severity
	Status      Status
	Resource    string // offending resource id; "" for stack-wide findings and passes
	Path        string // offending field, e.g. "versioning"
	File        string
	Line        int
	Column      int
	Message     string
	Explanation string
	Citation    string
	// Exception is the exception that applied, when Status is Excepted.
	Exception *Exception
}

// String renders a result like a compiler message, e.g.
//
//	blueprints/architecture.yaml:83:5: documents_replication.destination_bucket: [data-residency, blocking, GDPR Art. 44] replicates to ...
//
// Stack-wide findings (no resource) start with "stack:".
func (r Result) String() string {
	if r.Resource == "" { // stack-wide: nothing to point at
		return fmt.Sprintf("stack: [%s, %s, %s] %s", r.RuleID, r.Severity, r.Citation, r.Message)
	}
	where := r.Resource
	if r.Path != "" {
		where += "." + r.Path
	}
	return fmt.Sprintf("%s:%d:%d: %s: [%s, %s, %s] %s", r.File, r.Line, r.Column, where, r.RuleID, r.Severity, r.Citation, r.Message)
}

// Report is the outcome of every applicable rule for one stack, in rule order.
type Report struct {
	Stack        string
	Jurisdiction string
	Results      []Result
}

// Blocking returns the failures of blocking rules.
func (r Report) Blocking() []Result { return r.filter(Blocking) }

// Warnings returns the failures of warning rules.
func (r Report) Warnings() []Result { return r.filter(Warning) }

// OK reports whether nothing blocks the stack.
func (r Report) OK() bool { return len(r.Blocking()) == 0 }

func (r Report) filter(s Severity) []Result {
	var out []Result
	for _, res := range r.Results {
		if res.Status == Fail && res.Severity == s {
			out = append(out, res)
		}
	}
	return out
}

// Evaluate runs every rule that applies to the stack's environment and
// returns one result per failing resource (or one pass per rule). A failure
// matched by an active exception (same rule, stack and resource, not
// expired at now) is reported as Excepted.
func Evaluate(stack Stack, exceptions []Exception, now time.Time) Report {
	rep := Report{Stack: stack.StackID(), Jurisdiction: stack.JurisdictionID()}
	j, ok := regions.JurisdictionByID(stack.JurisdictionID())
	layer := regions.IsLayerID(stack.StackID())
	if layer {
		j, ok = LayerJurisdiction(), true
		rep.Jurisdiction = j.ID
	}
	if !ok {
		rep.Results = append(rep.Results, Result{RuleID: "known-jurisdiction", Severity: Blocking, Status: Fail,
			Message: fmt.Sprintf("unknown jurisdiction %q: no rules can be checked", stack.JurisdictionID())})
		return rep
	}
	var works *analysis.Report
	for _, rule := range Rules() {
		if rule.ProdOnly && stack.EnvironmentName() != "prod" || rule.StacksOnly && layer {
			continue
		}
		c := &checker{s: stack, j: j, prod: stack.EnvironmentName() == "prod", layer: layer, works: func() analysis.Report {
			if works == nil {
				r := Works(stack)
				works = &r
			}
			return *works
		}}
		rule.check(c)
		base := Result{RuleID: rule.ID, Title: rule.Title, Severity: rule.Severity, Explanation: rule.Explanation, Citation: rule.Citation(j.ID)}
		if rule.ProdBlocking && !c.prod {
			base.Severity = Warning
		}
		if len(c.findings) == 0 {
			r := base
			r.Status = Pass
			rep.Results = append(rep.Results, r)
			continue
		}
		for _, f := range c.findings {
			r := base
			r.Status, r.Resource, r.Path, r.Message = Fail, f.resource, f.path, f.msg
			if f.resource != "" {
				r.File, r.Line, r.Column = stack.PositionOf(f.resource, f.path)
			}
			for _, e := range exceptions {
				if e.RuleID == rule.ID && e.Stack == rep.Stack && e.Resource == f.resource && e.Active(now) {
					r.Status = Excepted
					r.Exception = &e
					break
				}
			}
			rep.Results = append(rep.Results, r)
		}
	}
	return rep
}

type finding struct{ resource, path, msg string }

type checker struct {
	s        Stack
	j        regions.Jurisdiction
	prod     bool
	layer    bool
	findings []finding
	// works returns the "will it work" analysis of the stack's
	// environment, computed once per evaluation.
	works func() analysis.Report
}

// InEnvironment is implemented by stacks that know the other stacks of
// their environment (*blueprints.Stack, once linked): the "will it work"
// rules follow paths across them.
type InEnvironment interface {
	EnvironmentStacks() []Stack
}

// Works analyses whether the stack's environment works on AWS (package
// analysis), with every stack of it the stack knows, or the stack alone.
func Works(stack Stack) analysis.Report {
	if c, ok := stack.(interface {
		EnvironmentCache(key string, compute func() any) any
	}); ok {
		return c.EnvironmentCache("works", func() any { return analyzeEnvironment(stack) }).(analysis.Report)
	}
	return analyzeEnvironment(stack)
}

func analyzeEnvironment(stack Stack) analysis.Report {
	env := []analysis.Stack{stack}
	if e, ok := stack.(InEnvironment); ok {
		env = env[:0]
		for _, s := range e.EnvironmentStacks() {
			env = append(env, s)
		}
	}
	return analysis.Analyze(stack.EnvironmentName(), env)
}

// worksRule turns the analysis's failed hops of rule into findings of the
// stack.
func worksRule(rule string) func(c *checker) {
	return func(c *checker) {
		for _, f := range c.works().Findings(rule, c.s.StackID()) {
			c.findings = append(c.findings, finding{f.Resource, f.Path, f.Message})
		}
	}
}

// LayerID is the pseudo-jurisdiction of environment layers: they serve all
// three jurisdictions, so every regime's provision applies.
const LayerID = "global"

// LayerJurisdiction is what an environment layer is judged as: every
// jurisdiction's regions allowed (it holds no patient data: the
// data-residency rule refuses any), every regime cited.
func LayerJurisdiction() regions.Jurisdiction {
	j := regions.Jurisdiction{ID: LayerID, Name: "All jurisdictions", Regime: "HIPAA, GDPR and PDPA"}
	for _, x := range regions.Jurisdictions() {
		for _, r := range x.AllowedRegions {
			if !slices.Contains(j.AllowedRegions, r) {
				j.AllowedRegions = append(j.AllowedRegions, r)
			}
		}
	}
	return j
}

// Citation returns the rule's legal provision in jurisdiction id; for an
// environment layer, every jurisdiction's, joined.
func (r Rule) Citation(id string) string {
	if id != LayerID {
		return r.Citations[id]
	}
	var out []string
	for _, j := range regions.Jurisdictions() {
		if c := r.Citations[j.ID]; c != "" && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return strings.Join(out, "; ")
}

func (c *checker) fail(resource, path, format string, args ...any) {
	c.findings = append(c.findings, finding{resource, path, fmt.Sprintf(format, args...)})
}

func (c *checker) ofType(types ...string) []string {
	var out []string
	for _, id := range c.s.ResourceIDs() {
		if slices.Contains(types, c.s.ResourceType(id)) {
			out = append(out, id)
		}
	}
	return out
}

func (c *checker) str(id, path string) string {
	v, _ := c.s.Lookup(id, path)
	s, _ := v.(string)
	return s
}

func (c *checker) boolean(id, path string) bool {
	v, _ := c.s.Lookup(id, path)
	b, _ := v.(bool)
	return b
}

func (c *checker) integer(id, path string) (int64, bool) {
	v, ok := c.s.Lookup(id, path)
	if !ok {
		return 0, false
	}
	switch n := v.(type) {
	case int64:
		return n, true
	case float64:
		return int64(n), true
	}
	return 0, false
}

func (c *checker) list(id, path string) []any {
	v, _ := c.s.Lookup(id, path)
	l, _ := v.([]any)
	return l
}

var refRE = regexp.MustCompile(`^\$\{ref\.([a-z][a-z0-9_]*)\.([a-z_]+)\}`)

// target returns the id of the resource a ${ref.id.attr} value points to.
func target(s string) (string, bool) {
	m := refRE.FindStringSubmatch(s)
	if m == nil {
		return "", false
	}
	return m[1], true
}
