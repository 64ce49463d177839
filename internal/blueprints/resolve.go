package blueprints

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"portal/internal/guardrails"
	"portal/internal/regions"
)

// Set is a loaded group of blueprint files: at most one architecture, any
// number of stack parameter files, and at most one layer architecture with
// its environments' parameter files.
type Set struct {
	// Architecture is the architecture file, or nil if none was loaded.
	Architecture *File
	// Stacks are the stack files in catalogue order (dev, test, prod; us, eu, apac).
	Stacks []*File
	// Layer is the environment layer's architecture, or nil.
	Layer *File
	// Environments are the layer's parameter files, in promotion order.
	Environments []*File
}

// Files returns every file of the set, architecture first.
func (s *Set) Files() []*File {
	var out []*File
	if s.Architecture != nil {
		out = append(out, s.Architecture)
	}
	out = append(out, s.Stacks...)
	if s.Layer != nil {
		out = append(out, s.Layer)
	}
	return append(out, s.Environments...)
}

// LayerIDs returns the ids of the set's environment layers (prod-global...)
// in promotion order.
func (s *Set) LayerIDs() []string {
	var ids []string
	for _, f := range s.Environments {
		ids = append(ids, f.Params.Stack)
	}
	return ids
}

// StackIDs returns the ids of the set's stack files in catalogue order.
func (s *Set) StackIDs() []string {
	var ids []string
	for _, f := range s.Stacks {
		ids = append(ids, f.Params.Stack)
	}
	return ids
}

// Version is the content-addressed version id of the whole set: Digest(s.Files()).
func (s *Set) Version() string { return Digest(s.Files()) }

// LoadDir loads every *.yaml and *.yml file under dir, recursively.
func LoadDir(dir string) (*Set, []Diagnostic) { return Load(dir) }

// Load parses the given files and directories (directories recursively, only
// *.yaml and *.yml) and returns the set with every diagnostic: file-level ones
// and, when an architecture is present, those found by resolving each stack.
// A diagnostic with SeverityError means the set must not be deployed.
func Load(paths ...string) (*Set, []Diagnostic) {
	var ds []Diagnostic
	var names []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			ds = append(ds, diag(Position{File: p}, "", "%v", err))
			continue
		}
		if !info.IsDir() {
			names = append(names, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if ext := filepath.Ext(path); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
				names = append(names, path)
			}
			return nil
		})
		if err != nil {
			ds = append(ds, diag(Position{File: p}, "", "%v", err))
		}
	}
	var files []*File
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			ds = append(ds, diag(Position{File: n}, "", "%v", err))
			continue
		}
		f, fds := Parse(n, data)
		ds = append(ds, fds...)
		if f != nil {
			files = append(files, f)
		}
	}
	set, sds := NewSet(files)
	ds = append(ds, sds...)
	if set.Architecture != nil && !set.Architecture.hasErrors {
		for _, f := range set.Stacks {
			if !f.hasErrors {
				_, rds := set.Resolve(f.Params.Stack)
				ds = append(ds, rds...)
			}
		}
	}
	if set.Layer != nil && !set.Layer.hasErrors {
		for _, f := range set.Environments {
			if !f.hasErrors {
				_, rds := set.Resolve(f.Params.Stack)
				ds = append(ds, rds...)
			}
		}
	}
	return set, sortDiagnostics(ds)
}

