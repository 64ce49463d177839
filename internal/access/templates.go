package access

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"portal/internal/blueprints"
	"portal/internal/regions"
	"portal/internal/staff"
)

// Environments are the environment accounts staff roles exist in, in
// promotion order.
var Environments = []string{"dev", "test", "prod"}

// Bounds on elevation that every template must respect.
const (
	// MaxElevationHours caps any elevation anywhere.
	MaxElevationHours = 12
	// MaxProdElevationHours caps any elevation in prod.
	MaxProdElevationHours = 4
	// MaxPolicyBytes is IAM's limit on a group's inline policies.
	MaxPolicyBytes = 5120
)

// BreakGlass is the template whose service-wide wildcards are tolerated
// (for an approved, short window only: it is never a standing grant).
const BreakGlass = "break-glass-admin"

// Template is one staff role as reviewed in blueprints/staff-roles.
type Template struct {
	Name        string   `json:"name"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	PortalRoles []string `json:"portal_roles"`
	// Standing lists the environments where the role may be granted
	// permanently; elsewhere only through elevation.
	Standing          []string       `json:"standing"`
	MaxElevationHours map[string]int `json:"max_elevation_hours"`
	Policy            Policy         `json:"policy"`
}

// Policy is an IAM policy document.
type Policy struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement of a policy.
type Statement struct {
	Sid       string                       `json:"Sid,omitempty"`
	Effect    string                       `json:"Effect"`
	Action    stringList                   `json:"Action,omitempty"`
	NotAction stringList                   `json:"NotAction,omitempty"`
	Resource  stringList                   `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

// stringList reads a string or a list of strings.
type stringList []string

func (s *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

// StandingIn reports whether the role may be held permanently in env.
func (t Template) StandingIn(env string) bool { return slices.Contains(t.Standing, env) }

// MaxHours is the longest elevation to the role in env.
func (t Template) MaxHours(env string) int { return t.MaxElevationHours[env] }

// FitsPortalRoles reports whether someone holding roles may hold t.
func (t Template) FitsPortalRoles(roles []staff.Role) bool {
	for _, r := range roles {
		if slices.Contains(t.PortalRoles, string(r)) {
			return true
		}
	}
	return false
}

// Document is the policy as the JSON IAM receives, compact.
func (t Template) Document() string {
	b, _ := json.Marshal(t.Policy)
	return string(b)
}

// GroupName is the IAM group of the role in every environment account.
func (t Template) GroupName() string { return "staff-" + t.Name }

var (
	nameRe   = regexp.MustCompile(`^[a-z][a-z0-9-]{2,40}$`)
	actionRe = regexp.MustCompile(`^[a-z0-9-]+:[A-Za-z0-9*]+$`)
	// patientReads are data-plane reads of patient data that every role
	// but break-glass must deny explicitly.
	patientReads = []string{"dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan", "s3:GetObject", "kms:Decrypt"}
)

// Check lists what is wrong with t, each naming the statement or field;
// none means it may be shipped. The rules: MFA required on every Allow,
// no "*" or "*:*" action and no NotAction in an Allow, no service-wide
// wildcard ("ec2:*") outside break-glass, patient-data reads denied
// outside break-glass, elevation bounded (prod at most 4 hours), the
// document fits a group's inline policy.
func (t Template) Check() []string {
	var out []string
	add := func(f string, a ...any) { out = append(out, fmt.Sprintf(f, a...)) }
	if !nameRe.MatchString(t.Name) {
		add("name %q: use 3-41 lower-case letters, digits and dashes", t.Name)
	}
	if strings.TrimSpace(t.Title) == "" || strings.TrimSpace(t.Description) == "" {
		add("title and description are required")
	}
	if len(t.PortalRoles) == 0 {
		add("portal_roles: name the portal roles that may hold this role")
	}
	for _, r := range t.PortalRoles {
		if _, err := staff.ParseRole(r); err != nil {
			add("portal_roles: %v", err)
		}
	}
	for _, e := range t.Standing {
		if !slices.Contains(Environments, e) {
			add("standing: unknown environment %q", e)
		}
	}
	if t.Name == BreakGlass && len(t.Standing) > 0 {
		add("standing: break-glass is granted through elevation only")
	}
	for _, e := range Environments {
		h, ok := t.MaxElevationHours[e]
		switch {
		case !ok || h <= 0:
			add("max_elevation_hours.%s: required, at least 1", e)
		case h > MaxElevationHours:
			add("max_elevation_hours.%s: %d is more than %d", e, h, MaxElevationHours)
		case e == "prod" && h > MaxProdElevationHours:
			add("max_elevation_hours.prod: %d is more than %d", h, MaxProdElevationHours)
		}
	}
	if t.Policy.Version != "2012-10-17" {
		add("policy.Version: want 2012-10-17, got %q", t.Policy.Version)
	}
	if len(t.Policy.Statement) == 0 {
		add("policy: no statements")
	}
	denied := map[string]bool{}
	for i, st := range t.Policy.Statement {
		where := fmt.Sprintf("policy.Statement[%d]", i)
		if st.Sid != "" {
			where += " (" + st.Sid + ")"
		}
		if st.Effect != "Allow" && st.Effect != "Deny" {
			add("%s: Effect must be Allow or Deny, got %q", where, st.Effect)
		}
		if len(st.Action) == 0 {
			add("%s: list its actions in Action", where)
		}
		if len(st.Resource) == 0 {
			add("%s: Resource is required", where)
		}
		for _, a := range st.Action {
			if a == "*" || a == "*:*" {
				add("%s: action %q grants everything", where, a)
				continue
			}
			if !actionRe.MatchString(a) {
				add("%s: action %q is not service:Action", where, a)
			}
			if st.Effect == "Allow" && strings.HasSuffix(a, ":*") && t.Name != BreakGlass {
				add("%s: action %q grants a whole service; list the actions needed", where, a)
			}
			if st.Effect == "Deny" {
				denied[a] = true
			}
		}
		if st.Effect != "Allow" {
			continue
		}
		if len(st.NotAction) > 0 {
			add("%s: NotAction in an Allow grants everything else", where)
		}
		if st.Condition["Bool"]["aws:MultiFactorAuthPresent"] != "true" {
			add("%s: an Allow must require MFA (Condition Bool aws:MultiFactorAuthPresent true)", where)
		}
	}
	if t.Name != BreakGlass {
		for _, a := range patientReads {
			if !denied[a] {
				add("policy: must deny %s (patient data is read by the application only)", a)
			}
		}
	}
	if n := len(t.Document()); n > MaxPolicyBytes {
		add("policy: %d bytes is more than a group's %d", n, MaxPolicyBytes)
	}
	return out
}

// Templates is the reviewed set of staff roles, by name.
type Templates struct {
	byName map[string]Template
	names  []string
}

// LoadTemplates reads and checks every *.json in fsys; any problem in any
// file fails the whole set, naming the file.
func LoadTemplates(fsys fs.FS) (*Templates, error) {
	files, err := fs.Glob(fsys, "*.json")
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("access: no staff role templates")
	}
	ts := &Templates{byName: map[string]Template{}}
	var problems []string
	for _, f := range files {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		var t Template
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&t); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", f, err))
			continue
		}
		if want := strings.TrimSuffix(path.Base(f), ".json"); t.Name != want {
			problems = append(problems, fmt.Sprintf("%s: name %q differs from the file name", f, t.Name))
		}
		for _, p := range t.Check() {
			problems = append(problems, fmt.Sprintf("%s: %s", f, p))
		}
		ts.byName[t.Name] = t
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("access: staff role templates: %s", strings.Join(problems, "; "))
	}
	for n := range ts.byName {
		ts.names = append(ts.names, n)
	}
	sort.Slice(ts.names, func(i, j int) bool { return order(ts.names[i]) < order(ts.names[j]) })
	return ts, nil
}

