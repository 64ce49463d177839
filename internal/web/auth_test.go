package web_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"portal/internal/audit"
	"portal/internal/staff"
)

const badCredentials = "Email or password is incorrect."

func TestSignInWrongPassword(t *testing.T) {
	h := newHarness(t)
	u := h.newUser(t, staff.Compliance)
	tests := []struct {
		name, email string
	}{
		{"known account", u.Email},
		{"unknown account", "nobody@example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.client().login(t, tt.email, "not the password", "")
			if r.StatusCode != http.StatusUnauthorized {
				t.Errorf("got status %d, want 401", r.StatusCode)
			}
			if got, _ := r.TestID(t, "login-error"); got != badCredentials {
				t.Errorf("got message %q, want %q", got, badCredentials)
			}
			recs := h.records(t, audit.Filter{Action: "auth.sign_in_failed", Target: "email:" + tt.email})
			if len(recs) != 1 {
				t.Fatalf("got %d auth.sign_in_failed records for %s, want 1", len(recs), tt.email)
			}
			if got := recs[0].SourceIP; got != "127.0.0.1" {
				t.Errorf("got source IP %q, want 127.0.0.1", got)
			}
			if got, want := recs[0].RequestID, r.Header.Get("X-Request-Id"); got == "" || got != want {
				t.Errorf("got request ID %q, want %q", got, want)
			}
		})
	}
}

func TestSignInThrottledPerAccount(t *testing.T) {
	h := newHarness(t)
	u := h.newUser(t, staff.Finance)
	c := h.client()
	for i := range 5 {
		if r := c.login(t, u.Email, "wrong password "+itoa(int64(i)), ""); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: got %d, want 401", i+1, r.StatusCode)
		}
	}
	r := c.login(t, u.Email, u.Password, "")
	if r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("right password after 5 failures: got %d, want 429", r.StatusCode)
	}
	if got, _ := r.TestID(t, "login-error"); !strings.Contains(got, "Too many failed sign-in attempts") {
		t.Errorf("got message %q, want it to say there were too many attempts", got)
	}
	// Another account from the same address is not affected.
	other := h.newUser(t, staff.Finance)
	h.client().signIn(t, other, "/")
}

func TestSignInThrottledPerIP(t *testing.T) {
	h := newHarness(t, "-trust-proxy")
	u := h.newUser(t, staff.Compliance)
	attacker, neighbour := h.client(), h.client()
	attacker.header.Set("X-Forwarded-For", "203.0.113.7")
	neighbour.header.Set("X-Forwarded-For", "203.0.113.8")
	// 20 failures spread over accounts, so no single account is throttled.
	for i := range 20 {
		email := "guess" + itoa(int64(i)) + "@example.com"
		if r := attacker.login(t, email, "wrong password", ""); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: got %d, want 401", i+1, r.StatusCode)
		}
	}
	if r := attacker.login(t, u.Email, u.Password, ""); r.StatusCode != http.StatusTooManyRequests {
		t.Errorf("right password from the throttled address: got %d, want 429", r.StatusCode)
	}
	neighbour.signIn(t, u, "/")
	// The refused attempt left nothing behind; the limit was recorded once,
	// when it began to hold.
	if recs := h.records(t, audit.Filter{Action: "auth.sign_in_failed", Target: "email:" + u.Email}); len(recs) != 0 {
		t.Errorf("got %d auth.sign_in_failed records for the refused attempt, want none", len(recs))
	}
	recs := h.records(t, audit.Filter{Action: "auth.sign_in_throttled"})
	if len(recs) != 1 || recs[0].SourceIP != "203.0.113.7" || recs[0].Details["limit"] != "source" {
		t.Errorf("got records %+v, want one auth.sign_in_throttled for the source 203.0.113.7", recs)
	}
}

