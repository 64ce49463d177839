package orgguard

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"

	"portal/internal/engine"
)

// apiRegion is where the Organizations API is called.
const apiRegion = "us-east-1"

// RootTarget stands for the organization's root in an SCP's targets.
const RootTarget = "root"

// SCPDriver manages a service control policy in the management account's
// organization.
//
// Fields: name (unique among the organization's policies), description,
// content (the policy as JSON, compared semantically), targets (where it is
// attached: "root" for the organization's root, or OU or account ids).
// Tags carry ownership. Outputs: id, arn, name. Before attaching, the
// driver enables the SERVICE_CONTROL_POLICY type on the root, as AWS
// requires.
type SCPDriver struct{}

// Drivers lists the engine drivers this package provides.
func Drivers() []engine.Driver { return []engine.Driver{SCPDriver{}} }

func (SCPDriver) Type() string         { return "org_scp" }
func (SCPDriver) ForceNew() []string   { return []string{"name"} }
func (SCPDriver) GlobalRegion() string { return apiRegion }

func orgClient(env *engine.Env) *organizations.Client {
	return organizations.NewFromConfig(env.Config(apiRegion))
}

// root returns the organization's root.
func root(ctx context.Context, c *organizations.Client) (orgtypes.Root, error) {
	out, err := c.ListRoots(ctx, &organizations.ListRootsInput{})
	if engine.IsCode(err, "AWSOrganizationsNotInUseException") {
		return orgtypes.Root{}, fmt.Errorf("the management account has no organization: create it in AWS Organizations first")
	} else if err != nil {
		return orgtypes.Root{}, fmt.Errorf("list roots: %w", err)
	}
	if len(out.Roots) == 0 {
		return orgtypes.Root{}, fmt.Errorf("the organization has no root")
	}
	return out.Roots[0], nil
}

func findPolicy(ctx context.Context, c *organizations.Client, name string) (string, error) {
	p := organizations.NewListPoliciesPaginator(c, &organizations.ListPoliciesInput{Filter: orgtypes.PolicyTypeServiceControlPolicy})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("list policies: %w", err)
		}
		for _, s := range page.Policies {
			if aws.ToString(s.Name) == name {
				return aws.ToString(s.Id), nil
			}
		}
	}
	return "", fmt.Errorf("policy %s: %w", name, engine.ErrNotFound)
}

func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

