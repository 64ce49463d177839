package access

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/staff"
)

func (h *harness) members(t *testing.T, env, role string) []string {
	t.Helper()
	m, err := h.svc.Members(context.Background(), env, role)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (h *harness) expire(t *testing.T) int {
	t.Helper()
	n, err := h.svc.ExpireDue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The walk-through: an admin gives an ops engineer read-only access
// in prod, the engineer asks for an hour of deployer access, a second admin
// approves, IAM shows it, and at expiry it is gone; overlapping elevations
// never shorten each other; the schedule lives in the database.
func TestProdGrantAndElevation(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	alice := h.person(t, "alice@example.com", staff.Admin)
	bob := h.person(t, "bob@example.com", staff.Admin)
	eve := h.person(t, "eve@example.com", staff.Ops)
	h.applyRoles(t, "prod", alice, bob)

	ro, err := h.svc.RequestGrant(ctx, alice, Request{UserID: eve.User.ID, Environment: "prod", Role: "ops-readonly", Kind: Standing, Reason: "on-call rota from March"})
	if err != nil {
		t.Fatal(err)
	}
	if ro.State != Pending {
		t.Fatalf("prod standing grant state %s, want pending", ro.State)
	}
	if got := h.members(t, "prod", "ops-readonly"); len(got) != 0 {
		t.Fatalf("before approval the group holds %v, want nobody", got)
	}
	if _, err := h.svc.Decide(ctx, alice, ro.ID, true, ""); apperr.KindOf(err) != apperr.Forbidden {
		t.Errorf("requester approving: err %v, want forbidden", err)
	}
	if _, err := h.svc.Decide(ctx, bob, ro.ID, true, "ok"); err != nil {
		t.Fatal(err)
	}
	if got, want := h.members(t, "prod", "ops-readonly"), []string{"eve@example.com"}; !slices.Equal(got, want) {
		t.Fatalf("prod ops-readonly members %v, want %v", got, want)
	}

	// Elevation: bounded, approved by another admin, never by the grantee.
	_, err = h.svc.RequestGrant(ctx, eve, Request{UserID: eve.User.ID, Environment: "prod", Role: "ops-deployer", Kind: Elevation, Minutes: 5 * 60, Reason: "hotfix for the upload queue"})
	if got := apperr.FieldsOf(err)["minutes"]; !strings.Contains(got, "4 hours") {
		t.Errorf("5 hours in prod: minutes error %q, want the 4-hour bound", got)
	}
	_, err = h.svc.RequestGrant(ctx, eve, Request{UserID: eve.User.ID, Environment: "prod", Role: "ops-deployer", Kind: Elevation, Minutes: 60, Reason: "short"})
	if got := apperr.FieldsOf(err)["reason"]; got == "" {
		t.Errorf("short reason: no reason error (err %v)", err)
	}
	long, err := h.svc.RequestGrant(ctx, eve, Request{UserID: eve.User.ID, Environment: "prod", Role: "ops-deployer", Kind: Elevation, Minutes: 60, Reason: "hotfix for the upload queue"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Decide(ctx, eve, long.ID, true, ""); apperr.KindOf(err) != apperr.Forbidden {
		t.Errorf("grantee approving own elevation: err %v, want forbidden", err)
	}
	long, err = h.svc.Decide(ctx, bob, long.ID, true, "go")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := long.ExpiresAt, h.clock.Now().Add(time.Hour); !got.Equal(want) {
		t.Errorf("expires at %v, want %v", got, want)
	}
	if got := h.members(t, "prod", "ops-deployer"); !slices.Equal(got, []string{"eve@example.com"}) {
		t.Fatalf("prod ops-deployer members %v, want eve", got)
	}

	// A shorter overlapping elevation, approved 20 minutes later, ends
	// first: it must not take the membership with it.
	h.clock.Add(20 * time.Minute)
	short, err := h.svc.RequestGrant(ctx, eve, Request{UserID: eve.User.ID, Environment: "prod", Role: "ops-deployer", Kind: Elevation, Minutes: 15, Reason: "second look at the queue"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Decide(ctx, bob, short.ID, true, ""); err != nil {
		t.Fatal(err)
	}
	h.clock.Add(20 * time.Minute) // 40 minutes in: short expired, long has 20 left
	if n := h.expire(t); n != 1 {
		t.Errorf("expired %d grants, want 1", n)
	}
	if got := h.members(t, "prod", "ops-deployer"); !slices.Equal(got, []string{"eve@example.com"}) {
		t.Fatalf("after the short elevation ended: members %v, want eve still (the long one runs)", got)
	}

	// A restart: a new service over the same database picks up the schedule.
	h.svc = New(Options{DB: h.db, Audit: audit.New(h.db, h.clock.Now), Staff: h.staff, Engine: h.engine, Templates: h.svc.templates,
		Configs: h.svc.configs, Accounts: h.svc.accounts, ManagementAccount: h.svc.management, IdentityCenterRegion: h.svc.ssoRegion, Logger: h.svc.log, Now: h.clock.Now})
	h.clock.Add(21 * time.Minute)
	if n := h.expire(t); n != 1 {
		t.Errorf("expired %d grants, want 1", n)
	}
	if got := h.members(t, "prod", "ops-deployer"); len(got) != 0 {
		t.Fatalf("after expiry: members %v, want nobody", got)
	}
	if got, _ := h.svc.Get(ctx, long.ID); got.State != Expired {
		t.Errorf("long elevation state %s, want expired", got.State)
	}
	if got := h.members(t, "prod", "ops-readonly"); !slices.Equal(got, []string{"eve@example.com"}) {
		t.Errorf("standing read-only went with the elevation: members %v", got)
	}

	// Disabling eve revokes everything at once.
	h.staff.OnDisabled = h.svc.OnStaffDisabled
	if _, err := h.staff.SetDisabled(ctx, alice.Entry, eve.User.ID, true); err != nil {
		t.Fatal(err)
	}
	if got := h.members(t, "prod", "ops-readonly"); len(got) != 0 {
		t.Errorf("after disabling: ops-readonly members %v, want nobody", got)
	}
	if got, _ := h.svc.Get(ctx, ro.ID); got.State != Revoked || got.EndReason != "staff account disabled" {
		t.Errorf("read-only grant after disabling: %s (%s), want revoked", got.State, got.EndReason)
	}

	var actions []string
	rows, err := h.db.QueryContext(ctx, `SELECT action FROM audit_log WHERE action LIKE 'access.%' ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var a string
		rows.Scan(&a)
		actions = append(actions, a)
	}
	want := []string{"access.roles.approve", "access.grant.request", "access.approve", "access.elevation.request", "access.approve",
		"access.elevation.request", "access.approve", "access.expire", "access.expire", "access.revoke"}
	if !slices.Equal(actions, want) {
		t.Errorf("audit actions\n got %v\nwant %v", actions, want)
	}
}

func TestStandingGrantRules(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	alice := h.person(t, "alice@example.com", staff.Admin)
	bob := h.person(t, "bob@example.com", staff.Admin)
	fin := h.person(t, "fin@example.com", staff.Finance)
	ops := h.person(t, "ops@example.com", staff.Ops)
	h.applyRoles(t, "dev", alice, bob)

	tests := []struct {
		name  string
		by    Actor
		req   Request
		field string
		want  string
	}{
		{"role not for portal role", alice, Request{UserID: fin.User.ID, Environment: "dev", Role: "ops-deployer", Kind: Standing, Reason: "needs to deploy"}, "role", "ops-deployer is for ops or admin; fin@example.com holds finance"},
		{"elevation-only role", alice, Request{UserID: ops.User.ID, Environment: "prod", Role: "ops-deployer", Kind: Standing, Reason: "deploys all the time"}, "role", "held in prod through elevation only"},
		{"break-glass standing", alice, Request{UserID: alice.User.ID, Environment: "dev", Role: BreakGlass, Kind: Standing, Reason: "just in case it breaks"}, "role", "through elevation only"},
		{"unknown environment", alice, Request{UserID: ops.User.ID, Environment: "staging", Role: "ops-readonly", Kind: Standing, Reason: "reads the estate"}, "environment", "choose dev, test or prod"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.svc.RequestGrant(ctx, tc.by, tc.req)
			if got := apperr.FieldsOf(err)[tc.field]; !strings.Contains(got, tc.want) {
				t.Errorf("%s error %q, want %q (err %v)", tc.field, got, tc.want, err)
			}
		})
	}
	if _, err := h.svc.RequestGrant(ctx, ops, Request{UserID: ops.User.ID, Environment: "dev", Role: "ops-readonly", Kind: Standing, Reason: "reads the estate"}); apperr.KindOf(err) != apperr.Forbidden {
		t.Errorf("non-admin granting standing access: err %v, want forbidden", err)
	}

	// dev: active at once, and revocation is immediate.
	g, err := h.svc.RequestGrant(ctx, alice, Request{UserID: fin.User.ID, Environment: "dev", Role: "finance-billing", Kind: Standing, Reason: "monthly cost review"})
	if err != nil {
		t.Fatal(err)
	}
	if g.State != Active {
		t.Fatalf("dev standing grant state %s, want active", g.State)
	}
	if got := h.members(t, "dev", "finance-billing"); !slices.Equal(got, []string{"fin@example.com"}) {
		t.Fatalf("members %v, want fin", got)
	}
	if _, err := h.svc.RequestGrant(ctx, alice, Request{UserID: fin.User.ID, Environment: "dev", Role: "finance-billing", Kind: Standing, Reason: "monthly cost review"}); apperr.KindOf(err) != apperr.Conflict {
		t.Errorf("second identical grant: err %v, want conflict", err)
	}
	if _, err := h.svc.Revoke(ctx, alice, g.ID, "left finance"); err != nil {
		t.Fatal(err)
	}
	if got := h.members(t, "dev", "finance-billing"); len(got) != 0 {
		t.Errorf("after revoke: members %v, want nobody", got)
	}

	// Without the stack applied, the grant is recorded and the sync waits.
	g, err = h.svc.RequestGrant(ctx, alice, Request{UserID: fin.User.ID, Environment: "test", Role: "finance-billing", Kind: Standing, Reason: "monthly cost review"})
	if err == nil || !strings.Contains(err.Error(), "apply the staff-permission-sets-test stack first") {
		t.Errorf("grant before the stack exists: err %v, want a pending sync naming the stack", err)
	}
	ps, _ := h.svc.PendingSyncs(ctx)
	if len(ps) != 1 || ps[0].Environment != "test" {
		t.Fatalf("pending syncs %+v, want one in test", ps)
	}
	h.applyRoles(t, "test", alice, bob)
	h.expire(t)
	if got := h.members(t, "test", "finance-billing"); !slices.Equal(got, []string{"fin@example.com"}) {
		t.Errorf("after the stack and the job: members %v, want fin", got)
	}
	if ps, _ := h.svc.PendingSyncs(ctx); len(ps) != 0 {
		t.Errorf("pending syncs left: %+v", ps)
	}
}
