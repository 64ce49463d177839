package access

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"portal/internal/apperr"
	"portal/internal/engine"
	"portal/internal/staff"
)

// The staff roles of an environment are a stack the engine plans and
// applies: groups with the templates' policies appear in the account, a
// second plan is empty, and prod needs another admin's approval.
func TestRolesStackThroughTheEngine(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	alice := h.person(t, "alice@example.com", staff.Admin)
	bob := h.person(t, "bob@example.com", staff.Admin)

	p, err := h.svc.PlanRoles(ctx, alice, "dev")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Counts()[engine.Create]; got != 5 {
		t.Fatalf("dev plan creates %d groups, want 5: %+v", got, p.Changes)
	}
	if b := p.Blocking(); len(b) != 0 {
		t.Fatalf("dev plan blocked: %v", b)
	}
	h.applyRoles(t, "dev", alice, bob)

	c := iam.NewFromConfig(h.cfg("dev"))
	g, err := c.GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String("staff-ops-readonly")})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(g.Group.Path), "/portal/staff-roles-dev/"; got != want {
		t.Errorf("group path %s, want %s", got, want)
	}
	pol, err := c.GetGroupPolicy(ctx, &iam.GetGroupPolicyInput{GroupName: aws.String("staff-ops-readonly"), PolicyName: aws.String(inlinePolicy)})
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := url.QueryUnescape(aws.ToString(pol.PolicyDocument))
	var parsed Policy
	if err := json.Unmarshal([]byte(doc), &parsed); err != nil {
		t.Fatalf("policy in IAM: %v: %s", err, doc)
	}
	if got := parsed.Statement[0].Condition["Bool"]["aws:MultiFactorAuthPresent"]; got != "true" {
		t.Errorf("policy in IAM lacks the MFA condition: %s", doc)
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
	if _, err := iam.NewFromConfig(h.cfg("prod")).GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String("staff-break-glass-admin")}); err != nil {
		t.Errorf("prod break-glass group after apply: %v", err)
	}
}
