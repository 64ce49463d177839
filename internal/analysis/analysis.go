// Package analysis answers "will it work?" for an environment before it is
// applied: from the resolved blueprints of its layer and jurisdiction
// stacks (or from the same stacks as AWS reports them, for the live
// re-check) it follows every path a patient's request and the app's own
// calls take, and says for each hop whether AWS would let it through:
//
//   - network: internet -> CloudFront -> load balancer -> app instances ->
//     database, Route 53's health checkers -> load balancer, and app
//     instances -> every AWS API their role may call (gateway or interface
//     endpoints, route tables, security groups, network ACLs);
//   - keys: each AWS service or role that uses a KMS key is allowed by the
//     key's policy, with the conditions AWS sends, before it needs the key;
//   - TLS and DNS: every certificate covers every hostname that reaches its
//     listener or distribution (CloudFront's origin name included), is
//     validated in a zone holding its names, and that zone is delegated;
//   - routing: every jurisdiction's patients reach their jurisdiction, each
//     failover has a secondary where the catalogue allows a standby (or a
//     maintenance page where it does not), and no jurisdiction's patients
//     are ever answered by another jurisdiction's region.
//
// Nothing here calls AWS: the live re-check feeds the same analysis with
// the stacks' fields as the drivers read them. The checks are guardrail
// rules (package guardrails, rules "works-*"), blocking in prod.
package analysis

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"portal/internal/regions"
)

// Stack is what the analysis reads of a stack; guardrails.Stack and
// *blueprints.Stack have these methods. Values are string, int64, float64,
// bool, []any or map[string]any; references to other resources are
// ${ref.id.attr} (same stack) or ${xref.stack.id.attr} strings.
type Stack interface {
	StackID() string
	EnvironmentName() string
	JurisdictionID() string
	ResourceIDs() []string
	ResourceType(id string) string
	ResourceRegion(id string) string
	Lookup(id, path string) (any, bool)
}

// Rule ids, one per kind of check.
const (
	RuleNetwork = "works-network"
	RuleKeys    = "works-keys"
	RuleTLS     = "works-tls-dns"
	RuleRouting = "works-routing"
)

// Rules lists the rule ids in the order checks are reported.
func Rules() []string { return []string{RuleNetwork, RuleKeys, RuleTLS, RuleRouting} }

// Hop is one step of a path: from one thing to the next, and what lets it
// through or why it does not.
type Hop struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Via says what lets the hop through (a route, a rule, a statement).
	Via string `json:"via,omitempty"`
	OK  bool   `json:"ok"`
	// Problem and Fix say what fails and what to change, when !OK.
	Problem string `json:"problem,omitempty"`
	Fix     string `json:"fix,omitempty"`
	// Stack, Resource and Path name the blueprint resource and field to
	// change.
	Stack    string `json:"stack,omitempty"`
	Resource string `json:"resource,omitempty"`
	Path     string `json:"path,omitempty"`
}

// Check is one path or question, with its hops in order.
type Check struct {
	Rule  string `json:"rule"`
	Stack string `json:"stack"`
	Title string `json:"title"`
	Hops  []Hop  `json:"hops"`
	// Note says something the reader should know that is not a failure
	// (a parent zone outside the estate).
	Note string `json:"note,omitempty"`
}

// OK reports whether every hop of the check goes through.
func (c Check) OK() bool {
	for _, h := range c.Hops {
		if !h.OK {
			return false
		}
	}
	return true
}

// Failed returns the hops that do not go through.
func (c Check) Failed() []Hop {
	var out []Hop
	for _, h := range c.Hops {
		if !h.OK {
			out = append(out, h)
		}
	}
	return out
}

// Report is every check of an environment.
type Report struct {
	Environment string  `json:"environment"`
	Checks      []Check `json:"checks"`
	// Missing names stacks of the environment the analysis could not read
	// (checks across them are left out).
	Missing []string `json:"missing,omitempty"`
}

