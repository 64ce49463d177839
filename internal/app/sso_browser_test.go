package app_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"portal/internal/access"
	"portal/internal/app"
	"portal/internal/audit"
	"portal/internal/peers"
	"portal/internal/peers/oidcprovider/directory"
	"portal/internal/peers/peertest"
	"portal/internal/regions"
	"portal/internal/staff"
)

// ssoClock follows real time from an offset the test moves on: the
// provider stamps its tokens with the real time, so the portal's clock
// must stay near it, yet two-factor codes need fresh time steps and the
// elevation's hour must pass.
type ssoClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *ssoClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *ssoClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

func (c *ssoClock) code(t *testing.T, secret string) string {
	t.Helper()
	c.advance(30 * time.Second)
	code, err := totp.GenerateCode(secret, c.Now())
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// TestSingleSignOnInBrowser is the "done when" through the
// identity provider: people sign in on the provider's own login page; a
// member of its "ops" group lands as ops, someone in no mapped group is
// refused; an admin who signed in the same way grants the ops engineer
// read-only access in prod, the engineer asks for an hour of deployer
// access, a break-glass local admin approves, and Identity Center (moto)
// shows both assignments; disabling the engineer at the provider ends
// their portal session and API token within the re-check bound; an hour
// later the elevation is gone.
func TestSingleSignOnInBrowser(t *testing.T) {
	m := peertest.MotoForTest(t)
	peertest.SetAWSEnv(t, m)
	idp := peertest.OIDCProviderForTest(t, directory.Directory{
		Name: "Sandbox Identity",
		Users: []directory.User{
			{Username: "olga", Password: "olga-at-the-provider", Email: "olga.ops@example.com", Name: "Olga Ops", Groups: []string{"ops", "all-staff"}},
			{Username: "ada", Password: "ada-at-the-provider", Email: "ada.admin@example.com", Name: "Ada Admin", Groups: []string{"portal-admins", "all-staff"}},
			{Username: "mark", Password: "mark-at-the-provider", Email: "mark@example.com", Name: "Mark Eting", Groups: []string{"marketing", "all-staff"}},
		},
		Clients: []directory.Client{{ID: "portal", Secret: "portal-secret-for-tests", Name: "Portal", RedirectURIs: []string{"http://127.0.0.1:*/login/sso/callback"}}},
	})
	t.Setenv("PORTAL_OIDC_CLIENT_SECRET", "portal-secret-for-tests")
	accounts := map[string]string{}
	args := []string{"-addr", "127.0.0.1:0", "-data-dir", t.TempDir(), "-drift-interval", "0",
		"-oidc-issuer", idp.Issuer(), "-oidc-client-id", "portal", "-oidc-name", "Sandbox Identity",
		"-oidc-scopes", "openid,email,profile,groups", "-oidc-role-map", "ops=ops,portal-admins=admin",
		"-oidc-recheck", "2s", "-oidc-session-max", "1h"}
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
	clk := &ssoClock{}
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
	// The break-glass local admin: a password and a second factor, always.
	benPass, benSecret := staffUser(t, a, clk, "ben.admin@example.com", "Ben Admin", staff.Admin)
	idc := peertest.IdentityCenterForTest(t, peers.AssumeAccount(context.Background(), m.AWSConfig("eu-central-1"), mgmt, peertest.TestRole))

	ctx := peertest.Chromium(t)
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	shot := func(name string) { peertest.KeepScreenshot(t, ctx, "sso-"+name+".png") }
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
	atProvider := func(username, password string) {
		t.Helper()
		do("sign in at the provider as "+username, chromedp.WaitVisible(`[data-testid=idp-login-form]`),
			chromedp.SendKeys(`#username`, username), chromedp.SendKeys(`#password`, password), chromedp.Click(`[data-testid=idp-submit]`))
	}
	ssoSignIn := func(username, password string) {
		t.Helper()
		do("open the sign-in page", chromedp.Navigate(a.URL()+"/login"), chromedp.Click(`[data-testid=sso-button]`))
		atProvider(username, password)
		do("back in the portal as "+username, chromedp.WaitVisible(`[data-testid=who]`))
	}
	localSignIn := func(email, password, secret string) {
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

	// The sign-in page offers the provider beside the local form.
	do("sign-in page", chromedp.Navigate(a.URL()+"/login"), chromedp.WaitVisible(`[data-testid=sso-button]`))
	shot("01-login")
	if got := text(`[data-testid=sso-button]`); got != "Sign in with Sandbox Identity" {
		t.Errorf("provider button %q", got)
	}

	// Olga, in the provider's "ops" group, signs in on the provider's own
	// page and lands as ops, with an account made on the spot.
	do("to the provider", chromedp.Click(`[data-testid=sso-button]`), chromedp.WaitVisible(`[data-testid=idp-login-form]`))
	shot("02-provider-login")
	atProvider("olga", "olga-at-the-provider")
	do("landed", chromedp.WaitVisible(`[data-testid=who]`))
	shot("03-olga-landed")
	olga, err := a.Staff.GetByEmail(context.Background(), "olga.ops@example.com")
	if err != nil {
		t.Fatalf("no account was made for olga: %v", err)
	}
	if !slices.Equal(olga.Roles, []staff.Role{staff.Ops}) || !olga.SingleSignOn {
		t.Errorf("olga's account: roles %v, single sign-on %v; want ops through single sign-on", olga.Roles, olga.SingleSignOn)
	}
	if got := text(`[data-testid=who]`); got != "Olga Ops" {
		t.Errorf("signed in as %q", got)
	}
	do("account page", chromedp.Navigate(a.URL()+"/account"), chromedp.WaitVisible(`[data-testid=account-sso]`))
	shot("04-olga-account")
	if got := text(`[data-testid=account-sso]`); !strings.Contains(got, "Sandbox Identity") {
		t.Errorf("account page sign-in line: %q", got)
	}
	signOut()

	// Mark's groups map to no role: refused, and told why.
	ssoStart := func() {
		do("to the provider", chromedp.Navigate(a.URL()+"/login"), chromedp.Click(`[data-testid=sso-button]`))
	}
	ssoStart()
	atProvider("mark", "mark-at-the-provider")
	do("refused", chromedp.WaitVisible(`[data-testid=sso-error]`))
	shot("05-no-mapped-role")
	if got := text(`[data-testid=sso-error-title]`); got != "No portal role for your groups" {
		t.Errorf("refusal title %q", got)
	}
	if got := text(`[data-testid=sso-error-detail]`); !strings.Contains(got, "marketing") {
		t.Errorf("refusal detail %q, want mark's groups", got)
	}

	// A callback that answers no sign-in this browser started is refused.
	do("forged callback", chromedp.Navigate(a.URL()+"/login/sso/callback?state=forged&code=stolen"), chromedp.WaitVisible(`[data-testid=sso-error]`))
	shot("05b-state-mismatch")
	if got, _ := chromedp.Run(ctx, chromedp.AttributeValue(`[data-testid=sso-error]`, "data-reason")); got.Value != "state_mismatch" {
		t.Errorf("forged callback refused as %q, want state_mismatch", got.Value)
	}

	// Ada (provider group portal-admins) opens a page, signs in through the
	// provider and lands on it; she plans the prod staff roles, Ben (local,
	// break-glass) approves, she applies.
	do("open AWS access signed out", chromedp.Navigate(a.URL()+"/access/aws/roles"), chromedp.WaitVisible(`[data-testid=sso-button]`), chromedp.Click(`[data-testid=sso-button]`))
	atProvider("ada", "ada-at-the-provider")
	do("ada lands where she was going", chromedp.WaitVisible(`[data-testid=role-stacks]`))
	do("plan prod roles", chromedp.Click(`[data-testid=plan-prod]`), chromedp.WaitVisible(`[data-testid=flash]`))
	signOut()
	localSignIn("ben.admin@example.com", benPass, benSecret)
	do("approve prod roles", chromedp.Navigate(a.URL()+"/access/aws/roles"), chromedp.Click(`[data-testid=approve-plan-prod]`), chromedp.WaitVisible(`[data-testid=flash]`))
	signOut()
	ssoSignIn("ada", "ada-at-the-provider")
	do("apply prod roles", chromedp.Navigate(a.URL()+"/access/aws/roles"), chromedp.Click(`[data-testid=apply-prod]`), chromedp.WaitVisible(`[data-testid=nav-runs]`))
	deadline := time.Now().Add(90 * time.Second)
	for !idc.HasPermissionSet(t, "ops-readonly-prod") {
		if time.Now().After(deadline) {
			shot("failed")
			t.Fatal("the prod permission sets never appeared in Identity Center")
		}
		time.Sleep(300 * time.Millisecond)
	}
	// Ada grants Olga (made by single sign-on) read-only access in prod.
	do("grant form", chromedp.Navigate(a.URL()+"/access/aws"), chromedp.WaitVisible(`[data-testid=grant-form]`),
		chromedp.SetValue(`#f-user`, strconv.FormatInt(olga.ID, 10)), chromedp.SetValue(`#f-environment`, "prod"), chromedp.SetValue(`#f-role`, "ops-readonly"),
		chromedp.SendKeys(`#f-reason`, "joins the prod on-call rota"), chromedp.Click(`[data-testid=grant-submit]`), chromedp.WaitVisible(`[data-testid=flash]`))
	signOut()

	// Olga asks for an hour of deployer access in prod.
	ssoSignIn("olga", "olga-at-the-provider")
	do("elevate", chromedp.Navigate(a.URL()+"/access/aws/elevate"), chromedp.WaitVisible(`[data-testid=elevate-form]`),
		chromedp.SetValue(`#f-environment`, "prod"), chromedp.SetValue(`#f-role`, "ops-deployer"), chromedp.SetValue(`#f-minutes`, "60"),
		chromedp.SendKeys(`#f-reason`, "INC-2211 hotfix for the upload queue"), chromedp.Click(`[data-testid=elevate-submit]`),
		chromedp.WaitVisible(`[data-testid=my-requests]`))
	signOut()

	// Ben approves both; Identity Center holds both of Olga's assignments.
	localSignIn("ben.admin@example.com", benPass, benSecret)
	do("pending", chromedp.Navigate(a.URL()+"/access/aws"), chromedp.WaitVisible(`[data-testid=pending]`))
	pending, err := a.Estate.Access.List(context.Background(), access.Filter{States: []string{access.Pending}})
	if err != nil || len(pending) != 2 {
		t.Fatalf("pending grants %d (err %v), want 2", len(pending), err)
	}
	for _, g := range pending {
		id := strconv.FormatInt(g.ID, 10)
		do("approve "+id, chromedp.Click(`[data-testid=approve-`+id+`]`), chromedp.WaitNotPresent(`[data-testid=approve-`+id+`]`), chromedp.WaitVisible(`[data-testid=flash]`))
	}
	for _, ps := range []string{"ops-readonly-prod", "ops-deployer-prod"} {
		if got := idc.Assigned(t, ps, accounts["prod"]); !slices.Equal(got, []string{"olga.ops@example.com"}) {
			t.Errorf("Identity Center: %s in prod assigned to %v, want olga", ps, got)
		}
	}
	do("assignments", chromedp.Navigate(a.URL()+"/access/aws/consistency"), chromedp.WaitVisible(`[data-testid=assignments]`))
	shot("06-identity-center")
	for _, ps := range []string{"ops-readonly-prod", "ops-deployer-prod"} {
		if got := text(`[data-testid="assignment-prod-` + ps + `-olga.ops@example.com"]`); !strings.Contains(got, accounts["prod"]) {
			t.Errorf("Identity Center row of %s: %q, want the prod account", ps, got)
		}
	}
	do("staff list", chromedp.Navigate(a.URL()+"/access"), chromedp.WaitVisible(`[data-testid="staff-olga.ops@example.com"]`))
	shot("07-staff")
	signOut()

	// Olga signs in again and holds an API token too. Then she leaves the
	// company: disabled at the provider, her session and her token stop
	// working within the re-check bound.
	token, _, err := a.Staff.CreateToken(context.Background(), audit.Entry{Actor: "test"}, olga.ID, staff.NewToken{Name: "olga's scripts", Scopes: []string{staff.ScopeAll}})
	if err != nil {
		t.Fatal(err)
	}
	apiStatus := func() int {
		req, _ := http.NewRequest(http.MethodGet, a.URL()+"/api/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	ssoSignIn("olga", "olga-at-the-provider")
	if got := apiStatus(); got != http.StatusOK {
		t.Fatalf("olga's token before she leaves: %d", got)
	}
	if err := idp.DisableUser(context.Background(), "olga"); err != nil {
		t.Fatal(err)
	}
	disabledAt := time.Now()
	for {
		if err := chromedp.Do(ctx, chromedp.Navigate(a.URL()+"/runs"), chromedp.WaitVisible(`main`)); err != nil {
			t.Fatal(err)
		}
		if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid=login-form]').length`)); n > 0 {
			break
		}
		if time.Since(disabledAt) > 60*time.Second {
			shot("failed")
			t.Fatal("olga still had access a minute after being disabled at the provider")
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("olga lost her session %s after being disabled at the provider (re-check every 2s)", time.Since(disabledAt).Round(100*time.Millisecond))
	shot("08-access-ended")
	if got := text(`[data-testid=flash]`); !strings.Contains(got, "no longer vouches") {
		t.Errorf("message after the access ended: %q", got)
	}
	if got := apiStatus(); got != http.StatusUnauthorized {
		t.Errorf("olga's API token after she was disabled: %d, want 401", got)
	}
	// She cannot come back through the provider either.
	ssoStart()
	atProvider("olga", "olga-at-the-provider")
	do("refused at the provider", chromedp.WaitVisible(`[data-testid=idp-error]`))
	shot("09-disabled-at-provider")
	// Ben, the break-glass admin, sees why.
	localSignIn("ben.admin@example.com", benPass, benSecret)
	do("olga's staff page", chromedp.Navigate(a.URL()+"/access/staff/"+strconv.FormatInt(olga.ID, 10)), chromedp.WaitVisible(`[data-testid=staff-link]`))
	shot("10-staff-suspended")
	if got := text(`[data-testid=staff-link]`); !strings.Contains(got, "Suspended") || !strings.Contains(got, "invalid_grant") {
		t.Errorf("olga's link on her staff page: %q", got)
	}
	do("staff list", chromedp.Navigate(a.URL()+"/access"), chromedp.WaitVisible(`[data-testid=staff-suspended]`))
	shot("10b-staff-list-suspended")
	if got := text(`[data-testid=staff-suspended]`); got != "Suspended by Sandbox Identity" {
		t.Errorf("olga's state in the staff list: %q", got)
	}
	signOut()
	recs, _, err := a.Audit.List(context.Background(), audit.Filter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		seen[r.Action] = true
	}
	for _, want := range []string{"sso.account_created", "auth.sign_in", "auth.sso_refused", "sso.suspended", "auth.sso_session_ended"} {
		if !seen[want] {
			t.Errorf("the audit trail has no %s", want)
		}
	}

	// With the provider down, signing in through it says so.
	if err := idp.Stop(); err != nil {
		t.Fatal(err)
	}
	do("provider down", chromedp.Navigate(a.URL()+"/login"), chromedp.Click(`[data-testid=sso-button]`), chromedp.WaitVisible(`[data-testid=sso-error]`))
	shot("11-provider-down")
	if got, _ := chromedp.Run(ctx, chromedp.AttributeValue(`[data-testid=sso-error]`, "data-reason")); got.Value != "provider_unavailable" {
		t.Errorf("sign-in with the provider down refused as %q, want provider_unavailable", got.Value)
	}

	// An hour later the elevation ends; read-only stays.
	clk.advance(61 * time.Minute)
	if _, err := a.Jobs.RunOnce(context.Background(), "access.expire"); err != nil {
		t.Fatal(err)
	}
	if got := idc.Assigned(t, "ops-deployer-prod", accounts["prod"]); len(got) != 0 {
		t.Errorf("after the hour: ops-deployer-prod assigned to %v, want nobody", got)
	}
}
