package web_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"portal/internal/staff"
)

func TestNotFound(t *testing.T) {
	h := newHarness(t)
	signedIn, _ := h.signedIn(t, staff.Finance)
	tests := []struct {
		name     string
		c        *client
		wantLink string
	}{
		{"anonymous", h.client(), "/login"},
		{"signed in", signedIn, "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.c.get(t, "/no/such/page")
			if r.StatusCode != http.StatusNotFound {
				t.Fatalf("got %d, want 404", r.StatusCode)
			}
			page := r.Doc(t).Find(`[data-testid="error-page"]`)
			if page.Length() == 0 {
				t.Fatalf("no friendly error page:\n%s", r.Body)
			}
			if !strings.Contains(page.Text(), "There is no page at this address.") {
				t.Errorf("got %q, want it to say there is no page here", strings.TrimSpace(page.Text()))
			}
			if page.Find(`a[href="`+tt.wantLink+`"]`).Length() == 0 {
				t.Errorf("no link back to %s", tt.wantLink)
			}
		})
	}
	// Paths outside the browser session (machine endpoints, webhooks) get
	// the same page, not a dropped connection.
	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/webhooks/nope", http.StatusNotFound},
		{http.MethodGet, "/healthz/nope", http.StatusNotFound},
		{http.MethodPost, "/healthz", http.StatusMethodNotAllowed},
		{http.MethodPost, "/metrics", http.StatusMethodNotAllowed},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := h.client().do(t, tt.method, tt.path, nil, nil)
			if _, ok := r.TestID(t, "error-page"); r.StatusCode != tt.want || !ok {
				t.Errorf("got %d (error page %v), want %d with the error page", r.StatusCode, ok, tt.want)
			}
		})
	}
	t.Run("API", func(t *testing.T) {
		r := h.api(t, http.MethodGet, "/api/v1/nope", "", "", "")
		var e apiError
		r.JSON(t, &e)
		if r.StatusCode != http.StatusNotFound || e.Error.Code != "not_found" {
			t.Errorf("got %d %+v, want 404 not_found", r.StatusCode, e.Error)
		}
	})
}

// TestInternalError: a failing handler shows the request ID, not the
// error's text, on a page and in the API.
func TestInternalError(t *testing.T) {
	h := newHarness(t)
	c, u := h.signedIn(t, staff.Compliance)
	token := h.apiToken(t, u.User)
	// The audit pages fail once their table is gone; signing in still works.
	if _, err := h.app.DB.ExecContext(context.Background(), `ALTER TABLE audit_log RENAME TO audit_log_gone`); err != nil {
		t.Fatal(err)
	}

	t.Run("page", func(t *testing.T) {
		r := c.get(t, "/audit")
		if r.StatusCode != http.StatusInternalServerError {
			t.Fatalf("got %d, want 500", r.StatusCode)
		}
		id, ok := r.TestID(t, "request-id")
		if want := r.Header.Get("X-Request-Id"); !ok || id == "" || id != want {
			t.Errorf("got request ID %q on the page, want the X-Request-Id header %q", id, want)
		}
		for _, leak := range []string{"sql", "audit_log", "no such table"} {
			if strings.Contains(strings.ToLower(r.Body), leak) {
				t.Errorf("the page shows %q from the error", leak)
			}
		}
	})
	t.Run("API", func(t *testing.T) {
		r := h.api(t, http.MethodGet, "/api/v1/audit", token, "", "")
		var e apiError
		r.JSON(t, &e)
		if r.StatusCode != http.StatusInternalServerError || e.Error.Code != "internal" {
			t.Fatalf("got %d %+v, want 500 internal", r.StatusCode, e.Error)
		}
		if want := r.Header.Get("X-Request-Id"); e.Error.RequestID == "" || e.Error.RequestID != want {
			t.Errorf("got request ID %q, want %q", e.Error.RequestID, want)
		}
		if strings.Contains(strings.ToLower(r.Body), "sql") || strings.Contains(r.Body, "audit_log") {
			t.Errorf("the body shows the error: %s", r.Body)
		}
	})
}

// TestDatabaseDown: with the database closed, a page answers 500 with the
// request ID rather than a bare error.
func TestDatabaseDown(t *testing.T) {
	h := newHarness(t)
	c, _ := h.signedIn(t, staff.Compliance)
	if err := h.app.DB.Close(); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/login"} {
		r := c.get(t, path)
		if r.StatusCode != http.StatusInternalServerError {
			t.Errorf("GET %s: got %d, want 500", path, r.StatusCode)
		}
		id, ok := r.TestID(t, "request-id")
		if want := r.Header.Get("X-Request-Id"); !ok || id != want {
			t.Errorf("GET %s: got request ID %q on the page, want %q\n%s", path, id, want, r.Body)
		}
		if strings.Contains(strings.ToLower(r.Body), "sql") {
			t.Errorf("GET %s: the page shows the error", path)
		}
	}
}

// TestRequestIDFromClient: a proxy's request ID is kept when it is short and
// plain; anything else is replaced before it reaches logs or the audit trail.
func TestRequestIDFromClient(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name, sent string
		kept       bool
	}{
		{"plain", "req-42_a.b:c", true},
		{"64 characters", strings.Repeat("a", 64), true},
		{"too long", strings.Repeat("a", 65), false},
		{"8 KiB", strings.Repeat("x", 8<<10), false},
		{"spaces", "a b", false},
		{"markup", "<script>alert(1)</script>", false},
		{"log injection", "x\u2028level=ERROR", false},
		{"non-ASCII", "réq", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := h.client()
			c.header.Set("X-Request-Id", tt.sent)
			email := "nobody-" + itoa(h.seq.Add(1)) + "@example.com"
			r := c.login(t, email, "wrong password", "")
			got := r.Header.Get("X-Request-Id")
			if tt.kept && got != tt.sent {
				t.Errorf("response X-Request-Id %q, want %q kept", got, tt.sent)
			}
			if !tt.kept && (got == tt.sent || len(got) != 32) {
				t.Errorf("response X-Request-Id %q, want a fresh 32-character ID", got)
			}
			recs := h.records(t, auditFilterAction("auth.sign_in_failed"))
			var found bool
			for _, rec := range recs {
				if rec.Target == "email:"+email {
					found = true
					if rec.RequestID != got {
						t.Errorf("audit request ID %q, want %q", rec.RequestID, got)
					}
				}
			}
			if !found {
				t.Fatalf("no auth.sign_in_failed record for %s", email)
			}
		})
	}
}
