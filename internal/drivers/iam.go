package drivers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"portal/internal/engine"
)

// globalRegion is where the APIs of global services (IAM, Route 53,
// CloudFront) are called.
const globalRegion = "us-east-1"

// iamWait bounds the wait for IAM's eventual consistency after a create.
const iamWait = 2 * time.Minute

// arnPartition returns the ARN partition of region.
func arnPartition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

func iamClient(env *engine.Env) *iam.Client {
	return iam.NewFromConfig(env.Config(globalRegion))
}

func iamTags(tags map[string]string) []types.Tag {
	out := make([]types.Tag, 0, len(tags))
	for _, k := range sortedKeys(tags) {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

func iamTagMap(tags []types.Tag) map[string]string {
	out := make(map[string]string, len(tags))
	for _, t := range tags {
		out[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return out
}

// iamDecode returns the JSON of a policy document as IAM returns it (URL
// encoded in the query protocol; plain from some emulators).
func iamDecode(doc string) string {
	if strings.HasPrefix(strings.TrimSpace(doc), "{") {
		return doc
	}
	if s, err := url.QueryUnescape(doc); err == nil {
		return s
	}
	return doc
}

// inOrderOf reports have in the order of want when both hold the same
// strings, so that a list AWS returns in its own order does not show as a
// change; otherwise it returns have sorted.
func inOrderOf(want, have []string) []any {
	a, b := slices.Clone(want), slices.Clone(have)
	sort.Strings(a)
	sort.Strings(b)
	src := b
	if slices.Equal(a, b) {
		src = want
	}
	out := make([]any, len(src))
	for i, s := range src {
		out[i] = s
	}
	return out
}

// ---------------------------------------------------------------- policy documents

// policyStatement is one statement of an IAM policy document. Action and
// Resource may be a string or a list in documents AWS returns.
type policyStatement struct {
	Sid       string          `json:"Sid,omitempty"`
	Effect    string          `json:"Effect"`
	Action    stringOrList    `json:"Action,omitempty"`
	Resource  stringOrList    `json:"Resource,omitempty"`
	Principal json.RawMessage `json:"Principal,omitempty"`
}

type policyDocument struct {
	Version   string            `json:"Version"`
	Statement []policyStatement `json:"Statement"`
}

type stringOrList []string

func (s *stringOrList) UnmarshalJSON(b []byte) error {
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

// parsePolicy parses a policy document, in one statement or a list.
func parsePolicy(doc string) (policyDocument, error) {
	var raw struct {
		Version   string          `json:"Version"`
		Statement json.RawMessage `json:"Statement"`
	}
	if err := json.Unmarshal([]byte(iamDecode(doc)), &raw); err != nil {
		return policyDocument{}, fmt.Errorf("parse policy document: %w", err)
	}
	out := policyDocument{Version: raw.Version}
	if len(raw.Statement) > 0 && raw.Statement[0] == '{' {
		var one policyStatement
		if err := json.Unmarshal(raw.Statement, &one); err != nil {
			return policyDocument{}, fmt.Errorf("parse policy statement: %w", err)
		}
		out.Statement = []policyStatement{one}
	} else if len(raw.Statement) > 0 {
		if err := json.Unmarshal(raw.Statement, &out.Statement); err != nil {
			return policyDocument{}, fmt.Errorf("parse policy statements: %w", err)
		}
	}
	return out, nil
}

// desiredStatements reads the blueprint's statements.
func desiredStatements(d *engine.Desired) []policyStatement {
	var out []policyStatement
	for _, e := range d.List("statements") {
		m, _ := e.(map[string]any)
		st := policyStatement{Effect: fmt.Sprint(m["effect"])}
		if sid, ok := m["sid"].(string); ok {
			st.Sid = sid
		}
		st.Action = anyStrings(m["actions"])
		st.Resource = anyStrings(m["resources"])
		out = append(out, st)
	}
	return out
}

func anyStrings(v any) []string {
	var out []string
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
	case []string:
		out = append(out, x...)
	case string:
		out = append(out, x)
	}
	return out
}

// canonicalStatements renders statements order-independently: actions and
// resources sorted, statements sorted, so two documents granting the same
// thing compare equal.
func canonicalStatements(sts []policyStatement) string {
	parts := make([]string, 0, len(sts))
	for _, st := range sts {
		a, r := slices.Clone([]string(st.Action)), slices.Clone([]string(st.Resource))
		sort.Strings(a)
		sort.Strings(r)
		b, _ := json.Marshal([]any{st.Sid, st.Effect, slices.Compact(a), slices.Compact(r)})
		parts = append(parts, string(b))
	}
	sort.Strings(parts)
	return strings.Join(parts, "\n")
}

// statementFields shapes statements like the blueprint's field.
func statementFields(sts []policyStatement) []any {
	out := make([]any, 0, len(sts))
	for _, st := range sts {
		m := map[string]any{"effect": st.Effect, "actions": inOrderOf(nil, st.Action), "resources": inOrderOf(nil, st.Resource)}
		if st.Sid != "" {
			m["sid"] = st.Sid
		}
		out = append(out, m)
	}
	return out
}

func policyJSON(sts []policyStatement) (string, error) {
	b, err := json.Marshal(policyDocument{Version: "2012-10-17", Statement: sts})
	return string(b), err
}

// ---------------------------------------------------------------- iam_policy

// IAMPolicy manages a customer-managed IAM policy. A change of statements
// creates a new default policy version, deleting the oldest non-default
// version first when the five IAM keeps all exist.
//
// Fields: name, statements [{sid, effect, actions, resources}],
// description. Statements are compared as a normalised document (order of
// statements, actions and resources does not matter).
// Outputs: arn, name.
type IAMPolicy struct{}

func (IAMPolicy) Type() string         { return "iam_policy" }
func (IAMPolicy) ForceNew() []string   { return []string{"name", "description"} }
func (IAMPolicy) GlobalRegion() string { return globalRegion }

// policyARN is the ARN of the customer-managed policy name in env's
// account (path /), or "" when the account is not known.
func policyARN(env *engine.Env, name string) string {
	if env.Stack.AccountID == "" {
		return ""
	}
	return fmt.Sprintf("arn:%s:iam::%s:policy/%s", arnPartition(env.Stack.Region), env.Stack.AccountID, name)
}

func (p IAMPolicy) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	c := iamClient(env)
	arn := ""
	if prior != nil {
		arn = prior.PhysicalID
	} else if name := d.String("name"); name != "" {
		arn = policyARN(env, name)
		if arn == "" {
			found, err := p.findByName(ctx, c, name)
			if err != nil {
				return nil, err
			}
			arn = found
		}
	}
	if arn == "" {
		return nil, engine.ErrNotFound
	}
	out, err := c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(arn)})
	if engine.IsCode(err, "NoSuchEntity") {
		return nil, engine.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("get policy %s: %w", arn, err)
	}
	pol := out.Policy
	name := aws.ToString(pol.PolicyName)
	live := &engine.Live{
		PhysicalID: arn,
		Region:     d.Region,
		Outputs:    map[string]string{"arn": arn, "name": name},
		Fields:     map[string]any{"name": name},
		Tags:       iamTagMap(pol.Tags),
	}
	if d.Has("description") {
		live.Fields["description"] = aws.ToString(pol.Description)
	}
	ver, err := c.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(arn), VersionId: pol.DefaultVersionId})
	if err != nil {
		return nil, fmt.Errorf("get policy %s version %s: %w", arn, aws.ToString(pol.DefaultVersionId), err)
	}
	doc, err := parsePolicy(aws.ToString(ver.PolicyVersion.Document))
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", arn, err)
	}
	if want := desiredStatements(d); !engine.IsUnknown(d.Fields["statements"]) && canonicalStatements(want) == canonicalStatements(doc.Statement) {
		// The same grants in another order: report the blueprint's shape.
		live.Fields["statements"] = d.Fields["statements"]
	} else {
		live.Fields["statements"] = statementFields(doc.Statement)
	}
	if len(live.Tags) == 0 {
		tags, err := c.ListPolicyTags(ctx, &iam.ListPolicyTagsInput{PolicyArn: aws.String(arn)})
		if err != nil {
			return nil, fmt.Errorf("list tags of policy %s: %w", arn, err)
		}
		live.Tags = iamTagMap(tags.Tags)
	}
	return live, nil
}