// order puts the roles in a sensible order, others after.
func order(name string) string {
	known := []string{"ops-readonly", "ops-deployer", "compliance-auditor", "finance-billing", BreakGlass}
	if i := slices.Index(known, name); i >= 0 {
		return fmt.Sprintf("%02d", i)
	}
	return "99" + name
}

// Get returns the template name.
func (ts *Templates) Get(name string) (Template, bool) {
	t, ok := ts.byName[name]
	return t, ok
}

// All returns the templates in display order.
func (ts *Templates) All() []Template {
	out := make([]Template, 0, len(ts.names))
	for _, n := range ts.names {
		out = append(out, ts.byName[n])
	}
	return out
}

// StackID is the stack of environment env's staff permission sets.
func StackID(env string) string { return "staff-permission-sets-" + env }

// LegacyStackID is the stack of IAM groups environment env's staff roles
// were before they became Identity Center permission sets; it is retired
// by destroying it (RetireLegacy).
func LegacyStackID(env string) string { return "staff-roles-" + env }

// EnvironmentOfStack is the environment of a staff permission-set stack
// (or a legacy staff-roles stack) id, "" for other stacks.
func EnvironmentOfStack(id string) string {
	env, ok := strings.CutPrefix(id, "staff-permission-sets-")
	if !ok {
		env, ok = strings.CutPrefix(id, "staff-roles-")
	}
	if !ok || !slices.Contains(Environments, env) {
		return ""
	}
	return env
}

