package workflows_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"portal/internal/apperr"
	"portal/internal/engine"
	"portal/internal/notify"
	"portal/internal/verify"
	"portal/internal/workflows"
)

// fakePeople is the staff directory: who holds which roles now.
type fakePeople struct {
	mu     sync.Mutex
	people map[int64]workflows.Person
}

func newPeople(as ...workflows.Approver) *fakePeople {
	f := &fakePeople{people: map[int64]workflows.Person{}}
	for _, a := range as {
		email := strings.Fields(a.Label)[1]
		f.people[a.ID] = workflows.Person{ID: a.ID, Email: email, Roles: slices.Clone(a.Roles), Active: true}
	}
	return f
}

func (f *fakePeople) set(id int64, roles []string, active bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.people[id]
	p.Roles, p.Active = roles, active
	f.people[id] = p
}

func (f *fakePeople) Person(ctx context.Context, id int64) (workflows.Person, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.people[id]
	if !ok {
		return p, apperr.New(apperr.NotFound, "no such staff account")
	}
	return p, nil
}

func (f *fakePeople) WithRoles(ctx context.Context, roles ...string) ([]workflows.Person, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []workflows.Person
	for id := int64(1); id < 20; id++ {
		if p, ok := f.people[id]; ok && p.Active && slices.ContainsFunc(roles, func(r string) bool { return slices.Contains(p.Roles, r) }) {
			out = append(out, p)
		}
	}
	return out, nil
}

var compliance = workflows.Approver{ID: 6, Label: "user:6 clara@example.com", Roles: []string{"compliance"}}

// TestEveryPathTakesTheNormalRoad: a plan of test or prod (the Runs form
// and the API call Plan) is refused for a version that has not applied and
// verified below, naming the environment and what it lacks; so are
// reconcile and rollback; a drift check's plan is never approved or
// applied.
func TestEveryPathTakesTheNormalRoad(t *testing.T) {
	h := newHarness(t, false)
	ctx := context.Background()
	plans := h.count("plans")
	_, err := h.wf.Plan(ctx, as(author), workflows.PlanRequest{Stack: "prod-us", Version: "v1"})
	if apperr.KindOf(err) != apperr.Conflict || !strings.Contains(err.Error(), "prod-us: version v1 has not been applied successfully in test-us") {
		t.Fatalf("plan of prod-us with v1 nowhere: got %v, want refused naming test-us", err)
	}
	if n := h.count("plans"); n != plans {
		t.Errorf("a refused plan wrote %d plans, want none", n-plans)
	}
	h.promote("v1", "dev", "us")
	h.verifier.set("dev-us", verify.Result{State: verify.Failed, Steps: []verify.Step{{Name: verify.StepDoctorAlert, Title: verify.Title(verify.StepDoctorAlert),
		State: verify.Failed, Detail: "could not publish"}}})
	if _, err := h.wf.Verify(ctx, as(author), "dev-us", 0); err != nil {
		t.Fatal(err)
	}
	_, err = h.wf.Plan(ctx, as(author), workflows.PlanRequest{Stack: "test-us", Version: "v1"})
	if err == nil || !strings.Contains(err.Error(), "the verification of version v1 in dev-us failed: Publish an alert to the doctors' topic: could not publish") {
		t.Errorf("plan of test-us after a failed verification in dev-us: got %v, want refused quoting the step", err)
	}
	// Destroys and dev plans are not on the road.
	if _, err := h.wf.Plan(ctx, as(author), workflows.PlanRequest{Stack: "dev-eu", Version: "v2"}); err != nil {
		t.Errorf("plan of dev-eu: %v", err)
	}
	h.verifier.set("dev-us", verify.Result{State: verify.Passed})
	if _, err := h.wf.Verify(ctx, as(author), "dev-us", 0); err != nil {
		t.Fatal(err)
	}
	h.promote("v1", "test", "us")

	// A drift check is by the person who asked; its plan is never decided
	// on or applied, even in prod.
	d, ok, err := h.wf.CheckDrift(ctx, as(opsTwo), "test-us")
	if err != nil || !ok {
		t.Fatalf("drift check: %v %v", ok, err)
	}
	if d.RequestedBy != opsTwo.Label {
		t.Errorf("drift check requested by: got %q, want %q", d.RequestedBy, opsTwo.Label)
	}
	dp, err := h.eng.GetPlan(ctx, d.PlanID)
	if err != nil {
		t.Fatal(err)
	}
	if dp.CreatedBy != opsTwo.Label {
		t.Errorf("drift plan author: got %q, want %q", dp.CreatedBy, opsTwo.Label)
	}
	if _, err := h.wf.Apply(ctx, as(opsThree), dp.ID, ""); err == nil || !strings.Contains(err.Error(), "drift check") {
		t.Errorf("apply of a drift check's plan: got %v, want refused", err)
	}
	if _, err := h.wf.Decide(ctx, as(opsThree), opsThree, dp.ID, dp.Hash, "approved", ""); apperr.KindOf(err) != apperr.Conflict {
		t.Errorf("approving a drift check's plan: got %v, want conflict", err)
	}

	// Reconcile and rollback take the road too: v2 never went through
	// dev-us's verification in test... (it was never in dev-us at all).
	if _, err := h.wf.Promote(ctx, as(author), workflows.PromoteRequest{Version: "v2", Environment: "test", Jurisdictions: []string{"us"}, Purpose: workflows.PurposeRollback}); err == nil ||
		!strings.Contains(err.Error(), "rollback refused: test-us: version v2 has not been applied successfully in dev-us") {
		t.Errorf("rollback of test-us to v2: got %v, want refused", err)
	}
}

