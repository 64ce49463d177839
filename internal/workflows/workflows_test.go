package workflows_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/blueprints"
	"portal/internal/drivers"
	"portal/internal/engine"
	"portal/internal/guardrails"
	"portal/internal/jobs"
	"portal/internal/notify"
	"portal/internal/peers"
	"portal/internal/peers/peertest"
	"portal/internal/regions"
	"portal/internal/store"
	"portal/internal/verify"
	"portal/internal/workflows"
)

func TestMain(m *testing.M) { peertest.Main(m) }

// clock is the injected clock; tests move it to expire approvals and
// leases.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeBlueprints serves versions "v1" and "v2" ("" is v2) of a small
// stack: one KMS key whose description names the version, plus, when
// network is set, a VPC and a security group.
type fakeBlueprints struct {
	account map[string]string // environment -> account, to keep aliases apart
	network bool

	mu      sync.Mutex
	revoked map[string]bool // rule ids whose exception was revoked
}

// revoke ends the exception to rule in every stack.
func (b *fakeBlueprints) revoke(rule string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.revoked == nil {
		b.revoked = map[string]bool{}
	}
	b.revoked[rule] = true
}

func (b *fakeBlueprints) Resolve(ctx context.Context, version, stack string) (*blueprints.Stack, string, error) {
	if version == "" {
		version = "v2"
	}
	if version != "v1" && version != "v2" {
		return nil, "", apperr.New(apperr.NotFound, "no blueprint version %q", version)
	}
	env, j, _ := strings.Cut(stack, "-")
	j0, _ := regions.JurisdictionByID(j)
	region := j0.HomeRegion
	prefix := "t-" + stack + "-" + b.account[env]
	st := &blueprints.Stack{ID: stack, Environment: env, Jurisdiction: j, Region: region, Version: version + "-" + stack,
		Resources: []blueprints.Resource{{ID: "documents_key", Type: "kms_key", Region: region,
			Fields: map[string]any{"data_class": "documents", "rotation": true, "alias": "alias/" + prefix + "-documents", "description": "documents key, blueprint " + version}}}}
	if b.network {
		st.Resources = append(st.Resources,
			blueprints.Resource{ID: "vpc", Type: "vpc", Region: region, Fields: map[string]any{"name": prefix, "cidr": "10.40.0.0/16",
				"subnets": []any{map[string]any{"name": "private-a", "az": region + "a", "cidr": "10.40.16.0/20", "tier": "private"}}}},
			blueprints.Resource{ID: "db_sg", Type: "security_group", Region: region, DependsOn: []string{"vpc"}, Fields: map[string]any{"name": prefix + "-db", "vpc": "${ref.vpc.id}",
				"ingress": []any{map[string]any{"protocol": "tcp", "from_port": int64(5432), "to_port": int64(5432), "cidrs": []any{"10.40.0.0/16"}, "description": "app"}}}})
	}
	return st, version, nil
}

func (b *fakeBlueprints) Exceptions(ctx context.Context, stack string) ([]guardrails.Exception, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []guardrails.Exception
	// The test stacks hold a key and no service: nothing to alarm on, no
	// trail and no patients to route.
	for _, rule := range []string{"cloudtrail-integrity", "prod-alarms", "works-routing"} {
		if b.revoked[rule] {
			continue
		}
		out = append(out, guardrails.Exception{RuleID: rule, Stack: stack, Owner: "ops@example.com", Reason: "workflow test stack", Expires: time.Now().Add(1000 * time.Hour)})
	}
	return out, nil
}

// fakeVerifier answers verifications from a table (passed by default).
type fakeVerifier struct {
	mu      sync.Mutex
	results map[string]verify.Result
	calls   []string
}

func (f *fakeVerifier) set(stack string, r verify.Result) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.results[stack] = r
}

func (f *fakeVerifier) VerifyStack(ctx context.Context, info engine.StackInfo, res []engine.StateResource) verify.Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, info.ID)
	if r, ok := f.results[info.ID]; ok {
		return r
	}
	return verify.Result{State: verify.Passed, Steps: []verify.Step{{Name: verify.StepUpload, Title: verify.Title(verify.StepUpload), State: verify.Passed, Detail: "ok"}}}
}

type harness struct {
	t        *testing.T
	bp       *fakeBlueprints
	wf       *workflows.Service
	eng      *engine.Engine
	db       *store.DB
	clock    *clock
	verifier *fakeVerifier
	notes    *notify.Service
	cfg      func(env, region string) aws.Config
	newEng   func() *engine.Engine
}

var (
	author   = workflows.Approver{ID: 1, Label: "user:1 author@example.com", Roles: []string{"ops"}}
	opsTwo   = workflows.Approver{ID: 2, Label: "user:2 ops2@example.com", Roles: []string{"ops"}}
	opsThree = workflows.Approver{ID: 3, Label: "user:3 ops3@example.com", Roles: []string{"ops"}}
	adminTwo = workflows.Approver{ID: 4, Label: "user:4 admin@example.com", Roles: []string{"admin"}}
	reader   = workflows.Approver{ID: 5, Label: "user:5 compliance@example.com", Roles: []string{"compliance"}}
)

