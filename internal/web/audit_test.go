package web_test

import (
	"context"
	"encoding/csv"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"portal/internal/audit"
	"portal/internal/staff"
)

// auditRow is one row of the audit table.
type auditRow struct {
	Seq, Actor, Action, Target string
}

func auditRows(t *testing.T, r *response) []auditRow {
	t.Helper()
	var out []auditRow
	r.Doc(t).Find(`[data-testid="audit-rows"] tbody tr`).Each(func(_ int, tr *goquery.Selection) {
		td := tr.Find("td")
		cell := func(i int) string { return strings.TrimSpace(td.Eq(i).Text()) }
		out = append(out, auditRow{Seq: cell(0), Actor: cell(2), Action: cell(3), Target: cell(4)})
	})
	return out
}

func TestAuditPage(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	c, me := h.signedIn(t, staff.Compliance)
	// 60 records by someone else, so there is more than one page.
	for i := range 60 {
		if _, err := h.app.Audit.Record(ctx, audit.Entry{Actor: "robot", Action: "test.ping", Target: "thing:" + itoa(int64(i))}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("records", func(t *testing.T) {
		r := c.get(t, "/audit")
		rows := auditRows(t, r)
		if r.StatusCode != http.StatusOK || len(rows) != 50 {
			t.Fatalf("got %d with %d rows, want 200 with 50", r.StatusCode, len(rows))
		}
		if rows[0].Action != "test.ping" || rows[0].Target != "thing:59" {
			t.Errorf("got first row %+v, want the newest record", rows[0])
		}
	})

	filters := []struct {
		name  string
		query url.Values
		keep  func(auditRow) bool
		want  int
	}{
		{"by action", url.Values{"action": {"auth.sign_in"}}, func(r auditRow) bool { return r.Action == "auth.sign_in" }, 1},
		{"by actor", url.Values{"actor": {me.Label()}}, func(r auditRow) bool { return r.Actor == me.Label() }, 1},
		{"by actor and action", url.Values{"actor": {"robot"}, "action": {"test.ping"}, "limit": {"100"}}, func(r auditRow) bool { return r.Actor == "robot" }, 60},
	}
	for _, tt := range filters {
		t.Run(tt.name, func(t *testing.T) {
			r := c.get(t, "/audit?"+tt.query.Encode())
			rows := auditRows(t, r)
			if r.StatusCode != http.StatusOK || len(rows) != tt.want {
				t.Fatalf("got %d with %d rows, want 200 with %d", r.StatusCode, len(rows), tt.want)
			}
			for _, row := range rows {
				if !tt.keep(row) {
					t.Errorf("row %+v does not match the filter", row)
				}
			}
		})
	}

	t.Run("bad filter", func(t *testing.T) {
		r := c.get(t, "/audit?since=yesterday")
		if got, ok := r.TestID(t, "error-since"); r.StatusCode != http.StatusBadRequest || !ok {
			t.Errorf("got %d with message %q, want 400 with a message at since", r.StatusCode, got)
		}
	})

	t.Run("pagination", func(t *testing.T) {
		first := c.get(t, "/audit")
		next, ok := first.Doc(t).Find(`[data-testid="audit-next"]`).Attr("href")
		if !ok {
			t.Fatal("no link to older records")
		}
		r := c.get(t, next)
		older := auditRows(t, r)
		total := len(h.records(t, audit.Filter{}))
		if r.StatusCode != http.StatusOK || len(older) != total-50 || len(older) == 0 {
			t.Fatalf("GET %s: got %d with %d rows, want 200 with %d", next, r.StatusCode, len(older), total-50)
		}
		newest := auditRows(t, first)
		if a, b := atoi(t, older[0].Seq), atoi(t, newest[len(newest)-1].Seq); a != b-1 {
			t.Errorf("older page starts at #%s, want the one right before #%s", older[0].Seq, newest[len(newest)-1].Seq)
		}
		if _, more := r.TestID(t, "audit-next"); more {
			t.Error("the last page links to older records")
		}
	})

	t.Run("CSV export", func(t *testing.T) {
		page := c.get(t, "/audit?action=test.ping")
		href, ok := page.Doc(t).Find(`[data-testid="audit-export"]`).Attr("href")
		if !ok {
			t.Fatal("no export link")
		}
		r := c.get(t, href)
		if ct := r.Header.Get("Content-Type"); r.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/csv") {
			t.Fatalf("GET %s: got %d %q, want 200 text/csv", href, r.StatusCode, ct)
		}
		recs, err := csv.NewReader(strings.NewReader(r.Body)).ReadAll()
		if err != nil {
			t.Fatalf("the export is not CSV: %v", err)
		}
		wantHeader := []string{"seq", "at", "actor", "action", "target", "source_ip", "request_id", "details", "prev_hash", "hash", "key_id"}
		if len(recs) == 0 || !slices.Equal(recs[0], wantHeader) {
			t.Fatalf("got header %v, want %v", recs[:min(1, len(recs))], wantHeader)
		}
		if len(recs) != 61 {
			t.Errorf("got %d rows after the header, want 60 (the filter applies)", len(recs)-1)
		}
		for _, rec := range recs[1:] {
			if rec[3] != "test.ping" {
				t.Errorf("got action %q, want test.ping", rec[3])
			}
		}
	})
}

func TestAuditVerifyPage(t *testing.T) {
	h := newHarness(t)
	c, _ := h.signedIn(t, staff.Compliance)
	r := c.get(t, "/audit/verify")
	if got, ok := r.TestID(t, "chain-ok"); r.StatusCode != http.StatusOK || !ok || !strings.Contains(got, "sealed with key k1") {
		t.Fatalf("got %d %q, want 200 and an intact chain sealed with k1", r.StatusCode, got)
	}
	if _, ok := r.TestID(t, "chain-unanchored"); !ok {
		t.Error("without an anchor bucket the result does not say the chain was not checked against anchors")
	}
	page := c.get(t, "/audit")
	if got, _ := page.TestID(t, "audit-anchoring"); !strings.Contains(got, "Not anchored") {
		t.Errorf("audit page anchoring: %q, want it to say the chain is not anchored", got)
	}
	// htmx asks for the fragment only.
	frag := c.do(t, http.MethodGet, "/audit/verify", nil, http.Header{"HX-Request": {"true"}})
	if _, ok := frag.TestID(t, "chain-ok"); !ok || strings.Contains(frag.Body, "<html") {
		t.Errorf("htmx request: got %q, want the chain fragment alone", frag.Body)
	}

	if _, err := h.app.DB.ExecContext(context.Background(), `UPDATE audit_log SET details = '{"x":1}' WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	r = c.get(t, "/audit/verify")
	got, ok := r.TestID(t, "chain-broken")
	if r.StatusCode != http.StatusOK || !ok || !strings.Contains(got, "#2") {
		t.Errorf("after tampering: got %d %q, want the chain broken at #2", r.StatusCode, got)
	}
	if _, ok := r.TestID(t, "chain-ok"); ok {
		t.Error("after tampering: the chain is still shown intact")
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%q is not a number", s)
	}
	return n
}