func TestDisabledAccount(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	u := h.newUser(t, staff.Compliance)
	c := h.client()
	c.signIn(t, u, "/")
	if r := c.get(t, "/audit"); r.StatusCode != http.StatusOK {
		t.Fatalf("GET /audit before disabling: got %d, want 200", r.StatusCode)
	}
	if _, err := h.app.Staff.SetDisabled(ctx, audit.Entry{Actor: "test"}, u.ID, true); err != nil {
		t.Fatal(err)
	}
	// The existing session is dropped on the next request...
	r := c.get(t, "/audit")
	if want := "/login?next=%2Faudit"; r.StatusCode != http.StatusSeeOther || r.Location() != want {
		t.Errorf("GET /audit after disabling: got %d to %q, want 303 to %q", r.StatusCode, r.Location(), want)
	}
	// ...for good: the sign-in page no longer sees anyone signed in.
	if r := c.get(t, "/login"); r.StatusCode != http.StatusOK {
		t.Errorf("GET /login after disabling: got %d, want 200", r.StatusCode)
	}
	// And the right password does not sign in, with the generic answer.
	r = h.client().login(t, u.Email, u.Password, "")
	if got, _ := r.TestID(t, "login-error"); r.StatusCode != http.StatusUnauthorized || got != badCredentials {
		t.Errorf("sign in to a disabled account: got %d %q, want 401 %q", r.StatusCode, got, badCredentials)
	}
}

func TestFirstSignInForcesPasswordChange(t *testing.T) {
	h := newHarness(t)
	u, otp := h.newUserOTP(t, staff.Compliance)
	c := h.client()
	r := c.login(t, u.Email, otp, "/audit")
	if r.StatusCode != http.StatusSeeOther || r.Location() != "/account/2fa" {
		t.Fatalf("sign in with the one-time password: got %d to %q, want 303 to /account/2fa (every role uses two-factor)", r.StatusCode, r.Location())
	}
	r = c.enrol(t, func(secret string) string { return h.code(t, secret) })
	if r.StatusCode != http.StatusSeeOther || r.Location() != "/account/password" {
		t.Fatalf("enrol two-factor: got %d to %q, want 303 to /account/password", r.StatusCode, r.Location())
	}
	for _, path := range []string{"/", "/audit", "/access"} {
		if r := c.get(t, path); r.StatusCode != http.StatusSeeOther || r.Location() != "/account/password" {
			t.Errorf("GET %s before changing the password: got %d to %q, want 303 to /account/password", path, r.StatusCode, r.Location())
		}
	}
	r = c.submit(t, "/account/password", "/account/password", url.Values{"current": {otp}, "new": {"short"}, "confirm": {"short"}})
	if got, ok := r.TestID(t, "error-new"); r.StatusCode != http.StatusBadRequest || !ok {
		t.Errorf("too short a password: got %d with message %q, want 400 with a message at the field", r.StatusCode, got)
	}
	for _, weak := range []string{"password123456", "Sunshine2026!!", "qwertyuiopasdf"} {
		r = c.submit(t, "/account/password", "/account/password", url.Values{"current": {otp}, "new": {weak}, "confirm": {weak}})
		if got, _ := r.TestID(t, "error-new"); r.StatusCode != http.StatusBadRequest || !(strings.Contains(got, "common") || strings.Contains(got, "guess")) {
			t.Errorf("new password %q: got %d with %q, want 400 saying it is common or guessable", weak, r.StatusCode, got)
		}
	}
	r = c.submit(t, "/account/password", "/account/password", url.Values{"current": {otp}, "new": {testPassword}, "confirm": {testPassword}})
	if r.StatusCode != http.StatusSeeOther || r.Location() != "/" {
		t.Fatalf("change password: got %d to %q, want 303 to /", r.StatusCode, r.Location())
	}
	if r := c.get(t, "/"); r.StatusCode != http.StatusOK {
		t.Errorf("GET / after changing the password: got %d, want 200", r.StatusCode)
	}
}

