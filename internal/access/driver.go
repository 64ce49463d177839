package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"portal/internal/engine"
)

// globalRegion is where IAM's API is called.
const globalRegion = "us-east-1"

// inlinePolicy is the name of the one inline policy of a staff group.
const inlinePolicy = "portal-staff-role"

// GroupPath is the IAM path of the groups of stack: IAM groups cannot be
// tagged, so the path carries ownership.
func GroupPath(stack string) string { return "/portal/" + stack + "/" }

// stackOfPath is the stack a group path names, "" for other paths.
func stackOfPath(p string) string {
	if !strings.HasPrefix(p, "/portal/") || !strings.HasSuffix(p, "/") {
		return ""
	}
	return strings.TrimSuffix(strings.TrimPrefix(p, "/portal/"), "/")
}

// GroupDriver manages an IAM group of staff with one inline policy: how
// staff roles were held before IAM Identity Center. Only legacy
// staff-roles-ENV stacks still have such groups, and they are destroyed.
//
// Fields: name, path (/portal/STACK/, which is its ownership), policy (the
// policy document as JSON, compared semantically). Outputs: arn, name.
// Deleting a group first removes its members.
type GroupDriver struct{}

// Drivers lists the engine drivers this package provides: Identity Center
// permission sets, and the IAM groups staff roles were before, which the
// engine still needs to destroy the legacy stacks (RetireLegacy).
func Drivers() []engine.Driver { return []engine.Driver{PermissionSetDriver{}, GroupDriver{}} }

func (GroupDriver) Type() string         { return "staff_group" }
func (GroupDriver) ForceNew() []string   { return []string{"name", "path"} }
func (GroupDriver) GlobalRegion() string { return globalRegion }

func groupClient(env *engine.Env) *iam.Client { return iam.NewFromConfig(env.Config(globalRegion)) }

func isNoSuchEntity(err error) bool {
	var nse *types.NoSuchEntityException
	return errors.As(err, &nse) || engine.IsCode(err, "NoSuchEntity")
}

// sameDocument reports whether two policy documents say the same thing
// (whitespace, key order and URL encoding aside).
func sameDocument(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(decodeDoc(a)), &x) != nil || json.Unmarshal([]byte(decodeDoc(b)), &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

// decodeDoc returns a policy document as JSON (IAM returns it URL-encoded).
func decodeDoc(doc string) string {
	if strings.HasPrefix(strings.TrimSpace(doc), "{") {
		return doc
	}
	if s, err := url.QueryUnescape(doc); err == nil {
		return s
	}
	return doc
}

func (GroupDriver) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	c := groupClient(env)
	name := d.String("name")
	if prior != nil && prior.PhysicalID != "" {
		name = prior.PhysicalID
	}
	out, err := c.GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String(name)})
	if isNoSuchEntity(err) {
		return nil, fmt.Errorf("group %s: %w", name, engine.ErrNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("get group %s: %w", name, err)
	}
	g := out.Group
	path := aws.ToString(g.Path)
	live := &engine.Live{PhysicalID: name, Region: globalRegion,
		Outputs: map[string]string{"arn": aws.ToString(g.Arn), "name": name},
		Fields:  map[string]any{"name": name, "path": path},
		Tags:    map[string]string{}}
	// The path is the group's only ownership mark; a group in its stack's
	// path carries, in effect, every ownership tag the engine wants.
	if st := stackOfPath(path); st != "" && st == d.Tags[engine.TagStack] {
		for k, v := range d.Tags {
			live.Tags[k] = v
		}
	} else if st != "" {
		live.Tags[engine.TagStack] = st
		live.Tags[engine.TagManaged] = "portal"
	}
	pol, err := c.GetGroupPolicy(ctx, &iam.GetGroupPolicyInput{GroupName: aws.String(name), PolicyName: aws.String(inlinePolicy)})
	switch {
	case isNoSuchEntity(err):
		live.Fields["policy"] = ""
	case err != nil:
		return nil, fmt.Errorf("get group policy %s: %w", name, err)
	default:
		doc := decodeDoc(aws.ToString(pol.PolicyDocument))
		if want := d.String("policy"); !engine.IsUnknown(d.Fields["policy"]) && sameDocument(want, doc) {
			doc = want
		}
		live.Fields["policy"] = doc
	}
	return live, nil
}

func (g GroupDriver) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	c := groupClient(env)
	name := d.String("name")
	_, err := c.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String(name), Path: aws.String(d.String("path"))})
	if err != nil && !engine.IsCode(err, "EntityAlreadyExists") {
		return nil, fmt.Errorf("create group %s: %w", name, err)
	}
	env.Logf("created group %s", name)
	if err := g.putPolicy(ctx, c, name, d.String("policy")); err != nil {
		return nil, err
	}
	return g.Read(ctx, env, d, nil)
}

func (GroupDriver) putPolicy(ctx context.Context, c *iam.Client, name, doc string) error {
	_, err := c.PutGroupPolicy(ctx, &iam.PutGroupPolicyInput{GroupName: aws.String(name), PolicyName: aws.String(inlinePolicy), PolicyDocument: aws.String(doc)})
	if err != nil {
		return fmt.Errorf("put group policy %s: %w", name, err)
	}
	return nil
}

func (g GroupDriver) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	c := groupClient(env)
	for _, ch := range changes {
		if ch.Path == "policy" {
			if err := g.putPolicy(ctx, c, live.PhysicalID, d.String("policy")); err != nil {
				return nil, err
			}
			env.Logf("replaced the policy of group %s", live.PhysicalID)
		}
	}
	return g.Read(ctx, env, d, &engine.Prior{PhysicalID: live.PhysicalID})
}

// Delete removes the group's members and inline policies, then the group.
func (GroupDriver) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := groupClient(env)
	name := live.PhysicalID
	out, err := c.GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String(name)})
	if isNoSuchEntity(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("get group %s: %w", name, err)
	}
	for _, u := range out.Users {
		if _, err := c.RemoveUserFromGroup(ctx, &iam.RemoveUserFromGroupInput{GroupName: aws.String(name), UserName: u.UserName}); err != nil && !isNoSuchEntity(err) {
			return fmt.Errorf("remove %s from group %s: %w", aws.ToString(u.UserName), name, err)
		}
		env.Logf("removed %s from group %s", aws.ToString(u.UserName), name)
	}
	pols, err := c.ListGroupPolicies(ctx, &iam.ListGroupPoliciesInput{GroupName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("list group policies %s: %w", name, err)
	}
	for _, p := range pols.PolicyNames {
		if _, err := c.DeleteGroupPolicy(ctx, &iam.DeleteGroupPolicyInput{GroupName: aws.String(name), PolicyName: aws.String(p)}); err != nil && !isNoSuchEntity(err) {
			return fmt.Errorf("delete group policy %s/%s: %w", name, p, err)
		}
	}
	if _, err := c.DeleteGroup(ctx, &iam.DeleteGroupInput{GroupName: aws.String(name)}); err != nil && !isNoSuchEntity(err) {
		return fmt.Errorf("delete group %s: %w", name, err)
	}
	env.Logf("deleted group %s", name)
	return nil
}