func (IAMPolicy) findByName(ctx context.Context, c *iam.Client, name string) (string, error) {
	pg := iam.NewListPoliciesPaginator(c, &iam.ListPoliciesInput{Scope: types.PolicyScopeTypeLocal})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("list policies: %w", err)
		}
		for _, p := range page.Policies {
			if aws.ToString(p.PolicyName) == name {
				return aws.ToString(p.Arn), nil
			}
		}
	}
	return "", nil
}

func (p IAMPolicy) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	c := iamClient(env)
	doc, err := policyJSON(desiredStatements(d))
	if err != nil {
		return nil, fmt.Errorf("policy document: %w", err)
	}
	in := &iam.CreatePolicyInput{PolicyName: aws.String(d.String("name")), PolicyDocument: aws.String(doc), Tags: iamTags(d.Tags)}
	if desc := d.String("description"); desc != "" {
		in.Description = aws.String(desc)
	}
	out, err := c.CreatePolicy(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("create policy %s: %w", d.String("name"), err)
	}
	arn := aws.ToString(out.Policy.Arn)
	env.Logf("created policy %s", arn)
	if err := iam.NewPolicyExistsWaiter(c).Wait(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(arn)}, iamWait); err != nil {
		return nil, fmt.Errorf("wait for policy %s: %w", arn, err)
	}
	return p.Read(ctx, env, d, &engine.Prior{PhysicalID: arn, Region: d.Region})
}

