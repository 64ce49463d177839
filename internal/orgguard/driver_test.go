package orgguard

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/engine"
	"portal/internal/peers"
	"portal/internal/peers/peertest"
	"portal/internal/regions"
	"portal/internal/store"
	"portal/internal/workflows"
)

func TestMain(m *testing.M) { peertest.Main(m) }

// The policies are a stack the engine plans and applies in the management
// account: each lands in the organization attached to the root with SCPs
// enabled there, a second plan is empty, and a policy edited outside the
// portal is planned back.
func TestPoliciesThroughTheEngine(t *testing.T) {
	ctx := context.Background()
	m := peertest.MotoForTest(t)
	mgmt := peertest.AccountForTest(t)
	cfg := peers.AssumeAccount(ctx, m.AWSConfig(apiRegion), mgmt, peertest.TestRole)
	org := organizations.NewFromConfig(cfg)
	if _, err := org.CreateOrganization(ctx, &organizations.CreateOrganizationInput{FeatureSet: orgtypes.OrganizationFeatureSetAll}); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "portal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := func() time.Time { return time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC) }
	reg, err := engine.NewRegistry(Drivers()...)
	if err != nil {
		t.Fatal(err)
	}
	source := func(env, region string) (aws.Config, error) { c := cfg.Copy(); c.Region = region; return c, nil }
	eng := engine.New(reg, source, db, audit.New(db, now), slog.New(slog.NewTextHandler(io.Discard, nil)), now)
	svc := &Service{Engine: eng, Configs: source, ManagementAccount: mgmt,
		Environments: map[string]string{"dev": "111111111111", "test": "222222222222", "prod": "333333333333"}, Now: now}
	ada := workflows.Approver{ID: 1, Label: "user:1 ada@example.com", Roles: []string{"admin"}}
	ben := workflows.Approver{ID: 2, Label: "user:2 ben@example.com", Roles: []string{"admin"}}
	olga := workflows.Approver{ID: 3, Label: "user:3 olga@example.com", Roles: []string{"ops"}}
	by := audit.Entry{Actor: ada.Label}
	// The policies bind every account at once: they are applied through
	// the approvals, once an admin other than their author approved them.
	wf := &workflows.Service{Engine: eng, DB: db, Audit: audit.New(db, now), Now: now}

	before, err := svc.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range before {
		if st.ID != "" || st.AttachedToRoot {
			t.Fatalf("before apply: %s exists (%+v)", st.Name, st)
		}
	}
	apply := func() {
		t.Helper()
		p, err := svc.Plan(ctx, by)
		if err != nil {
			t.Fatal(err)
		}
		if b := p.Blocking(); len(b) != 0 {
			t.Fatalf("plan blocked: %v", b)
		}
		if _, err := wf.Apply(ctx, by, p.ID, ""); apperr.KindOf(err) != apperr.Conflict || !strings.Contains(err.Error(), "needs approval") {
			t.Fatalf("apply by its author alone: got %v, want refused: needs approval", err)
		}
		for _, who := range []workflows.Approver{ada, olga} {
			if _, err := wf.Decide(ctx, audit.Entry{Actor: who.Label}, who, p.ID, p.Hash, "approved", ""); apperr.KindOf(err) != apperr.Forbidden {
				t.Fatalf("approval by %s: got %v, want forbidden (the author, or not an admin)", who.Label, err)
			}
		}
		if _, err := wf.Decide(ctx, audit.Entry{Actor: ben.Label}, ben, p.ID, p.Hash, "approved", ""); err != nil {
			t.Fatalf("another admin's approval: %v", err)
		}
		runID, err := wf.Apply(ctx, by, p.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := eng.RunNow(ctx, "test"); err != nil {
			t.Fatal(err)
		}
		r, _, err := eng.GetRun(ctx, runID)
		if err != nil {
			t.Fatal(err)
		}
		if r.State != engine.RunSucceeded {
			t.Fatalf("run %d: %s (%s)", runID, r.State, r.Error)
		}
	}
	p, err := svc.Plan(ctx, by)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Counts()[engine.Create]; got != 4 {
		t.Fatalf("first plan creates %d policies, want 4 (three residency, one audit): %+v", got, p.Changes)
	}
	apply()

	roots, err := org.ListRoots(ctx, &organizations.ListRootsInput{})
	if err != nil {
		t.Fatal(err)
	}
	enabled := false
	for _, pt := range roots.Roots[0].PolicyTypes {
		enabled = enabled || (pt.Type == orgtypes.PolicyTypeServiceControlPolicy && pt.Status == orgtypes.PolicyTypeStatusEnabled)
	}
	if !enabled {
		t.Errorf("root policy types %+v: SCPs not enabled", roots.Roots[0].PolicyTypes)
	}
	attached, err := org.ListPoliciesForTarget(ctx, &organizations.ListPoliciesForTargetInput{TargetId: roots.Roots[0].Id, Filter: orgtypes.PolicyTypeServiceControlPolicy})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, s := range attached.Policies {
		names[aws.ToString(s.Name)] = aws.ToString(s.Id)
	}
	for _, want := range []string{"portal-residency-us", "portal-residency-eu", "portal-residency-apac", "portal-protect-audit"} {
		if names[want] == "" {
			t.Errorf("root policies %v lack %s", names, want)
		}
	}
	d, err := org.DescribePolicy(ctx, &organizations.DescribePolicyInput{PolicyId: aws.String(names["portal-residency-eu"])})
	if err != nil {
		t.Fatal(err)
	}
	if !sameJSON(aws.ToString(d.Policy.Content), Residency(mustJur(t, "eu"), []string{"dev", "test", "prod"}).Document()) {
		t.Errorf("EU policy in AWS differs from the portal's: %s", aws.ToString(d.Policy.Content))
	}
	status, err := svc.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range status {
		if !st.AttachedToRoot || !st.Current {
			t.Errorf("status of %s: %+v, want attached and current", st.Name, st)
		}
	}

	for _, c := range svc.Controls(ctx, "eu") {
		if c.Status != "pass" || c.Area != "AWS Organizations" {
			t.Errorf("evidence control %q: %s %v, want pass", c.Name, c.Status, c.Lines)
		}
	}

	again, err := svc.Plan(ctx, by)
	if err != nil {
		t.Fatal(err)
	}
	if again.HasChanges() {
		t.Errorf("second plan has changes: %+v", again.Changes)
	}

	// Someone weakens the EU policy and detaches the audit one by hand.
	if _, err := org.UpdatePolicy(ctx, &organizations.UpdatePolicyInput{PolicyId: aws.String(names["portal-residency-eu"]),
		Content: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"ec2:RunInstances","Resource":"*"}]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := org.DetachPolicy(ctx, &organizations.DetachPolicyInput{PolicyId: aws.String(names["portal-protect-audit"]), TargetId: roots.Roots[0].Id}); err != nil {
		t.Fatal(err)
	}
	status, _ = svc.Status(ctx)
	for _, st := range status {
		if (st.Name == "portal-residency-eu") == st.Current || (st.Name == "portal-protect-audit") == st.AttachedToRoot {
			t.Errorf("status after tampering: %s %+v", st.Name, st)
		}
	}
	for _, c := range svc.Controls(ctx, "eu") {
		if c.Status != "fail" {
			t.Errorf("evidence control %q after tampering: %s %v, want fail", c.Name, c.Status, c.Lines)
		}
	}
	drift, err := svc.Plan(ctx, by)
	if err != nil {
		t.Fatal(err)
	}
	if got := drift.Counts()[engine.Update]; got != 2 {
		t.Fatalf("plan after tampering updates %d policies, want 2: %+v", got, drift.Changes)
	}
	apply()
	status, _ = svc.Status(ctx)
	for _, st := range status {
		if !st.AttachedToRoot || !st.Current {
			t.Errorf("after re-apply %s: %+v, want attached and current", st.Name, st)
		}
	}
}

func mustJur(t *testing.T, id string) regions.Jurisdiction {
	t.Helper()
	j, ok := regions.JurisdictionByID(id)
	if !ok {
		t.Fatalf("no jurisdiction %s", id)
	}
	return j
}

// Without a management account the evidence pack still lists the
// preventive controls, as failing, and says why.
func TestControlsWithoutManagementAccount(t *testing.T) {
	svc := &Service{}
	cs := svc.Controls(context.Background(), "apac")
	if len(cs) != 2 {
		t.Fatalf("got %d controls, want the residency and the audit ones", len(cs))
	}
	for _, c := range cs {
		if c.Status != "fail" || len(c.Lines) != 1 || !strings.Contains(c.Lines[0].Finding, "no management account is configured") || !c.Lines[0].Failing {
			t.Errorf("control %s: %s %+v, want fail saying no management account is configured", c.ID, c.Status, c.Lines)
		}
	}
	if got := cs[0].Name; !strings.Contains(got, "ap-southeast-1") || !strings.Contains(got, "APAC") {
		t.Errorf("residency control %q, want it to name APAC's regions", got)
	}
}