// For returns the checks of stack id (its own paths, keys, certificates
// and routing records), in rule order.
func (r Report) For(stack string) []Check {
	var out []Check
	for _, rule := range Rules() {
		for _, c := range r.Checks {
			if c.Stack == stack && c.Rule == rule {
				out = append(out, c)
			}
		}
	}
	return out
}

// OK reports whether every check passes.
func (r Report) OK() bool {
	for _, c := range r.Checks {
		if !c.OK() {
			return false
		}
	}
	return true
}

// Finding is a failed hop with the check it belongs to, as the guardrails
// report it.
type Finding struct {
	Rule, Stack, Resource, Path, Message string
}

// Findings returns one finding per failed hop of stack's checks for rule.
func (r Report) Findings(rule, stack string) []Finding {
	var out []Finding
	for _, c := range r.Checks {
		if c.Rule != rule || c.Stack != stack {
			continue
		}
		for _, h := range c.Failed() {
			msg := fmt.Sprintf("%s: %s -> %s fails: %s", c.Title, h.From, h.To, h.Problem)
			if h.Fix != "" {
				msg += ". Fix: " + h.Fix
			}
			f := Finding{Rule: rule, Stack: stack, Resource: h.Resource, Path: h.Path, Message: msg}
			if h.Stack != "" && h.Stack != stack {
				// the fix is in another stack of the environment
				f.Resource, f.Path = "", ""
				f.Message = fmt.Sprintf("%s (change %s of stack %s)", msg, h.Resource, h.Stack)
			}
			if !slices.ContainsFunc(out, func(o Finding) bool { return o == f }) {
				out = append(out, f)
			}
		}
	}
	return out
}

// Analyze runs every check over env: the stacks of one environment (its
// layer and jurisdiction stacks; any may be missing).
func Analyze(env string, stacks []Stack) Report {
	a := newAnalyzer(env, stacks)
	a.network()
	a.keys()
	a.tls()
	a.routing()
	return Report{Environment: env, Checks: a.checks, Missing: a.missing()}
}

// analyzer holds the stacks and the checks made so far.
type analyzer struct {
	env    string
	stacks []Stack
	byID   map[string]Stack
	checks []Check
	// records indexes the environment's records by name; names caches
	// expanded DNS names by stack and value.
	records map[string][]res
	names   map[[2]string]string
	derefs  map[[2]string]derefResult
}

func newAnalyzer(env string, stacks []Stack) *analyzer {
	a := &analyzer{env: env, byID: map[string]Stack{}}
	for _, s := range stacks {
		if s == nil {
			continue
		}
		a.stacks = append(a.stacks, s)
		a.byID[s.StackID()] = s
	}
	return a
}

func (a *analyzer) missing() []string {
	var out []string
	ids := []string{regions.LayerID(a.env)}
	for _, j := range regions.Jurisdictions() {
		ids = append(ids, regions.StackID(a.env, j.ID))
	}
	for _, id := range ids {
		if a.byID[id] == nil {
			out = append(out, id)
		}
	}
	return out
}

func (a *analyzer) layer() Stack { return a.byID[regions.LayerID(a.env)] }

// jurisdictionStacks returns the environment's jurisdiction stacks present,
// in catalogue order.
func (a *analyzer) jurisdictionStacks() []Stack {
	var out []Stack
	for _, j := range regions.Jurisdictions() {
		if s := a.byID[regions.StackID(a.env, j.ID)]; s != nil {
			out = append(out, s)
		}
	}
	return out
}

// res is one resource of one stack.
type res struct {
	st Stack
	id string
}

func (r res) ok() bool { return r.st != nil && r.id != "" && r.st.ResourceType(r.id) != "" }

func (r res) typ() string {
	if r.st == nil {
		return ""
	}
	return r.st.ResourceType(r.id)
}

func (r res) region() string { return r.st.ResourceRegion(r.id) }

