package peertest

import (
	"context"
	"sort"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
)

// IdentityCenter reads an organization's IAM Identity Center the way its
// administrator would in the AWS console, for tests to check what the
// portal did there.
type IdentityCenter struct {
	admin    *ssoadmin.Client
	store    *identitystore.Client
	instance string
	storeID  string
}

// IdentityCenterForTest reaches the Identity Center instance cfg's account
// has in cfg's region.
func IdentityCenterForTest(t testing.TB, cfg aws.Config) *IdentityCenter {
	t.Helper()
	admin := ssoadmin.NewFromConfig(cfg)
	out, err := admin.ListInstances(context.Background(), &ssoadmin.ListInstancesInput{})
	if err != nil || len(out.Instances) == 0 {
		t.Fatalf("Identity Center instance: %v (%d instances)", err, len(out.Instances))
	}
	in := out.Instances[0]
	return &IdentityCenter{admin: admin, store: identitystore.NewFromConfig(cfg), instance: aws.ToString(in.InstanceArn), storeID: aws.ToString(in.IdentityStoreId)}
}

func (c *IdentityCenter) permissionSet(t testing.TB, name string) string {
	t.Helper()
	ctx := context.Background()
	out, err := c.admin.ListPermissionSets(ctx, &ssoadmin.ListPermissionSetsInput{InstanceArn: aws.String(c.instance)})
	if err != nil {
		t.Fatalf("list permission sets: %v", err)
	}
	for _, arn := range out.PermissionSets {
		d, err := c.admin.DescribePermissionSet(ctx, &ssoadmin.DescribePermissionSetInput{InstanceArn: aws.String(c.instance), PermissionSetArn: aws.String(arn)})
		if err != nil {
			t.Fatalf("describe permission set: %v", err)
		}
		if aws.ToString(d.PermissionSet.Name) == name {
			return arn
		}
	}
	return ""
}

// HasPermissionSet reports whether the permission set called name exists.
func (c *IdentityCenter) HasPermissionSet(t testing.TB, name string) bool {
	t.Helper()
	return c.permissionSet(t, name) != ""
}

// Assigned lists the user names assigned permission set name in account,
// sorted.
func (c *IdentityCenter) Assigned(t testing.TB, name, account string) []string {
	t.Helper()
	ctx := context.Background()
	arn := c.permissionSet(t, name)
	if arn == "" {
		t.Fatalf("no permission set %s in Identity Center", name)
	}
	out, err := c.admin.ListAccountAssignments(ctx, &ssoadmin.ListAccountAssignmentsInput{InstanceArn: aws.String(c.instance),
		AccountId: aws.String(account), PermissionSetArn: aws.String(arn)})
	if err != nil {
		t.Fatalf("list account assignments: %v", err)
	}
	var names []string
	for _, a := range out.AccountAssignments {
		u, err := c.store.DescribeUser(ctx, &identitystore.DescribeUserInput{IdentityStoreId: aws.String(c.storeID), UserId: a.PrincipalId})
		if err != nil {
			t.Fatalf("describe user %s: %v", aws.ToString(a.PrincipalId), err)
		}
		names = append(names, aws.ToString(u.UserName))
	}
	sort.Strings(names)
	return names
}
