package app_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"portal/internal/app"
	"portal/internal/peers/peertest"
	"portal/internal/staff"
)

func TestMain(m *testing.M) { peertest.Main(m) }

// startApp runs the portal on a free port with a fresh database and
// returns it once it serves.
func startApp(t *testing.T) *app.App {
	t.Helper()
	dir := t.TempDir()
	cfg, err := app.ParseServe([]string{"-addr", "127.0.0.1:0", "-data-dir", dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), app.Options{HashParams: &staff.HashParams{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		a.Close()
	})
	return a
}

// TestFirstAdminInBrowser is what a new administrator does on a fresh
// portal: sign in with the printed one-time password, choose a password,
// enrol two-factor, reach the Overview, and create an ops user.
func TestFirstAdminInBrowser(t *testing.T) {
	a := startApp(t)
	if a.FirstAdmin == nil {
		t.Fatal("a fresh portal created no first administrator")
	}
	ctx := peertest.Chromium(t)
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	shot := func(name string) { peertest.KeepScreenshot(t, ctx, name+".png") }
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
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

	do("open the portal", chromedp.Navigate(a.URL()+"/"), chromedp.WaitVisible(`[data-testid=login-form]`))
	shot("01-login")
	do("sign in with the one-time password",
		chromedp.SendKeys(`#f-email`, a.FirstAdmin.Email),
		chromedp.SendKeys(`#f-password`, a.FirstAdmin.Password),
		chromedp.Click(`[data-testid=login-submit]`),
		chromedp.WaitVisible(`[data-testid=enrol-form]`))
	shot("02-enrol-2fa")

	// Admins must use two-factor: the sign-in waits on enrolment.
	do("reveal the key", chromedp.Click(`details summary`))
	secret := text(`[data-testid=totp-secret]`)
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatalf("code for the shown secret: %v", err)
	}
	do("enrol two-factor",
		chromedp.SendKeys(`#f-code`, code),
		chromedp.Click(`[data-testid=enrol-submit]`),
		chromedp.WaitVisible(`[data-testid=password-form]`))
	shot("03-change-password")

	const newPassword = "correct horse battery staple"
	do("choose a password",
		chromedp.SendKeys(`#f-current`, a.FirstAdmin.Password),
		chromedp.SendKeys(`#f-new`, newPassword),
		chromedp.SendKeys(`#f-confirm`, newPassword),
		chromedp.Click(`[data-testid=password-submit]`),
		chromedp.WaitVisible(`[data-testid=card-Access]`))
	shot("04-overview")
	if got := text(`h1`); got != "Overview" {
		t.Errorf("after enrolment the page heading is %q, want Overview", got)
	}
	for _, area := range []string{"blueprints", "runs", "inventory", "activity", "billing", "access", "audit"} {
		if _, err := chromedp.Run(ctx, chromedp.Text(`[data-testid=nav-`+area+`]`)); err != nil {
			t.Errorf("admin's navigation lacks %s: %v", area, err)
		}
	}

	do("add an ops engineer",
		chromedp.Click(`[data-testid=nav-access]`),
		chromedp.WaitVisible(`[data-testid=new-staff]`),
		chromedp.Click(`[data-testid=new-staff]`),
		chromedp.WaitVisible(`[data-testid=staff-form]`),
		chromedp.SendKeys(`#f-email`, "olga.ops@example.com"),
		chromedp.SendKeys(`#f-name`, "Olga Ops"),
		chromedp.Click(`[data-testid=role-ops]`),
		chromedp.Click(`[data-testid=staff-submit]`),
		chromedp.WaitVisible(`[data-testid=one-time-password]`))
	shot("05-staff-created")
	if otp := text(`[data-testid=one-time-password]`); len(otp) < 20 {
		t.Errorf("one-time password shown is %q, want a 20-character password", otp)
	}
	u, err := a.Staff.GetByEmail(context.Background(), "olga.ops@example.com")
	if err != nil {
		t.Fatalf("the new user is not in the database: %v", err)
	}
	if !u.Has(staff.Ops) || u.Has(staff.Admin) {
		t.Errorf("new user's roles are %v, want [ops]", u.Roles)
	}

	do("open the audit trail", chromedp.Click(`[data-testid=nav-audit]`))
	// Wait until the browser has left the staff page: a node found on a
	// page still being replaced cannot be clicked.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		u, err := chromedp.Run(ctx, chromedp.Location())
		if err == nil && strings.HasSuffix(u, "/audit") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the Audit link the browser is at %q (%v)", u, err)
		}
	}
	do("verify the chain", chromedp.WaitVisible(`[data-testid=audit-rows]`),
		chromedp.Click(`[data-testid=verify-chain]`), chromedp.WaitVisible(`[data-testid=chain-ok]`))
	shot("06-audit")
	rows := text(`[data-testid=audit-rows]`)
	for _, action := range []string{"auth.sign_in", "auth.change_password", "auth.enrol_2fa", "staff.create"} {
		if !strings.Contains(rows, action) {
			t.Errorf("audit page lacks %s", action)
		}
	}
}

// wallClock gives two-factor codes for a portal that runs on the real
// clock: each code is from the time step after the previous one, which the
// portal accepts (one step of skew) and never twice. A test asks it for a
// few codes at most, all within a minute.
type wallClock struct{ last int64 }

func (w *wallClock) code(t *testing.T, secret string) string {
	t.Helper()
	step := max(time.Now().Unix()/30, w.last+1)
	w.last = step
	code, err := totp.GenerateCode(secret, time.Unix(step*30, 0))
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// signInSteps signs in through the forms in Chromium at base, with a
// two-factor code from clk.
func signInSteps(t *testing.T, base, email, password, secret string, clk codeClock) chromedp.Action[chromedp.Void] {
	t.Helper()
	return chromedp.Steps(chromedp.Navigate(base+"/login"), chromedp.WaitVisible(`[data-testid=login-form]`),
		chromedp.SendKeys(`#f-email`, email), chromedp.SendKeys(`#f-password`, password), chromedp.Click(`[data-testid=login-submit]`),
		chromedp.WaitVisible(`[data-testid=totp-form]`), chromedp.SendKeys(`#f-code`, clk.code(t, secret)), chromedp.Click(`[data-testid=totp-submit]`))
}
