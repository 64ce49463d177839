package access

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	isdoc "github.com/aws/aws-sdk-go-v2/service/identitystore/document"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssotypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"

	"portal/internal/engine"
)

func documentString(s string) isdoc.Interface { return isdoc.NewLazyDocument(s) }

// PermissionSetDriver manages an IAM Identity Center permission set with
// one inline policy, in the management account's Identity Center instance
// (the stack's region is the instance's home region).
//
// Fields: name (unique in the instance; it becomes the
// AWSReservedSSO_NAME_… role in each account it is assigned in),
// description, session_duration (ISO 8601, e.g. PT1H: how long a
// session lasts, so how long a removed assignment can still be used), policy
// (the inline policy as JSON, compared semantically). Tags carry ownership.
// Outputs: arn, name. A changed policy or duration is provisioned to every
// account the set is assigned in (ProvisionPermissionSet), as AWS requires
// before accounts see it.
type PermissionSetDriver struct{}

func (PermissionSetDriver) Type() string       { return "sso_permission_set" }
func (PermissionSetDriver) ForceNew() []string { return []string{"name"} }

func psClient(env *engine.Env, region string) *ssoadmin.Client {
	return ssoadmin.NewFromConfig(env.Config(region))
}

// findPermissionSet returns the ARN of the permission set called name in
// instance, or an error wrapping engine.ErrNotFound.
func findPermissionSet(ctx context.Context, c *ssoadmin.Client, instance, name string) (string, error) {
	p := ssoadmin.NewListPermissionSetsPaginator(c, &ssoadmin.ListPermissionSetsInput{InstanceArn: aws.String(instance)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("list permission sets: %w", err)
		}
		for _, arn := range page.PermissionSets {
			d, err := c.DescribePermissionSet(ctx, &ssoadmin.DescribePermissionSetInput{InstanceArn: aws.String(instance), PermissionSetArn: aws.String(arn)})
			if err != nil {
				return "", fmt.Errorf("describe permission set %s: %w", arn, err)
			}
			if aws.ToString(d.PermissionSet.Name) == name {
				return arn, nil
			}
		}
	}
	return "", fmt.Errorf("permission set %s: %w", name, engine.ErrNotFound)
}