func as(a workflows.Approver) audit.Entry { return audit.Entry{Actor: a.Label} }

func newHarness(t *testing.T, network bool) *harness {
	t.Helper()
	m := peertest.MotoForTest(t)
	accounts := map[string]string{}
	var envs []regions.EnvironmentConfig
	for _, env := range regions.EnvironmentNames() {
		accounts[env] = peertest.AccountForTest(t)
		envs = append(envs, regions.EnvironmentConfig{Name: env, AccountID: accounts[env], DeployerRoleARN: peers.RoleARN(accounts[env], peertest.TestRole)})
	}
	cat, err := regions.New(envs)
	if err != nil {
		t.Fatal(err)
	}
	db := peertest.StoreForTest(t)
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	var mu sync.Mutex
	cache := map[string]aws.Config{}
	cfg := func(env, region string) aws.Config {
		mu.Lock()
		defer mu.Unlock()
		k := env + "/" + region
		if c, ok := cache[k]; ok {
			return c
		}
		c := peers.AssumeAccount(context.Background(), m.AWSConfig(region), accounts[env], peertest.TestRole)
		cache[k] = c
		return c
	}
	log := audit.New(db, clk.Now)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := &harness{t: t, db: db, clock: clk, cfg: cfg, verifier: &fakeVerifier{results: map[string]verify.Result{}}}
	h.newEng = func() *engine.Engine {
		reg, err := engine.NewRegistry(drivers.All()...)
		if err != nil {
			t.Fatal(err)
		}
		return engine.New(reg, func(env, region string) (aws.Config, error) { return cfg(env, region), nil }, db, log, quiet, clk.Now)
	}
	h.eng = h.newEng()
	h.notes = notify.New(db, nil, quiet, clk.Now)
	h.bp = &fakeBlueprints{account: accounts, network: network}
	h.wf = &workflows.Service{Engine: h.eng, Catalogue: cat, Blueprints: h.bp, DB: db, Audit: log,
		Notify: h.notes, Verifier: h.verifier, Log: quiet, Now: clk.Now}
	h.eng.OnFinish = h.wf.AfterRun
	h.eng.BeforeRun = h.wf.BeforeRun
	return h
}

// run executes every queued run now (verification follows each apply).
func (h *harness) run() {
	h.t.Helper()
	if err := h.eng.RunNow(context.Background(), "test"); err != nil {
		h.t.Fatal(err)
	}
}

// promote promotes version and runs what was queued; it fails the test on
// refusal.
func (h *harness) promote(version, env string, js ...string) workflows.Promotion {
	h.t.Helper()
	pr, err := h.wf.Promote(context.Background(), as(author), workflows.PromoteRequest{Version: version, Environment: env, Jurisdictions: js})
	if err != nil {
		h.t.Fatalf("promote %s to %s %v: %v", version, env, js, err)
	}
	for _, s := range pr.Stacks {
		if s.Refused != "" {
			h.t.Fatalf("promote %s to %s: %s refused: %s", version, env, s.Stack, s.Refused)
		}
	}
	h.run()
	for _, s := range pr.Stacks {
		if s.RunID == 0 {
			continue
		}
		r, steps, err := h.eng.GetRun(context.Background(), s.RunID)
		if err != nil {
			h.t.Fatal(err)
		}
		if r.State != engine.RunSucceeded {
			for _, st := range steps {
				h.t.Logf("step %s: %s %s", st.ResourceID, st.State, st.Error)
			}
			h.t.Fatalf("run %d of %s: got %s (%s), want succeeded", r.ID, s.Stack, r.State, r.Error)
		}
	}
	return pr
}