// TestTwoFactorEnrolmentRequired: by default every role must use
// two-factor (compliance and finance read CloudTrail, the audit trail and
// revenue).
func TestTwoFactorEnrolmentRequired(t *testing.T) {
	for _, role := range staff.AllRoles {
		t.Run(string(role), func(t *testing.T) {
			h := newHarness(t)
			u, otp := h.newUserOTP(t, role)
			if err := h.app.Staff.ChangePassword(context.Background(), audit.Entry{Actor: "test"}, u.ID, otp, testPassword, testPassword); err != nil {
				t.Fatal(err)
			}
			c := h.client()
			r := c.login(t, u.Email, testPassword, "")
			if r.StatusCode != http.StatusSeeOther || r.Location() != "/account/2fa" {
				t.Fatalf("sign in without two-factor: got %d to %q, want 303 to /account/2fa", r.StatusCode, r.Location())
			}
			if r := c.get(t, "/"); r.StatusCode != http.StatusSeeOther || r.Location() != "/login?next=%2F" {
				t.Errorf("GET / before enrolling: got %d to %q, want 303 to /login?next=%%2F", r.StatusCode, r.Location())
			}
			r = c.enrol(t, func(string) string { return "000000" })
			if _, ok := r.TestID(t, "error-code"); r.StatusCode != http.StatusBadRequest || !ok {
				t.Errorf("wrong enrolment code: got %d, want 400 with a message at the code", r.StatusCode)
			}
			r = c.enrol(t, func(secret string) string { return h.code(t, secret) })
			if r.StatusCode != http.StatusSeeOther || r.Location() != "/" {
				t.Fatalf("enrol: got %d to %q, want 303 to /", r.StatusCode, r.Location())
			}
			if r := c.get(t, "/"); r.StatusCode != http.StatusOK {
				t.Errorf("GET / after enrolling: got %d, want 200", r.StatusCode)
			}
		})
	}
}

func TestTwoFactorCodeCannotBeReused(t *testing.T) {
	h := newHarness(t)
	u := h.newUser(t, staff.Ops)
	c := h.client()
	code := h.code(t, u.Secret)
	signIn := func() *response {
		r := c.login(t, u.Email, u.Password, "")
		if r.StatusCode != http.StatusSeeOther || r.Location() != "/login/2fa" {
			t.Fatalf("password: got %d to %q, want 303 to /login/2fa", r.StatusCode, r.Location())
		}
		return c.submit(t, "/login/2fa", "/login/2fa", url.Values{"code": {code}})
	}
	if r := signIn(); r.StatusCode != http.StatusSeeOther || r.Location() != "/" {
		t.Fatalf("first use of the code: got %d to %q, want 303 to /", r.StatusCode, r.Location())
	}
	if r := c.submit(t, "/", "/logout", nil); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: got %d, want 303", r.StatusCode)
	}
	r := signIn()
	if _, ok := r.TestID(t, "error-code"); r.StatusCode != http.StatusBadRequest || !ok {
		t.Errorf("second use of the same code: got %d to %q, want 400 with a message at the code", r.StatusCode, r.Location())
	}
	if got := h.records(t, audit.Filter{Action: "auth.2fa_failed", Target: u.Label()}); len(got) != 1 {
		t.Errorf("got %d auth.2fa_failed records, want 1", len(got))
	}
}

func TestSessionCookie(t *testing.T) {
	h := newHarness(t)
	u := h.newUser(t, staff.Finance)
	r := h.client().login(t, u.Email, u.Password, "")
	var found bool
	for _, ck := range r.Cookies() {
		if ck.Name != "portal_session" {
			continue
		}
		found = true
		if !ck.HttpOnly {
			t.Error("session cookie: got HttpOnly false, want true")
		}
		if ck.SameSite != http.SameSiteLaxMode {
			t.Errorf("session cookie: got SameSite %v, want Lax", ck.SameSite)
		}
	}
	if !found {
		t.Fatalf("sign-in set no portal_session cookie; got %v", r.Header["Set-Cookie"])
	}
}

