package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"portal/internal/blueprints"
	"portal/internal/guardrails"
)

// Action is what a plan does with one resource.
type Action string

// The actions of a plan.
const (
	Create  Action = "create"
	Update  Action = "update"
	Replace Action = "replace"
	Delete  Action = "delete"
	NoOp    Action = "no-op"
	Read    Action = "read"
)

// Change is the plan for one resource.
type Change struct {
	ID         string        `json:"id"`
	Type       string        `json:"type"`
	Region     string        `json:"region"`
	Action     Action        `json:"action"`
	Fields     []FieldChange `json:"fields,omitempty"`
	PhysicalID string        `json:"physical_id,omitempty"`
	DependsOn  []string      `json:"depends_on,omitempty"`
	DataClass  string        `json:"data_class,omitempty"`
	File       string        `json:"file,omitempty"`
	Line       int           `json:"line,omitempty"`
	// Waits lists the other stacks' resources ("stack:id") this one refers
	// to that do not exist yet: the apply leaves it for a later apply of
	// this stack, once those stacks are applied.
	Waits []string `json:"waits,omitempty"`
	// Problem, when set, blocks the apply: the plan cannot be carried out
	// as it stands (a name taken by a resource the portal does not own,
	// deletion protection on a resource to delete, a read that failed).
	Problem string `json:"problem,omitempty"`
	// Note explains the action in a few words.
	Note string `json:"note,omitempty"`

	// live is the resource's fields as AWS reports them, for the live
	// re-check of "will it work" (not stored).
	live map[string]any
}

// PatientData reports whether the change touches a store of patient data.
func (c Change) PatientData() bool { return c.DataClass == "patient" }