func (p IAMPolicy) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	c := iamClient(env)
	arn := live.PhysicalID
	for _, ch := range changes {
		switch ch.Path {
		case "statements":
			if err := p.newVersion(ctx, c, env, d, arn); err != nil {
				return nil, err
			}
		case "tags":
			if _, err := c.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: aws.String(arn), Tags: iamTags(d.Tags)}); err != nil {
				return nil, fmt.Errorf("tag policy %s: %w", arn, err)
			}
		}
	}
	return p.Read(ctx, env, d, &engine.Prior{PhysicalID: arn, Region: d.Region})
}

// newVersion makes d's statements the policy's default version. IAM keeps
// at most five versions: the oldest non-default one goes first.
func (IAMPolicy) newVersion(ctx context.Context, c *iam.Client, env *engine.Env, d *engine.Desired, arn string) error {
	vs, err := c.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: aws.String(arn)})
	if err != nil {
		return fmt.Errorf("list versions of policy %s: %w", arn, err)
	}
	if len(vs.Versions) >= 5 {
		var oldest *types.PolicyVersion
		for i, v := range vs.Versions {
			if v.IsDefaultVersion {
				continue
			}
			if oldest == nil || aws.ToTime(v.CreateDate).Before(aws.ToTime(oldest.CreateDate)) {
				oldest = &vs.Versions[i]
			}
		}
		if oldest != nil {
			if _, err := c.DeletePolicyVersion(ctx, &iam.DeletePolicyVersionInput{PolicyArn: aws.String(arn), VersionId: oldest.VersionId}); err != nil {
				return fmt.Errorf("delete version %s of policy %s: %w", aws.ToString(oldest.VersionId), arn, err)
			}
			env.Logf("deleted oldest version %s of policy %s (IAM keeps five)", aws.ToString(oldest.VersionId), arn)
		}
	}
	doc, err := policyJSON(desiredStatements(d))
	if err != nil {
		return fmt.Errorf("policy document: %w", err)
	}
	out, err := c.CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: aws.String(arn), PolicyDocument: aws.String(doc), SetAsDefault: true})
	if err != nil {
		return fmt.Errorf("create version of policy %s: %w", arn, err)
	}
	env.Logf("policy %s now at version %s", arn, aws.ToString(out.PolicyVersion.VersionId))
	return nil
}