// NewSet groups parsed files, reporting a second architecture or a stack
// given twice.
func NewSet(files []*File) (*Set, []Diagnostic) {
	s := &Set{}
	var ds []Diagnostic
	seen := map[string]*File{}
	for _, f := range files {
		switch f.Kind {
		case KindArchitecture:
			if s.Architecture != nil {
				ds = append(ds, diag(f.root.pos, "", "second architecture file (first is %s)", s.Architecture.Name))
				continue
			}
			s.Architecture = f
		case KindStack:
			if o := seen[f.Params.Stack]; o != nil {
				ds = append(ds, diag(f.root.pos, "stack", "stack %q is also defined in %s", f.Params.Stack, o.Name))
				continue
			}
			seen[f.Params.Stack] = f
			s.Stacks = append(s.Stacks, f)
		case KindLayer:
			if s.Layer != nil {
				ds = append(ds, diag(f.root.pos, "", "second layer file (first is %s)", s.Layer.Name))
				continue
			}
			s.Layer = f
		case KindEnvironment:
			if o := seen[f.Params.Stack]; o != nil && f.Params.Stack != "" {
				ds = append(ds, diag(f.root.pos, "environment", "environment %q is also defined in %s", f.Params.Environment, o.Name))
				continue
			}
			seen[f.Params.Stack] = f
			s.Environments = append(s.Environments, f)
		}
	}
	slices.SortStableFunc(s.Environments, func(a, b *File) int {
		return cmp.Compare(slices.Index(regions.EnvironmentNames(), a.Params.Environment), slices.Index(regions.EnvironmentNames(), b.Params.Environment))
	})
	order := map[string]int{}
	i := 0
	for _, e := range regions.EnvironmentNames() {
		for _, j := range regions.Jurisdictions() {
			order[regions.StackID(e, j.ID)] = i
			i++
		}
	}
	slices.SortStableFunc(s.Stacks, func(a, b *File) int {
		oa, ok1 := order[a.Params.Stack]
		ob, ok2 := order[b.Params.Stack]
		if !ok1 || !ok2 {
			return cmp.Compare(a.Name, b.Name)
		}
		return cmp.Compare(oa, ob)
	})
	return s, ds
}

// Stack is the architecture resolved with one stack's parameters: every
// ${param.x} and ${stack.x} replaced by its concrete value. ${ref.id.attr}
// expressions stay in string values: they name values only known once the
// referenced resource exists, and each appears in DependsOn.
type Stack struct {
	ID, Environment, Jurisdiction, Region string
	// Version is Digest of the architecture file and this stack's file.
	Version string
	// Resources are in architecture order, which is not necessarily
	// dependency order: walk DependsOn (see TopologicalOrder).
	Resources []Resource

	// env holds the stacks of the same environment (s among them), set by
	// Link, for the checks that follow paths across stacks.
	env *envGroup

	// idx maps resource ids to positions in Resources, built on first
	// lookup; nil in a Stack written as a literal (lookups then scan).
	// Resources must not change once lookups have begun.
	idx *stackIndex
}

type stackIndex struct {
	once sync.Once
	pos  map[string]int
}

// NewStack returns a stack whose resource lookups are indexed: use it to
// rebuild a stack from stored resources.
func NewStack(id, environment, jurisdiction, region, version string, resources []Resource) *Stack {
	return &Stack{ID: id, Environment: environment, Jurisdiction: jurisdiction, Region: region, Version: version,
		Resources: resources, idx: &stackIndex{}}
}

// Resource is one resolved resource.
type Resource struct {
	ID, Type string
	// Region is the resource's region field, or the stack's region.
	Region string
	// Fields holds the concrete value of every field except type and
	// depends_on, as string, int64, float64, bool, []any or map[string]any.
	Fields map[string]any
	// Positions maps a field path ("kms_key", "replication.destination_bucket",
	// "statements[0].actions[1]") to where its value was written, which is
	// the stack file for values taken from parameters.
	Positions map[string]Position
	// DependsOn are the ids of the resources this one refers to, sorted.
	DependsOn []string
	// Cross are the resources of other stacks this one refers to, as
	// "<stack>:<id>" (prod-global:zone), sorted: the engine reads their
	// recorded outputs and orders the stacks' runs by them.
	Cross []string
	// Pos is where the resource is declared in the architecture.
	Pos Position
}