func (PermissionSetDriver) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	c := psClient(env, d.Region)
	in, err := findInstance(ctx, c)
	if err != nil {
		return nil, err
	}
	arn := ""
	if prior != nil && prior.PhysicalID != "" {
		arn = prior.PhysicalID
	} else if arn, err = findPermissionSet(ctx, c, in.ARN, d.String("name")); err != nil {
		return nil, err
	}
	out, err := c.DescribePermissionSet(ctx, &ssoadmin.DescribePermissionSetInput{InstanceArn: aws.String(in.ARN), PermissionSetArn: aws.String(arn)})
	if engine.IsCode(err, "ResourceNotFoundException") {
		return nil, fmt.Errorf("permission set %s: %w", arn, engine.ErrNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("describe permission set %s: %w", arn, err)
	}
	ps := out.PermissionSet
	name := aws.ToString(ps.Name)
	live := &engine.Live{PhysicalID: arn, Region: d.Region,
		Outputs: map[string]string{"arn": arn, "name": name},
		Fields: map[string]any{"name": name, "description": aws.ToString(ps.Description),
			"session_duration": aws.ToString(ps.SessionDuration)},
		Tags: map[string]string{}}
	tags, err := c.ListTagsForResource(ctx, &ssoadmin.ListTagsForResourceInput{InstanceArn: aws.String(in.ARN), ResourceArn: aws.String(arn)})
	if err != nil {
		return nil, fmt.Errorf("list tags of permission set %s: %w", name, err)
	}
	for _, t := range tags.Tags {
		live.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	pol, err := c.GetInlinePolicyForPermissionSet(ctx, &ssoadmin.GetInlinePolicyForPermissionSetInput{InstanceArn: aws.String(in.ARN), PermissionSetArn: aws.String(arn)})
	if err != nil {
		return nil, fmt.Errorf("get inline policy of permission set %s: %w", name, err)
	}
	doc := aws.ToString(pol.InlinePolicy)
	if want := d.String("policy"); !engine.IsUnknown(d.Fields["policy"]) && sameDocument(want, doc) {
		doc = want
	}
	live.Fields["policy"] = doc
	return live, nil
}

func (p PermissionSetDriver) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	c := psClient(env, d.Region)
	in, err := findInstance(ctx, c)
	if err != nil {
		return nil, err
	}
	var tags []ssotypes.Tag
	for k, v := range d.Tags {
		tags = append(tags, ssotypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	name := d.String("name")
	out, err := c.CreatePermissionSet(ctx, &ssoadmin.CreatePermissionSetInput{InstanceArn: aws.String(in.ARN), Name: aws.String(name),
		Description: aws.String(d.String("description")), SessionDuration: aws.String(d.String("session_duration")), Tags: tags})
	var arn string
	switch {
	case engine.IsCode(err, "ConflictException"):
		// A crash after CreatePermissionSet: the set exists by this name.
		if arn, err = findPermissionSet(ctx, c, in.ARN, name); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("create permission set %s: %w", name, err)
	default:
		arn = aws.ToString(out.PermissionSet.PermissionSetArn)
	}
	env.Logf("created permission set %s", name)
	if _, err := c.PutInlinePolicyToPermissionSet(ctx, &ssoadmin.PutInlinePolicyToPermissionSetInput{InstanceArn: aws.String(in.ARN),
		PermissionSetArn: aws.String(arn), InlinePolicy: aws.String(d.String("policy"))}); err != nil {
		return nil, fmt.Errorf("put inline policy of permission set %s: %w", name, err)
	}
	return p.Read(ctx, env, d, &engine.Prior{PhysicalID: arn})
}

func (p PermissionSetDriver) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	c := psClient(env, d.Region)
	in, err := findInstance(ctx, c)
	if err != nil {
		return nil, err
	}
	arn := live.PhysicalID
	provision := false
	for _, ch := range changes {
		switch ch.Path {
		case "policy":
			if _, err := c.PutInlinePolicyToPermissionSet(ctx, &ssoadmin.PutInlinePolicyToPermissionSetInput{InstanceArn: aws.String(in.ARN),
				PermissionSetArn: aws.String(arn), InlinePolicy: aws.String(d.String("policy"))}); err != nil {
				return nil, fmt.Errorf("put inline policy of permission set %s: %w", d.String("name"), err)
			}
			env.Logf("replaced the inline policy of permission set %s", d.String("name"))
			provision = true
		case "description", "session_duration":
			if _, err := c.UpdatePermissionSet(ctx, &ssoadmin.UpdatePermissionSetInput{InstanceArn: aws.String(in.ARN), PermissionSetArn: aws.String(arn),
				Description: aws.String(d.String("description")), SessionDuration: aws.String(d.String("session_duration"))}); err != nil {
				return nil, fmt.Errorf("update permission set %s: %w", d.String("name"), err)
			}
			provision = true
		}
	}
	var add []ssotypes.Tag
	for k, v := range d.Tags {
		if live.Tags[k] != v {
			add = append(add, ssotypes.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
	}
	if len(add) > 0 {
		if _, err := c.TagResource(ctx, &ssoadmin.TagResourceInput{InstanceArn: aws.String(in.ARN), ResourceArn: aws.String(arn), Tags: add}); err != nil {
			return nil, fmt.Errorf("tag permission set %s: %w", d.String("name"), err)
		}
	}
	if provision {
		if err := provisionEverywhere(ctx, c, in.ARN, arn); err != nil {
			return nil, fmt.Errorf("provision permission set %s: %w", d.String("name"), err)
		}
		env.Logf("provisioned permission set %s to the accounts it is assigned in", d.String("name"))
	}
	return p.Read(ctx, env, d, &engine.Prior{PhysicalID: arn})
}

// provisionEverywhere pushes a changed permission set to every account it
// is provisioned in and waits for Identity Center to finish.
func provisionEverywhere(ctx context.Context, c *ssoadmin.Client, instance, arn string) error {
	out, err := c.ProvisionPermissionSet(ctx, &ssoadmin.ProvisionPermissionSetInput{InstanceArn: aws.String(instance), PermissionSetArn: aws.String(arn),
		TargetType: ssotypes.ProvisionTargetTypeAllProvisionedAccounts})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, assignmentWait)
	defer cancel()
	st := out.PermissionSetProvisioningStatus
	for st != nil && st.Status == ssotypes.StatusValuesInProgress {
		if err := sleep(ctx, 2*time.Second); err != nil {
			return err
		}
		d, err := c.DescribePermissionSetProvisioningStatus(ctx, &ssoadmin.DescribePermissionSetProvisioningStatusInput{InstanceArn: aws.String(instance),
			ProvisionPermissionSetRequestId: st.RequestId})
		if err != nil {
			return err
		}
		st = d.PermissionSetProvisioningStatus
	}
	if st != nil && st.Status == ssotypes.StatusValuesFailed {
		return fmt.Errorf("%s", aws.ToString(st.FailureReason))
	}
	return nil
}

// Delete removes every account assignment of the set (AWS refuses to
// delete a permission set still provisioned), then the set.
func (PermissionSetDriver) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := psClient(env, live.Region)
	in, err := findInstance(ctx, c)
	if err != nil {
		return err
	}
	arn := live.PhysicalID
	accts, err := c.ListAccountsForProvisionedPermissionSet(ctx, &ssoadmin.ListAccountsForProvisionedPermissionSetInput{InstanceArn: aws.String(in.ARN), PermissionSetArn: aws.String(arn)})
	if engine.IsCode(err, "ResourceNotFoundException") {
		return nil
	} else if err != nil {
		return fmt.Errorf("accounts of permission set %s: %w", arn, err)
	}
	sc := &ssoClients{admin: c, instance: in}
	for _, acct := range accts.AccountIds {
		as, err := sc.assignments(ctx, acct, arn)
		if err != nil {
			return err
		}
		for _, a := range as {
			if _, err := c.DeleteAccountAssignment(ctx, &ssoadmin.DeleteAccountAssignmentInput{InstanceArn: aws.String(in.ARN), PermissionSetArn: aws.String(arn),
				PrincipalId: aws.String(a.PrincipalID), PrincipalType: ssotypes.PrincipalType(a.PrincipalType), TargetId: aws.String(acct),
				TargetType: ssotypes.TargetTypeAwsAccount}); err != nil && !engine.IsCode(err, "ResourceNotFoundException") {
				return fmt.Errorf("remove assignment of %s in %s: %w", arn, acct, err)
			}
			env.Logf("removed the assignment of %s %s in account %s", a.PrincipalType, a.PrincipalID, acct)
		}
	}
	if _, err := c.DeletePermissionSet(ctx, &ssoadmin.DeletePermissionSetInput{InstanceArn: aws.String(in.ARN), PermissionSetArn: aws.String(arn)}); err != nil &&
		!engine.IsCode(err, "ResourceNotFoundException") {
		return fmt.Errorf("delete permission set %s: %w", arn, err)
	}
	env.Logf("deleted permission set %s", live.Outputs["name"])
	return nil
}