// Delete detaches the policy from every role, user and group (a
// replacement deletes the old policy before its roles are pointed at the
// new one), deletes its non-default versions, then the policy.
func (IAMPolicy) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := iamClient(env)
	arn := live.PhysicalID
	pg := iam.NewListEntitiesForPolicyPaginator(c, &iam.ListEntitiesForPolicyInput{PolicyArn: aws.String(arn)})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if engine.IsCode(err, "NoSuchEntity") {
			return nil
		} else if err != nil {
			return fmt.Errorf("list entities of policy %s: %w", arn, err)
		}
		for _, r := range page.PolicyRoles {
			if _, err := c.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: r.RoleName, PolicyArn: aws.String(arn)}); err != nil && !engine.IsCode(err, "NoSuchEntity") {
				return fmt.Errorf("detach policy %s from role %s: %w", arn, aws.ToString(r.RoleName), err)
			}
			env.Logf("detached policy %s from role %s", arn, aws.ToString(r.RoleName))
		}
		for _, u := range page.PolicyUsers {
			if _, err := c.DetachUserPolicy(ctx, &iam.DetachUserPolicyInput{UserName: u.UserName, PolicyArn: aws.String(arn)}); err != nil && !engine.IsCode(err, "NoSuchEntity") {
				return fmt.Errorf("detach policy %s from user %s: %w", arn, aws.ToString(u.UserName), err)
			}
			env.Logf("detached policy %s from user %s", arn, aws.ToString(u.UserName))
		}
		for _, g := range page.PolicyGroups {
			if _, err := c.DetachGroupPolicy(ctx, &iam.DetachGroupPolicyInput{GroupName: g.GroupName, PolicyArn: aws.String(arn)}); err != nil && !engine.IsCode(err, "NoSuchEntity") {
				return fmt.Errorf("detach policy %s from group %s: %w", arn, aws.ToString(g.GroupName), err)
			}
			env.Logf("detached policy %s from group %s", arn, aws.ToString(g.GroupName))
		}
	}
	vs, err := c.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: aws.String(arn)})
	if engine.IsCode(err, "NoSuchEntity") {
		return nil
	} else if err != nil {
		return fmt.Errorf("list versions of policy %s: %w", arn, err)
	}
	for _, v := range vs.Versions {
		if v.IsDefaultVersion {
			continue
		}
		if _, err := c.DeletePolicyVersion(ctx, &iam.DeletePolicyVersionInput{PolicyArn: aws.String(arn), VersionId: v.VersionId}); err != nil && !engine.IsCode(err, "NoSuchEntity") {
			return fmt.Errorf("delete version %s of policy %s: %w", aws.ToString(v.VersionId), arn, err)
		}
	}
	if _, err := c.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: aws.String(arn)}); err != nil && !engine.IsCode(err, "NoSuchEntity") {
		return fmt.Errorf("delete policy %s: %w", arn, err)
	}
	env.Logf("deleted policy %s", arn)
	return nil
}

// ---------------------------------------------------------------- iam_role

// IAMRole manages an IAM role that one AWS service may assume, with
// customer- or AWS-managed policies attached.
//
// Fields: name, assume_role_service (e.g. ec2.amazonaws.com), policies
// (policy ARNs, compared as a set), description.
// Outputs: arn, name, id (the role's unique id).
type IAMRole struct{}

func (IAMRole) Type() string         { return "iam_role" }
func (IAMRole) ForceNew() []string   { return []string{"name"} }
func (IAMRole) GlobalRegion() string { return globalRegion }

func trustPolicy(service string) (string, error) {
	principal, err := json.Marshal(map[string]string{"Service": service})
	if err != nil {
		return "", err
	}
	return policyJSON([]policyStatement{{Effect: "Allow", Action: stringOrList{"sts:AssumeRole"}, Principal: principal}})
}

