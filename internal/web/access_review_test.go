package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"portal/internal/peers"
	"portal/internal/peers/peertest"
	"portal/internal/staff"
)

// newEstateHarness is a portal whose dev, test and prod accounts (and the
// organization's management account, with Identity Center) are fresh moto
// accounts, with nothing deployed.
func newEstateHarness(t *testing.T) *harness {
	t.Helper()
	m := peertest.MotoForTest(t)
	peertest.SetAWSEnv(t, m)
	mgmt := peertest.AccountForTest(t)
	peertest.IdentityCenterForTest(t, peers.AssumeAccount(context.Background(), m.AWSConfig("eu-central-1"), mgmt, peertest.TestRole))
	args := []string{"-management-account-id", mgmt, "-management-role-arn", peers.RoleARN(mgmt, peertest.TestRole), "-identity-center-region", "eu-central-1"}
	for _, env := range []string{"dev", "test", "prod"} {
		acct := peertest.AccountForTest(t)
		args = append(args, "-"+env+"-account-id", acct, "-"+env+"-role-arn", peers.RoleARN(acct, peertest.TestRole))
	}
	return newHarness(t, args...)
}

// TestGrantWhileAWSLagsAndReviewWithUndecidedItems: a grant whose change
// in AWS fails (the role's permission set is not applied yet) says why
// after "has not been changed yet" and is not shown as plainly active;
// closing a review with an undecided grant names that grant instead of a
// bare 409.
func TestGrantWhileAWSLagsAndReviewWithUndecidedItems(t *testing.T) {
	h := newEstateHarness(t)
	c, _ := h.signedIn(t, staff.Admin)
	person := h.newUser(t, staff.Ops)

	r := c.submit(t, "/access/aws", "/access/aws/grants", url.Values{"user": {itoa(person.ID)}, "environment": {"dev"}, "role": {"ops-readonly"},
		"reason": {"on-call from Monday"}})
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("grant: got %d\n%s", r.StatusCode, r.Body)
	}
	page := c.get(t, "/access/aws")
	flash, _ := page.TestID(t, "flash")
	if i := strings.Index(flash, "(retried every minute):"); i < 0 || strings.TrimSpace(flash[i+len("(retried every minute):"):]) == "" {
		t.Errorf("flash: %q, want the reason after the colon", flash)
	} else if !strings.Contains(flash, "staff-permission-sets-dev") {
		t.Errorf("flash: %q, want it to say the staff-permission-sets-dev stack must be applied first", flash)
	}
	cell := page.Doc(t).Find(`[data-testid="cell-` + person.Email + `-dev"]`)
	if got := cell.Find(`.badge-warn`).Text(); !strings.Contains(got, "not in AWS yet") {
		t.Errorf("the matrix shows the grant as %q, want it marked not in AWS yet", strings.TrimSpace(cell.Text()))
	}
	if cell.Find(`.badge-ok`).Length() != 0 {
		t.Errorf("the matrix shows a grant AWS does not reflect as plainly held")
	}

	r = c.submit(t, "/access/aws/reviews", "/access/aws/reviews", url.Values{"title": {"Q4 review"}})
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("open review: got %d\n%s", r.StatusCode, r.Body)
	}
	review := r.Location()
	r = c.submit(t, review, review+"/close", nil)
	if r.StatusCode != http.StatusConflict {
		t.Fatalf("close with an undecided grant: got %d, want 409", r.StatusCode)
	}
	if got, _ := r.TestID(t, "review-problem"); !strings.Contains(got, person.Email) || !strings.Contains(got, "ops-readonly in dev") {
		t.Errorf("refusal: %q, want it to name %s's ops-readonly in dev", got, person.Email)
	}
	if r.Doc(t).Find(`tr.row-attention`).Length() != 1 {
		t.Errorf("want the one undecided row marked")
	}
	if _, ok := r.TestID(t, "close-review"); !ok {
		t.Errorf("the refused page lost its close button")
	}
}