func TestCSRF(t *testing.T) {
	h := newHarness(t)
	c, _ := h.signedIn(t, staff.Finance)
	tok := c.csrf(t, "/access")
	tests := []struct {
		name       string
		form       url.Values
		wantStatus int
	}{
		{"no token", url.Values{"name": {"ci"}}, http.StatusForbidden},
		{"wrong token", url.Values{"name": {"ci"}, "_csrf": {"forged"}}, http.StatusForbidden},
		{"token from the form", url.Values{"name": {"ci"}, "_csrf": {tok}}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.post(t, "/access/tokens", tt.form)
			if r.StatusCode != tt.wantStatus {
				t.Fatalf("got %d, want %d", r.StatusCode, tt.wantStatus)
			}
			_, created := r.TestID(t, "new-token")
			if want := tt.wantStatus == http.StatusOK; created != want {
				t.Errorf("token shown: got %v, want %v", created, want)
			}
		})
	}
}

// TestCSRFBoundToSession: a CSRF token is good only for the session it was
// issued in: not in another person's session, and not across signing in.
func TestCSRFBoundToSession(t *testing.T) {
	h := newHarness(t)
	alice, _ := h.signedIn(t, staff.Finance)
	bob, _ := h.signedIn(t, staff.Finance)
	aliceTok := alice.csrf(t, "/access")
	if r := bob.post(t, "/access/tokens", url.Values{"name": {"ci"}, "_csrf": {aliceTok}}); r.StatusCode != http.StatusForbidden {
		t.Errorf("bob posting with alice's token: got %d, want 403", r.StatusCode)
	}
	// A token issued before signing in is void after.
	u := h.newUser(t, staff.Finance)
	c := h.client()
	before := c.csrf(t, "/login")
	c.signIn(t, u, "/")
	if r := c.post(t, "/access/tokens", url.Values{"name": {"ci"}, "_csrf": {before}}); r.StatusCode != http.StatusForbidden {
		t.Errorf("posting with the token from before signing in: got %d, want 403", r.StatusCode)
	}
	if r := c.post(t, "/access/tokens", url.Values{"name": {"ci"}, "_csrf": {c.csrf(t, "/access")}}); r.StatusCode != http.StatusOK {
		t.Errorf("posting with this session's token: got %d, want 200", r.StatusCode)
	}
}

// TestHostPrefixedCookies: served over https, every cookie carries the
// __Host- prefix (Secure, Path=/, no Domain), so no other host can plant or
// overwrite it; over http (the sandbox) the prefix is left off.
func TestHostPrefixedCookies(t *testing.T) {
	h := newHarness(t, "-base-url", "https://portal.example.com")
	u := h.newUser(t, staff.Finance)
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := hc.Get(h.url + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page := &response{Response: res}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	page.Body = string(b)
	csrfCk := cookieNamed(t, res, "__Host-portal_csrf")
	form := url.Values{"email": {u.Email}, "password": {u.Password}, "_csrf": {page.CSRF(t)}}
	req, _ := http.NewRequest(http.MethodPost, h.url+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: csrfCk.Name, Value: csrfCk.Value})
	res, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: got %d, want 303", res.StatusCode)
	}
	cookieNamed(t, res, "__Host-portal_session")
}

// cookieNamed returns the cookie res sets under name, failing unless it is
// a valid __Host- cookie.
func cookieNamed(t *testing.T, res *http.Response, name string) *http.Cookie {
	t.Helper()
	for _, ck := range res.Cookies() {
		if ck.Name == name {
			if !ck.Secure || ck.Path != "/" || ck.Domain != "" || !ck.HttpOnly {
				t.Errorf("cookie %s: Secure %v, Path %q, Domain %q, HttpOnly %v; want Secure, Path=/, no Domain, HttpOnly", name, ck.Secure, ck.Path, ck.Domain, ck.HttpOnly)
			}
			return ck
		}
	}
	t.Fatalf("no %s cookie in %v", name, res.Header["Set-Cookie"])
	return nil
}