// trustedService returns the one service a trust policy lets assume the
// role, or a description of the document when it is anything else.
func trustedService(doc string) string {
	pd, err := parsePolicy(doc)
	if err != nil || len(pd.Statement) != 1 {
		return "(custom trust policy)"
	}
	st := pd.Statement[0]
	var p struct {
		Service stringOrList `json:"Service"`
	}
	if st.Effect != "Allow" || json.Unmarshal(st.Principal, &p) != nil || len(p.Service) != 1 || !slices.Contains(st.Action, "sts:AssumeRole") {
		return "(custom trust policy)"
	}
	return p.Service[0]
}

func (r IAMRole) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	c := iamClient(env)
	name := d.String("name")
	if prior != nil {
		name = prior.PhysicalID
	}
	if name == "" || engine.IsUnknown(name) {
		return nil, engine.ErrNotFound
	}
	out, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
	if engine.IsCode(err, "NoSuchEntity") {
		return nil, engine.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("get role %s: %w", name, err)
	}
	role := out.Role
	live := &engine.Live{
		PhysicalID: name,
		Region:     d.Region,
		Outputs:    map[string]string{"arn": aws.ToString(role.Arn), "name": name, "id": aws.ToString(role.RoleId)},
		Fields: map[string]any{
			"name":                name,
			"assume_role_service": trustedService(aws.ToString(role.AssumeRolePolicyDocument)),
			"description":         aws.ToString(role.Description),
		},
	}
	tags, err := c.ListRoleTags(ctx, &iam.ListRoleTagsInput{RoleName: aws.String(name)})
	if err != nil {
		return nil, fmt.Errorf("list tags of role %s: %w", name, err)
	}
	live.Tags = iamTagMap(tags.Tags)
	attached, err := r.attached(ctx, c, name)
	if err != nil {
		return nil, err
	}
	live.Fields["policies"] = inOrderOf(d.Strings("policies"), attached)
	return live, nil
}

func (IAMRole) attached(ctx context.Context, c *iam.Client, name string) ([]string, error) {
	var out []string
	pg := iam.NewListAttachedRolePoliciesPaginator(c, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(name)})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list policies of role %s: %w", name, err)
		}
		for _, p := range page.AttachedPolicies {
			out = append(out, aws.ToString(p.PolicyArn))
		}
	}
	return out, nil
}

func (r IAMRole) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	c := iamClient(env)
	name := d.String("name")
	trust, err := trustPolicy(d.String("assume_role_service"))
	if err != nil {
		return nil, fmt.Errorf("trust policy: %w", err)
	}
	in := &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trust), Tags: iamTags(d.Tags)}
	if desc := d.String("description"); desc != "" {
		in.Description = aws.String(desc)
	}
	out, err := c.CreateRole(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("create role %s: %w", name, err)
	}
	env.Logf("created role %s", aws.ToString(out.Role.Arn))
	if err := iam.NewRoleExistsWaiter(c).Wait(ctx, &iam.GetRoleInput{RoleName: aws.String(name)}, iamWait); err != nil {
		return nil, fmt.Errorf("wait for role %s: %w", name, err)
	}
	if err := r.attach(ctx, c, env, name, d.Strings("policies"), nil); err != nil {
		return nil, err
	}
	return r.Read(ctx, env, d, &engine.Prior{PhysicalID: name, Region: d.Region})
}

// attach makes the role's attached policies exactly want.
func (IAMRole) attach(ctx context.Context, c *iam.Client, env *engine.Env, name string, want, have []string) error {
	for _, arn := range want {
		if slices.Contains(have, arn) {
			continue
		}
		if _, err := c.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(name), PolicyArn: aws.String(arn)}); err != nil {
			return fmt.Errorf("attach policy %s to role %s: %w", arn, name, err)
		}
		env.Logf("attached %s to role %s", arn, name)
	}
	for _, arn := range have {
		if slices.Contains(want, arn) {
			continue
		}
		if _, err := c.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String(name), PolicyArn: aws.String(arn)}); err != nil && !engine.IsCode(err, "NoSuchEntity") {
			return fmt.Errorf("detach policy %s from role %s: %w", arn, name, err)
		}
		env.Logf("detached %s from role %s", arn, name)
	}
	return nil
}

