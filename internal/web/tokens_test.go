package web_test

import (
	"github.com/PuerkitoBio/goquery"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"portal/internal/staff"
)

// createToken fills in the new-token form and returns the secret shown.
func (c *client) createToken(t *testing.T, form url.Values) string {
	t.Helper()
	r := c.submit(t, "/access", "/access/tokens", form)
	tok, ok := r.TestID(t, "new-token")
	if r.StatusCode != http.StatusOK || !ok {
		t.Fatalf("create token %v: got %d without a token\n%s", form, r.StatusCode, r.Body)
	}
	return tok
}

// TestTokenScopes: a token does what its scopes allow, within its owner's
// roles, and says what it lacks.
func TestTokenScopes(t *testing.T) {
	h := newHarness(t)
	c, _ := h.signedIn(t, staff.Admin)
	readOnly := c.createToken(t, url.Values{"name": {"dashboards"}})
	full := c.createToken(t, url.Values{"name": {"ci"}, "access": {"all"}})
	invRead := c.createToken(t, url.Values{"name": {"inventory report"}, "access": {"areas"}, "areas": {"inventory", "staff"}, "areas_read": {"1"}})
	runs := c.createToken(t, url.Values{"name": {"deploys"}, "access": {"areas"}, "areas": {"runs"}})

	plan := `{"stack": "no-such-stack"}`
	// allowed stands for any answer but 401 and 403: the request got past
	// authorization (what the handler then says does not matter here).
	const allowed = 0
	tests := []struct {
		name, token, method, path, body string
		want                            int
	}{
		{"read-only reads", readOnly, http.MethodGet, "/api/v1/audit", "", allowed},
		{"read-only cannot write", readOnly, http.MethodPost, "/api/v1/plans", plan, http.StatusForbidden},
		{"full writes", full, http.MethodPost, "/api/v1/plans", plan, allowed},
		{"area read reads its area", invRead, http.MethodGet, "/api/v1/staff", "", allowed},
		{"area read cannot write there", invRead, http.MethodPost, "/api/v1/staff", `{}`, http.StatusForbidden},
		{"area read cannot read elsewhere", invRead, http.MethodGet, "/api/v1/audit", "", http.StatusForbidden},
		{"area writes its area", runs, http.MethodPost, "/api/v1/plans", plan, allowed},
		{"area cannot read elsewhere", runs, http.MethodGet, "/api/v1/audit", "", http.StatusForbidden},
		{"every token asks who it is", invRead, http.MethodGet, "/api/v1/me", "", allowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.api(t, tt.method, tt.path, tt.token, "application/json", tt.body)
			refused := r.StatusCode == http.StatusForbidden || r.StatusCode == http.StatusUnauthorized
			if (tt.want == allowed && refused) || (tt.want != allowed && r.StatusCode != tt.want) {
				t.Errorf("%s %s: got %d, want %d (0: not refused)\n%s", tt.method, tt.path, r.StatusCode, tt.want, r.Body)
			}
			if tt.want == http.StatusForbidden {
				var e apiError
				r.JSON(t, &e)
				if !strings.Contains(e.Error.Message, "this token may do") {
					t.Errorf("403 message %q, want it to say what the token may do", e.Error.Message)
				}
			}
		})
	}

	page := c.get(t, "/access").Doc(t)
	var scopes []string
	page.Find(`[data-testid="token-scopes"]`).Each(func(_ int, s *goquery.Selection) { scopes = append(scopes, strings.TrimSpace(s.Text())) })
	want := []string{"runs", "inventory (read), staff (read)", "everything your roles allow", "read-only"}
	if strings.Join(scopes, "|") != strings.Join(want, "|") {
		t.Errorf("listed scopes %q, want %q", scopes, want)
	}
}

// TestTokenExpiry: a token expires after its life (90 days unless chosen),
// is listed with its expiry, and can be renewed.
func TestTokenExpiry(t *testing.T) {
	h := newHarness(t)
	c, u := h.signedIn(t, staff.Compliance)
	tok := c.createToken(t, url.Values{"name": {"evidence sync"}})
	week := c.createToken(t, url.Values{"name": {"one-off"}, "life": {"7"}})
	r := c.get(t, "/access")
	expires, _ := r.TestID(t, "token-expires")
	if want := h.clock.Now().Add(7 * 24 * time.Hour).UTC().Format("2006-01-02"); !strings.Contains(expires, want) {
		t.Errorf("newest token's expiry %q, want %s", expires, want)
	}
	if r := c.submit(t, "/access", "/access/tokens", url.Values{"name": {"forever"}, "life": {"100000"}}); r.StatusCode != http.StatusBadRequest {
		t.Errorf("a life outside the choices: got %d, want 400", r.StatusCode)
	}

	h.clock.Advance(8 * 24 * time.Hour)
	if h.tokenWorks(t, week) || !h.tokenWorks(t, tok) {
		t.Fatal("after 8 days: want the 7-day token expired and the 90-day one working")
	}
	h.clock.Advance(83 * 24 * time.Hour)
	if h.tokenWorks(t, tok) {
		t.Fatal("after 91 days the 90-day token still works")
	}
	if state, _ := c.get(t, "/access").TestID(t, "token-state"); state != "Expired" {
		t.Errorf("listed state %q, want Expired", state)
	}
	// Renewing brings it back for its life.
	toks, err := h.app.Staff.ListTokens(t.Context(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	id := toks[len(toks)-1].ID // the oldest: the 90-day one
	if r := c.submit(t, "/access", "/access/tokens/"+itoa(id)+"/renew", nil); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("renew: got %d", r.StatusCode)
	}
	if !h.tokenWorks(t, tok) {
		t.Error("a renewed token does not work")
	}
	if r := c.submit(t, "/access", "/access/tokens/"+itoa(id)+"/revoke", nil); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: got %d", r.StatusCode)
	}
	if r := c.submit(t, "/access", "/access/tokens/"+itoa(id)+"/renew", nil); r.StatusCode != http.StatusConflict {
		t.Errorf("renew a revoked token: got %d, want 409", r.StatusCode)
	}
}
