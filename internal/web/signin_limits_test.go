package web_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"portal/internal/audit"
	"portal/internal/staff"
)

// countRows counts rows of a query over the portal's database.
func (h *harness) countRows(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := h.app.DB.QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// from returns a new browser whose requests come from ip (the harness must
// trust X-Forwarded-For).
func (h *harness) from(ip string) *client {
	c := h.client()
	c.header.Set("X-Forwarded-For", ip)
	return c
}

// TestSignInLimitsCannotLockOutTheOwner: someone else's failures, from
// their addresses and in any letter case, do not keep the owner out, and
// refused attempts neither count nor leave rows.
func TestSignInLimitsCannotLockOutTheOwner(t *testing.T) {
	h := newHarness(t, "-trust-proxy")
	cfg := h.app.Staff.Config()
	u := h.newUser(t, staff.Finance)

	attacker := h.from("198.51.100.9")
	variants := []string{strings.ToUpper(u.Email), " " + u.Email + " ", strings.ToUpper(u.Email[:1]) + u.Email[1:], u.Email}
	for i := range cfg.MaxAccountSourceFailures {
		if r := attacker.login(t, variants[i%len(variants)], "wrong password", ""); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: got %d, want 401", i+1, r.StatusCode)
		}
	}
	// Case variants are one account: the next, in yet another case, is refused.
	if r := attacker.login(t, strings.ToUpper(u.Email), u.Password, ""); r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("right password after %d failures in mixed case: got %d, want 429", cfg.MaxAccountSourceFailures, r.StatusCode)
	}
	// Hammering on while refused changes nothing.
	rowsBefore := h.countRows(t, `SELECT COUNT(*) FROM login_attempts`)
	auditBefore := len(h.records(t, audit.Filter{}))
	for range 50 {
		if r := attacker.login(t, u.Email, "wrong password", ""); r.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("while refused: got %d, want 429", r.StatusCode)
		}
	}
	if got := h.countRows(t, `SELECT COUNT(*) FROM login_attempts`); got != rowsBefore {
		t.Errorf("refused attempts added %d login_attempts rows, want none", got-rowsBefore)
	}
	if got := len(h.records(t, audit.Filter{})); got != auditBefore {
		t.Errorf("refused attempts added %d audit records, want none", got-auditBefore)
	}
	// The owner, elsewhere, is not locked out.
	owner := h.from("192.0.2.10")
	owner.signIn(t, u, "/")

	// Many addresses together reach the account-wide limit (the first
	// address's failures count too)...
	for i := 0; i < cfg.MaxAccountFailures-cfg.MaxAccountSourceFailures; i++ {
		ip := fmt.Sprintf("203.0.113.%d", 1+i/(cfg.MaxAccountSourceFailures-1))
		if r := h.from(ip).login(t, u.Email, "wrong password", ""); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("spread failure %d from %s: got %d, want 401", i+1, ip, r.StatusCode)
		}
	}
	stranger := h.from("192.0.2.77")
	r := stranger.login(t, u.Email, u.Password, "")
	if msg, _ := r.TestID(t, "login-error"); r.StatusCode != http.StatusTooManyRequests || !strings.Contains(msg, "browser you have signed in with before") {
		t.Fatalf("right password from a new browser under the account-wide limit: got %d %q, want 429 pointing to a known browser", r.StatusCode, msg)
	}
	// ...which the owner's own browser passes.
	owner.submit(t, "/", "/logout", nil)
	owner.signIn(t, u, "/")
	if got := h.records(t, audit.Filter{Action: "auth.sign_in_throttled"}); len(got) == 0 {
		t.Error("no auth.sign_in_throttled record for the account-wide limit")
	}
	h.clock.Advance(cfg.Window)
	stranger.signIn(t, u, "/")
}

// TestSignInLimitIPv6Network: a host's IPv6 /64 is one source, so rotating
// addresses within it buys no more guesses.
func TestSignInLimitIPv6Network(t *testing.T) {
	h := newHarness(t, "-trust-proxy")
	cfg := h.app.Staff.Config()
	for i := range cfg.MaxIPFailures {
		c := h.from(fmt.Sprintf("2001:db8:7:1::%x", i+1))
		if r := c.login(t, fmt.Sprintf("guess%d@example.com", i), "wrong password", ""); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: got %d, want 401", i+1, r.StatusCode)
		}
	}
	if r := h.from("2001:db8:7:1:ffff::1").login(t, "another@example.com", "wrong password", ""); r.StatusCode != http.StatusTooManyRequests {
		t.Errorf("another address in the same /64: got %d, want 429", r.StatusCode)
	}
	if r := h.from("2001:db8:7:2::1").login(t, "another@example.com", "wrong password", ""); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("an address in another /64: got %d, want 401", r.StatusCode)
	}
}

// TestSignInAnonymousInputBounded: what an anonymous sign-in stores is
// bounded whatever it sends: a 1 MiB email leaves a fixed-shape record.
func TestSignInAnonymousInputBounded(t *testing.T) {
	h := newHarness(t)
	huge := strings.Repeat("a", 1<<20) + "@example.com"
	for _, email := range []string{huge, "=cmd|' /C calc'!A0", "<script>@x", "a@b\r\nlevel=ERROR"} {
		r := h.client().login(t, email, strings.Repeat("p", 1<<20), "")
		if r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("got %d, want 401", r.StatusCode)
		}
		if strings.Contains(r.Body, strings.Repeat("a", 300)) {
			t.Error("the sign-in page echoes the over-long email back")
		}
	}
	if n := h.countRows(t, `SELECT COALESCE(MAX(length(email) + length(ip)), 0) FROM login_attempts`); n > 300 {
		t.Errorf("a login_attempts row holds %d bytes of email and source, want at most 300", n)
	}
	recs := h.records(t, audit.Filter{Action: "auth.sign_in_failed"})
	if len(recs) != 4 {
		t.Fatalf("got %d auth.sign_in_failed records, want 4", len(recs))
	}
	for _, rec := range recs {
		if rec.Target != "email:(not an email address)" || len(rec.Details) != 1 || rec.Details["reason"] != "not an account" {
			t.Errorf("record %d: target %.80q details %v, want the fixed not-an-address record", rec.Seq, rec.Target, rec.Details)
		}
	}
	if n := h.countRows(t, `SELECT COALESCE(MAX(length(target) + length(details) + length(request_id) + length(source_ip)), 0) FROM audit_log`); n > 1024 {
		t.Errorf("an audit record holds %d bytes from the request, want at most 1 KiB", n)
	}
}