// Version is a digest of the templates, naming what a stack was built from.
func (ts *Templates) Version() string {
	h := sha256.New()
	for _, t := range ts.All() {
		fmt.Fprintf(h, "%s\n%s\n", t.Name, t.Document())
	}
	return "staff-" + hex.EncodeToString(h.Sum(nil))[:12]
}

// SessionDuration is how long an Identity Center session of any staff
// permission set lasts. Removing an assignment stops new sessions at once,
// but a session already open lives until it ends: so at most this long.
const SessionDuration = "PT1H"

// PermissionSetName is the Identity Center permission set of the role in
// env; it is the AWSReservedSSO_NAME_… role people see in the account.
// Each environment has its own set, so a change reaches prod only through
// prod's reviewed, approved plan.
func (t Template) PermissionSetName(env string) string { return t.Name + "-" + env }

// PermissionSetDocument is the policy as a permission set carries it: the
// template without its aws:MultiFactorAuthPresent conditions. AWS does not
// set that key in sessions federated through IAM Identity Center (SAML), so
// the condition would refuse every Allow; MFA is enforced where people sign
// in instead (Identity Center's MFA setting, or the identity provider).
func (t Template) PermissionSetDocument() string {
	p := Policy{Version: t.Policy.Version}
	for _, st := range t.Policy.Statement {
		c := map[string]map[string]string{}
		for op, kv := range st.Condition {
			m := map[string]string{}
			for k, v := range kv {
				if !(op == "Bool" && k == "aws:MultiFactorAuthPresent") {
					m[k] = v
				}
			}
			if len(m) > 0 {
				c[op] = m
			}
		}
		st.Condition = c
		if len(c) == 0 {
			st.Condition = nil
		}
		p.Statement = append(p.Statement, st)
	}
	b, _ := json.Marshal(p)
	return string(b)
}

// Stack is environment env's staff-roles stack: one sso_permission_set per
// template, in the organization's IAM Identity Center (the management
// account, in the instance's home region). It holds no patient data; its
// jurisdiction is the one whose regions include the instance's home region
// (the engine's guardrails need one), "us" when none does.
func (ts *Templates) Stack(env, region string) *blueprints.Stack {
	jur := "us"
	for _, j := range regions.Jurisdictions() {
		if j.Allows(region) {
			jur = j.ID
			break
		}
	}
	id := StackID(env)
	var rs []blueprints.Resource
	for _, t := range ts.All() {
		rs = append(rs, blueprints.Resource{ID: strings.ReplaceAll(t.Name, "-", "_"), Type: "sso_permission_set", Region: region,
			Fields: map[string]any{"name": t.PermissionSetName(env), "description": t.Title + " (" + env + "): " + t.Description,
				"session_duration": SessionDuration, "policy": t.PermissionSetDocument()}})
	}
	return blueprints.NewStack(id, env, jur, region, ts.Version(), rs)
}