func (r IAMRole) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	c := iamClient(env)
	name := live.PhysicalID
	for _, ch := range changes {
		switch ch.Path {
		case "assume_role_service":
			trust, err := trustPolicy(d.String("assume_role_service"))
			if err != nil {
				return nil, fmt.Errorf("trust policy: %w", err)
			}
			if _, err := c.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(name), PolicyDocument: aws.String(trust)}); err != nil {
				return nil, fmt.Errorf("update trust policy of role %s: %w", name, err)
			}
		case "description":
			if _, err := c.UpdateRole(ctx, &iam.UpdateRoleInput{RoleName: aws.String(name), Description: aws.String(d.String("description"))}); err != nil {
				return nil, fmt.Errorf("update role %s: %w", name, err)
			}
		case "policies":
			have, err := r.attached(ctx, c, name)
			if err != nil {
				return nil, err
			}
			if err := r.attach(ctx, c, env, name, d.Strings("policies"), have); err != nil {
				return nil, err
			}
		case "tags":
			if _, err := c.TagRole(ctx, &iam.TagRoleInput{RoleName: aws.String(name), Tags: iamTags(d.Tags)}); err != nil {
				return nil, fmt.Errorf("tag role %s: %w", name, err)
			}
		}
	}
	return r.Read(ctx, env, d, &engine.Prior{PhysicalID: name, Region: d.Region})
}

// Delete removes the role from its instance profiles, detaches its managed
// policies and deletes its inline ones (IAM refuses to delete a role that
// has any), then deletes the role.
func (r IAMRole) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := iamClient(env)
	name := live.PhysicalID
	profiles, err := c.ListInstanceProfilesForRole(ctx, &iam.ListInstanceProfilesForRoleInput{RoleName: aws.String(name)})
	if engine.IsCode(err, "NoSuchEntity") {
		return nil
	} else if err != nil {
		return fmt.Errorf("list instance profiles of role %s: %w", name, err)
	}
	for _, p := range profiles.InstanceProfiles {
		if _, err := c.RemoveRoleFromInstanceProfile(ctx, &iam.RemoveRoleFromInstanceProfileInput{RoleName: aws.String(name), InstanceProfileName: p.InstanceProfileName}); err != nil && !engine.IsCode(err, "NoSuchEntity") {
			return fmt.Errorf("remove role %s from instance profile %s: %w", name, aws.ToString(p.InstanceProfileName), err)
		}
		env.Logf("removed role %s from instance profile %s", name, aws.ToString(p.InstanceProfileName))
	}
	attached, err := r.attached(ctx, c, name)
	if err != nil {
		return err
	}
	if err := r.attach(ctx, c, env, name, nil, attached); err != nil {
		return err
	}
	inline, err := c.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("list inline policies of role %s: %w", name, err)
	}
	for _, p := range inline.PolicyNames {
		if _, err := c.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(p)}); err != nil && !engine.IsCode(err, "NoSuchEntity") {
			return fmt.Errorf("delete inline policy %s of role %s: %w", p, name, err)
		}
	}
	if _, err := c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String(name)}); err != nil && !engine.IsCode(err, "NoSuchEntity") {
		return fmt.Errorf("delete role %s: %w", name, err)
	}
	env.Logf("deleted role %s", name)
	return nil
}

// ---------------------------------------------------------------- instance_profile

// InstanceProfile manages an EC2 instance profile holding one role.
//
// Fields: name, role (the role's name). Outputs: arn, name.
type InstanceProfile struct{}

func (InstanceProfile) Type() string         { return "instance_profile" }
func (InstanceProfile) ForceNew() []string   { return []string{"name"} }
func (InstanceProfile) GlobalRegion() string { return globalRegion }

