package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"portal/internal/audit"
	"portal/internal/peers/peertest"
	"portal/internal/staff"
)

// TestPasskeysInBrowser: a person whose role requires two-factor adds a
// passkey at their first sign-in, signs in with it, sees it on their
// account page, and a passkey answer that does not verify is refused and
// counted. Chromium's virtual authenticator (DevTools WebAuthn domain)
// stands in for the device. Screenshots go to $PORTAL_SCREENSHOTS.
func TestPasskeysInBrowser(t *testing.T) {
	h := newHarness(t)
	u, otp := h.newUserOTP(t, staff.Ops)
	if err := h.app.Staff.ChangePassword(context.Background(), audit.Entry{Actor: "test"}, u.ID, otp, testPassword, testPassword); err != nil {
		t.Fatal(err)
	}
	// Passkeys belong to the portal's host name; a loopback address is
	// "localhost" (browsers refuse an IP address as a relying party).
	base := strings.Replace(h.url, "127.0.0.1", "localhost", 1)

	bctx := peertest.Chromium(t)
	bctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()
	if _, err := chromedp.Call(bctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	auth, err := chromedp.Call(bctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
	}})
	if err != nil {
		t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
	shot := func(name string) { peertest.KeepScreenshot(t, bctx, "passkeys-"+name+".png") }
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, actions...); err != nil {
			shot("failed")
			t.Fatalf("%s: %v", step, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.Join(strings.Fields(s), " ")
	}
	password := func() chromedp.Action[chromedp.Void] {
		return chromedp.Steps(chromedp.Navigate(base+"/login"), chromedp.WaitVisible(`[data-testid=login-form]`),
			chromedp.SendKeys(`#f-email`, u.Email), chromedp.SendKeys(`#f-password`, testPassword), chromedp.Click(`[data-testid=login-submit]`))
	}

	do("password, then the required two-factor set-up", password(), chromedp.WaitVisible(`[data-testid=passkey-add]`))
	shot("01-choose-a-factor")
	do("add a passkey", chromedp.SetValue(`#f-passkey-name`, "Work laptop"), chromedp.Click(`[data-testid=passkey-add]`),
		chromedp.WaitVisible(`[data-testid=who]`))
	pks, err := h.app.Staff.ListPasskeys(context.Background(), u.ID)
	if err != nil || len(pks) != 1 || pks[0].Name != "Work laptop" {
		t.Fatalf("passkeys after enrolling: %+v, %v; want one named Work laptop", pks, err)
	}
	if recs := h.records(t, audit.Filter{Action: "auth.enrol_2fa", Target: u.Label()}); len(recs) != 1 || recs[0].Details["factor"] != "passkey" {
		t.Errorf("enrolment records %+v, want one auth.enrol_2fa with factor passkey", recs)
	}

	do("sign out", chromedp.Click(`form[action="/logout"] button`), chromedp.WaitVisible(`[data-testid=login-form]`))
	do("password again", password(), chromedp.WaitVisible(`[data-testid=passkey-signin]`))
	shot("02-second-factor")
	if n, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll("[data-testid=totp-form]").length`)); err != nil || n != 0 {
		t.Errorf("the second-factor page offers a code form (%d, %v) to an account without an authenticator app", n, err)
	}
	do("sign in with the passkey", chromedp.Click(`[data-testid=passkey-signin]`), chromedp.WaitVisible(`[data-testid=who]`))
	if recs := h.records(t, audit.Filter{Action: "auth.sign_in", Target: u.Label()}); len(recs) == 0 || recs[0].Details["method"] != "password+passkey" {
		t.Errorf("newest sign-in %+v, want method password+passkey", recs)
	}
	do("account page", chromedp.Navigate(base+"/account"), chromedp.WaitVisible(`[data-testid=passkeys]`))
	if got := text(`[data-testid=passkeys]`); !strings.Contains(got, "Work laptop") {
		t.Errorf("account page passkeys: %q, want Work laptop", got)
	}
	if got := text(`[data-testid=account-2fa]`); !strings.Contains(got, "1 passkey") {
		t.Errorf("account page two-factor: %q, want 1 passkey", got)
	}
	shot("03-account")
	// The only factor of an account whose role requires one stays.
	do("remove the only passkey", chromedp.Click(`[data-testid=passkeys] button`), chromedp.WaitVisible(`[data-testid=error-page]`))
	if got := text(`[data-testid=error-page]`); !strings.Contains(got, "only second factor") {
		t.Errorf("removing the only passkey: %q, want a refusal naming it the only second factor", got)
	}

	// An answer whose signature does not verify is refused and counted.
	if _, err := chromedp.Call(bctx, webauthn.SetResponseOverrideBits, webauthn.SetResponseOverrideBitsParams{
		AuthenticatorID: auth.AuthenticatorID, IsBogusSignature: ptr(true)}); err != nil {
		t.Fatalf("WebAuthn.setResponseOverrideBits: %v", err)
	}
	do("sign out again", chromedp.Navigate(base+"/account"), chromedp.Click(`form[action="/logout"] button`), chromedp.WaitVisible(`[data-testid=login-form]`))
	do("a bad passkey answer", password(), chromedp.WaitVisible(`[data-testid=passkey-signin]`), chromedp.Click(`[data-testid=passkey-signin]`),
		chromedp.WaitVisible(`[data-testid=passkey-error]`))
	if got := text(`[data-testid=passkey-error]`); !strings.Contains(got, "could not be verified") {
		t.Errorf("error shown: %q, want it to say the passkey could not be verified", got)
	}
	shot("04-refused")
	if recs := h.records(t, audit.Filter{Action: "auth.2fa_failed", Target: u.Label()}); len(recs) != 1 {
		t.Errorf("got %d auth.2fa_failed records, want 1", len(recs))
	}
}

func ptr[T any](v T) *T { return &v }