// GuardrailResult is one guardrail finding carried by a plan.
type GuardrailResult struct {
	Rule     string `json:"rule"`
	Severity string `json:"severity"`
	Status   string `json:"status"`
	Resource string `json:"resource,omitempty"`
	Message  string `json:"message"`
	Citation string `json:"citation"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
}

// Plan is a reviewed difference between a stack's blueprint and AWS.
type Plan struct {
	ID               int64     `json:"id"`
	Stack            StackInfo `json:"stack"`
	Kind             string    `json:"kind"` // "apply" or "destroy"
	BlueprintVersion string    `json:"blueprint_version"`
	Changes          []Change  `json:"changes"`
	// Resources are the resolved blueprint resources the plan was made
	// from, so a stored plan is applied exactly as reviewed.
	Resources  []blueprints.Resource `json:"resources"`
	Guardrails []GuardrailResult     `json:"guardrails"`
	// Works answers "will it work?" for the stack from its resolved
	// blueprint and its environment's (package analysis); WorksLive from
	// the stack as AWS reports it now, once every resource exists.
	Works     *WorksSection `json:"works,omitempty"`
	WorksLive *WorksSection `json:"works_live,omitempty"`
	Hash      string        `json:"hash"`
	Calls     int           `json:"calls"`
	CreatedBy string        `json:"created_by"`
	CreatedAt time.Time     `json:"created_at"`
	Took      time.Duration `json:"took"`
}

// Counts returns how many changes each action has.
func (p *Plan) Counts() map[Action]int {
	out := map[Action]int{}
	for _, c := range p.Changes {
		out[c.Action]++
	}
	return out
}

// HasChanges reports whether applying the plan would change anything.
func (p *Plan) HasChanges() bool {
	for _, c := range p.Changes {
		if c.Action != NoOp && c.Action != Read {
			return true
		}
	}
	return false
}

// Blocking lists the reasons the plan cannot be applied: blocking
// guardrail failures and per-resource problems.
func (p *Plan) Blocking() []string {
	var out []string
	for _, g := range p.Guardrails {
		if g.Severity == string(guardrails.Blocking) && g.Status == string(guardrails.Fail) {
			out = append(out, fmt.Sprintf("guardrail %s (%s): %s", g.Rule, g.Citation, g.Message))
		}
	}
	for _, c := range p.Changes {
		if c.Problem != "" {
			out = append(out, fmt.Sprintf("%s: %s", c.ID, c.Problem))
		}
	}
	return out
}

// hash is the content hash of what the plan would do: the same changes
// against the same blueprint version always hash the same.
func (p *Plan) hash() string {
	type hashed struct {
		Stack, Kind, Version string
		Changes              []Change
	}
	b, _ := json.Marshal(hashed{p.Stack.ID, p.Kind, p.Stack.Version, p.Changes})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Target is a stack to plan: its resolved blueprint, where it lives and the
// guardrail exceptions in force.
type Target struct {
	Stack            *blueprints.Stack
	Info             StackInfo
	BlueprintVersion string
	Exceptions       []guardrails.Exception
}

// node is a resource of the graph as the engine walks it.
type node struct {
	res    blueprints.Resource
	driver Driver
}

func (e *Engine) nodes(s *blueprints.Stack) (map[string]*node, []string, error) {
	nodes := map[string]*node{}
	var missing []string
	for _, r := range s.Resources {
		d, ok := e.reg.Driver(r.Type)
		if !ok {
			missing = append(missing, fmt.Sprintf("%s (%s)", r.ID, r.Type))
			continue
		}
		nodes[r.ID] = &node{res: r, driver: d}
	}
	if len(missing) > 0 {
		return nil, nil, fmt.Errorf("engine: no driver for %s", strings.Join(missing, ", "))
	}
	return nodes, s.TopologicalOrder(), nil
}

func (e *Engine) tags(info StackInfo, id string) map[string]string {
	return map[string]string{TagStack: info.ID, TagResource: id, TagVersion: info.Version, TagManaged: "portal"}
}

// desired resolves a node's fields against the known outputs.
func (e *Engine) desired(info StackInfo, n *node, out Outputs) (*Desired, error) {
	f, err := resolveRefs(n.res.Fields, out)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.res.ID, err)
	}
	fields, _ := withAccount(f, info.AccountID).(map[string]any)
	return &Desired{ID: n.res.ID, Type: n.res.Type, Region: n.res.Region, Fields: fields, Tags: e.tags(info, n.res.ID)}, nil
}

// Plan computes what applying t would change, reading live state from AWS
// (in dependency order, in parallel where possible).
func (e *Engine) Plan(ctx context.Context, t Target, kind string) (*Plan, error) {
	start := e.now()
	nodes, order, err := e.nodes(t.Stack)
	if err != nil {
		return nil, err
	}
	prior, err := e.loadState(ctx, t.Info.ID)
	if err != nil {
		return nil, err
	}
	rec := newRecorder()
	env, err := e.newEnv(t.Info, rec, func(string, ...any) {})
	if err != nil {
		return nil, err
	}
	p := &Plan{Stack: t.Info, Kind: kind, BlueprintVersion: t.BlueprintVersion, CreatedAt: start, Resources: t.Stack.Resources}
	var mu sync.Mutex
	outputs, err := e.external(ctx, t.Stack)
	if err != nil {
		return nil, err
	}
	changes := map[string]Change{}
	waits := map[string][]string{}
	for id, n := range nodes {
		waits[id] = n.res.DependsOn
	}
	results := walk(ctx, order, waits, e.Parallelism, nil, func(ctx context.Context, id string) error {
		n := nodes[id]
		mu.Lock()
		d, err := e.desired(t.Info, n, outputs)
		mu.Unlock()
		if err != nil {
			return err
		}
		ch, out, err := e.planOne(withResource(ctx, id), env, n, d, prior[id], kind)
		if err != nil {
			return err
		}
		mu.Lock()
		w := crossWaits(n.res, outputs)
		mu.Unlock()
		if len(w) > 0 && kind == "apply" {
			ch.Waits = w
			note := "waits for " + describeWaits(w) + ": applied by a later apply of this stack, once they exist"
			if ch.Note != "" {
				note = ch.Note + "; " + note
			}
			ch.Note = note
		}
		mu.Lock()
		changes[id] = ch
		if out != nil {
			outputs[id] = out
		}
		mu.Unlock()
		return nil
	})
	var failures []string
	for _, id := range order {
		if err := results[id]; err != nil && !errors.Is(err, ErrSkipped) {
			failures = append(failures, fmt.Sprintf("%s: %s", id, Explain(err)))
		}
	}
	if len(failures) > 0 {
		return nil, fmt.Errorf("engine: plan %s: could not read %d resource(s): %s", t.Info.ID, len(failures), strings.Join(failures, "; "))
	}
	for _, id := range order {
		p.Changes = append(p.Changes, changes[id])
	}
	// Resources the portal recorded that the blueprint no longer has.
	var gone []string
	for id := range prior {
		if _, ok := nodes[id]; !ok {
			gone = append(gone, id)
		}
	}
	sort.Strings(gone)
	for _, id := range gone {
		st := prior[id]
		p.Changes = append(p.Changes, Change{ID: id, Type: st.Type, Region: st.Region, Action: Delete, PhysicalID: st.PhysicalID,
			Note: "no longer in the blueprint"})
	}
	if kind == "destroy" {
		// Deletions run dependants first: list them in that order.
		for i, j := 0, len(p.Changes)-1; i < j; i, j = i+1, j-1 {
			p.Changes[i], p.Changes[j] = p.Changes[j], p.Changes[i]
		}
	}
	if kind == "apply" {
		p.Works = worksSection(guardrails.Works(t.Stack), t.Stack.ID, "")
		p.WorksLive = e.liveWorks(t, changes, outputs)
		rep := guardrails.Evaluate(t.Stack, t.Exceptions, e.now())
		for _, r := range rep.Results {
			p.Guardrails = append(p.Guardrails, GuardrailResult{Rule: r.RuleID, Severity: string(r.Severity), Status: string(r.Status),
				Resource: r.Resource, Message: r.Message, Citation: r.Citation, File: r.File, Line: r.Line})
		}
	}
	p.Calls = rec.Calls()
	p.Hash = p.hash()
	p.Took = e.now().Sub(start)
	return p, nil
}

// external returns the recorded outputs of the other stacks' resources s
// refers to, keyed "stack:id"; a resource not recorded is absent.
func (e *Engine) external(ctx context.Context, s *blueprints.Stack) (Outputs, error) {
	out := Outputs{}
	byStack := map[string]bool{}
	for _, r := range s.Resources {
		for _, c := range r.Cross {
			st, _, _ := strings.Cut(c, ":")
			byStack[st] = true
		}
	}
	for st := range byStack {
		rows, err := e.loadState(ctx, st)
		if err != nil {
			return nil, err
		}
		for id, r := range rows {
			out[st+":"+id] = r.Outputs
		}
	}
	return out, nil
}

// crossWaits lists the cross-stack references of r that have no outputs yet.
func crossWaits(r blueprints.Resource, out Outputs) []string {
	var w []string
	for _, c := range r.Cross {
		if _, ok := out[c]; !ok {
			w = append(w, c)
		}
	}
	return w
}

// describeWaits says "prod-eu's origin, prod-us's origin".
func describeWaits(w []string) string {
	out := make([]string, len(w))
	for i, c := range w {
		st, id, _ := strings.Cut(c, ":")
		out[i] = st + "'s " + id
	}
	return strings.Join(out, ", ")
}

// planOne decides what to do with one resource and returns the outputs it
// will have (nil when only known after apply).
func (e *Engine) planOne(ctx context.Context, env *Env, n *node, d *Desired, st *stateRow, kind string) (res Change, outputs map[string]string, err error) {
	ch := Change{ID: n.res.ID, Type: n.res.Type, Region: n.res.Region, DependsOn: n.res.DependsOn, File: n.res.Pos.File, Line: n.res.Pos.Line}
	ch.DataClass, _ = n.res.Fields["data_class"].(string)
	var pr *Prior
	if st != nil {
		pr = &Prior{PhysicalID: st.PhysicalID, Region: st.Region, Outputs: st.Outputs}
	}
	if _, ok := n.driver.(DataSource); ok && IsUnknown(d.Fields) {
		// A look-up that depends on something not created yet is made
		// during the apply, once its inputs exist.
		ch.Action, ch.Note = Read, "looked up during the apply: its inputs are known only then"
		return ch, nil, nil
	}
	var live *Live
	defer func() {
		if live != nil && err == nil {
			res.live = live.Fields
		}
	}()
	live, err = n.driver.Read(ctx, env, d, pr)
	if errors.Is(err, ErrNotFound) && pr != nil {
		// The recorded resource is gone (deleted behind the portal's back);
		// look again by name and tags before deciding to create it.
		live, err = n.driver.Read(ctx, env, d, nil)
	}
	notFound := errors.Is(err, ErrNotFound)
	if err != nil && !notFound {
		return ch, nil, fmt.Errorf("read: %w", err)
	}
	if nt, ok := n.driver.(Noter); ok {
		defer func() {
			if note := nt.PlanNote(d, live); note != "" && err == nil {
				if res.Note != "" {
					note = res.Note + "; " + note
				}
				res.Note = note
			}
		}()
	}
	if _, ok := n.driver.(DataSource); ok {
		if notFound {
			ch.Action, ch.Problem = Read, "nothing matches: "+Display(d.Fields)
			return ch, nil, nil
		}
		ch.Action, ch.PhysicalID = Read, live.PhysicalID
		return ch, live.Outputs, nil
	}
	if kind == "destroy" {
		switch {
		case notFound:
			ch.Action, ch.Note = NoOp, "does not exist"
		case !live.OwnedBy(env.Stack.ID):
			ch.Action, ch.PhysicalID, ch.Note = NoOp, live.PhysicalID, "not owned by the portal: left alone"
		default:
			ch.Action, ch.PhysicalID = Delete, live.PhysicalID
			if live.DeletionProtected {
				ch.Problem = "deletion protection is on; turn it off in the blueprint and apply first"
			}
		}
		if live != nil {
			return ch, live.Outputs, nil
		}
		return ch, nil, nil
	}
	if notFound {
		ch.Action = Create
		for _, k := range sortedFieldKeys(d.Fields) {
			ch.Fields = append(ch.Fields, FieldChange{Path: k, After: d.Fields[k]})
		}
		return ch, nil, nil
	}
	ch.PhysicalID = live.PhysicalID
	if !live.OwnedBy(env.Stack.ID) {
		ch.Action = Update
		ch.Problem = fmt.Sprintf("%s already exists and is not owned by the portal (no %s=%s tag); rename it in the blueprint or tag it to adopt it", live.PhysicalID, TagStack, env.Stack.ID)
		return ch, live.Outputs, nil
	}
	if live.Region != "" && d.Region != "" && live.Region != d.Region {
		ch.Action = Replace
		ch.Fields = []FieldChange{{Path: "region", Before: live.Region, After: d.Region, Replace: true}}
		return ch, nil, nil
	}
	ch.Fields = Diff(d, live, n.driver.ForceNew())
	switch {
	case len(ch.Fields) == 0:
		ch.Action = NoOp
		switch {
		case live.Note != "":
			ch.Note = live.Note
		case st == nil:
			ch.Note = "found by its ownership tags; adopted"
		}
	case anyReplace(ch.Fields):
		ch.Action = Replace
		return ch, nil, nil
	default:
		ch.Action = Update
	}
	return ch, live.Outputs, nil
}

func anyReplace(cs []FieldChange) bool {
	for _, c := range cs {
		if c.Replace {
			return true
		}
	}
	return false
}

func sortedFieldKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