func (r res) get(path string) any {
	v, _ := r.st.Lookup(r.id, path)
	return v
}

func (r res) str(path string) string {
	s, _ := r.get(path).(string)
	return s
}

func (r res) boolean(path string) bool {
	b, _ := r.get(path).(bool)
	return b
}

func (r res) num(path string) int64 {
	switch v := r.get(path).(type) {
	case int64:
		return v
	case float64:
		return int64(v)
	case int:
		return int64(v)
	}
	return 0
}

func (r res) list(path string) []any {
	l, _ := r.get(path).([]any)
	return l
}

func (r res) strs(path string) []string {
	var out []string
	for _, v := range r.list(path) {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// name says the resource for a reader: "alb (prod-eu, eu-central-1)".
func (r res) name() string {
	if r.st == nil {
		return r.id
	}
	if reg := r.region(); reg != "" {
		return fmt.Sprintf("%s (%s, %s)", r.id, r.st.StackID(), reg)
	}
	return fmt.Sprintf("%s (%s)", r.id, r.st.StackID())
}

// ofType returns the resources of the given types in s, in order.
func ofType(s Stack, types ...string) []res {
	var out []res
	for _, id := range s.ResourceIDs() {
		if slices.Contains(types, s.ResourceType(id)) {
			out = append(out, res{s, id})
		}
	}
	return out
}

var (
	refRe      = regexp.MustCompile(`^\$\{(?:ref\.([a-z][a-z0-9_]*)|xref\.([a-z0-9-]+)\.([a-z][a-z0-9_]*))\.([a-z][a-z0-9_]*)\}$`)
	refInRe    = regexp.MustCompile(`\$\{(?:ref\.([a-z][a-z0-9_]*)|xref\.([a-z0-9-]+)\.([a-z][a-z0-9_]*))\.([a-z][a-z0-9_]*)\}`)
	accountRe  = regexp.MustCompile(`\$\{stack\.account\}`)
	accountTok = "${account}"
)

// deref returns the resource a value that is exactly one reference names,
// from the stack the value was written in, and the attribute.
func (a *analyzer) deref(from Stack, v any) (res, string, bool) {
	s, ok := v.(string)
	if !ok || !strings.Contains(s, "${") {
		return res{}, "", false
	}
	key := [2]string{from.StackID(), s}
	if d, ok := a.derefs[key]; ok {
		return d.r, d.attr, d.ok
	}
	r, attr, ok := a.derefUncached(from, s)
	if a.derefs == nil {
		a.derefs = map[[2]string]derefResult{}
	}
	a.derefs[key] = derefResult{r, attr, ok}
	return r, attr, ok
}

type derefResult struct {
	r    res
	attr string
	ok   bool
}

func (a *analyzer) derefUncached(from Stack, s string) (res, string, bool) {
	m := refRe.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return res{}, "", false
	}
	if m[1] != "" {
		return res{from, m[1]}, m[4], true
	}
	st := a.byID[m[2]]
	if st == nil {
		return res{st: nil, id: m[2] + ":" + m[3]}, m[4], true
	}
	return res{st, m[3]}, m[4], true
}

// target returns the resource v refers to, if it is in a stack the
// analysis reads.
func (a *analyzer) target(from Stack, v any) (res, bool) {
	r, _, ok := a.deref(from, v)
	return r, ok && r.ok()
}

// canon rewrites every reference in s to the ${xref.stack.id.attr} form
// and the account to one token, so values written in different stacks (or
// read back from AWS) compare equal when they name the same thing.
func canon(from Stack, s string) string {
	s = refInRe.ReplaceAllStringFunc(s, func(m string) string {
		p := refInRe.FindStringSubmatch(m)
		if p[1] != "" {
			return "${xref." + from.StackID() + "." + p[1] + "." + p[4] + "}"
		}
		return m
	})
	return accountRe.ReplaceAllLiteralString(s, accountTok)
}

// dnsName expands the names in v (a hostname possibly holding references
// to zones and records, whose name is their name field) and normalises it.
func (a *analyzer) dnsName(from Stack, v string) string {
	key := [2]string{from.StackID(), v}
	if n, ok := a.names[key]; ok {
		return n
	}
	if a.names == nil {
		a.names = map[[2]string]string{}
	}
	a.names[key] = v // a name that refers to itself expands no further
	n := a.expandName(from, v)
	a.names[key] = n
	return n
}

func (a *analyzer) expandName(from Stack, v string) string {
	for range 8 { // names nest: a record's name refers to a zone's
		changed := false
		v = refInRe.ReplaceAllStringFunc(v, func(m string) string {
			r, attr, ok := a.deref(from, m)
			if !ok || !r.ok() || (attr != "name" && attr != "fqdn") {
				return m
			}
			switch r.typ() {
			case "route53_zone", "route53_record":
				changed = true
				n := r.str("name")
				if strings.Contains(n, "${") {
					return a.dnsName(r.st, n)
				}
				return n
			}
			return m
		})
		if !changed {
			break
		}
	}
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(v)), ".")
}