// TestApproverCannotApproveWhatTheGateRefuses: a prod plan made while the
// road was open is blocked once the verification in test fails; nobody
// may approve it, it cannot be applied, and a run already queued fails at
// its start.
func TestApproverCannotApproveWhatTheGateRefuses(t *testing.T) {
	h := newHarness(t, false)
	ctx := context.Background()
	p := h.toProd()
	h.verifier.set("test-us", verify.Result{State: verify.Failed, Steps: []verify.Step{{Name: verify.StepUpload, Title: verify.Title(verify.StepUpload),
		State: verify.Failed, Detail: "Access Denied"}}})
	if _, err := h.wf.Verify(ctx, as(author), "test-us", 0); err != nil {
		t.Fatal(err)
	}
	a, err := h.wf.ApprovalOf(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(a.Blocked, "the verification of version v1 in test-us failed") {
		t.Errorf("blocked: got %q, want the failed verification in test-us", a.Blocked)
	}
	_, err = h.wf.Decide(ctx, as(opsTwo), opsTwo, p.ID, p.Hash, "approved", "")
	if apperr.KindOf(err) != apperr.Conflict || !strings.Contains(err.Error(), "cannot be approved") {
		t.Fatalf("approve a blocked plan: got %v, want conflict", err)
	}
	if _, err := h.wf.Decide(ctx, as(opsTwo), opsTwo, p.ID, p.Hash, "rejected", "test is broken"); err != nil {
		t.Errorf("rejecting a blocked plan: %v", err)
	}

	// A plan approved and queued while the road was open fails at the
	// start of its run once the road closes.
	h.verifier.set("test-us", verify.Result{State: verify.Passed})
	if _, err := h.wf.Verify(ctx, as(author), "test-us", 0); err != nil {
		t.Fatal(err)
	}
	p2, err := h.wf.Plan(ctx, as(author), workflows.PlanRequest{Stack: "prod-us", Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.wf.Decide(ctx, as(opsTwo), opsTwo, p2.ID, p2.Hash, "approved", ""); err != nil {
		t.Fatal(err)
	}
	runID, err := h.wf.Apply(ctx, as(author), p2.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	h.verifier.set("test-us", verify.Result{State: verify.Failed, Steps: []verify.Step{{Name: verify.StepUpload, Title: verify.Title(verify.StepUpload), State: verify.Failed, Detail: "Access Denied"}}})
	if _, err := h.wf.Verify(ctx, as(author), "test-us", 0); err != nil {
		t.Fatal(err)
	}
	h.run()
	r, _, _ := h.eng.GetRun(ctx, runID)
	if r.State != engine.RunFailed || !strings.Contains(r.Error, "refused at start") || !strings.Contains(r.Error, "test-us failed") {
		t.Errorf("queued run after the road closed: got %s %q, want failed, refused at start", r.State, r.Error)
	}
	if res, _ := h.eng.Resources(ctx, "prod-us"); len(res) != 0 {
		t.Errorf("a run refused at start touched AWS: %d resources recorded", len(res))
	}
}

// TestApprovalVoidWhenApproverLosesStanding: an approval stops counting
// when its approver loses the approving role or is disabled.
func TestApprovalVoidWhenApproverLosesStanding(t *testing.T) {
	h := newHarness(t, false)
	ctx := context.Background()
	people := newPeople(author, opsTwo, opsThree, adminTwo, reader)
	h.wf.People = people
	p := h.toProd()
	if _, err := h.wf.Decide(ctx, as(opsTwo), opsTwo, p.ID, p.Hash, "approved", ""); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		roles  []string
		active bool
		void   string
	}{
		{"demoted to compliance", []string{"compliance"}, true, "no longer holds ops or admin"},
		{"disabled", []string{"ops"}, false, "account is disabled"},
		{"back in standing", []string{"ops"}, true, ""},
	} {
		people.set(opsTwo.ID, tc.roles, tc.active)
		a, err := h.wf.ApprovalOf(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.Decisions[0].Void; !strings.Contains(got, tc.void) || (tc.void == "") != (got == "") || a.Satisfied != (tc.void == "") {
			t.Errorf("%s: got void %q satisfied %v, want %q", tc.name, got, a.Satisfied, tc.void)
		}
	}
	// Demoted after the run was queued: the run fails at its start.
	runID, err := h.wf.Apply(ctx, as(author), p.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	people.set(opsTwo.ID, nil, true)
	h.run()
	if r, _, _ := h.eng.GetRun(ctx, runID); r.State != engine.RunFailed || !strings.Contains(r.Error, "needs approval") {
		t.Errorf("run after its approver lost ops: got %s %q, want failed needing approval", r.State, r.Error)
	}
	// The approval request went by e-mail to who may approve, never the
	// author.
	notes, _, _ := h.notes.List(ctx, notify.Filter{Kind: notify.ApprovalPending})
	if len(notes) == 0 {
		t.Fatal("no approval request")
	}
}

// TestRevokedExceptionBlocksThePendingPlan: guardrails are evaluated again,
// with the exceptions in force, when a plan is applied and when its run
// starts.
func TestRevokedExceptionBlocksThePendingPlan(t *testing.T) {
	h := newHarness(t, false)
	ctx := context.Background()
	p := h.toProd()
	if _, err := h.wf.Decide(ctx, as(opsTwo), opsTwo, p.ID, p.Hash, "approved", ""); err != nil {
		t.Fatal(err)
	}
	runID, err := h.wf.Apply(ctx, as(author), p.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	h.bp.revoke("prod-alarms")
	h.run()
	r, _, _ := h.eng.GetRun(ctx, runID)
	if r.State != engine.RunFailed || !strings.Contains(r.Error, "prod-alarms") || !strings.Contains(r.Error, "exception may have been revoked") {
		t.Errorf("run after the exception was revoked: got %s %q, want failed naming prod-alarms", r.State, r.Error)
	}
	if _, err := h.wf.Apply(ctx, as(author), p.ID, ""); err == nil || !strings.Contains(err.Error(), "prod-alarms") {
		t.Errorf("apply after the exception was revoked: got %v, want refused naming prod-alarms", err)
	}
}

// TestEmergencyChange: a version that has not gone the normal road reaches
// prod only as an emergency change with a named reason, approved by an
// admin and a compliance officer (neither the author); it stays
// outstanding until the version has gone the normal road.
func TestEmergencyChange(t *testing.T) {
	h := newHarness(t, false)
	ctx := context.Background()
	h.wf.People = newPeople(author, opsTwo, adminTwo, compliance)
	h.toProd() // v1 went the normal road; v2 has not
	for _, tc := range []struct {
		name, stack, version, reason, field string
	}{
		{"too short", "prod-us", "v2", "hotfix", "emergency_reason"},
		{"dev needs none", "dev-us", "v2", "INC-4711: patients cannot upload prescriptions", "emergency_reason"},
		{"normal road open", "prod-us", "v1", "INC-4711: patients cannot upload prescriptions", "emergency_reason"},
	} {
		_, err := h.wf.Plan(ctx, as(author), workflows.PlanRequest{Stack: tc.stack, Version: tc.version, Emergency: tc.reason})
		if apperr.KindOf(err) != apperr.Invalid || apperr.FieldsOf(err)[tc.field] == "" {
			t.Errorf("%s: got %v, want invalid %s", tc.name, err, tc.field)
		}
	}
	reason := "INC-4711: patients in the US cannot upload prescriptions since 09:10"
	p, err := h.wf.Plan(ctx, as(author), workflows.PlanRequest{Stack: "prod-us", Version: "v2", Emergency: reason})
	if err != nil {
		t.Fatal(err)
	}
	a, err := h.wf.ApprovalOf(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if a.Emergency == nil || a.Emergency.Reason != reason || a.Blocked != "" || fmt.Sprint(a.Policy.Slots) != "[[admin] [compliance]]" {
		t.Fatalf("emergency approval: got %+v, want admin and compliance slots, not blocked", a)
	}
	notes, _, _ := h.notes.List(ctx, notify.Filter{Kind: notify.ApprovalPending})
	if len(notes) == 0 || !strings.Contains(notes[0].Subject, "Emergency change") || !slices.Equal(notes[0].To, []string{"admin@example.com", "clara@example.com"}) {
		t.Errorf("emergency approval request: got %+v, want it e-mailed to the admin and the compliance officer", notes[0])
	}
	if h.auditActions("emergency.request") != 1 {
		t.Errorf("emergency.request audit records: got %d, want 1", h.auditActions("emergency.request"))
	}
	out, err := h.wf.OutstandingEmergencies(ctx)
	if err != nil || len(out) != 1 || out[0].State != "awaiting approval" {
		t.Fatalf("outstanding before approval: got %+v, %v, want one awaiting approval", out, err)
	}
	if _, err := h.wf.Decide(ctx, as(opsTwo), opsTwo, p.ID, p.Hash, "approved", ""); apperr.KindOf(err) != apperr.Forbidden {
		t.Errorf("ops approving an emergency change: got %v, want forbidden", err)
	}
	if _, err := h.wf.Decide(ctx, as(adminTwo), adminTwo, p.ID, p.Hash, "approved", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := h.wf.Apply(ctx, as(author), p.ID, ""); err == nil || !strings.Contains(err.Error(), "compliance") {
		t.Errorf("apply with the admin's approval only: got %v, want refused, still needing compliance", err)
	}
	if _, err := h.wf.Decide(ctx, as(compliance), compliance, p.ID, p.Hash, "approved", ""); err != nil {
		t.Fatal(err)
	}
	runID, err := h.wf.Apply(ctx, as(author), p.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	h.run()
	if r, _, _ := h.eng.GetRun(ctx, runID); r.State != engine.RunSucceeded {
		t.Fatalf("emergency run: got %s %q, want succeeded", r.State, r.Error)
	}
	out, err = h.wf.OutstandingEmergencies(ctx)
	if err != nil || len(out) != 1 || out[0].State != "in force" || !strings.Contains(out[0].Road, "test-us") {
		t.Fatalf("outstanding after the run: got %+v, %v, want one in force lacking test-us", out, err)
	}
	// The version goes the normal road afterwards: no longer outstanding.
	h.promote("v2", "dev", "us")
	h.promote("v2", "test", "us")
	if out, err := h.wf.OutstandingEmergencies(ctx); err != nil || len(out) != 0 {
		t.Errorf("outstanding after v2 went the normal road: got %+v, %v, want none", out, err)
	}
}