func (h *harness) count(table string) int {
	h.t.Helper()
	var n int
	if err := h.db.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

func (h *harness) auditActions(action string) int {
	h.t.Helper()
	var n int
	if err := h.db.QueryRow(`SELECT COUNT(*) FROM audit_log WHERE action = ?`, action).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

func TestPromotionOrderIsEnforced(t *testing.T) {
	h := newHarness(t, false)
	ctx := context.Background()

	// Nothing is in dev yet: test is refused, with the reason, and nothing
	// is written.
	_, err := h.wf.Promote(ctx, as(author), workflows.PromoteRequest{Version: "v1", Environment: "test", Jurisdictions: []string{"us"}})
	if apperr.KindOf(err) != apperr.Conflict || !strings.Contains(err.Error(), "test-us: version v1 has not been applied successfully in dev-us") {
		t.Fatalf("promote v1 to test-us before dev: got %v, want refused naming dev-us", err)
	}
	if n := h.count("promotions"); n != 0 {
		t.Errorf("refused promotion wrote %d promotions, want 0", n)
	}

	// Dev in two jurisdictions at once: one run per stack, verified after.
	pr := h.promote("v1", "dev", "us", "eu")
	if len(pr.Stacks) != 2 || pr.Stacks[0].RunID == 0 || pr.Stacks[1].RunID == 0 {
		t.Fatalf("dev promotion: got %+v, want two stacks with runs", pr.Stacks)
	}
	for _, s := range []string{"dev-us", "dev-eu"} {
		in, err := h.wf.VersionInForce(ctx, s)
		if err != nil || in.Version != "v1" {
			t.Errorf("version in force in %s: got %q, %v, want v1", s, in.Version, err)
		}
	}
	if got := len(h.verifier.calls); got != 2 {
		t.Errorf("verifications after two applies: got %d, want 2", got)
	}

	// test-us may follow; all three at once may not (apac never ran in dev),
	// and that refusal writes nothing.
	before := h.count("promotions")
	_, err = h.wf.Promote(ctx, as(author), workflows.PromoteRequest{Version: "v1", Environment: "test", Jurisdictions: []string{"us", "eu", "apac"}})
	if err == nil || !strings.Contains(err.Error(), "test-apac: version v1 has not been applied successfully in dev-apac") || strings.Contains(err.Error(), "test-us:") {
		t.Fatalf("promote to test in all three: got %v, want refused for apac only", err)
	}
	if n := h.count("promotions"); n != before {
		t.Errorf("refused promotion wrote %d promotions, want %d", n, before)
	}
	h.promote("v1", "test", "us")

	// v2 is not in test-us, so it cannot go to prod-us; v1 can (and waits
	// for approval).
	if _, err := h.wf.Promote(ctx, as(author), workflows.PromoteRequest{Version: "v2", Environment: "prod", Jurisdictions: []string{"us"}}); err == nil ||
		!strings.Contains(err.Error(), "has not been applied successfully in test-us") {
		t.Errorf("promote v2 to prod-us: got %v, want refused", err)
	}

	// A failed verification below stops the version.
	h.verifier.set("dev-eu", verify.Result{State: verify.Failed, Steps: []verify.Step{{Name: verify.StepMedicines, Title: verify.Title(verify.StepMedicines),
		State: verify.Failed, Detail: "the medicines table t-medicines does not exist"}}})
	if _, err := h.wf.Verify(ctx, as(author), "dev-eu", 0); err != nil {
		t.Fatal(err)
	}
	_, err = h.wf.Promote(ctx, as(author), workflows.PromoteRequest{Version: "v1", Environment: "test", Jurisdictions: []string{"eu"}})
	if err == nil || !strings.Contains(err.Error(), "the verification of version v1 in dev-eu failed: Store the medicine names Textract found in the medicines table: the medicines table t-medicines does not exist") {
		t.Errorf("promote after a failed verification: got %v, want refused quoting the failing step", err)
	}
	notes, _, err := h.notes.List(ctx, notify.Filter{Kind: notify.VerificationFailed})
	if err != nil || len(notes) != 1 || notes[0].Stack != "dev-eu" {
		t.Errorf("verification-failed notifications: got %+v, %v, want one for dev-eu", notes, err)
	}

	// Textract cannot be served by the emulator: an incomplete verification
	// does not prove a version, unless the portal is told to accept it.
	h.verifier.set("dev-eu", verify.Result{State: verify.Incomplete, Steps: []verify.Step{{Name: verify.StepTextract, Title: verify.Title(verify.StepTextract),
		State: verify.Unsupported, Detail: "Textract text detection is not supported by this endpoint"}}})
	if _, err := h.wf.Verify(ctx, as(author), "dev-eu", 0); err != nil {
		t.Fatal(err)
	}
	if why, _ := h.wf.Gate(ctx, "v1", "test-eu"); !strings.Contains(why, "is incomplete") {
		t.Errorf("gate with an incomplete verification: got %q, want refused as incomplete", why)
	}
	h.wf.AcceptUnsupported = true
	if why, _ := h.wf.Gate(ctx, "v1", "test-eu"); why != "" {
		t.Errorf("gate accepting unsupported steps: got %q, want allowed", why)
	}
	if n := h.auditActions("promotion.promote"); n != 2 {
		t.Errorf("promotion.promote audit records: got %d, want 2", n)
	}
}

// toProd brings v1 through dev-us and test-us and asks for prod-us; it
// returns the prod plan, waiting for approval.
func (h *harness) toProd() *engine.Plan {
	h.t.Helper()
	h.promote("v1", "dev", "us")
	h.promote("v1", "test", "us")
	pr := h.promote("v1", "prod", "us")
	if pr.Stacks[0].RunID != 0 || pr.Stacks[0].PlanID == 0 {
		h.t.Fatalf("prod promotion: got %+v, want a plan waiting for approval and no run", pr.Stacks[0])
	}
	p, err := h.eng.GetPlan(context.Background(), pr.Stacks[0].PlanID)
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func TestProdNeedsApprovalBySomeoneElse(t *testing.T) {
	h := newHarness(t, false)
	ctx := context.Background()
	p := h.toProd()

	if _, err := h.wf.Apply(ctx, as(author), p.ID, ""); apperr.KindOf(err) != apperr.Conflict || !strings.Contains(err.Error(), "needs approval") {
		t.Fatalf("apply without approval: got %v, want conflict: needs approval", err)
	}
	notes, _, _ := h.notes.List(ctx, notify.Filter{Kind: notify.ApprovalPending})
	if len(notes) != 1 || notes[0].Stack != "prod-us" || notes[0].Link != fmt.Sprintf("/plans/%d", p.ID) {
		t.Errorf("approval-pending notifications: got %+v, want one for prod-us linking the plan", notes)
	}

	tests := []struct {
		name     string
		who      workflows.Approver
		decision string
		reason   string
		hash     string
		want     apperr.Kind
		field    string
	}{
		{"self-approval", author, "approved", "", p.Hash, apperr.Forbidden, ""},
		{"no approver role", reader, "approved", "", p.Hash, apperr.Forbidden, ""},
		{"reject without reason", opsTwo, "rejected", "  ", p.Hash, apperr.Invalid, "reason"},
		{"another plan's hash", opsTwo, "approved", "abc", "deadbeef", apperr.Conflict, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.wf.Decide(ctx, as(tt.who), tt.who, p.ID, tt.hash, tt.decision, tt.reason)
			if got := apperr.KindOf(err); got != tt.want {
				t.Fatalf("got %v (%v), want %v", got, err, tt.want)
			}
			if tt.field != "" && apperr.FieldsOf(err)[tt.field] == "" {
				t.Errorf("fields: got %v, want an error on %s", apperr.FieldsOf(err), tt.field)
			}
		})
	}

	if _, err := h.wf.Decide(ctx, as(opsTwo), opsTwo, p.ID, p.Hash, "approved", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := h.wf.Decide(ctx, as(opsTwo), opsTwo, p.ID, p.Hash, "approved", ""); apperr.KindOf(err) != apperr.Conflict {
		t.Errorf("approving twice: got %v, want conflict", err)
	}
	runID, err := h.wf.Apply(ctx, as(author), p.ID, "")
	if err != nil {
		t.Fatalf("apply after approval: %v", err)
	}
	h.run()
	r, _, _ := h.eng.GetRun(ctx, runID)
	if r.State != engine.RunSucceeded {
		t.Fatalf("prod run: got %s (%s), want succeeded", r.State, r.Error)
	}
	if n := h.auditActions("approval.approve"); n != 1 {
		t.Errorf("approval.approve audit records: got %d, want 1", n)
	}
}

func TestRejectionBlocksThePlan(t *testing.T) {
	h := newHarness(t, false)
	ctx := context.Background()
	p := h.toProd()
	if _, err := h.wf.Decide(ctx, as(opsTwo), opsTwo, p.ID, p.Hash, "rejected", "the change window is closed"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.wf.Decide(ctx, as(adminTwo), adminTwo, p.ID, p.Hash, "approved", ""); err != nil {
		t.Fatal(err)
	}
	_, err := h.wf.Apply(ctx, as(author), p.ID, "")
	if err == nil || !strings.Contains(err.Error(), "rejected this plan: the change window is closed") {
		t.Errorf("apply of a rejected plan: got %v, want refused with the reason", err)
	}
	if n := h.auditActions("approval.reject"); n != 1 {
		t.Errorf("approval.reject audit records: got %d, want 1", n)
	}
}

func TestApprovalVoidedByReplanAndByExpiry(t *testing.T) {
	h := newHarness(t, false)
	ctx := context.Background()
	p1 := h.toProd()
	if _, err := h.wf.Decide(ctx, as(opsTwo), opsTwo, p1.ID, p1.Hash, "approved", ""); err != nil {
		t.Fatal(err)
	}
	// A re-plan of the stack voids the approval of the older plan.
	p2, err := h.wf.Plan(ctx, as(author), workflows.PlanRequest{Stack: "prod-us", Version: "v1", Kind: "apply"})
	if err != nil {
		t.Fatal(err)
	}
	a1, err := h.wf.ApprovalOf(ctx, p1)
	if err != nil {
		t.Fatal(err)
	}
	if a1.Satisfied || a1.SupersededBy != p2.ID || !strings.Contains(a1.Decisions[0].Void, fmt.Sprintf("plan #%d replaced this plan", p2.ID)) {
		t.Errorf("old plan's approval after a re-plan: got satisfied=%v superseded=%d decisions=%+v, want voided by plan %d", a1.Satisfied, a1.SupersededBy, a1.Decisions, p2.ID)
	}
	if _, err := h.wf.Apply(ctx, as(author), p1.ID, ""); err == nil {
		t.Error("apply of the replaced plan: got nil, want refused")
	}
	if a2, _ := h.wf.ApprovalOf(ctx, p2); a2.Satisfied {
		t.Error("new plan is approved without any decision")
	}
	// Drift checks do not count as re-plans.
	if _, err := h.wf.Decide(ctx, as(opsTwo), opsTwo, p2.ID, p2.Hash, "approved", ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.wf.CheckDrift(ctx, as(opsTwo), "prod-us"); err != nil {
		t.Fatal(err)
	}
	if a2, _ := h.wf.ApprovalOf(ctx, p2); !a2.Satisfied {
		t.Errorf("approval after a drift check: got %q, want still satisfied", a2.Missing)
	}
	// Approvals expire (24 h by default).
	h.clock.Advance(24*time.Hour + time.Second)
	a2, _ := h.wf.ApprovalOf(ctx, p2)
	if a2.Satisfied || !strings.HasPrefix(a2.Decisions[0].Void, "expired") {
		t.Errorf("approval after 24 h: got satisfied=%v void=%q, want expired", a2.Satisfied, a2.Decisions[0].Void)
	}
	if _, err := h.wf.Apply(ctx, as(author), p2.ID, ""); err == nil || !strings.Contains(err.Error(), "needs approval") {
		t.Errorf("apply with an expired approval: got %v, want refused", err)
	}
	// The same person may approve again once theirs expired.
	if _, err := h.wf.Decide(ctx, as(opsTwo), opsTwo, p2.ID, p2.Hash, "approved", ""); err != nil {
		t.Errorf("approving again after expiry: %v", err)
	}
}

func TestTwoRoleApproval(t *testing.T) {
	h := newHarness(t, false)
	ctx := context.Background()
	slots, err := workflows.ParseApprovalSlots("ops, admin")
	if err != nil {
		t.Fatal(err)
	}
	h.wf.Approvals = workflows.ApprovalPolicy{Slots: slots, Expiry: time.Hour}
	p := h.toProd()
	both := workflows.Approver{ID: 9, Label: "user:9 both@example.com", Roles: []string{"ops", "admin"}}
	steps := []struct {
		who       workflows.Approver
		satisfied bool
		missing   string
	}{
		{opsTwo, false, "one approver holding admin"},
		{opsThree, false, "one approver holding admin"},
		{both, true, ""}, // fills the admin slot; one person never fills two
	}
	for _, s := range steps {
		if _, err := h.wf.Decide(ctx, as(s.who), s.who, p.ID, p.Hash, "approved", ""); err != nil {
			t.Fatal(err)
		}
		a, err := h.wf.ApprovalOf(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if a.Satisfied != s.satisfied || !strings.Contains(a.Missing, s.missing) {
			t.Errorf("after %s: got satisfied=%v missing=%q, want %v and %q", s.who.Label, a.Satisfied, a.Missing, s.satisfied, s.missing)
		}
	}
	// One person holding both roles alone is not two approvers.
	p2, err := h.wf.Plan(ctx, as(author), workflows.PlanRequest{Stack: "prod-us", Version: "v1", Kind: "apply"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.wf.Decide(ctx, as(both), both, p2.ID, p2.Hash, "approved", ""); err != nil {
		t.Fatal(err)
	}
	if a, _ := h.wf.ApprovalOf(ctx, p2); a.Satisfied {
		t.Error("one person holding ops and admin satisfied a two-approver policy")
	}
}

func TestParseApprovalSlots(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"ops|admin", "[[ops admin]]", false},
		{"ops,admin", "[[ops] [admin]]", false},
		{" OPS | admin , admin ", "[[ops admin] [admin]]", false},
		{"finance", "", true},
		{"", "", true},
	}
	for _, tt := range tests {
		got, err := workflows.ParseApprovalSlots(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && fmt.Sprint(got) != tt.want) {
			t.Errorf("ParseApprovalSlots(%q): got %v, %v, want %s (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestDestroyNeedsApprovalInDev(t *testing.T) {
	h := newHarness(t, false)
	ctx := context.Background()
	h.promote("v1", "dev", "us")
	p, err := h.wf.Plan(ctx, as(author), workflows.PlanRequest{Stack: "dev-us", Version: "", Kind: "destroy"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.wf.Apply(ctx, as(author), p.ID, "dev-us"); err == nil || !strings.Contains(err.Error(), "needs approval") {
		t.Fatalf("destroy without approval: got %v, want refused", err)
	}
	if _, err := h.wf.Decide(ctx, as(opsTwo), opsTwo, p.ID, p.Hash, "approved", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := h.wf.Apply(ctx, as(author), p.ID, "dev-us"); err != nil {
		t.Errorf("approved destroy: %v", err)
	}
	h.run()
	if in, _ := h.wf.VersionInForce(ctx, "dev-us"); in.Version != "" {
		t.Errorf("version in force after destroy: got %q, want none", in.Version)
	}
}

func TestLockSurvivesRestart(t *testing.T) {
	h := newHarness(t, false)
	ctx := context.Background()
	h.promote("v1", "dev", "eu")
	p1, err := h.wf.Plan(ctx, as(author), workflows.PlanRequest{Stack: "dev-eu", Version: "v2", Kind: "apply"})
	if err != nil {
		t.Fatal(err)
	}
	first, err := h.wf.Apply(ctx, as(author), p1.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	// A runner claims the run and dies before finishing it: its lease is
	// in the database (on the database's clock).
	dbNow, err := h.db.Now(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lease := store.Time(dbNow.Add(30 * time.Second))
	if _, err := h.db.Exec(`UPDATE runs SET state = 'running', holder = 'replica-dead', lease_until = ?, started_at = ? WHERE id = ?`,
		lease, store.Time(h.clock.Now()), first); err != nil {
		t.Fatal(err)
	}
	p2, err := h.wf.Plan(ctx, as(opsTwo), workflows.PlanRequest{Stack: "dev-eu", Version: "v2", Kind: "apply"})
	if err != nil {
		t.Fatal(err)
	}
	second, err := h.wf.Apply(ctx, as(opsTwo), p2.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string, held bool, holder int64, queue ...int64) {
		t.Helper()
		l, err := h.wf.LockOf(ctx, "dev-eu")
		if err != nil {
			t.Fatal(err)
		}
		var q []int64
		for _, r := range l.Queue {
			q = append(q, r.ID)
		}
		if l.Held != held || (held && l.Run.ID != holder) || fmt.Sprint(q) != fmt.Sprint(queue) {
			t.Errorf("%s: got held=%v by run %d queue %v, want held=%v by run %d queue %v", when, l.Held, l.Run.ID, q, held, holder, queue)
		}
		if held && (l.Run.CreatedBy != author.Label || l.Since.IsZero()) {
			t.Errorf("%s: lock names %q since %v, want %s and a time", when, l.Run.CreatedBy, l.Since, author.Label)
		}
	}
	check("before the restart", true, first, second)

	// The portal restarts: a new engine over the same database.
	h.eng = h.newEng()
	h.wf.Engine = h.eng
	h.eng.OnFinish = h.wf.AfterRun
	h.eng.BeforeRun = h.wf.BeforeRun
	h.run()
	check("after the restart, lease still valid", true, first, second)

	// The dead runner's lease lapses: recovery marks its run interrupted,
	// which still holds the lock (nothing runs over a half-applied stack).
	if _, err := h.db.Exec(`UPDATE runs SET lease_until = ? WHERE id = ?`, store.Time(dbNow.Add(-time.Second)), first); err != nil {
		t.Fatal(err)
	}
	if n, err := h.eng.Recover(ctx); err != nil || n != 1 {
		t.Fatalf("recover: got %d, %v, want 1 run", n, err)
	}
	h.run()
	check("after recovery", true, first, second)

	// Cancelling the interrupted run releases the lock; the queued run goes.
	if err := h.eng.Cancel(ctx, as(author), first); err != nil {
		t.Fatal(err)
	}
	h.run()
	check("after cancel and run", false, 0)
	r, _, _ := h.eng.GetRun(ctx, second)
	if r.State != engine.RunSucceeded {
		t.Errorf("queued run after the lock was released: got %s (%s), want succeeded", r.State, r.Error)
	}
}

func TestRollbackIsAPromotionCheckedRun(t *testing.T) {
	h := newHarness(t, false)
	ctx := context.Background()
	h.promote("v1", "dev", "us")
	h.promote("v2", "dev", "us")
	hist, _, err := h.wf.History(ctx, "dev-us", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[0].Version != "v2" || !hist[0].InForce || hist[1].Version != "v1" {
		t.Fatalf("history: got %+v, want v2 in force then v1", hist)
	}
	pr, err := h.wf.Promote(ctx, as(author), workflows.PromoteRequest{Version: "v1", Environment: "dev", Jurisdictions: []string{"us"}, Purpose: workflows.PurposeRollback})
	if err != nil {
		t.Fatal(err)
	}
	h.run()
	if in, _ := h.wf.VersionInForce(ctx, "dev-us"); in.Version != "v1" || in.RunID != pr.Stacks[0].RunID {
		t.Errorf("after rollback: got %+v, want v1 from run %d", in, pr.Stacks[0].RunID)
	}
	// Rolling test back to a version test never had is refused like any
	// promotion.
	if _, err := h.wf.Promote(ctx, as(author), workflows.PromoteRequest{Version: "v2", Environment: "test", Jurisdictions: []string{"us"}, Purpose: workflows.PurposeRollback}); err != nil {
		t.Errorf("v2 applied and verified in dev-us earlier: got %v, want allowed to test", err)
	}
}

func TestSummariesAndTravel(t *testing.T) {
	h := newHarness(t, false)
	ctx := context.Background()
	h.toProd()
	sums, err := h.wf.StackSummaries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s := sums["test-us"]; s.VersionInForce != "v1" || s.LastRunState != engine.RunSucceeded || s.Verification != verify.Passed {
		t.Errorf("test-us summary: got %+v, want v1 in force, verified", s)
	}
	if s := sums["prod-us"]; s.VersionInForce != "" || s.Waiting != "v1" || s.WaitingWhy != "awaiting approval" {
		t.Errorf("prod-us summary: got %+v, want v1 waiting for approval", s)
	}
	if _, ok := sums["dev-apac"]; ok {
		t.Errorf("dev-apac was never touched, got a summary")
	}
	tr, err := h.wf.Travels(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr) != 1 || tr[0].Version != "v1" || tr[0].Stacks["dev-us"] != "in force" || tr[0].Stacks["prod-us"] != "waiting" || tr[0].Stacks["dev-eu"] != "" {
		t.Errorf("travel: got %+v, want v1 in force in dev-us and test-us, waiting in prod-us", tr)
	}
}

func TestAfterRunNotifiesFailedRuns(t *testing.T) {
	h := newHarness(t, false)
	h.wf.AfterRun(context.Background(), engine.Run{ID: 42, Stack: "dev-us", Kind: "apply", State: engine.RunFailed, CreatedBy: author.Label, Error: "KMS said no"})
	notes, _, err := h.notes.List(context.Background(), notify.Filter{Kind: notify.RunFailed})
	if err != nil || len(notes) != 1 || !strings.Contains(notes[0].Message, "KMS said no") || notes[0].Link != "/runs/42" {
		t.Errorf("run-failed notifications: got %+v, %v, want one quoting the error", notes, err)
	}
	if notes[0].PublishError == "" || notes[0].Published() {
		t.Errorf("without AWS topics the notification must say it was not published: got %+v", notes[0])
	}
}

func TestDriftBehindThePortalsBackIsDetectedAndReconciled(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	h.promote("v1", "dev", "eu")
	d, ok, err := h.wf.CheckDrift(ctx, as(opsTwo), "dev-eu")
	if err != nil || !ok || d.State != workflows.DriftClean {
		t.Fatalf("first drift check: got %+v, %v, %v, want clean", d, ok, err)
	}

	// Someone opens SSH to the world on the database group, straight in
	// the account.
	res, err := h.eng.Resources(ctx, "dev-eu")
	if err != nil {
		t.Fatal(err)
	}
	var sg string
	for _, r := range res {
		if r.ID == "db_sg" {
			sg = r.PhysicalID
		}
	}
	c := ec2.NewFromConfig(h.cfg("dev", "eu-central-1"))
	if _, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(sg), IpPermissions: []ec2types.IpPermission{{
		IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}}); err != nil {
		t.Fatal(err)
	}

	d, ok, err = h.wf.CheckDrift(ctx, as(opsTwo), "dev-eu")
	if err != nil || !ok || d.State != workflows.DriftDrifted || d.Drifted != 1 {
		t.Fatalf("drift check after the hand edit: got %+v, %v, %v, want 1 drifted resource", d, ok, err)
	}
	p, err := h.eng.GetPlan(ctx, d.PlanID)
	if err != nil {
		t.Fatal(err)
	}
	ch := workflows.Drifted(p)
	if len(ch) != 1 || ch[0].ID != "db_sg" || ch[0].Action != engine.Update || len(ch[0].Fields) == 0 || ch[0].Fields[0].Path != "ingress" ||
		!strings.Contains(engine.Display(ch[0].Fields[0].Before), "22") {
		t.Fatalf("drifted changes: got %+v, want db_sg ingress showing the port 22 rule", ch)
	}
	sums, _ := h.wf.StackSummaries(ctx)
	if s := sums["dev-eu"]; s.Drifted != 1 || s.DriftCheckID != d.ID {
		t.Errorf("grid summary: got %+v, want drift flagged", s)
	}
	notes, _, _ := h.notes.List(ctx, notify.Filter{Kind: notify.Drift})
	if len(notes) != 1 || !strings.Contains(notes[0].Message, "db_sg") {
		t.Errorf("drift notifications: got %+v, want one naming db_sg", notes)
	}
	// The same drift found again is not notified again.
	if _, _, err := h.wf.CheckDrift(ctx, as(opsTwo), "dev-eu"); err != nil {
		t.Fatal(err)
	}
	if notes, _, _ := h.notes.List(ctx, notify.Filter{Kind: notify.Drift}); len(notes) != 1 {
		t.Errorf("drift notifications after a second identical check: got %d, want 1", len(notes))
	}

	// One click: a reconcile run of the version in force.
	pr, err := h.wf.Reconcile(ctx, as(opsTwo), "dev-eu")
	if err != nil {
		t.Fatal(err)
	}
	if pr.Purpose != workflows.PurposeReconcile || pr.Stacks[0].RunID == 0 {
		t.Fatalf("reconcile: got %+v, want a queued run", pr)
	}
	h.run()
	// The reconcile's success checks the stack again at once: the flag
	// clears without waiting for the schedule.
	d, err = h.wf.LatestDrift(ctx, "dev-eu")
	if err != nil || d.State != workflows.DriftClean || d.RequestedBy != "system" {
		t.Errorf("latest drift check after the reconcile: got %+v, %v, want a clean check by the system", d, err)
	}
	if sums, _ := h.wf.StackSummaries(ctx); sums["dev-eu"].Drifted != 0 {
		t.Errorf("grid summary after the reconcile: got %+v, want no drift", sums["dev-eu"])
	}
	out, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{sg}})
	if err != nil {
		t.Fatal(err)
	}
	for _, perm := range out.SecurityGroups[0].IpPermissions {
		if aws.ToInt32(perm.FromPort) == 22 {
			t.Errorf("port 22 rule still there after reconcile: %+v", perm)
		}
	}
}

func TestProdReconcileNeedsApproval(t *testing.T) {
	h := newHarness(t, false)
	ctx := context.Background()
	p := h.toProd()
	if _, err := h.wf.Decide(ctx, as(opsTwo), opsTwo, p.ID, p.Hash, "approved", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := h.wf.Apply(ctx, as(author), p.ID, ""); err != nil {
		t.Fatal(err)
	}
	h.run()
	pr, err := h.wf.Reconcile(ctx, as(opsTwo), "prod-us")
	if err != nil {
		t.Fatal(err)
	}
	if pr.Stacks[0].RunID != 0 || pr.Stacks[0].PlanID == 0 {
		t.Errorf("prod reconcile: got %+v, want a plan waiting for approval", pr.Stacks[0])
	}
}

// TestTwoSchedulersRunTheDriftJobOnce: two replicas share one database and
// both schedule the drift check; leases in the database let only one run
// it at a time.
func TestTwoSchedulersRunTheDriftJobOnce(t *testing.T) {
	h := newHarness(t, false)
	h.promote("v1", "dev", "us")
	var mu sync.Mutex
	active, maxActive, runs := 0, 0, 0
	job := func(ctx context.Context) error {
		mu.Lock()
		active++
		runs++
		if active > maxActive {
			maxActive = active
		}
		mu.Unlock()
		defer func() { mu.Lock(); active--; mu.Unlock() }()
		_, _, err := h.wf.CheckAllDrift(ctx, audit.Entry{Actor: "system"})
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, name := range []string{"replica-a", "replica-b"} {
		s := jobs.New(h.db, quiet, nil, name)
		s.Tick = 5 * time.Millisecond
		s.Every("drift-check", time.Millisecond, job)
		wg.Add(1)
		go func() { defer wg.Done(); s.Run(ctx) }()
	}
	time.Sleep(1500 * time.Millisecond)
	cancel()
	wg.Wait()
	if maxActive != 1 || runs < 2 {
		t.Errorf("drift job across two schedulers: got at most %d at once over %d runs, want 1 at once and several runs", maxActive, runs)
	}
	var checks int
	if err := h.db.QueryRow(`SELECT COUNT(*) FROM drift_checks`).Scan(&checks); err != nil {
		t.Fatal(err)
	}
	// The last run may have been cut short by the shutdown.
	if checks != runs && checks != runs-1 {
		t.Errorf("drift checks recorded: got %d, want one per finished run (%d runs)", checks, runs)
	}
}

// A succeeded apply of a stack outside the catalogue (an account's staff
// roles) is not verified: neither when it finishes nor by the job that
// catches up on missed verifications, which used to log "no stack
// staff-roles-dev" every five minutes.
func TestStaffRolesAppliesAreNotVerified(t *testing.T) {
	h := newHarness(t, false)
	var logged bytes.Buffer
	h.wf.Log = slog.New(slog.NewTextHandler(&logged, nil))
	ctx := context.Background()
	at := h.clock.Now().Add(-time.Hour)
	var plan, run int64
	if err := h.db.QueryRowContext(ctx, `INSERT INTO plans (stack, kind, version, hash, body, created_by, created_at) VALUES ('staff-roles-dev', 'apply', 'v1', 'h', '{}', 'system', ?) RETURNING id`,
		store.Time(at)).Scan(&plan); err != nil {
		t.Fatal(err)
	}
	if err := h.db.QueryRowContext(ctx, `INSERT INTO runs (plan_id, stack, kind, version, state, created_by, created_at, started_at, finished_at) VALUES (?, 'staff-roles-dev', 'apply', 'v1', 'succeeded', 'system', ?, ?, ?) RETURNING id`,
		plan, store.Time(at), store.Time(at), store.Time(at.Add(time.Minute))).Scan(&run); err != nil {
		t.Fatal(err)
	}
	h.wf.AfterRun(ctx, engine.Run{ID: run, Stack: "staff-roles-dev", Kind: "apply", State: engine.RunSucceeded})
	for range 2 {
		if err := h.wf.VerifyPending(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if logged.Len() > 0 {
		t.Errorf("verifying a staff-roles apply logged:\n%s", logged.String())
	}
	var n int
	if err := h.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM verifications`).Scan(&n); err != nil || n != 0 {
		t.Errorf("verifications: %d (%v), want none", n, err)
	}
}
