package blueprints

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"portal/internal/regions"
)

// Kind is the kind of a blueprint file.
type Kind string

const (
	// KindArchitecture is the one shared architecture file.
	KindArchitecture Kind = "architecture"
	// KindStack is a per-stack parameter file, blueprints/stacks/<env>-<jurisdiction>.yaml.
	KindStack Kind = "stack"
	// KindLayer is the architecture of the environment layer,
	// blueprints/layer.yaml: what each environment's account holds once,
	// above its jurisdiction stacks.
	KindLayer Kind = "layer"
	// KindEnvironment is the parameter file of one environment's layer,
	// blueprints/environments/<env>.yaml.
	KindEnvironment Kind = "environment"
)

// File is one parsed blueprint file. Exactly one of Architecture (kinds
// architecture and layer) and Params (kinds stack and environment) is set.
type File struct {
	Name         string
	Kind         Kind
	Architecture *Architecture
	Params       *Params
	root         *val
	hasErrors    bool
}

// Architecture is the shared description of every resource of a stack, with
// parameter and reference expressions still unresolved.
type Architecture struct {
	File      string
	Resources []ResourceSpec
}

// ResourceSpec is an unresolved resource of the architecture.
type ResourceSpec struct {
	ID, Type string
	Pos      Position
	// DependsOn lists the ids this resource refers to (through ${ref.id.attr}
	// or depends_on), sorted.
	DependsOn []string
	// Cross are the resources of other stacks it refers to: ${layer.id.attr}
	// (the environment's layer) and ${jurisdiction.j.id.attr} (one of the
	// environment's jurisdiction stacks).
	Cross []CrossRef
	body  *val
}

// CrossRef is a reference from one stack's resource to another stack's.
type CrossRef struct {
	// Scope is "layer", or the jurisdiction id for ${jurisdiction.j...}.
	Scope, ID, Attr string
	Field           string // the field holding it
	Pos             Position
	Path            string
}

// Params are the parameters of one stack.
type Params struct {
	File                                     string
	Stack, Environment, Jurisdiction, Region string
	Pos                                      Position
	values                                   *val
}

// Value returns the plain value (string, int64, float64, bool, []any,
// map[string]any) of the parameter at a dotted path such as "db.multi_az".
func (p *Params) Value(path string) (any, bool) {
	v := p.lookup(path)
	if v == nil {
		return nil, false
	}
	return v.plain(), true
}

func (p *Params) lookup(path string) *val {
	cur := p.values
	for _, k := range strings.Split(path, ".") {
		cur = cur.mapping().get(k)
		if cur == nil {
			return nil
		}
	}
	return cur
}