// Resource returns the resource with the given id.
func (s *Stack) Resource(id string) (*Resource, bool) {
	if s.idx != nil {
		s.idx.once.Do(func() {
			s.idx.pos = make(map[string]int, len(s.Resources))
			for i := range s.Resources {
				s.idx.pos[s.Resources[i].ID] = i
			}
		})
		if i, ok := s.idx.pos[id]; ok {
			return &s.Resources[i], true
		}
		return nil, false
	}
	for i := range s.Resources {
		if s.Resources[i].ID == id {
			return &s.Resources[i], true
		}
	}
	return nil, false
}

// TopologicalOrder returns resource ids so that every resource comes after
// the resources it depends on; ties keep architecture order.
func (s *Stack) TopologicalOrder() []string {
	done := map[string]bool{}
	var out []string
	for len(out) < len(s.Resources) {
		progressed := false
		for _, r := range s.Resources {
			if done[r.ID] {
				continue
			}
			ready := true
			for _, d := range r.DependsOn {
				if !done[d] {
					ready = false
					break
				}
			}
			if ready {
				done[r.ID] = true
				out = append(out, r.ID)
				progressed = true
			}
		}
		if !progressed { // cannot happen for a resolved stack: cycles are errors
			break
		}
	}
	return out
}

// Get returns the value at a field path such as "replication.destination_bucket"
// or "statements[0].actions".
func (r *Resource) Get(path string) (any, bool) {
	var cur any = r.Fields
	for _, tok := range splitPath(path) {
		switch x := cur.(type) {
		case map[string]any:
			v, ok := x[tok]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			cur = x[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

func splitPath(path string) []string {
	path = strings.ReplaceAll(path, "[", ".")
	path = strings.ReplaceAll(path, "]", "")
	return strings.FieldsFunc(path, func(r rune) bool { return r == '.' })
}

// Position returns where the value at path was written, or where the
// resource is declared if the path has no value.
func (r *Resource) Position(path string) Position {
	if p, ok := r.Positions[path]; ok {
		return p
	}
	return r.Pos
}

// ParseRef splits a string that is exactly one reference, "${ref.id.attr}"
// optionally followed by a suffix such as "/*", into id and attr.
func ParseRef(s string) (id, attr string, ok bool) {
	if !strings.HasPrefix(s, "${ref.") {
		return "", "", false
	}
	end := strings.IndexByte(s, '}')
	if end < 0 {
		return "", "", false
	}
	m := refExprRE.FindStringSubmatch(s[2:end])
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// Methods used by guardrails (which cannot import this package).

// StackID returns s.ID.
func (s *Stack) StackID() string { return s.ID }

// EnvironmentName returns s.Environment.
func (s *Stack) EnvironmentName() string { return s.Environment }

// JurisdictionID returns s.Jurisdiction.
func (s *Stack) JurisdictionID() string { return s.Jurisdiction }

// ResourceIDs returns the resource ids in architecture order.
func (s *Stack) ResourceIDs() []string {
	ids := make([]string, len(s.Resources))
	for i, r := range s.Resources {
		ids[i] = r.ID
	}
	return ids
}

// ResourceType returns the type of resource id, or "" if there is none.
func (s *Stack) ResourceType(id string) string {
	if r, ok := s.Resource(id); ok {
		return r.Type
	}
	return ""
}

// ResourceRegion returns the region of resource id, or "" if there is none.
func (s *Stack) ResourceRegion(id string) string {
	if r, ok := s.Resource(id); ok {
		return r.Region
	}
	return ""
}

// Lookup returns the value at path of resource id.
func (s *Stack) Lookup(id, path string) (any, bool) {
	if r, ok := s.Resource(id); ok {
		return r.Get(path)
	}
	return nil, false
}

// Link tells each stack the others of its environment (its layer and
// jurisdiction stacks), so the guardrails that follow a patient's request
// or a certificate's names across stacks can read them.
func Link(stacks []*Stack) {
	byEnv := map[string][]*Stack{}
	for _, s := range stacks {
		if s != nil {
			byEnv[s.Environment] = append(byEnv[s.Environment], s)
		}
	}
	for _, ss := range byEnv {
		g := &envGroup{stacks: ss}
		for _, s := range ss {
			s.env = g
		}
	}
}

// envGroup is the stacks of one environment, linked, with what has been
// computed from them once.
type envGroup struct {
	stacks []*Stack
	mu     sync.Mutex
	cache  map[string]any
}

// EnvironmentStacks returns the stacks Link gave s (s among them), or s
// alone.
func (s *Stack) EnvironmentStacks() []guardrails.Stack {
	if s.env == nil {
		return []guardrails.Stack{s}
	}
	out := make([]guardrails.Stack, len(s.env.stacks))
	for i, e := range s.env.stacks {
		out[i] = e
	}
	return out
}

// EnvironmentCache returns the value computed under key for s's linked
// environment, computing it once (stacks do not change once resolved);
// for a stack not linked it always computes.
func (s *Stack) EnvironmentCache(key string, compute func() any) any {
	if s.env == nil {
		return compute()
	}
	g := s.env
	g.mu.Lock()
	defer g.mu.Unlock()
	if v, ok := g.cache[key]; ok {
		return v
	}
	if g.cache == nil {
		g.cache = map[string]any{}
	}
	v := compute()
	g.cache[key] = v
	return v
}

// DependsOnOf returns the resources resource id refers to or depends on.
func (s *Stack) DependsOnOf(id string) []string {
	if r, ok := s.Resource(id); ok {
		return r.DependsOn
	}
	return nil
}

// PositionOf returns where the value at path of resource id was written.
func (s *Stack) PositionOf(id, path string) (file string, line, column int) {
	if r, ok := s.Resource(id); ok {
		p := r.Position(path)
		return p.File, p.Line, p.Column
	}
	return "", 0, 0
}

// Resolve merges the architecture with the parameters of stack id (a
// jurisdiction stack such as prod-eu, or an environment layer such as
// prod-global). It returns nil and diagnostics if the stack cannot be
// resolved cleanly.
func (s *Set) Resolve(id string) (*Stack, []Diagnostic) {
	arch, pf, ds := s.filesOf(id)
	if ds != nil {
		return nil, ds
	}
	p := pf.Params
	st := &Stack{ID: p.Stack, Environment: p.Environment, Jurisdiction: p.Jurisdiction, Region: p.Region,
		Version: Digest([]*File{arch, pf}), idx: &stackIndex{}}
	sch, err := schemas()
	if err != nil {
		return nil, []Diagnostic{{Message: err.Error()}}
	}
	rules := nameRules()
	names := map[string]map[string]*val{}
	disabled := disabledIn(arch, p, &ds)
	for _, spec := range arch.Architecture.Resources {
		if disabled[spec.ID] {
			continue
		}
		for _, dep := range spec.DependsOn {
			if disabled[dep] {
				ds = append(ds, diag(spec.Pos, "resources."+spec.ID, "%s refers to %s, which is not enabled in stack %s: enable it or disable %s too", spec.ID, dep, p.Stack, spec.ID))
			}
		}
		body := resolveVal(spec.body, p, &ds)
		if rs, ok := sch.byType[spec.Type]; ok {
			ds = append(ds, schemaDiagnostics(rs, body)...)
		}
		m := body.mapping()
		if rule, ok := rules[spec.Type]; ok {
			if nv := m.get(rule.field); nv != nil {
				ds = append(ds, checkName(rule, nv)...)
				key := spec.Type
				if key == "rds_read_replica" {
					key = "rds_instance"
				}
				if names[key] == nil {
					names[key] = map[string]*val{}
				}
				if o, dup := names[key][nv.str()]; dup && nv.str() != "" {
					ds = append(ds, diag(nv.pos, nv.path, "%s %q is already used by %s (%s)", rule.field, nv.str(), o.path, o.pos))
				} else {
					names[key][nv.str()] = nv
				}
			}
		}
		switch spec.Type {
		case "ami":
			ds = append(ds, checkAMI(m.get("image"))...)
		case "vpc":
			region := p.Region
			if r := m.get("region").str(); r != "" {
				region = r
			}
			ds = append(ds, checkNetwork(m.get("cidr"), m.get("subnets"), region)...)
		case "autoscaling_group":
			ds = append(ds, checkCapacity(m.get("min"), m.get("desired"), m.get("max"))...)
		}
		r := Resource{ID: spec.ID, Type: spec.Type, Region: p.Region, Fields: map[string]any{},
			Positions: map[string]Position{}, DependsOn: slices.Clone(spec.DependsOn), Pos: spec.Pos}
		if m != nil {
			for _, k := range m.keys {
				if k == "type" || k == "depends_on" || k == "enabled" {
					continue
				}
				r.Fields[k] = m.m[k].plain()
				recordPositions(m.m[k], k, r.Positions)
			}
		}
		if reg, ok := r.Fields["region"].(string); ok && reg != "" {
			r.Region = reg
		}
		s.crossRefs(&r, spec, p, &ds)
		if spec.Type == "ami" {
			s.promotedImage(&r, m.get("image"), p, &ds)
		}
		st.Resources = append(st.Resources, r)
	}
	ds = sortDiagnostics(ds)
	if HasErrors(ds) {
		return nil, ds
	}
	return st, ds
}

// filesOf returns the architecture and parameter file of stack id, or why
// it cannot be resolved.
func (s *Set) filesOf(id string) (*File, *File, []Diagnostic) {
	arch, files, what := s.Architecture, s.Stacks, "architecture"
	if regions.IsLayerID(id) {
		arch, files, what = s.Layer, s.Environments, "layer"
	}
	if arch == nil {
		return nil, nil, []Diagnostic{{Message: fmt.Sprintf("no %s file loaded", what)}}
	}
	var pf *File
	for _, f := range files {
		if f.Params.Stack == id {
			pf = f
		}
	}
	if pf == nil {
		return nil, nil, []Diagnostic{{File: arch.Name, Message: fmt.Sprintf("no parameter file for stack %q", id)}}
	}
	if arch.hasErrors || pf.hasErrors {
		return nil, nil, []Diagnostic{{File: pf.Name, Message: fmt.Sprintf("stack %s not resolved: its files have errors", id)}}
	}
	return arch, pf, nil
}

// disabledIn returns the resources of arch that stack p leaves out
// (enabled resolves to false).
func disabledIn(arch *File, p *Params, ds *[]Diagnostic) map[string]bool {
	disabled := map[string]bool{}
	for _, spec := range arch.Architecture.Resources {
		if en := spec.body.mapping().get("enabled"); en != nil {
			r := resolveVal(en, p, ds)
			on, ok := r.v.(bool)
			if !ok {
				*ds = append(*ds, diag(r.pos, r.path, "enabled must resolve to true or false, not %v", r.plain()))
			}
			if !on {
				disabled[spec.ID] = true
			}
		}
	}
	return disabled
}

// XrefPrefix starts a resolved cross-stack reference,
// ${xref.<stack>.<id>.<attr>}, which the engine fills in from the other
// stack's recorded outputs.
const XrefPrefix = "${xref."

// crossRefs checks r's references to other stacks of its environment and
// rewrites them to ${xref.<stack>.<id>.<attr>}, listing each in r.Cross.
func (s *Set) crossRefs(r *Resource, spec ResourceSpec, p *Params, ds *[]Diagnostic) {
	if len(spec.Cross) == 0 {
		return
	}
	repl := map[string]string{}
	seen := map[string]bool{}
	for _, c := range spec.Cross {
		var target, from, expr string
		var arch *File
		if c.Scope == "layer" {
			target, arch, from = regions.LayerID(p.Environment), s.Layer, "the layer"
			expr = fmt.Sprintf("${layer.%s.%s}", c.ID, c.Attr)
		} else {
			target, arch, from = regions.StackID(p.Environment, c.Scope), s.Architecture, "stack "+regions.StackID(p.Environment, c.Scope)
			expr = fmt.Sprintf("${jurisdiction.%s.%s.%s}", c.Scope, c.ID, c.Attr)
		}
		repl[expr] = fmt.Sprintf("%s%s.%s.%s}", XrefPrefix, target, c.ID, c.Attr)
		if arch == nil || arch.Architecture == nil {
			// A partial set (one architecture and one stack file): the other
			// stack is checked when the whole set is.
			continue
		}
		var spec2 *ResourceSpec
		for i := range arch.Architecture.Resources {
			if arch.Architecture.Resources[i].ID == c.ID {
				spec2 = &arch.Architecture.Resources[i]
			}
		}
		if spec2 == nil {
			*ds = append(*ds, diag(c.Pos, c.Path, "%s: %s has no resource %q", expr, from, c.ID))
			continue
		}
		if want, ok := refTypes(c.Field); ok && !slices.Contains(want, spec2.Type) {
			*ds = append(*ds, diag(c.Pos, c.Path, "%s must refer to a %s, but %s's %q is a %s", c.Field, strings.Join(want, " or "), from, c.ID, spec2.Type))
		}
		_, tf, tds := s.filesOf(target)
		if tds == nil {
			var ignore []Diagnostic
			if disabledIn(arch, tf.Params, &ignore)[c.ID] {
				*ds = append(*ds, diag(c.Pos, c.Path, "%s: %s's %s is not enabled there", expr, from, c.ID))
			}
		}
		if k := target + ":" + c.ID; !seen[k] {
			seen[k] = true
			r.Cross = append(r.Cross, k)
		}
	}
	for k, v := range r.Fields {
		r.Fields[k] = replaceAll(v, repl)
	}
	slices.Sort(r.Cross)
}

func replaceAll(v any, repl map[string]string) any {
	switch x := v.(type) {
	case string:
		for from, to := range repl {
			x = strings.ReplaceAll(x, from, to)
		}
		return x
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = replaceAll(e, repl)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = replaceAll(e, repl)
		}
		return out
	}
	return v
}

// promotedImage turns an image given as {promoted_from: <env>} into the id
// the same resource resolved in that environment's stack of the
// jurisdiction: prod runs exactly the image proven in test.
func (s *Set) promotedImage(r *Resource, img *val, p *Params, ds *[]Diagnostic) {
	from := img.mapping().get("promoted_from")
	if from == nil {
		return
	}
	env := from.str()
	envs := regions.EnvironmentNames()
	if i, j := slices.Index(envs, env), slices.Index(envs, p.Environment); i < 0 || j < 0 || i >= j {
		*ds = append(*ds, diag(from.pos, from.path, "promoted_from %q: want an environment before %s (%s)", env, p.Environment, strings.Join(envs[:max(j, 0)], ", ")))
		return
	}
	src := regions.StackID(env, p.Jurisdiction)
	r.Fields["image"] = map[string]any{"id": fmt.Sprintf("%s%s.%s.id}", XrefPrefix, src, r.ID), "promoted_from": env}
	r.Cross = append(r.Cross, src+":"+r.ID)
	slices.Sort(r.Cross)
}

func recordPositions(v *val, path string, out map[string]Position) {
	out[path] = v.pos
	switch x := v.v.(type) {
	case *omap:
		for _, k := range x.keys {
			recordPositions(x.m[k], path+"."+k, out)
		}
	case []*val:
		for i, e := range x {
			recordPositions(e, fmt.Sprintf("%s[%d]", path, i), out)
		}
	}
}

// resolveVal substitutes ${param.x} and ${stack.x}. A string that is
// exactly one expression becomes the parameter's value (any type, keeping
// the parameter's position); expressions inside longer strings are
// interpolated and must be scalars.
func resolveVal(v *val, p *Params, ds *[]Diagnostic) *val {
	switch x := v.v.(type) {
	case *omap:
		o := &omap{keys: x.keys, m: make(map[string]*val, len(x.m))}
		for _, k := range x.keys {
			o.m[k] = resolveVal(x.m[k], p, ds)
		}
		return &val{v: o, pos: v.pos, path: v.path}
	case []*val:
		l := make([]*val, len(x))
		for i, e := range x {
			l[i] = resolveVal(e, p, ds)
		}
		return &val{v: l, pos: v.pos, path: v.path}
	case string:
		if !strings.Contains(x, "${") {
			return v
		}
		if loc := exprRE.FindStringSubmatchIndex(x); loc != nil && loc[0] == 0 && loc[1] == len(x) {
			if m := paramExprRE.FindStringSubmatch(x[2 : len(x)-1]); m != nil {
				if r := lookupExpr(m[1], m[2], v, p, ds); r != nil {
					return r
				}
				return v
			}
		}
		out := exprRE.ReplaceAllStringFunc(x, func(e string) string {
			m := paramExprRE.FindStringSubmatch(e[2 : len(e)-1])
			if m == nil {
				return e // ${ref...}: left for the engine
			}
			r := lookupExpr(m[1], m[2], v, p, ds)
			if r == nil {
				return e
			}
			switch s := r.v.(type) {
			case string:
				return s
			case int64, float64, bool:
				return fmt.Sprint(s)
			}
			*ds = append(*ds, diag(v.pos, v.path, "%s is a list or mapping and cannot be part of a string", e))
			return e
		})
		return &val{v: out, pos: v.pos, path: v.path}
	}
	return v
}

func lookupExpr(ns, path string, at *val, p *Params, ds *[]Diagnostic) *val {
	if ns == "stack" {
		var s string
		j, _ := regions.JurisdictionByID(p.Jurisdiction)
		switch path {
		case "account":
			// Left for the engine, which knows the environment's account.
			return &val{v: AccountExpr, pos: at.pos, path: at.path}
		case "has_standby":
			return &val{v: j.HasStandby(), pos: at.pos, path: at.path}
		case "standby_region":
			if !j.HasStandby() {
				*ds = append(*ds, diag(at.pos, at.path, "${stack.standby_region}: the %s jurisdiction has no standby region; give this resource enabled: ${stack.has_standby}", p.Jurisdiction))
				return nil
			}
			s = j.StandbyRegion
		case "id":
			s = p.Stack
		case "region":
			s = p.Region
		case "environment":
			s = p.Environment
		case "jurisdiction":
			s = p.Jurisdiction
		default:
			*ds = append(*ds, diag(at.pos, at.path, "unknown ${stack.%s}", path))
			return nil
		}
		return &val{v: s, pos: at.pos, path: at.path}
	}
	r := p.lookup(path)
	if r == nil {
		*ds = append(*ds, diag(at.pos, at.path, "parameter %q is not set for stack %s (%s)", path, p.Stack, filepath.Base(p.File)))
	}
	return r
}

// Digest returns the content-addressed version id of files: the hex SHA-256
// of a canonical encoding (files ordered by kind and stack id, each as JSON
// with sorted keys). Comments, key order, formatting and file names do not
// change it; any change of value does.
func Digest(files []*File) string {
	type entry struct {
		key  string
		data []byte
	}
	var es []entry
	for _, f := range files {
		if f == nil || f.root == nil {
			continue
		}
		key := "0 architecture"
		switch f.Kind {
		case KindStack, KindEnvironment:
			key = "1 " + f.Params.Stack
		case KindLayer:
			key = "0 layer"
		}
		data, err := json.Marshal(f.root.plain())
		if err != nil { // plain values always marshal; keep the name so the digest still moves
			data = []byte(f.Name)
		}
		es = append(es, entry{key, data})
	}
	slices.SortFunc(es, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.key, b.key), strings.Compare(string(a.data), string(b.data)))
	})
	h := sha256.New()
	for _, e := range es {
		fmt.Fprintf(h, "%d:%s\n%d:", len(e.key), e.key, len(e.data))
		h.Write(e.data)
		h.Write([]byte("\n"))
	}
	return hex.EncodeToString(h.Sum(nil))
}
