package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"portal/internal/audit"
	"portal/internal/staff"
)

// signedOut fails unless c's session is over: a page sends it to sign in.
func signedOut(t *testing.T, c *client, why string) {
	t.Helper()
	if r := c.get(t, "/"); r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Location(), "/login") {
		t.Errorf("%s: GET / got %d to %q, want 303 to the sign-in page", why, r.StatusCode, r.Location())
	}
}

// signedInStill fails unless c still reaches the overview.
func signedInStill(t *testing.T, c *client, why string) {
	t.Helper()
	if r := c.get(t, "/"); r.StatusCode != http.StatusOK {
		t.Errorf("%s: GET / got %d to %q, want 200", why, r.StatusCode, r.Location())
	}
}

// tokenWorks reports whether token can read /api/v1/me.
func (h *harness) tokenWorks(t *testing.T, token string) bool {
	t.Helper()
	r := h.api(t, http.MethodGet, "/api/v1/me", token, "", "")
	return r.StatusCode == http.StatusOK
}

// TestPasswordChangeEndsOtherSessions: changing one's password keeps this
// session, ends every other, and revokes the API tokens.
func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	h := newHarness(t)
	u := h.newUser(t, staff.Compliance)
	here, there := h.client(), h.client()
	here.signIn(t, u, "/")
	there.signIn(t, u, "/")
	token := h.apiToken(t, u.User)

	next := "another long passphrase 43"
	r := here.submit(t, "/account/password", "/account/password", url.Values{"current": {u.Password}, "new": {next}, "confirm": {next}})
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("change password: got %d\n%s", r.StatusCode, r.Body)
	}
	signedInStill(t, here, "the session that changed the password")
	signedOut(t, there, "another session after the password change")
	if h.tokenWorks(t, token) {
		t.Error("an API token still works after the password change")
	}
	toks, err := h.app.Staff.ListTokens(context.Background(), u.ID)
	if err != nil || len(toks) != 1 || toks[0].RevokedReason != "password changed" {
		t.Errorf("tokens %+v, %v: want the one token revoked because the password changed", toks, err)
	}
}

// TestAdminResetsEndSessions: a password or two-factor reset by an admin
// ends every session of the account and revokes its tokens; the old session
// cannot enrol a new factor: only signing in again with the password leads
// there.
func TestAdminResetsEndSessions(t *testing.T) {
	h := newHarness(t)
	admin, _ := h.signedIn(t, staff.Admin)
	for _, action := range []string{"reset-2fa", "reset-password"} {
		t.Run(action, func(t *testing.T) {
			c, u := h.signedIn(t, staff.Ops)
			token := h.apiToken(t, u.User)
			path := "/access/staff/" + itoa(u.ID)
			if r := admin.submit(t, path, path+"/"+action, nil); r.StatusCode != http.StatusSeeOther && r.StatusCode != http.StatusOK {
				t.Fatalf("%s: got %d", action, r.StatusCode)
			}
			signedOut(t, c, "the person's session after "+action)
			if r := c.get(t, "/account/2fa"); r.StatusCode != http.StatusSeeOther || r.Location() != "/login" {
				t.Errorf("GET /account/2fa from the old session: got %d to %q, want 303 to /login", r.StatusCode, r.Location())
			}
			if h.tokenWorks(t, token) {
				t.Errorf("an API token still works after %s", action)
			}
			if action == "reset-2fa" {
				// The password is needed to get to the enrolment again.
				if r := c.login(t, u.Email, u.Password, ""); r.StatusCode != http.StatusSeeOther || r.Location() != "/account/2fa" {
					t.Fatalf("sign in after the reset: got %d to %q, want 303 to /account/2fa", r.StatusCode, r.Location())
				}
				if r := c.enrol(t, func(secret string) string { return h.code(t, secret) }); r.StatusCode != http.StatusSeeOther || r.Location() != "/" {
					t.Errorf("enrol after the reset: got %d to %q, want 303 to /", r.StatusCode, r.Location())
				}
			}
		})
	}
}

// TestRoleChangeEndsSessionsTokensReadRoles: a role change ends the
// person's sessions; their tokens stay but act with the new roles at once.
func TestRoleChangeEndsSessionsTokensReadRoles(t *testing.T) {
	h := newHarness(t)
	c, u := h.signedIn(t, staff.Compliance)
	token := h.apiToken(t, u.User)
	if r := h.api(t, http.MethodGet, "/api/v1/audit", token, "", ""); r.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/audit as compliance: got %d", r.StatusCode)
	}
	if _, err := h.app.Staff.SetRoles(context.Background(), audit.Entry{Actor: "test"}, u.ID, []staff.Role{staff.Finance}); err != nil {
		t.Fatal(err)
	}
	signedOut(t, c, "the session after a role change")
	if r := h.api(t, http.MethodGet, "/api/v1/audit", token, "", ""); r.StatusCode != http.StatusForbidden {
		t.Errorf("GET /api/v1/audit with the token after compliance was taken away: got %d, want 403", r.StatusCode)
	}
	if !h.tokenWorks(t, token) {
		t.Error("the token stopped working after a role change; it should only read the new roles")
	}
}

// TestAddingAFactorNeedsThePassword: a signed-in person who enrols a factor
// (here after resetting their own two-factor) confirms their password first,
// unless they proved it in the last few minutes; enrolling ends their other
// sessions.
func TestAddingAFactorNeedsThePassword(t *testing.T) {
	h := newHarness(t)
	u := h.newUser(t, staff.Admin)
	c, other := h.client(), h.client()
	c.signIn(t, u, "/")
	other.signIn(t, u, "/")
	path := "/access/staff/" + itoa(u.ID)
	if r := c.submit(t, path, path+"/reset-2fa", nil); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("reset own two-factor: got %d", r.StatusCode)
	}
	signedOut(t, other, "another session after resetting one's own two-factor")
	h.clock.Advance(6 * time.Minute)
	r := c.get(t, "/")
	if r.StatusCode != http.StatusSeeOther || r.Location() != "/account/2fa" {
		t.Fatalf("GET / owing two-factor: got %d to %q, want 303 to /account/2fa", r.StatusCode, r.Location())
	}
	r = c.get(t, "/account/2fa")
	if want := "/account/confirm?next=%2Faccount%2F2fa"; r.StatusCode != http.StatusSeeOther || r.Location() != want {
		t.Fatalf("GET /account/2fa six minutes after signing in: got %d to %q, want 303 to %s", r.StatusCode, r.Location(), want)
	}
	form := url.Values{"next": {"/account/2fa"}, "password": {"not my password"}}
	if r := c.submit(t, "/account/confirm?next=/account/2fa", "/account/confirm", form); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("confirm with a wrong password: got %d, want 400", r.StatusCode)
	}
	form.Set("password", u.Password)
	if r := c.submit(t, "/account/confirm?next=/account/2fa", "/account/confirm", form); r.StatusCode != http.StatusSeeOther || r.Location() != "/account/2fa" {
		t.Fatalf("confirm with the password: got %d to %q, want 303 to /account/2fa", r.StatusCode, r.Location())
	}
	if r := c.enrol(t, func(secret string) string { return h.code(t, secret) }); r.StatusCode != http.StatusSeeOther || r.Location() != "/account" {
		t.Fatalf("enrol: got %d to %q, want 303 to /account", r.StatusCode, r.Location())
	}
	signedInStill(t, c, "the session that enrolled")
}