// wantTargets is d's targets with "root" resolved to the root's id.
func wantTargets(d *engine.Desired, rootID string) []string {
	var out []string
	for _, t := range d.Strings("targets") {
		if t == RootTarget {
			t = rootID
		}
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

func (SCPDriver) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	c := orgClient(env)
	r, err := root(ctx, c)
	if err != nil {
		return nil, err
	}
	id := ""
	if prior != nil && prior.PhysicalID != "" {
		id = prior.PhysicalID
	} else if id, err = findPolicy(ctx, c, d.String("name")); err != nil {
		return nil, err
	}
	out, err := c.DescribePolicy(ctx, &organizations.DescribePolicyInput{PolicyId: aws.String(id)})
	if engine.IsCode(err, "PolicyNotFoundException") {
		return nil, fmt.Errorf("policy %s: %w", id, engine.ErrNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("describe policy %s: %w", id, err)
	}
	sum := out.Policy.PolicySummary
	content := aws.ToString(out.Policy.Content)
	if want := d.String("content"); sameJSON(want, content) {
		content = want
	}
	var targets []any
	tp := organizations.NewListTargetsForPolicyPaginator(c, &organizations.ListTargetsForPolicyInput{PolicyId: aws.String(id)})
	for tp.HasMorePages() {
		page, err := tp.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("targets of policy %s: %w", id, err)
		}
		for _, t := range page.Targets {
			tid := aws.ToString(t.TargetId)
			if tid == aws.ToString(r.Id) {
				tid = RootTarget
			}
			targets = append(targets, tid)
		}
	}
	sort.Slice(targets, func(i, j int) bool { return targets[i].(string) < targets[j].(string) })
	live := &engine.Live{PhysicalID: id, Region: apiRegion,
		Outputs: map[string]string{"id": id, "arn": aws.ToString(sum.Arn), "name": aws.ToString(sum.Name)},
		Fields: map[string]any{"name": aws.ToString(sum.Name), "description": aws.ToString(sum.Description), "content": content,
			"targets": targets},
		Tags: map[string]string{}}
	tags, err := c.ListTagsForResource(ctx, &organizations.ListTagsForResourceInput{ResourceId: aws.String(id)})
	if err != nil {
		return nil, fmt.Errorf("tags of policy %s: %w", id, err)
	}
	for _, t := range tags.Tags {
		live.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return live, nil
}

// enableSCPs turns service control policies on at the root, once.
func enableSCPs(ctx context.Context, c *organizations.Client, r orgtypes.Root) error {
	for _, pt := range r.PolicyTypes {
		if pt.Type == orgtypes.PolicyTypeServiceControlPolicy && pt.Status == orgtypes.PolicyTypeStatusEnabled {
			return nil
		}
	}
	_, err := c.EnablePolicyType(ctx, &organizations.EnablePolicyTypeInput{RootId: r.Id, PolicyType: orgtypes.PolicyTypeServiceControlPolicy})
	if err != nil && !engine.IsCode(err, "PolicyTypeAlreadyEnabledException") {
		return fmt.Errorf("enable service control policies: %w", err)
	}
	return nil
}

func (s SCPDriver) attach(ctx context.Context, env *engine.Env, c *organizations.Client, r orgtypes.Root, id string, have, want []string) error {
	if len(want) > 0 {
		if err := enableSCPs(ctx, c, r); err != nil {
			return err
		}
	}
	for _, t := range want {
		if slices.Contains(have, t) {
			continue
		}
		if _, err := c.AttachPolicy(ctx, &organizations.AttachPolicyInput{PolicyId: aws.String(id), TargetId: aws.String(t)}); err != nil &&
			!engine.IsCode(err, "DuplicatePolicyAttachmentException") {
			return fmt.Errorf("attach policy %s to %s: %w", id, t, err)
		}
		env.Logf("attached policy %s to %s", id, t)
	}
	for _, t := range have {
		if slices.Contains(want, t) {
			continue
		}
		if _, err := c.DetachPolicy(ctx, &organizations.DetachPolicyInput{PolicyId: aws.String(id), TargetId: aws.String(t)}); err != nil &&
			!engine.IsCode(err, "PolicyNotAttachedException") {
			return fmt.Errorf("detach policy %s from %s: %w", id, t, err)
		}
		env.Logf("detached policy %s from %s", id, t)
	}
	return nil
}

func (s SCPDriver) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	c := orgClient(env)
	r, err := root(ctx, c)
	if err != nil {
		return nil, err
	}
	var tags []orgtypes.Tag
	for k, v := range d.Tags {
		tags = append(tags, orgtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	name := d.String("name")
	out, err := c.CreatePolicy(ctx, &organizations.CreatePolicyInput{Name: aws.String(name), Description: aws.String(d.String("description")),
		Content: aws.String(d.String("content")), Type: orgtypes.PolicyTypeServiceControlPolicy, Tags: tags})
	var id string
	switch {
	case engine.IsCode(err, "DuplicatePolicyException"):
		if id, err = findPolicy(ctx, c, name); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("create policy %s: %w", name, err)
	default:
		id = aws.ToString(out.Policy.PolicySummary.Id)
	}
	env.Logf("created service control policy %s (%s)", name, id)
	if err := s.attach(ctx, env, c, r, id, nil, wantTargets(d, aws.ToString(r.Id))); err != nil {
		return nil, err
	}
	return s.Read(ctx, env, d, &engine.Prior{PhysicalID: id})
}

func (s SCPDriver) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	c := orgClient(env)
	r, err := root(ctx, c)
	if err != nil {
		return nil, err
	}
	id := live.PhysicalID
	for _, ch := range changes {
		switch ch.Path {
		case "content", "description":
			if _, err := c.UpdatePolicy(ctx, &organizations.UpdatePolicyInput{PolicyId: aws.String(id), Content: aws.String(d.String("content")),
				Description: aws.String(d.String("description"))}); err != nil {
				return nil, fmt.Errorf("update policy %s: %w", id, err)
			}
			env.Logf("updated service control policy %s", d.String("name"))
		case "targets":
			var have []string
			for _, t := range live.Fields["targets"].([]any) {
				tid := t.(string)
				if tid == RootTarget {
					tid = aws.ToString(r.Id)
				}
				have = append(have, tid)
			}
			if err := s.attach(ctx, env, c, r, id, have, wantTargets(d, aws.ToString(r.Id))); err != nil {
				return nil, err
			}
		}
	}
	var add []orgtypes.Tag
	for k, v := range d.Tags {
		if live.Tags[k] != v {
			add = append(add, orgtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
	}
	if len(add) > 0 {
		if _, err := c.TagResource(ctx, &organizations.TagResourceInput{ResourceId: aws.String(id), Tags: add}); err != nil {
			return nil, fmt.Errorf("tag policy %s: %w", id, err)
		}
	}
	return s.Read(ctx, env, d, &engine.Prior{PhysicalID: id})
}

// Delete detaches the policy everywhere, then deletes it.
func (SCPDriver) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := orgClient(env)
	id := live.PhysicalID
	tp := organizations.NewListTargetsForPolicyPaginator(c, &organizations.ListTargetsForPolicyInput{PolicyId: aws.String(id)})
	for tp.HasMorePages() {
		page, err := tp.NextPage(ctx)
		if engine.IsCode(err, "PolicyNotFoundException") {
			return nil
		} else if err != nil {
			return fmt.Errorf("targets of policy %s: %w", id, err)
		}
		for _, t := range page.Targets {
			if _, err := c.DetachPolicy(ctx, &organizations.DetachPolicyInput{PolicyId: aws.String(id), TargetId: t.TargetId}); err != nil &&
				!engine.IsCode(err, "PolicyNotAttachedException") {
				return fmt.Errorf("detach policy %s: %w", id, err)
			}
		}
	}
	if _, err := c.DeletePolicy(ctx, &organizations.DeletePolicyInput{PolicyId: aws.String(id)}); err != nil && !engine.IsCode(err, "PolicyNotFoundException") {
		return fmt.Errorf("delete policy %s: %w", id, err)
	}
	env.Logf("deleted service control policy %s", live.Outputs["name"])
	return nil
}
