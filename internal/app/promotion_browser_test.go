package app_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"portal/internal/app"
	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/blueprints"
	"portal/internal/engine"
	"portal/internal/guardrails"
	"portal/internal/peers"
	"portal/internal/peers/peertest"
	"portal/internal/regions"
	"portal/internal/staff"
	"portal/internal/verify"
)

// promoClock is a clock the test moves forward, so each two-factor code
// is from a fresh time step.
type promoClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *promoClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *promoClock) code(t *testing.T, secret string) string {
	t.Helper()
	c.mu.Lock()
	c.t = c.t.Add(30 * time.Second)
	now := c.t
	c.mu.Unlock()
	code, err := totp.GenerateCode(secret, now)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// keyBlueprints serves blueprint version "v1": one KMS key per stack (the
// drivers of the full architecture are exercised by their own tests).
type keyBlueprints struct{ accounts map[string]string }

func (b keyBlueprints) Resolve(ctx context.Context, version, stack string) (*blueprints.Stack, string, error) {
	if version == "" {
		version = "v1"
	}
	if version != "v1" {
		return nil, "", apperr.New(apperr.NotFound, "no blueprint version %q", version)
	}
	env, j, _ := strings.Cut(stack, "-")
	jur, _ := regions.JurisdictionByID(j)
	return &blueprints.Stack{ID: stack, Environment: env, Jurisdiction: j, Region: jur.HomeRegion, Version: "v1-" + stack,
		Resources: []blueprints.Resource{{ID: "documents_key", Type: "kms_key", Region: jur.HomeRegion, Fields: map[string]any{
			"data_class": "documents", "rotation": true, "alias": "alias/" + stack + "-" + b.accounts[env] + "-documents"}}}}, version, nil
}

func (b keyBlueprints) Exceptions(ctx context.Context, stack string) ([]guardrails.Exception, error) {
	var out []guardrails.Exception
	for _, r := range []string{"cloudtrail-integrity", "prod-alarms"} {
		out = append(out, guardrails.Exception{RuleID: r, Stack: stack, Owner: "ops@example.com", Reason: "browser test stack", Expires: time.Now().Add(time.Hour)})
	}
	return out, nil
}

// emulatorVerifier answers like verification against moto: every step
// passes except Textract text detection, which the emulator cannot serve.
type emulatorVerifier struct{}

func (emulatorVerifier) VerifyStack(ctx context.Context, info engine.StackInfo, res []engine.StateResource) verify.Result {
	r := verify.Result{State: verify.Incomplete}
	for _, n := range verify.StepNames() {
		s := verify.Step{Name: n, Title: verify.Title(n), State: verify.Passed, Detail: "ok", Took: 12 * time.Millisecond}
		if n == verify.StepTextract {
			s.State, s.Detail = verify.Unsupported, "Textract text detection is not supported by this endpoint (the local emulator cannot serve GetDocumentTextDetection); the medicines step uses the sample's known medicine names instead"
		}
		r.Steps = append(r.Steps, s)
	}
	return r
}

// codeClock gives two-factor codes from the clock the portal under test
// reads, each from a fresh time step.
type codeClock interface {
	code(t *testing.T, secret string) string
}

// staffUser creates a person holding roles, with a password and two-factor
// enrolled, ready to sign in.
func staffUser(t *testing.T, a *app.App, clk codeClock, email, name string, roles ...staff.Role) (password, secret string) {
	t.Helper()
	ctx := context.Background()
	by := audit.Entry{Actor: "test"}
	u, otp, err := a.Staff.Create(ctx, by, staff.NewUser{Email: email, Name: name, Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	password = "correct horse battery staple 42"
	if err := a.Staff.ChangePassword(ctx, by, u.ID, otp, password, password); err != nil {
		t.Fatal(err)
	}
	e, err := a.Staff.BeginEnrolment(u)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Staff.ConfirmEnrolment(ctx, by, u.ID, e.Secret, clk.code(t, e.Secret)); err != nil {
		t.Fatal(err)
	}
	return password, e.Secret
}

// TestPromotionInBrowser is the "done when": deploy a version to
// dev in all three jurisdictions, promote it to test, request prod, approve
// it as a second person, watch verification, change a key behind the
// portal's back and see drift flagged and reconciled.
func TestPromotionInBrowser(t *testing.T) {
	m := peertest.MotoForTest(t)
	peertest.SetAWSEnv(t, m)
	accounts := map[string]string{}
	args := []string{"-addr", "127.0.0.1:0", "-data-dir", t.TempDir(), "-verify-accept-unsupported", "-drift-interval", "0"}
	for _, env := range regions.EnvironmentNames() {
		accounts[env] = peertest.AccountForTest(t)
		args = append(args, "-"+env+"-account-id", accounts[env], "-"+env+"-role-arn", peers.RoleARN(accounts[env], peertest.TestRole))
	}
	cfg, err := app.ParseServe(args)
	if err != nil {
		t.Fatal(err)
	}
	clk := &promoClock{t: time.Now().UTC().Truncate(time.Second)}
	runCtx, stop := context.WithCancel(context.Background())
	a, err := app.New(runCtx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), app.Options{Now: clk.Now, HashParams: &staff.HashParams{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	a.Estate.Workflows.Blueprints = keyBlueprints{accounts: accounts}
	a.Estate.Workflows.Verifier = emulatorVerifier{}
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		a.Close()
	})
	opsPass, opsSecret := staffUser(t, a, clk, "olga.ops@example.com", "Olga Ops", staff.Ops)
	adminPass, adminSecret := staffUser(t, a, clk, "ada.admin@example.com", "Ada Admin", staff.Admin)

	ctx := peertest.Chromium(t)
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	shots := screenshotDir(t)
	shot := func(name string) { peertest.Screenshot(t, ctx, filepath.Join(shots, "promo-"+name+".png")) }
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
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	// waitText waits until the element's text contains want (htmx updates
	// the promotion page every 2 s).
	waitText := func(sel, want string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			s, err := chromedp.Run(ctx, chromedp.Text(sel, chromedp.AtLeast(0)))
			if err == nil && strings.Contains(s, want) {
				return
			}
			if time.Now().After(deadline) {
				shot("timeout")
				t.Fatalf("%s: got %q, want it to contain %q", sel, s, want)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	signIn := func(email, password, secret string) {
		t.Helper()
		do("sign in "+email, chromedp.Navigate(a.URL()+"/login"), chromedp.WaitVisible(`[data-testid=login-form]`),
			chromedp.SendKeys(`#f-email`, email), chromedp.SendKeys(`#f-password`, password),
			chromedp.Click(`[data-testid=login-submit]`), chromedp.WaitVisible(`[data-testid=totp-form]`))
		do("two-factor "+email, chromedp.SendKeys(`#f-code`, clk.code(t, secret)), chromedp.Click(`[data-testid=totp-submit]`),
			chromedp.WaitVisible(`[data-testid=nav-promotions]`))
	}
	promote := func(env string, js ...string) {
		t.Helper()
		do("open promotions", chromedp.Navigate(a.URL()+"/promotions"), chromedp.WaitVisible(`[data-testid=promote-form]`),
			chromedp.SetValue(`#f-environment`, env))
		for _, j := range []string{"us", "eu", "apac"} {
			want := false
			for _, x := range js {
				want = want || x == j
			}
			is, err := chromedp.Run(ctx, chromedp.JavascriptAttribute[bool](`[data-testid=juris-`+j+`]`, "checked"))
			if err != nil {
				t.Fatal(err)
			}
			if is != want {
				do("toggle "+j, chromedp.Click(`[data-testid=juris-`+j+`]`))
			}
		}
		do("promote to "+env, chromedp.Click(`[data-testid=promote-submit]`))
	}

	signIn("olga.ops@example.com", opsPass, opsSecret)
	do("promotions page", chromedp.Navigate(a.URL()+"/promotions"), chromedp.WaitVisible(`[data-testid=promote-form]`))
	shot("01-promotions-empty")

	// Test before dev is refused with the reason.
	promote("test", "us")
	do("refusal", chromedp.WaitVisible(`[data-testid=promote-error]`))
	shot("02-refused")
	if got := text(`[data-testid=promote-error]`); !strings.Contains(got, "has not been applied successfully in dev-us") {
		t.Errorf("refusal: got %q, want the reason naming dev-us", got)
	}

	// Dev, all three jurisdictions: three runs shown together, verified.
	promote("dev", "us", "eu", "apac")
	do("promotion page", chromedp.WaitVisible(`[data-testid=promotion-stacks]`))
	for _, s := range []string{"dev-us", "dev-eu", "dev-apac"} {
		waitText(`[data-testid=verify-`+s+`]`, "incomplete")
	}
	shot("03-dev-promoted")
	if got := text(`[data-testid=run-dev-eu]`); got != "succeeded" {
		t.Errorf("dev-eu run: got %q, want succeeded", got)
	}

	// The verification says honestly that Textract is not served here.
	do("open a verification", chromedp.Click(`[data-testid=verify-dev-us]`), chromedp.WaitVisible(`[data-testid=verification-steps]`))
	shot("04-verification")
	if got := text(`[data-testid=verification-steps]`); !strings.Contains(got, "not supported by this endpoint") {
		t.Errorf("verification steps: got %q, want the Textract step marked unsupported", got)
	}

	promote("test", "us", "eu", "apac")
	do("test promotion page", chromedp.WaitVisible(`[data-testid=promotion-stacks]`))
	for _, s := range []string{"test-us", "test-eu", "test-apac"} {
		waitText(`[data-testid=verify-`+s+`]`, "incomplete")
	}
	shot("05-test-promoted")

	// Prod waits for approval; the author cannot approve.
	promote("prod", "eu")
	do("prod promotion page", chromedp.WaitVisible(`[data-testid=approval-prod-eu]`))
	shot("06-prod-waiting")
	if got := text(`[data-testid=approval-prod-eu]`); got != "needed" {
		t.Errorf("prod-eu approval: got %q, want needed", got)
	}
	do("stacks grid", chromedp.Navigate(a.URL()+"/stacks"), chromedp.WaitVisible(`[data-testid=version-travel]`))
	shot("06b-grid-waiting")
	if got := text(`[data-testid=cell-prod-eu] [data-testid=cell-waiting]`); !strings.Contains(got, "awaiting approval") {
		t.Errorf("grid prod-eu waiting: got %q, want v1 awaiting approval", got)
	}
	if got := text(`[data-testid=travel-v1]`); !strings.Contains(got, "in force") || !strings.Contains(got, "waiting") {
		t.Errorf("travel of v1: got %q, want in force below and waiting in prod-eu", got)
	}
	do("back to the promotion", chromedp.NavigateBack(), chromedp.WaitVisible(`[data-testid=approval-prod-eu]`))
	do("open the prod plan", chromedp.Click(`[data-testid=promotion-prod-eu] a[href^="/plans/"]`), chromedp.WaitVisible(`[data-testid=approval-panel]`))
	shot("07-plan-author")
	if got := text(`[data-testid=decide-note]`); !strings.Contains(got, "someone else must approve") {
		t.Errorf("author's decide note: got %q", got)
	}
	if got := text(`[data-testid=apply-blocked]`); !strings.Contains(got, "withheld until the plan is approved") {
		t.Errorf("apply panel for the author: got %q, want apply withheld", got)
	}
	planURL, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}

	// A second person approves; rejecting without a reason is refused.
	do("sign out", chromedp.Click(`form[action="/logout"] button`), chromedp.WaitVisible(`[data-testid=login-form]`))
	signIn("ada.admin@example.com", adminPass, adminSecret)
	do("approvals", chromedp.Navigate(a.URL()+"/approvals"), chromedp.WaitVisible(`[data-testid=approvals]`))
	shot("08-approvals")
	do("open the plan", chromedp.Navigate(planURL), chromedp.WaitVisible(`[data-testid=decide-form]`))
	if got := text(`[data-testid=lower-verifications]`); !strings.Contains(got, "test-eu") || !strings.Contains(got, "dev-eu") {
		t.Errorf("lower verifications: got %q, want test-eu and dev-eu", got)
	}
	do("reject without a reason", chromedp.Click(`[data-testid=reject]`), chromedp.WaitVisible(`[data-testid=error-reason]`))
	shot("09-reject-needs-reason")
	do("approve", chromedp.Click(`[data-testid=approve]`), chromedp.WaitVisible(`[data-testid=flash]`))
	shot("10-approved")
	if got := text(`[data-testid=approval-state]`); got != "approved" {
		t.Errorf("approval state: got %q, want approved", got)
	}
	do("apply", chromedp.Click(`[data-testid=apply-submit]`), chromedp.WaitVisible(`[data-testid=run-progress]`))
	waitText(`[data-testid=run-state]`, "succeeded")
	shot("11-prod-run")

	// Someone turns off key rotation in dev-eu by hand.
	res, err := a.Estate.Engine.Resources(context.Background(), "dev-eu")
	if err != nil || len(res) != 1 {
		t.Fatalf("dev-eu resources: got %+v, %v, want the key", res, err)
	}
	kc := kms.NewFromConfig(peers.AssumeAccount(context.Background(), m.AWSConfig("eu-central-1"), accounts["dev"], peertest.TestRole))
	if _, err := kc.DisableKeyRotation(context.Background(), &kms.DisableKeyRotationInput{KeyId: aws.String(res[0].PhysicalID)}); err != nil {
		t.Fatal(err)
	}
	do("drift page", chromedp.Navigate(a.URL()+"/drift"), chromedp.WaitVisible(`[data-testid=drift-check-now]`),
		chromedp.Click(`[data-testid=drift-check-now]`), chromedp.WaitVisible(`[data-testid=drift]`))
	shot("12-drift")
	// The drift list refreshes itself while checks run: wait for the rows.
	waitText(`[data-testid=drift-dev-eu]`, "drifted")
	waitText(`[data-testid=drift-dev-us]`, "clean")
	do("drift details", chromedp.Click(`[data-testid=drift-dev-eu] a[href^="/drift/"]`), chromedp.WaitVisible(`[data-testid=drifted-documents_key]`))
	shot("13-drift-detail")
	if got := text(`[data-testid=drifted-documents_key]`); !strings.Contains(got, "rotation") {
		t.Errorf("drifted fields: got %q, want rotation", got)
	}
	do("reconcile", chromedp.Click(`[data-testid=reconcile]`), chromedp.WaitVisible(`[data-testid=promotion-stacks]`))
	waitText(`[data-testid=run-dev-eu]`, "succeeded")
	shot("14-reconciled")
	do("check again", chromedp.Navigate(a.URL()+"/drift"), chromedp.Click(`[data-testid=drift-check-now]`), chromedp.WaitVisible(`[data-testid=drift]`))
	waitText(`[data-testid=drift-dev-eu]`, "clean")
	do("notifications", chromedp.Navigate(a.URL()+"/notifications"), chromedp.WaitVisible(`[data-testid=notifications]`))
	shot("15-notifications")
	if got := text(`[data-testid=notifications]`); !strings.Contains(got, "Approval needed") || !strings.Contains(got, "Drift in dev-eu") {
		t.Errorf("notifications: got %q, want the approval request and the drift", got)
	}
	do("history", chromedp.Navigate(a.URL()+"/stacks/prod-eu/history"), chromedp.WaitVisible(`[data-testid=history]`))
	shot("16-history")
	if got := text(`[data-testid=in-force]`); got != "v1" {
		t.Errorf("prod-eu in force: got %q, want v1", got)
	}
	do("stacks grid at the end", chromedp.Navigate(a.URL()+"/stacks"), chromedp.WaitVisible(`[data-testid=version-travel]`))
	shot("18-grid")
	if got := text(`[data-testid=cell-prod-eu] [data-testid=cell-in-force]`); !strings.Contains(got, "v1") {
		t.Errorf("grid prod-eu in force: got %q, want v1", got)
	}
	do("promotions list", chromedp.Navigate(a.URL()+"/promotions"), chromedp.WaitVisible(`[data-testid=promotions]`))
	shot("17-promotions")
}
