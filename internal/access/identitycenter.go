package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	istypes "github.com/aws/aws-sdk-go-v2/service/identitystore/types"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssotypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"

	"portal/internal/accounts"
	"portal/internal/engine"
	"portal/internal/staff"
)

// Instance is the organization's IAM Identity Center instance.
type Instance struct {
	ARN             string
	IdentityStoreID string
}

// ssoClients reach Identity Center in the management account.
type ssoClients struct {
	admin    *ssoadmin.Client
	store    *identitystore.Client
	instance Instance
}

// errNoIdentityCenter explains a portal without a management account.
var errNoIdentityCenter = errors.New("no management account is configured: staff AWS access goes through IAM Identity Center in the organization's management account (-management-account-id)")

// findInstance returns the Identity Center instance c sees: the first, as
// an organization has at most one.
func findInstance(ctx context.Context, c *ssoadmin.Client) (Instance, error) {
	out, err := c.ListInstances(ctx, &ssoadmin.ListInstancesInput{})
	if err != nil {
		return Instance{}, fmt.Errorf("list Identity Center instances: %w", err)
	}
	for _, in := range out.Instances {
		if in.Status == "" || in.Status == ssotypes.InstanceStatusActive {
			return Instance{ARN: aws.ToString(in.InstanceArn), IdentityStoreID: aws.ToString(in.IdentityStoreId)}, nil
		}
	}
	return Instance{}, errors.New("IAM Identity Center is not enabled in the management account: enable it (organization instance) first")
}

func (s *Service) sso(ctx context.Context) (*ssoClients, error) {
	if s.management == "" {
		return nil, errNoIdentityCenter
	}
	cfg, err := s.configs(accounts.Management, s.ssoRegion)
	if err != nil {
		return nil, err
	}
	c := &ssoClients{admin: ssoadmin.NewFromConfig(cfg), store: identitystore.NewFromConfig(cfg)}
	s.mu.Lock()
	in := s.instance
	s.mu.Unlock()
	if in.ARN == "" {
		if in, err = findInstance(ctx, c.admin); err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.instance = in
		s.mu.Unlock()
	}
	c.instance = in
	return c, nil
}

// UserName is the Identity Center user name of staff account u: their
// email, the attribute an identity provider's SCIM provisioning sets.
func UserName(u staff.User) string { return u.Email }

// userID returns the Identity Center user of u, creating it when the
// identity store does not have it (an identity provider that provisions
// users through SCIM will have made it already).
func (c *ssoClients) userID(ctx context.Context, u staff.User, create bool) (string, error) {
	name := UserName(u)
	out, err := c.store.GetUserId(ctx, &identitystore.GetUserIdInput{IdentityStoreId: aws.String(c.instance.IdentityStoreID),
		AlternateIdentifier: &istypes.AlternateIdentifierMemberUniqueAttribute{Value: istypes.UniqueAttribute{
			AttributePath: aws.String("userName"), AttributeValue: documentString(name)}}})
	if err == nil {
		return aws.ToString(out.UserId), nil
	}
	if !engine.IsCode(err, "ResourceNotFoundException") {
		return "", fmt.Errorf("find Identity Center user %s: %w", name, err)
	}
	if !create {
		return "", nil
	}
	given, family := splitName(u)
	cr, err := c.store.CreateUser(ctx, &identitystore.CreateUserInput{IdentityStoreId: aws.String(c.instance.IdentityStoreID),
		UserName: aws.String(name), DisplayName: aws.String(displayName(u)),
		Name:   &istypes.Name{GivenName: aws.String(given), FamilyName: aws.String(family)},
		Emails: []istypes.Email{{Value: aws.String(u.Email), Primary: true, Type: aws.String("work")}}})
	if err != nil {
		return "", fmt.Errorf("create Identity Center user %s: %w", name, err)
	}
	return aws.ToString(cr.UserId), nil
}

func displayName(u staff.User) string {
	if n := strings.TrimSpace(u.Name); n != "" {
		return n
	}
	return u.Email
}

// splitName gives Identity Center the given and family names it requires.
func splitName(u staff.User) (string, string) {
	n := strings.Fields(displayName(u))
	if len(n) >= 2 {
		return strings.Join(n[:len(n)-1], " "), n[len(n)-1]
	}
	local, _, _ := strings.Cut(u.Email, "@")
	return local, "(portal)"
}

// permissionSet returns the ARN of the permission set named name.
func (c *ssoClients) permissionSet(ctx context.Context, name string) (string, error) {
	arn, err := findPermissionSet(ctx, c.admin, c.instance.ARN, name)
	if err != nil {
		return "", err
	}
	return arn, nil
}

// assignment is one account assignment.
type assignment struct {
	PermissionSet, Account, PrincipalType, PrincipalID string
}

// assignments lists who holds permission set ps in account.
func (c *ssoClients) assignments(ctx context.Context, account, ps string) ([]assignment, error) {
	var out []assignment
	p := ssoadmin.NewListAccountAssignmentsPaginator(c.admin, &ssoadmin.ListAccountAssignmentsInput{InstanceArn: aws.String(c.instance.ARN),
		AccountId: aws.String(account), PermissionSetArn: aws.String(ps)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list account assignments: %w", err)
		}
		for _, a := range page.AccountAssignments {
			out = append(out, assignment{PermissionSet: ps, Account: account, PrincipalType: string(a.PrincipalType), PrincipalID: aws.ToString(a.PrincipalId)})
		}
	}
	return out, nil
}

// assignmentWait bounds how long an assignment change is waited for;
// Identity Center usually finishes within seconds.
const assignmentWait = 2 * time.Minute