func (InstanceProfile) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	c := iamClient(env)
	name := d.String("name")
	if prior != nil {
		name = prior.PhysicalID
	}
	if name == "" || engine.IsUnknown(name) {
		return nil, engine.ErrNotFound
	}
	out, err := c.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(name)})
	if engine.IsCode(err, "NoSuchEntity") {
		return nil, engine.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("get instance profile %s: %w", name, err)
	}
	ip := out.InstanceProfile
	role := ""
	if len(ip.Roles) > 0 {
		role = aws.ToString(ip.Roles[0].RoleName)
	}
	live := &engine.Live{
		PhysicalID: name,
		Region:     d.Region,
		Outputs:    map[string]string{"arn": aws.ToString(ip.Arn), "name": name},
		Fields:     map[string]any{"name": name, "role": role},
		Tags:       iamTagMap(ip.Tags),
	}
	if len(live.Tags) == 0 {
		tags, err := c.ListInstanceProfileTags(ctx, &iam.ListInstanceProfileTagsInput{InstanceProfileName: aws.String(name)})
		if err != nil {
			return nil, fmt.Errorf("list tags of instance profile %s: %w", name, err)
		}
		live.Tags = iamTagMap(tags.Tags)
	}
	return live, nil
}

func (p InstanceProfile) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	c := iamClient(env)
	name := d.String("name")
	if _, err := c.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String(name), Tags: iamTags(d.Tags)}); err != nil {
		return nil, fmt.Errorf("create instance profile %s: %w", name, err)
	}
	env.Logf("created instance profile %s", name)
	if err := iam.NewInstanceProfileExistsWaiter(c).Wait(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(name)}, iamWait); err != nil {
		return nil, fmt.Errorf("wait for instance profile %s: %w", name, err)
	}
	if role := d.String("role"); role != "" {
		if _, err := c.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String(name), RoleName: aws.String(role)}); err != nil {
			return nil, fmt.Errorf("add role %s to instance profile %s: %w", role, name, err)
		}
		env.Logf("instance profile %s holds role %s", name, role)
	}
	return p.Read(ctx, env, d, &engine.Prior{PhysicalID: name, Region: d.Region})
}

func (p InstanceProfile) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	c := iamClient(env)
	name := live.PhysicalID
	for _, ch := range changes {
		switch ch.Path {
		case "role":
			// A profile holds one role: swap it.
			if old, _ := live.Fields["role"].(string); old != "" {
				if _, err := c.RemoveRoleFromInstanceProfile(ctx, &iam.RemoveRoleFromInstanceProfileInput{InstanceProfileName: aws.String(name), RoleName: aws.String(old)}); err != nil && !engine.IsCode(err, "NoSuchEntity") {
					return nil, fmt.Errorf("remove role %s from instance profile %s: %w", old, name, err)
				}
			}
			if role := d.String("role"); role != "" {
				if _, err := c.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String(name), RoleName: aws.String(role)}); err != nil {
					return nil, fmt.Errorf("add role %s to instance profile %s: %w", role, name, err)
				}
				env.Logf("instance profile %s now holds role %s", name, role)
			}
		case "tags":
			if _, err := c.TagInstanceProfile(ctx, &iam.TagInstanceProfileInput{InstanceProfileName: aws.String(name), Tags: iamTags(d.Tags)}); err != nil {
				return nil, fmt.Errorf("tag instance profile %s: %w", name, err)
			}
		}
	}
	return p.Read(ctx, env, d, &engine.Prior{PhysicalID: name, Region: d.Region})
}

