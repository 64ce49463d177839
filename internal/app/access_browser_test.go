package app_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	"github.com/chromedp/chromedp"

	"portal/internal/access"
	"portal/internal/app"
	"portal/internal/engine"
	"portal/internal/peers"
	"portal/internal/peers/peertest"
	"portal/internal/regions"
	"portal/internal/staff"
)

// TestAWSAccessInBrowser is the "done when": an admin gives an ops
// engineer read-only access in prod, the engineer asks for an hour of
// deployer access with a reason, a second admin approves, IAM Identity
// Center (in the organization's management account) shows both account
// assignments in the prod account, and at expiry (the injected clock moved
// on) the elevation's is gone; the review campaign lists the grant.
func TestAWSAccessInBrowser(t *testing.T) {
	m := peertest.MotoForTest(t)
	peertest.SetAWSEnv(t, m)
	accounts := map[string]string{}
	args := []string{"-addr", "127.0.0.1:0", "-data-dir", t.TempDir(), "-drift-interval", "0"}
	for _, env := range regions.EnvironmentNames() {
		accounts[env] = peertest.AccountForTest(t)
		args = append(args, "-"+env+"-account-id", accounts[env], "-"+env+"-role-arn", peers.RoleARN(accounts[env], peertest.TestRole))
	}
	mgmt := peertest.AccountForTest(t)
	args = append(args, "-management-account-id", mgmt, "-management-role-arn", peers.RoleARN(mgmt, peertest.TestRole), "-identity-center-region", "eu-central-1")
	cfg, err := app.ParseServe(args)
	if err != nil {
		t.Fatal(err)
	}
	clk := &walkClock{}
	runCtx, stop := context.WithCancel(context.Background())
	a, err := app.New(runCtx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), app.Options{Now: clk.Now, HashParams: &staff.HashParams{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		a.Close()
	})
	adaPass, adaSecret := staffUser(t, a, clk, "ada.admin@example.com", "Ada Admin", staff.Admin)
	benPass, benSecret := staffUser(t, a, clk, "ben.admin@example.com", "Ben Admin", staff.Admin)
	olgaPass, olgaSecret := staffUser(t, a, clk, "olga.ops@example.com", "Olga Ops", staff.Ops)
	idc := peertest.IdentityCenterForTest(t, peers.AssumeAccount(context.Background(), m.AWSConfig("eu-central-1"), mgmt, peertest.TestRole))
	members := func(permissionSet string) []string {
		t.Helper()
		return idc.Assigned(t, permissionSet, accounts["prod"])
	}

	ctx := peertest.Chromium(t)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	shot := func(name string) { peertest.KeepScreenshot(t, ctx, "access-"+name+".png") }
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			shot("failed")
			t.Fatalf("%s: %v", step, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			shot("failed")
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	signIn := func(email, password, secret string) {
		t.Helper()
		do("sign in "+email, chromedp.Navigate(a.URL()+"/login"), chromedp.WaitVisible(`[data-testid=login-form]`),
			chromedp.SendKeys(`#f-email`, email), chromedp.SendKeys(`#f-password`, password),
			chromedp.Click(`[data-testid=login-submit]`), chromedp.WaitVisible(`[data-testid=totp-form]`))
		do("two-factor "+email, chromedp.SendKeys(`#f-code`, clk.code(t, secret)), chromedp.Click(`[data-testid=totp-submit]`),
			chromedp.WaitVisible(`[data-testid=who]`))
	}
	signOut := func() {
		t.Helper()
		do("sign out", chromedp.Click(`form[action="/logout"] button`), chromedp.WaitVisible(`[data-testid=login-form]`))
	}

	// Ada plans the prod staff roles; Ben approves; Ada applies.
	signIn("ada.admin@example.com", adaPass, adaSecret)
	do("empty access page", chromedp.Navigate(a.URL()+"/access/aws"), chromedp.WaitVisible(`[data-testid=matrix]`))
	shot("01-empty")
	do("plan prod roles", chromedp.Navigate(a.URL()+"/access/aws/roles"), chromedp.WaitVisible(`[data-testid=role-stacks]`),
		chromedp.Click(`[data-testid=plan-prod]`), chromedp.WaitVisible(`[data-testid=flash]`))
	shot("02-prod-planned")
	if got := text(`[data-testid=stack-prod]`); !strings.Contains(got, "5 to create") || !strings.Contains(got, "Needs another admin") {
		t.Errorf("prod row: %q, want 5 to create, needing approval", got)
	}
	signOut()
	signIn("ben.admin@example.com", benPass, benSecret)
	do("approve prod roles", chromedp.Navigate(a.URL()+"/access/aws/roles"), chromedp.Click(`[data-testid=approve-plan-prod]`),
		chromedp.WaitVisible(`[data-testid=flash]`))
	signOut()
	signIn("ada.admin@example.com", adaPass, adaSecret)
	do("apply prod roles", chromedp.Navigate(a.URL()+"/access/aws/roles"), chromedp.Click(`[data-testid=apply-prod]`),
		chromedp.WaitVisible(`[data-testid=nav-runs]`))
	deadline := time.Now().Add(60 * time.Second)
	for {
		if idc.HasPermissionSet(t, "ops-readonly-prod") {
			break
		}
		if time.Now().After(deadline) {
			shot("failed")
			t.Fatal("the prod permission sets never appeared in Identity Center")
		}
		time.Sleep(300 * time.Millisecond)
	}

	// Ada grants Olga read-only in prod: it waits for another admin.
	olga, err := a.Staff.GetByEmail(context.Background(), "olga.ops@example.com")
	if err != nil {
		t.Fatal(err)
	}
	do("grant form", chromedp.Navigate(a.URL()+"/access/aws"), chromedp.WaitVisible(`[data-testid=grant-form]`),
		chromedp.SetValue(`#f-user`, strconv.FormatInt(olga.ID, 10)), chromedp.SetValue(`#f-environment`, "prod"), chromedp.SetValue(`#f-role`, "ops-readonly"),
		chromedp.SendKeys(`#f-reason`, "joins the prod on-call rota"), chromedp.Click(`[data-testid=grant-submit]`),
		chromedp.WaitVisible(`[data-testid=flash]`))
	if got := text(`[data-testid=flash]`); !strings.Contains(got, "another admin must approve") {
		t.Errorf("flash after prod grant: %q", got)
	}
	shot("03-grant-pending")
	signOut()

	// Olga asks for an hour of deployer access in prod; 8 hours is refused.
	signIn("olga.ops@example.com", olgaPass, olgaSecret)
	do("elevate form", chromedp.Navigate(a.URL()+"/access/aws/elevate"), chromedp.WaitVisible(`[data-testid=elevate-form]`),
		chromedp.SetValue(`#f-environment`, "prod"), chromedp.SetValue(`#f-role`, "ops-deployer"), chromedp.SetValue(`#f-minutes`, "480"),
		chromedp.SendKeys(`#f-reason`, "INC-1042 hotfix for the upload queue"), chromedp.Click(`[data-testid=elevate-submit]`),
		chromedp.WaitVisible(`[data-testid=error-minutes]`))
	shot("04-elevation-too-long")
	if got := text(`[data-testid=error-minutes]`); !strings.Contains(got, "4 hours") {
		t.Errorf("duration error %q, want the 4-hour bound", got)
	}
	do("elevate 1h", chromedp.SetValue(`#f-minutes`, "60"), chromedp.Click(`[data-testid=elevate-submit]`),
		chromedp.WaitVisible(`[data-testid=my-requests]`))
	shot("05-elevation-requested")
	signOut()

	// Ben approves both.
	signIn("ben.admin@example.com", benPass, benSecret)
	do("pending list", chromedp.Navigate(a.URL()+"/access/aws"), chromedp.WaitVisible(`[data-testid=pending]`))
	shot("06-pending")
	pending, err := a.Estate.Access.List(context.Background(), access.Filter{States: []string{access.Pending}})
	if err != nil || len(pending) != 2 {
		t.Fatalf("pending grants %d (err %v), want 2", len(pending), err)
	}
	for _, g := range pending {
		id := strconv.FormatInt(g.ID, 10)
		do("approve "+id, chromedp.Click(`[data-testid=approve-`+id+`]`), chromedp.WaitNotPresent(`[data-testid=approve-`+id+`]`),
			chromedp.WaitVisible(`[data-testid=flash]`))
	}
	do("matrix", chromedp.WaitVisible(`[data-testid=elevations]`))
	shot("07-elevated")
	if got := text(`[data-testid=elevations]`); !strings.Contains(got, "min left") {
		t.Errorf("active elevations: %q, want a countdown", got)
	}
	if got := text(`[data-testid="cell-olga.ops@example.com-prod"]`); !strings.Contains(got, "ops-readonly") || !strings.Contains(got, "ops-deployer until") {
		t.Errorf("olga's prod cell: %q", got)
	}
	if got := members("ops-deployer-prod"); !slices.Equal(got, []string{"olga.ops@example.com"}) {
		t.Fatalf("prod ops-deployer members %v, want olga", got)
	}
	// The admin sees both assignments as Identity Center reports them.
	do("assignments", chromedp.Navigate(a.URL()+"/access/aws/consistency"), chromedp.WaitVisible(`[data-testid=assignments]`))
	shot("07b-identity-center")
	for _, ps := range []string{"ops-readonly-prod", "ops-deployer-prod"} {
		if got := text(`[data-testid="assignment-prod-` + ps + `-olga.ops@example.com"]`); !strings.Contains(got, accounts["prod"]) {
			t.Errorf("Identity Center row of %s: %q, want the prod account", ps, got)
		}
	}

	// An hour later the job ends it; read-only stays.
	clk.mu.Lock()
	clk.offset += 61 * time.Minute
	clk.mu.Unlock()
	if _, err := a.Jobs.RunOnce(context.Background(), "access.expire"); err != nil {
		t.Fatal(err)
	}
	if got := members("ops-deployer-prod"); len(got) != 0 {
		t.Errorf("after expiry: ops-deployer members %v, want nobody", got)
	}
	if got := members("ops-readonly-prod"); !slices.Equal(got, []string{"olga.ops@example.com"}) {
		t.Errorf("after expiry: ops-readonly members %v, want olga", got)
	}

	// The review lists the standing grant.
	do("open review", chromedp.Navigate(a.URL()+"/access/aws/reviews"), chromedp.WaitVisible(`[data-testid=empty]`))
	shot("08-reviews-empty")
	do("open review", chromedp.Click(`[data-testid=review-open]`), chromedp.WaitVisible(`[data-testid=review-items]`))
	shot("09-review")
	if got := text(`[data-testid="item-olga.ops@example.com-prod-ops-readonly"]`); !strings.Contains(got, "unknown") {
		t.Errorf("review row: %q, want last used unknown", got)
	}
	do("consistency", chromedp.Navigate(a.URL()+"/access/aws/consistency"), chromedp.WaitVisible(`[data-testid=empty]`))
	shot("10-consistent")
	// The guardrail report shows the preventive layer: planned, applied,
	// and attached to the organization's root in moto.
	mgmtCfg := peers.AssumeAccount(context.Background(), m.AWSConfig("us-east-1"), mgmt, peertest.TestRole)
	if _, err := organizations.NewFromConfig(mgmtCfg).CreateOrganization(context.Background(), &organizations.CreateOrganizationInput{FeatureSet: orgtypes.OrganizationFeatureSetAll}); err != nil {
		t.Fatal(err)
	}
	do("plan the organization's policies", chromedp.Navigate(a.URL()+"/blueprints/guardrails/jurisdictions/eu"), chromedp.WaitVisible(`[data-testid=preventive]`),
		chromedp.Click(`[data-testid=preventive-plan-button]`), chromedp.WaitVisible(`[data-testid=preventive-plan]`))
	shot("11-preventive-planned")
	// They bind every account at once: Ben, who planned them, cannot
	// apply them; Ada approves from her inbox and applies.
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid=preventive-apply]').length`)); err != nil || n != 0 {
		t.Errorf("the organization's policies can be applied by their author alone (%d apply buttons, %v)", n, err)
	}
	if got := text(`[data-testid=preventive-approval]`); got != "waits for approval" {
		t.Errorf("the organization's plan: %q, want it waiting for approval", got)
	}
	orgPlan, _, _ := strings.Cut(strings.TrimPrefix(text(`[data-testid=preventive-plan]`), "Plan #"), ":")
	if _, err := strconv.Atoi(orgPlan); err != nil {
		t.Fatalf("the organization's plan id: %q", orgPlan)
	}
	signOut()
	signIn("ada.admin@example.com", adaPass, adaSecret)
	do("Ada's approvals", chromedp.Navigate(a.URL()+"/approvals"), chromedp.WaitVisible(`[data-testid=inbox-approve-`+orgPlan+`]`))
	shot("11a-organization-in-inbox")
	do("approve the organization's policies", chromedp.Click(`[data-testid=inbox-approve-`+orgPlan+`]`), chromedp.WaitVisible(`[data-testid=flash]`))
	do("apply the organization's policies", chromedp.Navigate(a.URL()+"/plans/"+orgPlan), chromedp.WaitVisible(`[data-testid=apply-submit]`),
		chromedp.Click(`[data-testid=apply-submit]`), chromedp.WaitVisible(`[data-testid=nav-runs]`))
	runURL, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	orgRun, err := strconv.ParseInt(runURL[strings.LastIndexByte(runURL, '/')+1:], 10, 64)
	if err != nil {
		t.Fatalf("applying the organization's policies led to %s, want its run's page", runURL)
	}
	// The run applies under the race detector on a shared machine: wait
	// for it to end, and say how it ended if it did not succeed.
	deadline = time.Now().Add(2 * time.Minute)
	for {
		r, _, err := a.Estate.Engine.GetRun(context.Background(), orgRun)
		if err != nil {
			t.Fatal(err)
		}
		if r.Finished() && r.State != engine.RunSucceeded {
			t.Fatalf("the organization's run #%d ended %s: %s", orgRun, r.State, r.Error)
		}
		if r.Finished() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the organization's run #%d still %s after 2 minutes", orgRun, r.State)
		}
		time.Sleep(250 * time.Millisecond)
	}
	deadline = time.Now().Add(60 * time.Second)
	for {
		// The run page streams its progress; leaving it can abort the
		// first navigation, so a failed load is simply tried again.
		if err := chromedp.Do(ctx, chromedp.Navigate(a.URL()+"/blueprints/guardrails/jurisdictions/eu"), chromedp.WaitVisible(`[data-testid=preventive]`)); err == nil &&
			strings.Contains(text(`[data-testid="scp-portal-residency-eu"]`), "attached to the root") {
			break
		}
		if time.Now().After(deadline) {
			shot("failed")
			t.Fatal("the EU residency policy never showed as attached")
		}
		time.Sleep(500 * time.Millisecond)
	}
	shot("12-preventive-attached")
	if got := text(`[data-testid="scp-portal-protect-audit"]`); !strings.Contains(got, "attached to the root") {
		t.Errorf("audit policy row: %q", got)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid^="assignment-prod-ops-deployer-prod"]').length`)); err != nil || n != 0 {
		t.Errorf("after expiry the consistency page lists %d ops-deployer assignments (err %v), want none", n, err)
	}
	// Each jurisdiction's report shows its own region-deny policy attached
	// (and not another jurisdiction's), and its evidence pack lists it as a
	// passing control naming the policy.
	for _, j := range regions.Jurisdictions() {
		pol := "portal-residency-" + j.ID
		do("guardrail report of "+j.ID, chromedp.Navigate(a.URL()+"/blueprints/guardrails/jurisdictions/"+j.ID), chromedp.WaitVisible(`[data-testid=preventive-rows]`))
		shot("13-preventive-" + j.ID)
		row := text(`[data-testid="scp-` + pol + `"]`)
		if !strings.Contains(row, "attached to the root") || !strings.Contains(row, "p-") {
			t.Errorf("%s report, its residency policy: %q, want attached to the root with its id", j.ID, row)
		}
		for _, other := range regions.Jurisdictions() {
			if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="scp-portal-residency-`+other.ID+`"]').length`)); other.ID != j.ID && n != 0 {
				t.Errorf("the %s report shows %s's residency policy", j.ID, other.ID)
			}
		}
		do("evidence pack of "+j.ID, chromedp.Navigate(a.URL()+"/activity/evidence"), chromedp.WaitVisible(`[data-testid=evidence-form]`),
			chromedp.SetValue(`#f-jurisdiction`, j.ID), chromedp.Click(`[data-testid=evidence-generate]`), chromedp.WaitVisible(`[data-testid=flash]`))
		flash := text(`[data-testid=flash]`)
		id, _, _ := strings.Cut(strings.TrimPrefix(flash, "Evidence pack #"), " ")
		if !strings.Contains(flash, "for "+j.ID+",") || id == "" {
			t.Fatalf("after generating the %s pack: %q", j.ID, flash)
		}
		do("read the "+j.ID+" pack", chromedp.Navigate(a.URL()+"/activity/evidence/"+id), chromedp.WaitVisible(`#control-scp-residency-`))
		do("the control", chromedp.ScrollIntoView(`#control-scp-residency-`))
		shot("14-evidence-" + j.ID)
		got := text(`#control-scp-residency-`)
		for _, want := range []string{"AWS refuses regions outside " + strings.Join(j.AllowedRegions, ", "), "pass", pol + " (p-", "attached to the organization's root"} {
			if !strings.Contains(got, want) {
				t.Errorf("%s pack, residency control %q misses %q", j.ID, got, want)
			}
		}
		if got := text(`#control-scp-audit-`); !strings.Contains(got, "pass") || !strings.Contains(got, "portal-protect-audit (p-") || !strings.Contains(got, j.CitationPrefix) {
			t.Errorf("%s pack, audit control: %q", j.ID, got)
		}
	}
}