// covers reports whether certificate name pattern (possibly a wildcard
// "*.example.com", which matches one label) covers host.
func covers(pattern, host string) bool {
	pattern, host = strings.ToLower(strings.TrimSuffix(pattern, ".")), strings.ToLower(strings.TrimSuffix(host, "."))
	if pattern == host {
		return true
	}
	if rest, ok := strings.CutPrefix(pattern, "*."); ok {
		label, parent, found := strings.Cut(host, ".")
		return found && label != "" && parent == rest
	}
	return false
}

// within reports whether host is zone or a name under it.
func within(host, zone string) bool {
	host, zone = strings.TrimSuffix(strings.ToLower(host), "."), strings.TrimSuffix(strings.ToLower(zone), ".")
	return host == zone || strings.HasSuffix(host, "."+zone)
}

// dependsOn reports whether r (transitively) depends on target: through a
// reference in its fields or depends_on, as the engine orders them.
func (a *analyzer) dependsOn(r res, target res) bool {
	seen := map[string]bool{}
	var walk func(x res) bool
	walk = func(x res) bool {
		key := x.st.StackID() + ":" + x.id
		if seen[key] {
			return false
		}
		seen[key] = true
		for _, d := range a.deps(x) {
			if d.st == target.st && d.id == target.id {
				return true
			}
			if d.st == x.st && walk(d) {
				return true
			}
		}
		return false
	}
	return walk(r)
}

// deps returns the resources of r's stack that r refers to or depends on.
func (a *analyzer) deps(r res) []res {
	var out []res
	var visit func(v any)
	visit = func(v any) {
		switch x := v.(type) {
		case string:
			for _, m := range refInRe.FindAllString(x, -1) {
				if d, _, ok := a.deref(r.st, m); ok && d.st == r.st {
					out = append(out, d)
				}
			}
		case []any:
			for _, e := range x {
				visit(e)
			}
		case map[string]any:
			for _, e := range x {
				visit(e)
			}
		}
	}
	fields, _ := r.st.Lookup(r.id, "")
	visit(fields)
	if dl, ok := r.st.(interface{ DependsOnOf(id string) []string }); ok {
		for _, d := range dl.DependsOnOf(r.id) {
			out = append(out, res{r.st, d})
		}
	}
	return out
}

func (a *analyzer) add(c Check) { a.checks = append(a.checks, c) }

func pass(from, to, via string) Hop { return Hop{From: from, To: to, Via: via, OK: true} }

func fail(from, to string, at res, path, problem, fix string) Hop {
	h := Hop{From: from, To: to, Problem: problem, Fix: fix, Resource: at.id, Path: path}
	if at.st != nil {
		h.Stack = at.st.StackID()
	}
	return h
}
