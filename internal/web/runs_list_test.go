package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"portal/internal/staff"
	"portal/internal/store"
)

// TestRunsListSaysWhatRanAndWhoLetItThrough: the runs list shows each run's
// blueprint version (not the per-stack hash), who started it by name, who
// approved it, how long it took and what the verification after it found;
// plans that were never applied have their own list.
func TestRunsListSaysWhatRanAndWhoLetItThrough(t *testing.T) {
	h := newEstateHarness(t)
	ctx := context.Background()
	author := h.newUser(t, staff.Ops)
	approver := h.newUser(t, staff.Ops)
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	db := h.app.DB
	exec := func(q string, args ...any) int64 {
		t.Helper()
		var id int64
		if err := db.QueryRowContext(ctx, q+" RETURNING id", args...).Scan(&id); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return id
	}
	bp := "9f1c2b7d4e5a60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"
	plan := exec(`INSERT INTO plans (stack, kind, version, blueprint_version, hash, body, created_by, created_at) VALUES ('prod-eu', 'apply', 'stackhash0001', ?, 'planhash', '{}', ?, ?)`,
		bp, author.Label(), store.Time(at))
	exec(`INSERT INTO approvals (plan_id, plan_hash, stack, decision, approver_id, approver, roles, created_at, expires_at) VALUES (?, 'planhash', 'prod-eu', 'approved', ?, ?, 'ops', ?, ?)`,
		plan, approver.ID, approver.Label(), store.Time(at.Add(10*time.Minute)), store.Time(at.Add(24*time.Hour)))
	run := exec(`INSERT INTO runs (plan_id, stack, kind, version, state, created_by, created_at, started_at, finished_at) VALUES (?, 'prod-eu', 'apply', 'stackhash0001', 'succeeded', ?, ?, ?, ?)`,
		plan, author.Label(), store.Time(at.Add(20*time.Minute)), store.Time(at.Add(20*time.Minute)), store.Time(at.Add(24*time.Minute+5*time.Second)))
	exec(`INSERT INTO verifications (stack, run_id, blueprint_version, state, created_by, created_at, finished_at) VALUES ('prod-eu', ?, ?, 'passed', 'system', ?, ?)`,
		run, bp, store.Time(at.Add(25*time.Minute)), store.Time(at.Add(26*time.Minute)))
	unapplied := exec(`INSERT INTO plans (stack, kind, version, blueprint_version, hash, body, created_by, created_at) VALUES ('dev-us', 'destroy', 'stackhash0002', ?, 'otherhash', '{}', ?, ?)`,
		bp, author.Label(), store.Time(at.Add(time.Hour)))

	c, _ := h.signedIn(t, staff.Compliance)
	r := c.get(t, "/runs")
	row := r.Doc(t).Find(`[data-testid="run-` + itoa(run) + `"]`)
	if row.Length() != 1 {
		t.Fatalf("run #%d is not listed:\n%s", run, r.Body)
	}
	cell := func(id string) string {
		return strings.Join(strings.Fields(row.Find(`[data-testid="`+id+`"]`).Text()), " ")
	}
	if got := cell("run-version"); got != bp[:12] {
		t.Errorf("version column: got %q, want the blueprint version %s (not the stack hash)", got, bp[:12])
	}
	if got := cell("run-approvers"); !strings.Contains(got, approver.Email) {
		t.Errorf("approvers column: got %q, want %s", got, approver.Email)
	}
	if got := cell("run-duration"); got != "4m 05s" {
		t.Errorf("duration column: got %q, want 4m 05s", got)
	}
	if got := cell("run-verification"); got != "passed" {
		t.Errorf("verification column: got %q, want passed", got)
	}
	if strings.Contains(row.Text(), "user:") {
		t.Errorf("the row shows a raw actor label: %q", row.Text())
	}

	p := c.get(t, "/runs?show=plans")
	if got := p.Doc(t).Find(`[data-testid="plan-` + itoa(unapplied) + `"]`).Text(); !strings.Contains(got, "dev-us") || !strings.Contains(got, "destroy") {
		t.Errorf("plans never applied: row of plan #%d is %q", unapplied, got)
	}
	if p.Doc(t).Find(`[data-testid="plan-`+itoa(plan)+`"]`).Length() != 0 {
		t.Errorf("the applied plan #%d is listed among plans never applied", plan)
	}
	if bad := c.get(t, "/runs?show=plans&state=failed"); bad.StatusCode != 400 {
		t.Errorf("plans filtered by a run state: got %d, want 400", bad.StatusCode)
	}
}
