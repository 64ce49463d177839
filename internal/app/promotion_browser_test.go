package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/chromedp/chromedp"

	"portal/internal/app"
	"portal/internal/audit"
	"portal/internal/peers"
	"portal/internal/peers/peertest"
	"portal/internal/regions"
	"portal/internal/staff"
	"portal/internal/versions"
	"portal/internal/web"
)

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

// inboxPages shows the test binary's alert inbox on the portal's sandbox
// inbox page, as the sandbox does.
type inboxPages struct{ in *peers.AlertInbox }

func (i inboxPages) Since() time.Time { return i.in.Since() }

func (i inboxPages) Deliveries() []web.InboxDelivery {
	var out []web.InboxDelivery
	for _, d := range i.in.Deliveries() {
		out = append(out, web.InboxDelivery{ID: d.ID, At: d.At, URL: d.URL, Type: d.Type, TopicARN: d.TopicARN, MessageID: d.MessageID, Subject: d.Subject, Message: d.Message})
	}
	return out
}

// TestPromotionInBrowser is the promotion issue's "done when", tried as a
// new user would in the sandbox, against the shipped blueprints and the
// real verifier: promote the EU stacks dev -> test -> prod in the browser,
// each verification passing for real (the upload over TLS against the
// TLS-only bucket policy, Textract named as the one unsupported step, the
// medicines table written, the doctors' alert in the sandbox inbox); the
// second approver acts from the approvals inbox after an e-mail; a direct
// plan of prod with an unpromoted version is refused in the page and the
// API; an emergency change goes through only with an admin's and a
// compliance officer's approval and stays flagged on the Overview; drift is
// found and cleared by a reconcile.
func TestPromotionInBrowser(t *testing.T) {
	// The shipped stacks' bucket names are fixed and global in moto: a moto
	// of the test's own.
	m := peertest.IsolatedMotoForTest(t)
	peertest.SetAWSEnv(t, m)
	mail := peertest.MailpitForTest(t)
	caFile := filepath.Join(t.TempDir(), "sandbox-ca.pem")
	if err := os.WriteFile(caFile, peertest.CAForTest(t).CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	accounts := map[string]string{}
	args := []string{"-addr", "127.0.0.1:0", "-data-dir", t.TempDir(), "-verify-accept-unsupported", "-drift-interval", "0",
		"-smtp-addr", mail.SMTPAddr(), "-smtp-from", "Portal <portal@portal.local>", "-smtp-ca-file", caFile}
	for _, env := range regions.EnvironmentNames() {
		accounts[env] = peertest.AccountForTest(t)
		args = append(args, "-"+env+"-account-id", accounts[env], "-"+env+"-role-arn", peers.RoleARN(accounts[env], peertest.TestRole))
	}
	cfg, err := app.ParseServe(args)
	if err != nil {
		t.Fatal(err)
	}
	cfg.SandboxNotice = "Sandbox: AWS is moto on this machine."
	clk := &walkClock{}
	runCtx, stop := context.WithCancel(context.Background())
	inbox := peertest.AlertInboxForTest(t)
	a, err := app.New(runCtx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), app.Options{Now: clk.Now, HashParams: &staff.HashParams{Memory: 64, Time: 1, Threads: 1},
		Sandbox: &web.Sandbox{Inbox: inboxPages{inbox}, MailURL: mail.URL()}})
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
	bg := context.Background()
	// Addresses of the test's own, so the shared mail server's messages
	// of other tests do not count.
	olga, ada, clara := "olga.ops@promotion.example", "ada.admin@promotion.example", "clara.compliance@promotion.example"
	opsPass, opsSecret := staffUser(t, a, clk, olga, "Olga Ops", staff.Ops)
	adminPass, adminSecret := staffUser(t, a, clk, ada, "Ada Admin", staff.Admin)
	compPass, compSecret := staffUser(t, a, clk, clara, "Clara Compliance", staff.Compliance)

	ctx := peertest.Chromium(t)
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	shot := func(name string) { peertest.KeepScreenshot(t, ctx, "promo-"+name+".png") }
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
	// waitText waits until the element's text contains want (the
	// promotion page refreshes itself every 2 s while work goes on).
	waitText := func(sel, want string, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			s, err := chromedp.Run(ctx, chromedp.Text(sel, chromedp.AtLeast(0)))
			if err == nil && strings.Contains(s, want) {
				return
			}
			if time.Now().After(deadline) {
				shot("timeout")
				t.Fatalf("%s: got %q, want it to contain %q", sel, s, want)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	signIn := func(email, password, secret string) {
		t.Helper()
		do("sign in "+email, signInSteps(t, a.URL(), email, password, secret, clk), chromedp.WaitVisible(`[data-testid=who]`))
	}
	signOut := func() {
		t.Helper()
		do("sign out", chromedp.Click(`form[action="/logout"] button`), chromedp.WaitVisible(`[data-testid=login-form]`))
	}
	promote := func(env string) {
		t.Helper()
		do("open promotions", chromedp.Navigate(a.URL()+"/promotions"), chromedp.WaitVisible(`[data-testid=promote-form]`),
			chromedp.SetValue(`#f-environment`, env))
		for _, j := range []string{"us", "eu", "apac"} {
			is, err := chromedp.Run(ctx, chromedp.JavascriptAttribute[bool](`[data-testid=juris-`+j+`]`, "checked"))
			if err != nil {
				t.Fatal(err)
			}
			if is != (j == "eu") {
				do("toggle "+j, chromedp.Click(`[data-testid=juris-`+j+`]`))
			}
		}
		do("promote to "+env, chromedp.Click(`[data-testid=promote-submit]`))
	}
	// layer applies env's layer (its zone, certificates' validation and
	// entry for patients) before the EU stacks reach env, as the
	// environment's roll-out does: the stacks' certificates and origin
	// records are validated in the layer's zone, and a stack applied
	// without it waits for it and fails its verification's health check.
	// A release pipeline does it through the API; in prod its plan waits
	// for Ada's approval like any other.
	apiTokens := map[string]string{}
	apiCall := func(who, method, path string, in, out any) int {
		t.Helper()
		if apiTokens[who] == "" {
			u, err := a.Staff.GetByEmail(bg, who)
			if err != nil {
				t.Fatal(err)
			}
			tok, _, err := a.Staff.CreateToken(bg, audit.Entry{Actor: "test"}, u.ID, staff.NewToken{Name: "layer pipeline", Scopes: []string{"runs"}})
			if err != nil {
				t.Fatal(err)
			}
			apiTokens[who] = tok
		}
		var rd io.Reader
		if in != nil {
			b, _ := json.Marshal(in)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, a.URL()+path, rd)
		req.Header.Set("Authorization", "Bearer "+apiTokens[who])
		if in != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if out != nil && res.StatusCode < 300 {
			if err := json.Unmarshal(raw, out); err != nil {
				t.Fatalf("%s %s: %v in %s", method, path, err, raw)
			}
		}
		if res.StatusCode >= 300 {
			t.Logf("%s %s: %d %s", method, path, res.StatusCode, raw)
		}
		return res.StatusCode
	}
	layer := func(env string) {
		t.Helper()
		var p struct {
			ID   int64  `json:"id"`
			Hash string `json:"hash"`
		}
		if code := apiCall(olga, "POST", "/api/v1/plans", map[string]string{"stack": env + "-global"}, &p); code != http.StatusCreated {
			t.Fatalf("plan %s-global: status %d, want 201", env, code)
		}
		if env == "prod" {
			if code := apiCall(ada, "POST", fmt.Sprintf("/api/v1/plans/%d/decide", p.ID), map[string]string{"decision": "approved", "hash": p.Hash}, nil); code != http.StatusCreated {
				t.Fatalf("approve prod-global: status %d, want 201", code)
			}
		}
		var queued struct {
			RunID int64 `json:"run_id"`
		}
		if code := apiCall(olga, "POST", fmt.Sprintf("/api/v1/plans/%d/apply", p.ID), nil, &queued); code != http.StatusAccepted {
			t.Fatalf("apply %s-global: status %d, want 202", env, code)
		}
		deadline := time.Now().Add(3 * time.Minute)
		for {
			var run struct {
				State string `json:"state"`
				Error string `json:"error"`
			}
			apiCall(olga, "GET", fmt.Sprintf("/api/v1/runs/%d", queued.RunID), nil, &run)
			if run.State == "succeeded" {
				return
			}
			if run.State == "failed" || run.State == "cancelled" || time.Now().After(deadline) {
				t.Fatalf("%s-global's run: %s (%s), want succeeded", env, run.State, run.Error)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	// checkVerification opens the verification of stack from its promotion
	// page and checks every step's outcome against the real verifier.
	checkVerification := func(stack, name string) {
		t.Helper()
		// The way back is by address: history navigation may be answered
		// from the browser's back-forward cache, whose restored page sends
		// no load event for chromedp to wait on.
		back, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href`))
		if err != nil {
			t.Fatal(err)
		}
		do("open the verification of "+stack, chromedp.Click(`[data-testid=verify-`+stack+`]`), chromedp.WaitVisible(`[data-testid=verification-steps]`))
		shot(name)
		want := map[string]string{"upload": "passed", "textract": "unsupported", "medicines": "not run", "medicines_table": "passed",
			"doctor_alert": "passed", "targets": "passed", "health_check": "passed", "cleanup": "passed"}
		for step, state := range want {
			if got := text(`[data-testid=step-state-` + step + `]`); got != state {
				t.Errorf("%s verification, step %s: got %q (%s), want %s", stack, step, got, text(`[data-testid=step-detail-`+step+`]`), state)
			}
		}
		if got := text(`[data-testid=step-detail-upload]`); !strings.Contains(got, "medportal-"+stack+"-documents") {
			t.Errorf("%s upload: got %q, want the sample in the documents bucket", stack, got)
		}
		if got := text(`[data-testid=step-detail-medicines]`); strings.Contains(got, "Amoxicillin") {
			t.Errorf("%s medicines step names medicines Textract never read: %q", stack, got)
		}
		do("back", chromedp.Navigate(back), chromedp.WaitVisible(`[data-testid=promotion-stacks]`))
	}

	// Olga promotes the EU stacks, dev first.
	signIn(olga, opsPass, opsSecret)
	promote("test")
	do("refusal", chromedp.WaitVisible(`[data-testid=promote-error]`))
	if got := text(`[data-testid=promote-error]`); !strings.Contains(got, "test-eu: version") || !strings.Contains(got, "has not been applied successfully in dev-eu") {
		t.Errorf("promote to test before dev: got %q, want refused naming dev-eu", got)
	}
	// No environment's layer is applied yet, and the form says so first.
	shot("00-layers-not-applied")
	if got := text(`[data-testid=unapplied-layers]`); !strings.Contains(got, "environment layer of dev, test and prod has never been applied") || !strings.Contains(got, "Roll out test") {
		t.Errorf("layer note before any layer: got %q, want dev, test and prod named with a roll-out link each", got)
	}
	layer("dev")
	promote("dev")
	do("dev promotion", chromedp.WaitVisible(`[data-testid=promotion-stacks]`))
	waitText(`[data-testid=verify-dev-eu]`, "incomplete", 5*time.Minute)
	shot("01-dev-promoted")
	if got := text(`[data-testid=run-dev-eu]`); got != "succeeded" {
		t.Fatalf("dev-eu run: got %q, want succeeded", got)
	}
	checkVerification("dev-eu", "02-dev-verification")

	// The doctors' alert reached the doctors' receiver: the sandbox inbox.
	do("sandbox inbox", chromedp.Click(`[data-testid=sandbox-inbox]`), chromedp.WaitVisible(`[data-testid=inbox]`))
	shot("03-sandbox-inbox")
	if got := text(`[data-testid=inbox]`); !strings.Contains(got, "https://alerts.eu.dev.medportal.example/doctor") || !strings.Contains(got, "Portal verification (test, ignore)") {
		t.Errorf("sandbox inbox: got %q, want the verification alert delivered to the doctors' receiver", got)
	}

	layer("test")
	promote("test")
	do("test promotion", chromedp.WaitVisible(`[data-testid=promotion-stacks]`))
	waitText(`[data-testid=verify-test-eu]`, "incomplete", 5*time.Minute)
	shot("04-test-promoted")
	checkVerification("test-eu", "05-test-verification")

	// Prod waits for approval; the approver is told by e-mail.
	layer("prod")
	promote("prod")
	do("prod promotion", chromedp.WaitVisible(`[data-testid=approval-prod-eu]`))
	shot("06-prod-waiting")
	if got := text(`[data-testid=approval-prod-eu]`); got != "needed" {
		t.Errorf("prod-eu approval: got %q, want needed", got)
	}
	mctx, mcancel := context.WithTimeout(bg, 30*time.Second)
	defer mcancel()
	msg, err := mail.WaitFor(mctx, "to:"+ada+` subject:"Approval needed: apply prod-eu"`)
	if err != nil {
		t.Fatal(err)
	}
	planLink := regexp.MustCompile(`http://127\.0\.0\.1:\d+/plans/(\d+)`).FindStringSubmatch(msg.Text)
	if planLink == nil || !strings.Contains(msg.Text, a.URL()+"/approvals") {
		t.Fatalf("approval e-mail to Ada: %q, want links to the plan and the approvals inbox", msg.Text)
	}
	prodPlan := planLink[1]
	if msgs, _ := mail.Search(bg, "to:"+olga+` subject:"Approval needed"`); len(msgs) != 0 {
		t.Errorf("the plan's author was asked to approve her own plan: %d e-mails", len(msgs))
	}

	// A second version that has not gone the road: planning prod with it
	// is refused in the page and through the API.
	latest, err := a.Versions.Latest(bg)
	if err != nil {
		t.Fatal(err)
	}
	prodFile, err := a.Versions.File(bg, latest.ID, versions.StackPath("prod-eu"))
	if err != nil {
		t.Fatal(err)
	}
	changed := bytes.Replace(prodFile.Content, []byte("    max: 9\n"), []byte("    max: 12\n"), 1)
	if bytes.Equal(changed, prodFile.Content) {
		t.Fatal("the prod-eu parameters have no 'max: 9' to change")
	}
	v2, _, err := a.Versions.Save(bg, audit.Entry{Actor: "user:1 test"}, versions.Draft{Message: "prod-eu scales to 12", Files: []versions.File{{Path: prodFile.Path, Content: changed}}})
	if err != nil {
		t.Fatal(err)
	}
	do("plan prod directly", chromedp.Navigate(a.URL()+"/runs"), chromedp.WaitVisible(`[data-testid=plan-form]`),
		chromedp.SetValue(`#f-stack`, "prod-eu"), chromedp.SendKeys(`#f-version`, v2.ID), chromedp.Click(`[data-testid=plan-submit]`),
		chromedp.WaitVisible(`[data-testid=plan-error]`))
	shot("07-direct-plan-refused")
	if got := text(`[data-testid=plan-error]`); !strings.Contains(got, "prod-eu: version "+v2.ID[:12]+" has not been applied successfully in test-eu") {
		t.Errorf("direct plan of prod-eu with v2: got %q, want refused naming test-eu", got)
	}
	u, err := a.Staff.GetByEmail(bg, olga)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := a.Staff.CreateToken(bg, audit.Entry{Actor: "test"}, u.ID, staff.NewToken{Name: "release pipeline", Scopes: []string{"runs"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"stack": "prod-eu", "version": v2.ID})
	req, _ := http.NewRequest(http.MethodPost, a.URL()+"/api/v1/plans", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusConflict || !strings.Contains(string(raw), "has not been applied successfully in test-eu") {
		t.Errorf("POST /api/v1/plans prod-eu v2: got %d %s, want 409 naming test-eu", res.StatusCode, raw)
	}
	signOut()

	// Ada approves from her inbox, as the e-mail asked, and applies.
	signIn(ada, adminPass, adminSecret)
	if got := text(`[data-testid=nav-count-approvals]`); !strings.HasPrefix(got, "1") {
		t.Errorf("approvals count in the navigation: got %q, want 1", got)
	}
	do("approvals inbox", chromedp.Click(`[data-testid=nav-approvals]`), chromedp.WaitVisible(`[data-testid=inbox-plan-`+prodPlan+`]`))
	shot("08-inbox")
	if got := text(`[data-testid=inbox-plan-` + prodPlan + `]`); !strings.Contains(got, "test-eu") || !strings.Contains(got, "dev-eu") {
		t.Errorf("inbox card: got %q, want the verifications in test-eu and dev-eu", got)
	}
	do("approve from the inbox", chromedp.Click(`[data-testid=inbox-approve-`+prodPlan+`]`), chromedp.WaitVisible(`[data-testid=flash]`))
	shot("09-approved")
	if got := text(`[data-testid=flash]`); !strings.Contains(got, "You approved plan #"+prodPlan) {
		t.Errorf("flash after approving: got %q", got)
	}
	do("open the plan", chromedp.Navigate(a.URL()+"/plans/"+prodPlan), chromedp.WaitVisible(`[data-testid=apply-submit]`),
		chromedp.Click(`[data-testid=apply-submit]`), chromedp.WaitVisible(`[data-testid=run-progress]`))
	waitText(`[data-testid=run-state]`, "succeeded", 5*time.Minute)
	shot("10-prod-run")
	signOut()

	// Prod is verified like the rest.
	signIn(olga, opsPass, opsSecret)
	do("promotions list", chromedp.Navigate(a.URL()+"/promotions"), chromedp.WaitVisible(`[data-testid=promotions]`))
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid=unapplied-layers]').length`)); err != nil || n != 0 {
		t.Errorf("every layer is applied, yet the promotion form still warns about unapplied layers (%d notes, %v)", n, err)
	}
	do("open the latest promotion", chromedp.Click(`[data-testid=promotions] tbody tr:first-child a`), chromedp.WaitVisible(`[data-testid=promotion-stacks]`))
	waitText(`[data-testid=verify-prod-eu]`, "incomplete", 3*time.Minute)
	checkVerification("prod-eu", "11-prod-verification")

	// An emergency change of prod with v2: a named reason, and it waits
	// for an admin and a compliance officer.
	reason := "INC-2041: EU patients time out at peak; prod-eu must scale to 12 before test can take v2"
	do("plan an emergency change", chromedp.Navigate(a.URL()+"/runs"), chromedp.WaitVisible(`[data-testid=plan-form]`),
		chromedp.SetValue(`#f-stack`, "prod-eu"), chromedp.SendKeys(`#f-version`, v2.ID), chromedp.Click(`[data-testid=emergency] summary`),
		chromedp.SendKeys(`#f-emergency_reason`, reason), chromedp.Click(`[data-testid=plan-submit]`), chromedp.WaitVisible(`[data-testid=plan-emergency]`))
	shot("12-emergency-plan")
	emergencyURL, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	emergencyPlan := emergencyURL[strings.LastIndex(emergencyURL, "/")+1:]
	if got := text(`[data-testid=approval-panel]`); !strings.Contains(got, "admin") || !strings.Contains(got, "compliance") {
		t.Errorf("emergency approval panel: got %q, want an admin and a compliance officer", got)
	}
	ectx, ecancel := context.WithTimeout(bg, 30*time.Second)
	defer ecancel()
	for _, to := range []string{ada, clara} {
		if _, err := mail.WaitFor(ectx, "to:"+to+` subject:"Emergency change needs approval: prod-eu"`); err != nil {
			t.Errorf("emergency e-mail to %s: %v", to, err)
		}
	}
	signOut()
	for _, who := range []struct{ email, pass, secret string }{{ada, adminPass, adminSecret}, {clara, compPass, compSecret}} {
		signIn(who.email, who.pass, who.secret)
		do("inbox of "+who.email, chromedp.Navigate(a.URL()+"/approvals"), chromedp.WaitVisible(`[data-testid=inbox-plan-`+emergencyPlan+`]`),
			chromedp.Click(`[data-testid=inbox-approve-`+emergencyPlan+`]`), chromedp.WaitVisible(`[data-testid=flash]`))
		if got := text(`[data-testid=flash]`); !strings.Contains(got, "You approved plan #"+emergencyPlan) {
			t.Errorf("%s approving the emergency change: got %q", who.email, got)
		}
		signOut()
	}
	signIn(olga, opsPass, opsSecret)
	do("apply the emergency change", chromedp.Navigate(emergencyURL), chromedp.WaitVisible(`[data-testid=apply-submit]`),
		chromedp.Click(`[data-testid=apply-submit]`), chromedp.WaitVisible(`[data-testid=run-progress]`))
	waitText(`[data-testid=run-state]`, "succeeded", 5*time.Minute)
	do("overview", chromedp.Navigate(a.URL()+"/"), chromedp.WaitVisible(`[data-testid=emergency-prod-eu]`))
	shot("13-overview-emergency")
	if got := text(`[data-testid=emergency-prod-eu]`); !strings.Contains(got, "in force") || !strings.Contains(got, "INC-2041") || !strings.Contains(got, "test-eu") {
		t.Errorf("overview flag: got %q, want the emergency in force, its reason and the missing test-eu", got)
	}

	// Someone turns off key rotation in dev-eu by hand: drift, then a
	// reconcile clears it without another check.
	res0, err := a.Estate.Engine.Resources(bg, "dev-eu")
	if err != nil {
		t.Fatal(err)
	}
	var keyID string
	for _, r := range res0 {
		if r.ID == "documents_key" {
			keyID = r.PhysicalID
		}
	}
	kc := kms.NewFromConfig(peers.AssumeAccount(bg, m.AWSConfig("eu-central-1"), accounts["dev"], peertest.TestRole))
	if _, err := kc.DisableKeyRotation(bg, &kms.DisableKeyRotationInput{KeyId: aws.String(keyID)}); err != nil {
		t.Fatal(err)
	}
	do("drift page", chromedp.Navigate(a.URL()+"/drift"), chromedp.WaitVisible(`[data-testid=drift-check-now]`),
		chromedp.Click(`[data-testid=drift-check-now]`), chromedp.WaitVisible(`[data-testid=drift]`))
	waitText(`[data-testid=drift-dev-eu]`, "drifted", time.Minute)
	shot("14-drift")
	do("drift details", chromedp.Click(`[data-testid=drift-dev-eu] a[href^="/drift/"]`), chromedp.WaitVisible(`[data-testid=drifted-documents_key]`),
		chromedp.Click(`[data-testid=reconcile]`), chromedp.WaitVisible(`[data-testid=promotion-stacks]`))
	waitText(`[data-testid=run-dev-eu]`, "succeeded", 5*time.Minute)
	waitText(`[data-testid=verify-dev-eu]`, "incomplete", 3*time.Minute)
	// The reconcile's success checks the stack again (after its
	// verification, and a plan of every resource: slow on a loaded
	// machine). Until that check lands the drift page names the run that
	// reconciled and refreshes itself; nobody reloads it.
	do("drift after the reconcile", chromedp.Navigate(a.URL()+"/drift"), chromedp.WaitVisible(`[data-testid=drift]`))
	if got := text(`[data-testid=drift-dev-eu]`); !strings.Contains(got, "clean") {
		if !strings.Contains(got, "reconciled by run #") || !strings.Contains(got, "checking again") {
			t.Errorf("drift of dev-eu while its re-check runs: got %q, want the reconciling run named", got)
		}
		shot("15a-drift-rechecking")
	}
	waitText(`[data-testid=drift-dev-eu]`, "clean", 3*time.Minute)
	shot("15b-drift-cleared")
	d, err := a.Estate.Workflows.LatestDrift(bg, "dev-eu")
	if err != nil || d.RequestedBy != "system" {
		t.Errorf("the check that cleared the drift: got %+v, %v, want the check after the reconcile", d, err)
	}
	do("notifications", chromedp.Navigate(a.URL()+"/notifications"), chromedp.WaitVisible(`[data-testid=notifications]`))
	shot("16-notifications")
	if got := text(`[data-testid=notifications]`); !strings.Contains(got, "Drift in dev-eu") || !strings.Contains(got, "Emergency change needs approval") {
		t.Errorf("notifications: got %q, want the drift and the emergency request", got)
	}
}