// assign creates (want) or deletes the assignment of user principal to
// permission set ps in account, and waits until Identity Center reports it
// done. Identity Center keeps one assignment per account, permission set
// and principal, so an existing one is left alone.
func (c *ssoClients) assign(ctx context.Context, want bool, account, ps, principal string) error {
	have, err := c.assignments(ctx, account, ps)
	if err != nil {
		return err
	}
	exists := false
	for _, a := range have {
		exists = exists || (a.PrincipalType == string(ssotypes.PrincipalTypeUser) && a.PrincipalID == principal)
	}
	if exists == want {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, assignmentWait)
	defer cancel()
	if want {
		out, err := c.admin.CreateAccountAssignment(ctx, &ssoadmin.CreateAccountAssignmentInput{InstanceArn: aws.String(c.instance.ARN),
			PermissionSetArn: aws.String(ps), PrincipalId: aws.String(principal), PrincipalType: ssotypes.PrincipalTypeUser,
			TargetId: aws.String(account), TargetType: ssotypes.TargetTypeAwsAccount})
		if err != nil {
			return fmt.Errorf("create account assignment: %w", err)
		}
		st := out.AccountAssignmentCreationStatus
		for st != nil && st.Status == ssotypes.StatusValuesInProgress {
			if err := sleep(ctx, 2*time.Second); err != nil {
				return fmt.Errorf("account assignment still in progress: %w", err)
			}
			d, err := c.admin.DescribeAccountAssignmentCreationStatus(ctx, &ssoadmin.DescribeAccountAssignmentCreationStatusInput{
				InstanceArn: aws.String(c.instance.ARN), AccountAssignmentCreationRequestId: st.RequestId})
			if err != nil {
				return fmt.Errorf("account assignment status: %w", err)
			}
			st = d.AccountAssignmentCreationStatus
		}
		if st != nil && st.Status == ssotypes.StatusValuesFailed {
			return fmt.Errorf("Identity Center could not create the assignment: %s", aws.ToString(st.FailureReason))
		}
		return nil
	}
	out, err := c.admin.DeleteAccountAssignment(ctx, &ssoadmin.DeleteAccountAssignmentInput{InstanceArn: aws.String(c.instance.ARN),
		PermissionSetArn: aws.String(ps), PrincipalId: aws.String(principal), PrincipalType: ssotypes.PrincipalTypeUser,
		TargetId: aws.String(account), TargetType: ssotypes.TargetTypeAwsAccount})
	if err != nil {
		return fmt.Errorf("delete account assignment: %w", err)
	}
	st := out.AccountAssignmentDeletionStatus
	for st != nil && st.Status == ssotypes.StatusValuesInProgress {
		if err := sleep(ctx, 2*time.Second); err != nil {
			return fmt.Errorf("assignment removal still in progress: %w", err)
		}
		d, err := c.admin.DescribeAccountAssignmentDeletionStatus(ctx, &ssoadmin.DescribeAccountAssignmentDeletionStatusInput{
			InstanceArn: aws.String(c.instance.ARN), AccountAssignmentDeletionRequestId: st.RequestId})
		if err != nil {
			return fmt.Errorf("assignment removal status: %w", err)
		}
		st = d.AccountAssignmentDeletionStatus
	}
	if st != nil && st.Status == ssotypes.StatusValuesFailed {
		return fmt.Errorf("Identity Center could not remove the assignment: %s", aws.ToString(st.FailureReason))
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// userNames maps Identity Center user ids to user names.
func (c *ssoClients) userName(ctx context.Context, id string) (string, error) {
	out, err := c.store.DescribeUser(ctx, &identitystore.DescribeUserInput{IdentityStoreId: aws.String(c.instance.IdentityStoreID), UserId: aws.String(id)})
	if engine.IsCode(err, "ResourceNotFoundException") {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("describe Identity Center user %s: %w", id, err)
	}
	return aws.ToString(out.UserName), nil
}

// Assignment is one account assignment as Identity Center reports it.
type Assignment struct {
	Environment, Role, PermissionSet string
	// PrincipalType is USER or GROUP; Principal is the user or group name
	// (the id when the identity store does not know it).
	PrincipalType, Principal string
}

// Assignments lists the account assignments of every staff permission set
// in env's account, read live from Identity Center.
func (s *Service) Assignments(ctx context.Context, env string) ([]Assignment, error) {
	c, err := s.sso(ctx)
	if err != nil {
		return nil, err
	}
	var out []Assignment
	for _, t := range s.templates.All() {
		name := t.PermissionSetName(env)
		ps, err := c.permissionSet(ctx, name)
		if errors.Is(err, engine.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("access: %s", engine.Explain(err))
		}
		as, err := c.assignments(ctx, s.accounts[env], ps)
		if err != nil {
			return nil, fmt.Errorf("access: %s", engine.Explain(err))
		}
		for _, a := range as {
			who := a.PrincipalID
			if a.PrincipalType == string(ssotypes.PrincipalTypeUser) {
				if n, err := c.userName(ctx, a.PrincipalID); err != nil {
					return nil, fmt.Errorf("access: %s", engine.Explain(err))
				} else if n != "" {
					who = n
				}
			} else if g, err := c.store.DescribeGroup(ctx, &identitystore.DescribeGroupInput{IdentityStoreId: aws.String(c.instance.IdentityStoreID), GroupId: aws.String(a.PrincipalID)}); err == nil {
				who = aws.ToString(g.DisplayName)
			}
			out = append(out, Assignment{Environment: env, Role: t.Name, PermissionSet: name, PrincipalType: a.PrincipalType, Principal: who})
		}
	}
	return out, nil
}