func TestSignOut(t *testing.T) {
	h := newHarness(t)
	c, u := h.signedIn(t, staff.Compliance)
	r := c.submit(t, "/", "/logout", nil)
	if r.StatusCode != http.StatusSeeOther || r.Location() != "/login" {
		t.Fatalf("sign out: got %d to %q, want 303 to /login", r.StatusCode, r.Location())
	}
	if r := c.get(t, "/"); r.StatusCode != http.StatusSeeOther || r.Location() != "/login?next=%2F" {
		t.Errorf("GET / after signing out: got %d to %q, want 303 to /login?next=%%2F", r.StatusCode, r.Location())
	}
	if got := h.records(t, audit.Filter{Action: "auth.sign_out", Actor: u.Label()}); len(got) != 1 {
		t.Errorf("got %d auth.sign_out records, want 1", len(got))
	}
}

func TestSignInNext(t *testing.T) {
	h := newHarness(t)
	tests := []struct{ next, want string }{
		{"", "/"},
		{"/audit?action=auth.sign_in", "/audit?action=auth.sign_in"},
		{"//evil.example", "/"},
		{"//evil.example/audit", "/"},
		{`/\evil.example`, "/"},
		{"https://evil.example/", "/"},
		{"evil.example", "/"},
		{"javascript:alert(1)", "/"},
		{"/\t/evil.example/x", "/"},
		{"/%09/evil.example/x", "/"},
		{"/%5Cevil.example", "/"},
	}
	for _, tt := range tests {
		t.Run(tt.next, func(t *testing.T) {
			u := h.newUser(t, staff.Compliance)
			c := h.client()
			c.pending(t, u, tt.next)
			r := c.submit(t, "/login/2fa", "/login/2fa", url.Values{"code": {h.code(t, u.Secret)}})
			if r.StatusCode != http.StatusSeeOther || r.Location() != tt.want {
				t.Errorf("got %d to %q, want 303 to %q", r.StatusCode, r.Location(), tt.want)
			}
		})
	}
	t.Run("through two-factor", func(t *testing.T) {
		u := h.newUser(t, staff.Admin)
		c := h.client()
		for _, next := range []string{"//evil.example", "/access/staff/new"} {
			r := c.login(t, u.Email, u.Password, next)
			if r.Location() != "/login/2fa" {
				t.Fatalf("password: got %d to %q, want 303 to /login/2fa", r.StatusCode, r.Location())
			}
			r = c.submit(t, "/login/2fa", "/login/2fa", url.Values{"code": {h.code(t, u.Secret)}})
			want := safeWant(next)
			if r.StatusCode != http.StatusSeeOther || r.Location() != want {
				t.Errorf("next %q: got %d to %q, want 303 to %q", next, r.StatusCode, r.Location(), want)
			}
			c.submit(t, "/", "/logout", nil)
		}
	})
}

func safeWant(next string) string {
	if strings.HasPrefix(next, "//") {
		return "/"
	}
	return next
}

