package access

import (
	"bytes"
	"context"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	istypes "github.com/aws/aws-sdk-go-v2/service/identitystore/types"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssotypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"

	"portal/internal/apperr"
	"portal/internal/staff"
)

// seedEvent stores an ingested CloudTrail event of Identity Center user
// name in env, through permission set ps, as CloudTrail records it.
func (h *harness) seedEvent(t *testing.T, env, ps, name string, at time.Time) {
	t.Helper()
	arn := "arn:aws:sts::" + h.accounts[env] + ":assumed-role/AWSReservedSSO_" + ps + "_0a1b2c3d4e5f6a7b/" + name
	_, err := h.db.Exec(`INSERT INTO activity_events (event_id, at, account, region, source, name, read_only, identity_type, principal_arn, user_name, session, origin, raw)
		VALUES (?, ?, ?, 'us-east-1', 'ec2.amazonaws.com', 'DescribeInstances', 1, 'AssumedRole', ?, ?, ?, 'test', '{}')`,
		name+ps+at.String(), at.UnixMilli(), h.accounts[env], arn, name, name)
	if err != nil {
		t.Fatal(err)
	}
}

func TestReviewCampaign(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	alice := h.person(t, "alice@example.com", staff.Admin)
	bob := h.person(t, "bob@example.com", staff.Admin)
	eve := h.person(t, "eve@example.com", staff.Ops)
	fin := h.person(t, "fin@example.com", staff.Finance)
	h.applyRoles(t, "dev", alice, bob)
	for _, r := range []Request{
		{UserID: eve.User.ID, Environment: "dev", Role: "ops-readonly", Kind: Standing, Reason: "reads the estate"},
		{UserID: fin.User.ID, Environment: "dev", Role: "finance-billing", Kind: Standing, Reason: "monthly cost review"},
	} {
		if _, err := h.svc.RequestGrant(ctx, alice, r); err != nil {
			t.Fatal(err)
		}
	}
	used := time.Date(2026, 2, 27, 14, 3, 0, 0, time.UTC)
	h.seedEvent(t, "dev", "ops-readonly-dev", "eve@example.com", used)
	h.seedEvent(t, "dev", "ops-readonly-dev", "eve@example.com", used.Add(-time.Hour))
	h.seedEvent(t, "dev", "ops-deployer-dev", "fin@example.com", used)      // another permission set: not this grant's use
	h.seedEvent(t, "prod", "finance-billing-prod", "fin@example.com", used) // another account: not dev's last use

	id, err := h.svc.OpenReview(ctx, alice, "Q1 review")
	if err != nil {
		t.Fatal(err)
	}
	_, items, err := h.svc.GetReview(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 {
		t.Fatalf("%d items, want 2", len(items))
	}
	last := map[string]time.Time{}
	for _, it := range items {
		last[it.UserEmail] = it.LastUsed
	}
	if !last["eve@example.com"].Equal(used) || !last["fin@example.com"].IsZero() {
		t.Errorf("last used %v, want eve at %v and fin unknown", last, used)
	}
	if err := h.svc.CloseReview(ctx, alice, id); apperr.KindOf(err) != apperr.Conflict {
		t.Errorf("closing undecided review: err %v, want conflict", err)
	}
	for _, it := range items {
		d := "keep"
		if it.UserEmail == "fin@example.com" {
			d = "revoke"
		}
		if err := h.svc.DecideItem(ctx, alice, id, it.ID, d, "checked"); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.members(t, "dev", "finance-billing"); len(got) != 0 {
		t.Errorf("revoked in review, still members: %v", got)
	}
	if err := h.svc.CloseReview(ctx, alice, id); err != nil {
		t.Fatal(err)
	}
	r, items, _ := h.svc.GetReview(ctx, id)
	var buf bytes.Buffer
	if err := WriteReviewCSV(&buf, r, items); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("CSV has %d rows, want header + 2", len(recs))
	}
	got := strings.Join(recs[1], ",") + "\n" + strings.Join(recs[2], ",")
	for _, want := range []string{"eve@example.com,ops,dev,ops-readonly,standing", "2026-02-27T14:03:00Z,keep", "fin@example.com", ",unknown,revoke,"} {
		if !strings.Contains(got, want) {
			t.Errorf("CSV rows lack %q:\n%s", want, got)
		}
	}
}

func TestConsistency(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	alice := h.person(t, "alice@example.com", staff.Admin)
	bob := h.person(t, "bob@example.com", staff.Admin)
	eve := h.person(t, "eve@example.com", staff.Ops)
	h.applyRoles(t, "dev", alice, bob)
	if _, err := h.svc.RequestGrant(ctx, alice, Request{UserID: eve.User.ID, Environment: "dev", Role: "ops-deployer", Kind: Standing, Reason: "deploys to dev"}); err != nil {
		t.Fatal(err)
	}
	// eve moves to finance; someone adds a user to a group by hand.
	if _, err := h.staff.SetRoles(ctx, alice.Entry, eve.User.ID, []staff.Role{staff.Finance}); err != nil {
		t.Fatal(err)
	}
	admin, store, in := h.sso(t)
	u, err := store.CreateUser(ctx, &identitystore.CreateUserInput{IdentityStoreId: aws.String(in.IdentityStoreID), UserName: aws.String("mallory"),
		DisplayName: aws.String("Mallory"), Name: &istypes.Name{GivenName: aws.String("Mallory"), FamilyName: aws.String("M")}})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := findPermissionSet(ctx, admin, in.ARN, "break-glass-admin-dev")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateAccountAssignment(ctx, &ssoadmin.CreateAccountAssignmentInput{InstanceArn: aws.String(in.ARN), PermissionSetArn: aws.String(ps),
		PrincipalId: u.UserId, PrincipalType: ssotypes.PrincipalTypeUser, TargetId: aws.String(h.accounts["dev"]), TargetType: ssotypes.TargetTypeAwsAccount}); err != nil {
		t.Fatal(err)
	}
	fs, err := h.svc.Consistency(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		got = append(got, f.UserEmail+": "+f.Problem)
	}
	want := []string{
		"eve@example.com: ops-deployer is for ops or admin; the person holds finance in the portal",
		"mallory: mallory is assigned permission set break-glass-admin-dev in Identity Center but holds no active grant of it",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("findings\n got %q\nwant %q", got, want)
	}
}