// Delete removes the profile's role, then the profile.
func (InstanceProfile) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := iamClient(env)
	name := live.PhysicalID
	out, err := c.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(name)})
	if engine.IsCode(err, "NoSuchEntity") {
		return nil
	} else if err != nil {
		return fmt.Errorf("get instance profile %s: %w", name, err)
	}
	for _, r := range out.InstanceProfile.Roles {
		if _, err := c.RemoveRoleFromInstanceProfile(ctx, &iam.RemoveRoleFromInstanceProfileInput{InstanceProfileName: aws.String(name), RoleName: r.RoleName}); err != nil && !engine.IsCode(err, "NoSuchEntity") {
			return fmt.Errorf("remove role %s from instance profile %s: %w", aws.ToString(r.RoleName), name, err)
		}
	}
	if _, err := c.DeleteInstanceProfile(ctx, &iam.DeleteInstanceProfileInput{InstanceProfileName: aws.String(name)}); err != nil && !engine.IsCode(err, "NoSuchEntity") {
		return fmt.Errorf("delete instance profile %s: %w", name, err)
	}
	env.Logf("deleted instance profile %s", name)
	return nil
}

// ---------------------------------------------------------------- iam_service_linked_role

// IAMServiceLinkedRole makes sure the account has the service-linked role
// of an AWS service (e.g. AWSServiceRoleForAutoScaling for
// autoscaling.amazonaws.com). AWS creates such a role on the service's
// first use, but a key policy naming it is refused before it exists, so
// the blueprint makes it first.
//
// Fields: service. Outputs: arn, name.
//
// The role is the account's, shared by every stack and by anything else
// using the service: it is reported as the stack's whoever created it
// (service-linked roles cannot be tagged), and Delete leaves it.
type IAMServiceLinkedRole struct{}

func (IAMServiceLinkedRole) Type() string         { return "iam_service_linked_role" }
func (IAMServiceLinkedRole) ForceNew() []string   { return []string{"service"} }
func (IAMServiceLinkedRole) GlobalRegion() string { return globalRegion }

func (r IAMServiceLinkedRole) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	c := iamClient(env)
	service := d.String("service")
	p := iam.NewListRolesPaginator(c, &iam.ListRolesInput{PathPrefix: aws.String("/aws-service-role/" + service + "/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list service-linked roles of %s: %w", service, err)
		}
		for _, role := range page.Roles {
			// A custom-suffix role (AWSServiceRoleForAutoScaling_x) is not
			// the one AWS uses by default.
			if strings.Contains(aws.ToString(role.RoleName), "_") {
				continue
			}
			tags := map[string]string{}
			for k, v := range d.Tags {
				tags[k] = v
			}
			return &engine.Live{
				PhysicalID: aws.ToString(role.RoleName),
				Region:     d.Region,
				Outputs:    map[string]string{"arn": aws.ToString(role.Arn), "name": aws.ToString(role.RoleName), "id": aws.ToString(role.RoleName)},
				Fields:     map[string]any{"service": service},
				Tags:       tags,
			}, nil
		}
	}
	return nil, engine.ErrNotFound
}

func (r IAMServiceLinkedRole) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	c := iamClient(env)
	service := d.String("service")
	_, err := c.CreateServiceLinkedRole(ctx, &iam.CreateServiceLinkedRoleInput{AWSServiceName: aws.String(service)})
	// Made meanwhile by the service's own first use: AWS says InvalidInput
	// ("has been taken in this account"), moto EntityAlreadyExists.
	if err != nil && !engine.IsCode(err, "InvalidInput", "EntityAlreadyExists") {
		return nil, fmt.Errorf("create the service-linked role of %s: %w", service, err)
	}
	if err == nil {
		env.Logf("created the service-linked role of %s", service)
	}
	return r.Read(ctx, env, d, nil)
}

func (r IAMServiceLinkedRole) Update(ctx context.Context, env *engine.Env, d *engine.Desired, _ *engine.Live, _ []engine.FieldChange) (*engine.Live, error) {
	return r.Read(ctx, env, d, nil)
}

// Delete leaves the role: it is the account's, not the stack's.
func (IAMServiceLinkedRole) Delete(_ context.Context, env *engine.Env, live *engine.Live) error {
	env.Logf("left the service-linked role %s: the account's other users of the service need it", live.PhysicalID)
	return nil
}