// wrongCode returns a six-digit code that is not secret's code at the
// clock's current step.
func (h *harness) wrongCode(t *testing.T, secret string) string {
	t.Helper()
	right, err := totp.GenerateCode(secret, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(right)
	return fmt.Sprintf("%06d", (n+500000)%1000000)
}

// pending starts a sign-in with u's password and fails unless it waits on
// the second factor.
func (c *client) pending(t *testing.T, u user, next ...string) {
	t.Helper()
	if r := c.login(t, u.Email, u.Password, strings.Join(next, "")); r.StatusCode != http.StatusSeeOther || r.Location() != "/login/2fa" {
		t.Fatalf("password: got %d to %q, want 303 to /login/2fa", r.StatusCode, r.Location())
	}
}

// TestTwoFactorAttemptsPerSignIn: a pending sign-in allows a few wrong codes,
// then it is void and even the right code leads back to the password.
func TestTwoFactorAttemptsPerSignIn(t *testing.T) {
	h := newHarness(t)
	u := h.newUser(t, staff.Ops)
	c := h.client()
	c.pending(t, u)
	max := h.app.Staff.Config().MaxCodesPerSignIn
	for i := 1; i < max; i++ {
		if r := c.submit(t, "/login/2fa", "/login/2fa", url.Values{"code": {h.wrongCode(t, u.Secret)}}); r.StatusCode != http.StatusBadRequest {
			t.Fatalf("wrong code %d of %d: got %d, want 400", i, max, r.StatusCode)
		}
	}
	r := c.submit(t, "/login/2fa", "/login/2fa", url.Values{"code": {h.wrongCode(t, u.Secret)}})
	if msg, _ := r.TestID(t, "login-error"); r.StatusCode != http.StatusTooManyRequests || !strings.Contains(msg, "Sign in again") {
		t.Fatalf("wrong code %d of %d: got %d with %q, want 429 and the sign-in page saying to sign in again", max, max, r.StatusCode, msg)
	}
	// The pending sign-in is gone: the right code cannot be posted to it.
	if r := c.get(t, "/login/2fa"); r.StatusCode != http.StatusSeeOther || r.Location() != "/login" {
		t.Fatalf("GET /login/2fa after the sign-in was void: got %d to %q, want 303 to /login", r.StatusCode, r.Location())
	}
	if got := h.records(t, audit.Filter{Action: "auth.sign_in_void", Target: u.Label()}); len(got) != 1 {
		t.Errorf("got %d auth.sign_in_void records, want 1", len(got))
	}
	// Signing in again with the password and the right code works.
	c.signIn(t, u, "/")
}

// TestTwoFactorAttemptsPerAccount: wrong codes count against the account
// across sign-ins, so starting a new sign-in does not buy more guesses; once
// the limit is reached the right code is refused too, until the window
// passes.
func TestTwoFactorAttemptsPerAccount(t *testing.T) {
	h := newHarness(t)
	u := h.newUser(t, staff.Ops)
	cfg := h.app.Staff.Config()
	perSignIn := cfg.MaxCodesPerSignIn - 1
	for wrong := 0; wrong < cfg.MaxCodeFailures; {
		c := h.client()
		c.pending(t, u)
		for i := 0; i < perSignIn && wrong < cfg.MaxCodeFailures; i++ {
			if r := c.submit(t, "/login/2fa", "/login/2fa", url.Values{"code": {h.wrongCode(t, u.Secret)}}); r.StatusCode != http.StatusBadRequest {
				t.Fatalf("wrong code %d: got %d, want 400", wrong+1, r.StatusCode)
			}
			wrong++
		}
	}
	c := h.client()
	c.pending(t, u)
	r := c.submit(t, "/login/2fa", "/login/2fa", url.Values{"code": {h.code(t, u.Secret)}})
	if msg, _ := r.TestID(t, "login-error"); r.StatusCode != http.StatusTooManyRequests || !strings.Contains(msg, "Too many wrong two-factor codes") {
		t.Fatalf("right code after %d wrong ones: got %d (to %q) with %q, want 429 naming the wrong codes", cfg.MaxCodeFailures, r.StatusCode, r.Location(), msg)
	}
	if r := c.get(t, "/"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET / after the refused code: got %d, want 303 to the sign-in page", r.StatusCode)
	}
	h.clock.Advance(cfg.Window)
	c.signIn(t, u, "/")
}

// TestTwoFactorPendingSignInExpires: the half-signed-in state is short-lived.
func TestTwoFactorPendingSignInExpires(t *testing.T) {
	h := newHarness(t)
	u := h.newUser(t, staff.Ops)
	c := h.client()
	c.pending(t, u)
	h.clock.Advance(h.app.Staff.Config().PendingSignInLife + time.Second)
	csrf := c.csrf(t, "/login")
	if r := c.post(t, "/login/2fa", url.Values{"_csrf": {csrf}, "code": {h.code(t, u.Secret)}}); r.StatusCode != http.StatusSeeOther || r.Location() != "/login" {
		t.Fatalf("right code after the pending sign-in expired: got %d to %q, want 303 to /login", r.StatusCode, r.Location())
	}
	if r := c.get(t, "/"); r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Location(), "/login") {
		t.Fatalf("GET / after an expired pending sign-in: got %d to %q, want 303 to the sign-in page", r.StatusCode, r.Location())
	}
}
