package web_test

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"portal/internal/audit"
	"portal/internal/staff"
)

// TestExportsAudited: an export leaves a record of who took what: the
// export, its filter, its format and how many rows went out.
func TestExportsAudited(t *testing.T) {
	h := newHarness(t)
	auditor, au := h.signedIn(t, staff.Compliance)
	accountant, fu := h.signedIn(t, staff.Finance)

	r := auditor.get(t, "/audit/export.csv?action=auth.sign_in")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET /audit/export.csv: got %d", r.StatusCode)
	}
	rows, err := csv.NewReader(strings.NewReader(r.Body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	recs := h.records(t, audit.Filter{Action: "export.audit"})
	if len(recs) != 1 {
		t.Fatalf("got %d export.audit records, want 1", len(recs))
	}
	got := recs[0]
	want := map[string]any{"format": "csv", "filter": "action=auth.sign_in", "rows": jsonNumber(len(rows) - 1)}
	if got.Actor != au.Label() || got.Target != "/audit/export.csv" || !cmp.Equal(want, got.Details) {
		t.Errorf("got %s %s %v, want %s /audit/export.csv %v", got.Actor, got.Target, got.Details, au.Label(), want)
	}
	if len(rows) < 3 {
		t.Errorf("the export has %d rows, want the header and both sign-ins", len(rows))
	}

	if r := accountant.get(t, "/billing/transactions.csv?currency=usd"); r.StatusCode != http.StatusOK {
		t.Fatalf("GET /billing/transactions.csv: got %d", r.StatusCode)
	}
	recs = h.records(t, audit.Filter{Action: "export.billing.transactions"})
	if len(recs) != 1 || recs[0].Actor != fu.Label() || recs[0].Details["filter"] != "currency=usd" || recs[0].Details["rows"] != jsonNumber(0) {
		t.Errorf("got %+v, want one export.billing.transactions record by %s with the filter and 0 rows", recs, fu.Label())
	}
}

// TestRefusalsAudited: a 403 is logged and recorded with who was refused.
func TestRefusalsAudited(t *testing.T) {
	h := newHarness(t)
	c, u := h.signedIn(t, staff.Finance)
	if r := c.get(t, "/audit"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("GET /audit as finance: got %d, want 403", r.StatusCode)
	}
	token := h.apiToken(t, u.User)
	if r := h.api(t, http.MethodGet, "/api/v1/staff", token, "", ""); r.StatusCode != http.StatusForbidden {
		t.Fatalf("GET /api/v1/staff with a finance token: got %d, want 403", r.StatusCode)
	}
	recs := h.records(t, audit.Filter{Action: "access.denied"})
	var targets []string
	for _, rec := range recs {
		if !strings.HasPrefix(rec.Actor, u.Label()) {
			t.Errorf("access.denied by %q, want %s", rec.Actor, u.Label())
		}
		targets = append(targets, rec.Target)
	}
	if diff := cmp.Diff([]string{"route:GET /api/v1/staff", "route:GET /audit"}, targets); diff != "" {
		t.Errorf("access.denied targets (-want +got):\n%s", diff)
	}
	// An anonymous refusal (a stale sign-in form) is not recorded.
	anon := h.client()
	anon.get(t, "/login")
	before := len(h.records(t, audit.Filter{}))
	if r := anon.post(t, "/login", map[string][]string{"email": {"x@example.com"}, "password": {"y"}, "_csrf": {"stale"}}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-in with a stale CSRF token: got %d, want 403", r.StatusCode)
	}
	if after := len(h.records(t, audit.Filter{})); after != before {
		t.Errorf("an anonymous 403 added %d audit records, want none", after-before)
	}
}

// jsonNumber is how an integer in audit details reads back.
func jsonNumber(n int) any { return json.Number(strconv.Itoa(n)) }
