package access

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"

	"portal/internal/apperr"
	"portal/internal/engine"
	"portal/internal/staff"
)

// The staff roles of an environment are a stack of Identity Center
// permission sets the engine plans and applies in the management account:
// the sets carry the templates' policies (less the MFA condition, which
// federated sessions never meet) and ownership tags, a second plan is
// empty, and prod needs another admin's approval.
func TestPermissionSetsThroughTheEngine(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	alice := h.person(t, "alice@example.com", staff.Admin)
	bob := h.person(t, "bob@example.com", staff.Admin)

	p, err := h.svc.PlanRoles(ctx, alice, "dev")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Counts()[engine.Create]; got != 5 {
		t.Fatalf("dev plan creates %d permission sets, want 5: %+v", got, p.Changes)
	}
	if b := p.Blocking(); len(b) != 0 {
		t.Fatalf("dev plan blocked: %v", b)
	}
	h.applyRoles(t, "dev", alice, bob)

	c, _, in := h.sso(t)
	arn, err := findPermissionSet(ctx, c, in.ARN, "ops-readonly-dev")
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.DescribePermissionSet(ctx, &ssoadmin.DescribePermissionSetInput{InstanceArn: aws.String(in.ARN), PermissionSetArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(d.PermissionSet.SessionDuration); got != "PT1H" {
		t.Errorf("session duration %s, want PT1H", got)
	}
	tags, err := c.ListTagsForResource(ctx, &ssoadmin.ListTagsForResourceInput{InstanceArn: aws.String(in.ARN), ResourceArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	owned := false
	for _, tg := range tags.Tags {
		owned = owned || (aws.ToString(tg.Key) == engine.TagStack && aws.ToString(tg.Value) == "staff-permission-sets-dev")
	}
	if !owned {
		t.Errorf("permission set tags %+v lack %s=staff-permission-sets-dev", tags.Tags, engine.TagStack)
	}
	pol, err := c.GetInlinePolicyForPermissionSet(ctx, &ssoadmin.GetInlinePolicyForPermissionSetInput{InstanceArn: aws.String(in.ARN), PermissionSetArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	var parsed Policy
	if err := json.Unmarshal([]byte(aws.ToString(pol.InlinePolicy)), &parsed); err != nil {
		t.Fatalf("inline policy: %v: %s", err, aws.ToString(pol.InlinePolicy))
	}
	tmpl, _ := h.svc.Templates().Get("ops-readonly")
	if len(parsed.Statement) != len(tmpl.Policy.Statement) || parsed.Statement[0].Condition != nil {
		t.Errorf("inline policy %s: want the template's statements without the MFA condition", aws.ToString(pol.InlinePolicy))
	}
	if parsed.Statement[1].Effect != "Deny" || !strings.Contains(aws.ToString(pol.InlinePolicy), "s3:GetObject") {
		t.Errorf("inline policy %s lost the patient-data deny", aws.ToString(pol.InlinePolicy))
	}

	again, err := h.svc.PlanRoles(ctx, alice, "dev")
	if err != nil {
		t.Fatal(err)
	}
	if again.HasChanges() {
		t.Errorf("second dev plan has changes: %+v", again.Changes)
	}

	// Prod: the author cannot approve, nobody applies unapproved.
	pp, err := h.svc.PlanRoles(ctx, alice, "prod")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.ApplyRoles(ctx, alice, pp.ID); apperr.KindOf(err) != apperr.Forbidden {
		t.Errorf("apply of unapproved prod plan: err %v, want forbidden", err)
	}
	if err := h.svc.ApproveRoles(ctx, alice, pp.ID); err == nil || !strings.Contains(err.Error(), "another admin") {
		t.Errorf("author approving own plan: err %v, want refusal", err)
	}
	if err := h.svc.ApproveRoles(ctx, bob, pp.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.ApplyRoles(ctx, alice, pp.ID); err != nil {
		t.Fatal(err)
	}
	if err := h.engine.RunNow(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := findPermissionSet(ctx, c, in.ARN, "break-glass-admin-prod"); err != nil {
		t.Errorf("prod break-glass permission set after apply: %v", err)
	}
}