// Parse reads one blueprint file. name is used in diagnostics and, for stack
// files, must be "<stack id>.yaml". It returns every problem found, not just
// the first; the File is nil only when the YAML itself cannot be read or its
// kind is unknown. A File returned with error diagnostics is not resolvable.
func Parse(name string, data []byte) (*File, []Diagnostic) {
	var ds []Diagnostic
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, []Diagnostic{diag(Position{File: name, Line: 1, Column: 1}, "", "empty file")}
		}
		return nil, []Diagnostic{yamlDiag(name, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		ds = append(ds, diag(Position{File: name, Line: extra.Line, Column: extra.Column}, "", "only one YAML document per file is allowed"))
	} else if !errors.Is(err, io.EOF) {
		ds = append(ds, yamlDiag(name, err))
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, append(ds, diag(Position{File: name, Line: 1, Column: 1}, "", "empty file"))
	}
	root := fromNode(name, doc.Content[0], nil, "", 0, &ds)
	if root.mapping() == nil {
		return nil, append(ds, diag(root.pos, "", "a blueprint file must be a mapping with a kind field"))
	}
	f := &File{Name: name, root: root}
	switch k := Kind(root.mapping().get("kind").str()); k {
	case KindArchitecture, KindStack, KindLayer, KindEnvironment:
		f.Kind = k
	default:
		return nil, append(ds, diag(root.pos, "kind", "kind must be %q, %q, %q or %q", KindArchitecture, KindStack, KindLayer, KindEnvironment))
	}
	sch, err := schemas()
	if err != nil {
		return nil, append(ds, diag(root.pos, "", "%v", err))
	}
	schemaDs := schemaDiagnostics(sch.file, root)
	ds = append(ds, schemaDs...)
	switch f.Kind {
	case KindArchitecture, KindLayer:
		f.Architecture, ds = parseArchitecture(name, root, f.Kind, ds)
	case KindEnvironment:
		f.Params, ds = parseEnvironment(name, root, ds)
	default:
		f.Params, ds = parseParams(name, root, ds)
	}
	ds = sortDiagnostics(ds)
	f.hasErrors = HasErrors(ds)
	return f, ds
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func yamlDiag(name string, err error) Diagnostic {
	msg := err.Error()
	line := 1
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		fmt.Sscan(m[1], &line)
		msg = m[2]
	}
	return diag(Position{File: name, Line: line, Column: 1}, "", "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

var (
	// exprRE finds every ${...} in a string; exprInnerRE says which are valid.
	exprRE      = regexp.MustCompile(`\$\{([^}]*)\}`)
	paramExprRE = regexp.MustCompile(`^(param|stack)\.([a-z0-9_]+(?:\.[a-z0-9_]+)*)$`)
	refExprRE   = regexp.MustCompile(`^ref\.([a-z][a-z0-9_]*)\.([a-z_]+)$`)
	// Cross-stack references: ${layer.id.attr} from a jurisdiction stack,
	// ${jurisdiction.j.id.attr} from the layer.
	layerExprRE        = regexp.MustCompile(`^layer\.([a-z][a-z0-9_]*)\.([a-z_]+)$`)
	jurisdictionExprRE = regexp.MustCompile(`^jurisdiction\.([a-z]+)\.([a-z][a-z0-9_]*)\.([a-z_]+)$`)
)

// stackAttrs returns the values ${stack.x} may name. account is filled in
// by the engine (the environment's AWS account is a deployment fact, not a
// blueprint one); standby_region and has_standby come from the catalogue.
func stackAttrs() []string {
	return []string{"id", "region", "environment", "jurisdiction", "account", "standby_region", "has_standby"}
}

// AccountExpr is the one expression left in resolved values besides
// references: the engine replaces it with the stack's AWS account id.
const AccountExpr = "${stack.account}"

// refAttrs returns the attributes ${ref.id.attr} may name; the engine fills
// them in at apply time.
func refAttrs() []string {
	return []string{"arn", "id", "name", "dns_name", "zone_id", "endpoint", "url", "region", "fqdn", "name_servers"}
}

// refTypes says which resource types a field may refer to, by field name;
// ok is false for fields that may refer to anything.
func refTypes(field string) (types []string, ok bool) {
	switch field {
	case "kms_key", "vpc", "ami", "instance_profile", "launch_template", "autoscaling_group", "log_group", "alb":
		return []string{field}, true
	case "key":
		return []string{"kms_key"}, true
	case "table":
		return []string{"dynamodb_table"}, true
	case "subnet_group":
		return []string{"db_subnet_group"}, true
	case "source":
		return []string{"rds_instance", "security_group"}, true
	case "topic", "alarm_actions":
		return []string{"sns_topic"}, true
	case "bucket", "s3_bucket", "input_bucket", "destination_bucket", "source_bucket", "access_logs_bucket":
		return []string{"s3_bucket"}, true
	case "security_groups":
		return []string{"security_group"}, true
	case "load_balancer":
		return []string{"alb"}, true
	case "default_target_group", "target_groups":
		return []string{"target_group"}, true
	case "zone":
		return []string{"route53_zone"}, true
	case "health_check":
		return []string{"route53_health_check"}, true
	case "validation_zone":
		return []string{"route53_zone"}, true
	case "role":
		return []string{"iam_role"}, true
	case "policies":
		return []string{"iam_policy"}, true
	case "target":
		return []string{"alb", "cloudfront_distribution", "route53_record"}, true
	}
	return nil, false
}

// scanExprs calls fn for each ${...} in s; it reports malformed ones. A
// cross-stack reference comes as ns "layer" (a = id, b = attr) or
// "jurisdiction" (a = "j.id", b = attr).
func scanExprs(v *val, s string, ds *[]Diagnostic, fn func(ns, a, b string)) {
	if strings.Count(s, "${") != len(exprRE.FindAllStringIndex(s, -1)) {
		*ds = append(*ds, diag(v.pos, v.path, "unterminated ${ in %q", s))
	}
	for _, m := range exprRE.FindAllStringSubmatch(s, -1) {
		if p := paramExprRE.FindStringSubmatch(m[1]); p != nil {
			fn(p[1], p[2], "")
			continue
		}
		if r := refExprRE.FindStringSubmatch(m[1]); r != nil {
			fn("ref", r[1], r[2])
			continue
		}
		if r := layerExprRE.FindStringSubmatch(m[1]); r != nil {
			fn("layer", r[1], r[2])
			continue
		}
		if r := jurisdictionExprRE.FindStringSubmatch(m[1]); r != nil {
			fn("jurisdiction", r[1]+"."+r[2], r[3])
			continue
		}
		*ds = append(*ds, diag(v.pos, v.path, "invalid expression %q: want ${param.path}, ${stack.attr}, ${ref.id.attr}, ${layer.id.attr} or ${jurisdiction.j.id.attr}", m[0]))
	}
}

// walkStrings calls fn for every string in v with the name of the nearest mapping key.
func walkStrings(v *val, field string, fn func(v *val, field, s string)) {
	switch x := v.v.(type) {
	case string:
		fn(v, field, x)
	case []*val:
		for _, e := range x {
			walkStrings(e, field, fn)
		}
	case *omap:
		for _, k := range x.keys {
			walkStrings(x.m[k], k, fn)
		}
	}
}

func parseArchitecture(name string, root *val, kind Kind, ds []Diagnostic) (*Architecture, []Diagnostic) {
	a := &Architecture{File: name}
	res := root.mapping().get("resources").mapping()
	if res == nil {
		return a, ds
	}
	types := map[string]string{}
	for _, id := range res.keys {
		types[id] = res.m[id].mapping().get("type").str()
	}
	for _, id := range res.keys {
		body := res.m[id]
		spec := ResourceSpec{ID: id, Type: types[id], Pos: body.pos, body: body}
		deps := map[string]bool{}
		walkStrings(body, "", func(v *val, field, s string) {
			scanExprs(v, s, &ds, func(ns, a, b string) {
				switch ns {
				case "stack":
					if !slices.Contains(stackAttrs(), a) {
						ds = append(ds, diag(v.pos, v.path, "unknown ${stack.%s}: want one of %s", a, strings.Join(stackAttrs(), ", ")))
					}
				case "ref":
					t, ok := types[a]
					switch {
					case !ok:
						ds = append(ds, diag(v.pos, v.path, "reference to unknown resource %q", a))
					case a == id:
						ds = append(ds, diag(v.pos, v.path, "resource refers to itself"))
					default:
						deps[a] = true
						if want, ok := refTypes(field); ok && !slices.Contains(want, t) {
							ds = append(ds, diag(v.pos, v.path, "%s must refer to a %s, but %q is a %s", field, strings.Join(want, " or "), a, t))
						}
					}
					if !slices.Contains(refAttrs(), b) {
						ds = append(ds, diag(v.pos, v.path, "unknown attribute %q in ${ref.%s.%s}: want one of %s", b, a, b, strings.Join(refAttrs(), ", ")))
					}
				case "layer":
					if kind == KindLayer {
						ds = append(ds, diag(v.pos, v.path, "${layer.%s.%s} in the layer itself: write ${ref.%s.%s}", a, b, a, b))
						return
					}
					if !slices.Contains(refAttrs(), b) {
						ds = append(ds, diag(v.pos, v.path, "unknown attribute %q in ${layer.%s.%s}: want one of %s", b, a, b, strings.Join(refAttrs(), ", ")))
					}
					spec.Cross = append(spec.Cross, CrossRef{Scope: "layer", ID: a, Attr: b, Field: field, Pos: v.pos, Path: v.path})
				case "jurisdiction":
					j, rid, _ := strings.Cut(a, ".")
					if kind != KindLayer {
						ds = append(ds, diag(v.pos, v.path, "${jurisdiction.%s.%s.%s}: only the layer refers to jurisdiction stacks; a stack refers to its own resources with ${ref...} and to the layer's with ${layer...}", j, rid, b))
						return
					}
					if _, ok := regions.JurisdictionByID(j); !ok {
						ds = append(ds, diag(v.pos, v.path, "${jurisdiction.%s...}: no jurisdiction %q in the catalogue", j, j))
						return
					}
					if !slices.Contains(refAttrs(), b) {
						ds = append(ds, diag(v.pos, v.path, "unknown attribute %q in ${jurisdiction.%s.%s.%s}: want one of %s", b, j, rid, b, strings.Join(refAttrs(), ", ")))
					}
					spec.Cross = append(spec.Cross, CrossRef{Scope: j, ID: rid, Attr: b, Field: field, Pos: v.pos, Path: v.path})
				}
			})
		})
		if dl := body.mapping().get("depends_on").list(); dl != nil {
			for _, d := range dl {
				if _, known := types[d.str()]; !known {
					ds = append(ds, diag(d.pos, d.path, "depends_on names unknown resource %q", d.str()))
				} else if d.str() != id {
					deps[d.str()] = true
				}
			}
		}
		for d := range deps {
			spec.DependsOn = append(spec.DependsOn, d)
		}
		slices.Sort(spec.DependsOn)
		a.Resources = append(a.Resources, spec)
	}
	return a, append(ds, cycleDiagnostics(a)...)
}

// cycleDiagnostics reports each dependency cycle once, at its first resource.
func cycleDiagnostics(a *Architecture) []Diagnostic {
	idx := map[string]int{}
	for i, r := range a.Resources {
		idx[r.ID] = i
	}
	const (
		white = iota
		grey
		black
	)
	color := make([]int, len(a.Resources))
	var ds []Diagnostic
	var stack []string
	var visit func(i int)
	visit = func(i int) {
		color[i] = grey
		stack = append(stack, a.Resources[i].ID)
		for _, d := range a.Resources[i].DependsOn {
			j, ok := idx[d]
			if !ok {
				continue
			}
			switch color[j] {
			case white:
				visit(j)
			case grey:
				cyc := append(slices.Clone(stack[slices.Index(stack, d):]), d)
				r := a.Resources[j]
				ds = append(ds, diag(r.Pos, "resources."+r.ID, "dependency cycle: %s", strings.Join(cyc, " -> ")))
			}
		}
		stack = stack[:len(stack)-1]
		color[i] = black
	}
	for i := range a.Resources {
		if color[i] == white {
			visit(i)
		}
	}
	return ds
}

// parseEnvironment reads the parameters of an environment's layer: its
// stack id is <env>-global, its region the layer region.
func parseEnvironment(name string, root *val, ds []Diagnostic) (*Params, []Diagnostic) {
	m := root.mapping()
	env := m.get("environment").str()
	p := &Params{File: name, Pos: root.pos, Environment: env, Region: regions.LayerRegion, values: m.get("params")}
	if env != "" {
		p.Stack = regions.LayerID(env)
	}
	if p.values == nil {
		p.values = &val{v: &omap{m: map[string]*val{}}, pos: root.pos, path: "params"}
	}
	if base := filepath.Base(name); env != "" && base != env+".yaml" && base != env+".yml" {
		ds = append(ds, diag(m.get("environment").pos, "environment", "file for environment %q must be named %s.yaml, not %s", env, env, base))
	}
	return p, ds
}

func parseParams(name string, root *val, ds []Diagnostic) (*Params, []Diagnostic) {
	m := root.mapping()
	p := &Params{File: name, Pos: root.pos, Stack: m.get("stack").str(), Environment: m.get("environment").str(),
		Jurisdiction: m.get("jurisdiction").str(), Region: m.get("region").str(), values: m.get("params")}
	if p.values == nil {
		p.values = &val{v: &omap{m: map[string]*val{}}, pos: root.pos, path: "params"}
	}
	if p.Environment != "" && p.Jurisdiction != "" && p.Stack != "" {
		if want := regions.StackID(p.Environment, p.Jurisdiction); p.Stack != want {
			ds = append(ds, diag(m.get("stack").pos, "stack", "stack is %q but environment and jurisdiction make %q", p.Stack, want))
		}
	}
	if base := filepath.Base(name); p.Stack != "" && base != p.Stack+".yaml" && base != p.Stack+".yml" {
		ds = append(ds, diag(m.get("stack").pos, "stack", "file for stack %q must be named %s.yaml, not %s", p.Stack, p.Stack, base))
	}
	if j, ok := regions.JurisdictionByID(p.Jurisdiction); ok && p.Region != "" && p.Region != j.HomeRegion {
		ds = append(ds, diag(m.get("region").pos, "region", "region %s is not the %s home region %s", p.Region, j.ID, j.HomeRegion))
	}
	pv := p.values.mapping()
	ds = append(ds, checkNetwork(pv.get("vpc_cidr"), pv.get("subnets"), p.Region)...)
	if asg := pv.get("asg").mapping(); asg != nil {
		ds = append(ds, checkCapacity(asg.get("min"), asg.get("desired"), asg.get("max"))...)
	}
	if j, ok := regions.JurisdictionByID(p.Jurisdiction); ok {
		sb := pv.get("standby")
		switch {
		case j.HasStandby() && sb == nil:
			ds = append(ds, diag(p.values.pos, "params", "missing params.standby: the %s jurisdiction fails over to %s (the regions catalogue names it), which needs its network and size", j.ID, j.StandbyRegion))
		case !j.HasStandby() && sb != nil:
			ds = append(ds, diag(sb.pos, sb.path, "the %s jurisdiction has no standby region (%s is its only allowed region): remove params.standby, or add a region to the catalogue with its legal basis", j.ID, j.HomeRegion))
		case sb != nil:
			sm := sb.mapping()
			ds = append(ds, checkNetwork(sm.get("vpc_cidr"), sm.get("subnets"), j.StandbyRegion)...)
			if asg := sm.get("asg").mapping(); asg != nil {
				ds = append(ds, checkCapacity(asg.get("min"), asg.get("desired"), asg.get("max"))...)
			}
		}
	}
	ds = append(ds, checkAMI(pv.get("ami"))...)
	return p, ds
}
