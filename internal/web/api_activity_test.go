package web_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"portal/internal/activity"
	"portal/internal/audit"
	"portal/internal/staff"
)

// apiEventJSON is an event as the activity API returns it.
type apiEventJSON struct {
	ID         int64     `json:"id"`
	EventID    string    `json:"event_id"`
	Time       time.Time `json:"time"`
	Account    string    `json:"account"`
	Region     string    `json:"region"`
	Name       string    `json:"name"`
	ReadOnly   bool      `json:"read_only"`
	User       string    `json:"user"`
	Session    string    `json:"session"`
	RequestID  string    `json:"request_id"`
	Resources  []string  `json:"resources"`
	Sensitive  string    `json:"sensitive"`
	LogFile    string    `json:"log_file"`
	PortalCall bool      `json:"portal_call"`
}

type apiEventPageJSON struct {
	Items []apiEventJSON `json:"items"`
	Next  string         `json:"next"`
}

type apiValidationJSON struct {
	ID        int64  `json:"id"`
	StartedBy string `json:"started_by"`
	OK        bool   `json:"ok"`
	Digests   int    `json:"digests"`
	LogFiles  int    `json:"log_files"`
	Chains    []struct {
		Prefix string `json:"prefix"`
	} `json:"chains"`
	Problems []activity.Problem `json:"problems"`
}

// TestActivityAPI is what an auditor's script does with a token: search
// the ingested trail with the explorer's filters page by page, read one
// event with its raw record and the run that made it, validate the logs
// (and see a tampered file named), and list evidence reports. Bad
// parameters are refused naming the parameter.
func TestActivityAPI(t *testing.T) {
	e := newActivityEstate(t)
	h := e.h
	ctx := context.Background()
	if _, err := h.app.Activity.Ingest(ctx); err != nil {
		t.Fatal(err)
	}
	officer := h.newUser(t, staff.Compliance)
	token := h.apiToken(t, officer.User)
	get := func(path string, out any) *response {
		t.Helper()
		r := h.api(t, http.MethodGet, path, token, "", "")
		if out != nil && r.StatusCode == http.StatusOK {
			r.JSON(t, out)
		}
		return r
	}

	// Who created the EU documents bucket?
	var page apiEventPageJSON
	if r := get("/api/v1/activity/events?name=CreateBucket&resource=medportal-dev-eu-documents", &page); r.StatusCode != http.StatusOK {
		t.Fatalf("search: got %d\n%s", r.StatusCode, r.Body)
	}
	if len(page.Items) != 1 || page.Next != "" {
		t.Fatalf("CreateBucket of the EU documents bucket: got %+v, want one event and no next page", page)
	}
	ev := page.Items[0]
	if ev.EventID != e.portalEvent.EventID || ev.User != "portal" || !ev.PortalCall || ev.Account != e.dev || ev.Region != "eu-central-1" ||
		!ev.Time.Equal(e.eventsAt) || !slices.Contains(ev.Resources, "medportal-dev-eu-documents") || ev.ReadOnly || ev.LogFile == "" {
		t.Errorf("the event: got %+v, want the portal's CreateBucket in dev, eu-central-1, at %s", ev, e.eventsAt)
	}

	// One event: its raw record and the run that made it.
	var detail struct {
		apiEventJSON
		Raw  map[string]any `json:"raw"`
		Runs []struct {
			ID    int64  `json:"id"`
			Stack string `json:"stack"`
			State string `json:"state"`
			How   string `json:"how"`
			Href  string `json:"href"`
		} `json:"runs"`
	}
	if r := get("/api/v1/activity/events/"+itoa(ev.ID), &detail); r.StatusCode != http.StatusOK {
		t.Fatalf("event %d: got %d\n%s", ev.ID, r.StatusCode, r.Body)
	}
	if detail.Raw["eventID"] != e.portalEvent.EventID || detail.Raw["requestID"] != "REQ-PORTAL-CREATE-BUCKET" {
		t.Errorf("raw record: got %v", detail.Raw)
	}
	if len(detail.Runs) != 1 || detail.Runs[0].ID != e.runID || detail.Runs[0].Stack != "dev-eu" || detail.Runs[0].State != "succeeded" ||
		!strings.Contains(detail.Runs[0].How, "REQ-PORTAL-CREATE-BUCKET") || detail.Runs[0].Href != "/api/v1/runs/"+itoa(e.runID) {
		t.Errorf("runs of the event: got %+v, want run %d known by its request id", detail.Runs, e.runID)
	}
	if r := get("/api/v1/activity/events/999999", nil); r.StatusCode != http.StatusNotFound {
		t.Errorf("missing event: got %d, want 404", r.StatusCode)
	}

	// Every event, page by page through next: each once, newest first.
	total, err := h.app.Activity.Count(ctx, activity.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	var prev *apiEventJSON
	pages := 0
	for next := ""; ; {
		q := url.Values{"limit": {"200"}}
		if next != "" {
			q.Set("before", next)
		}
		var p apiEventPageJSON
		if r := get("/api/v1/activity/events?"+q.Encode(), &p); r.StatusCode != http.StatusOK {
			t.Fatalf("page %d: got %d\n%s", pages+1, r.StatusCode, r.Body)
		}
		pages++
		for i := range p.Items {
			it := p.Items[i]
			if seen[it.ID] {
				t.Fatalf("event %d on two pages", it.ID)
			}
			seen[it.ID] = true
			if prev != nil && (it.Time.After(prev.Time) || (it.Time.Equal(prev.Time) && it.ID > prev.ID)) {
				t.Fatalf("event %d (%s) after event %d (%s): want newest first", it.ID, it.Time, prev.ID, prev.Time)
			}
			prev = &it
		}
		if p.Next == "" {
			break
		}
		next = p.Next
	}
	if len(seen) != total || pages != (total+199)/200 {
		t.Errorf("paging: %d events in %d pages, want %d in %d", len(seen), pages, total, (total+199)/200)
	}

	// The explorer's filters combine.
	f := activity.Filter{Account: e.dev, Region: "eu-central-1", Access: activity.AccessWrite, Since: e.dayStart.Add(6 * time.Hour), Until: e.dayStart.Add(18 * time.Hour)}
	want, err := h.app.Activity.Count(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"account": {e.dev}, "region": {"eu-central-1"}, "access": {"write"}, "since": {f.Since.Format(time.RFC3339)},
		"until": {f.Until.Format("2006-01-02T15:04")}, "limit": {"500"}}
	if r := get("/api/v1/activity/events?"+q.Encode(), &page); r.StatusCode != http.StatusOK {
		t.Fatalf("combined filters: got %d\n%s", r.StatusCode, r.Body)
	}
	if len(page.Items) != want || want == 0 {
		t.Errorf("combined filters: got %d events, want %d (and some)", len(page.Items), want)
	}
	for _, it := range page.Items {
		if it.Account != e.dev || it.Region != "eu-central-1" || it.ReadOnly || it.Time.Before(f.Since) || !it.Time.Before(f.Until) {
			t.Errorf("combined filters: got %+v", it)
		}
	}
	if r := get("/api/v1/activity/events?sensitive=true&limit=500", &page); r.StatusCode != http.StatusOK || len(page.Items) == 0 {
		t.Errorf("sensitive=true: got %d, %d events", r.StatusCode, len(page.Items))
	}
	for _, it := range page.Items {
		if it.Sensitive == "" {
			t.Errorf("sensitive=true lists %s %s, which is not sensitive", it.Name, it.EventID)
		}
	}

	// Bad parameters name themselves.
	for _, tc := range []struct {
		query  string
		fields []string
	}{
		{"since=yesterday&access=sometimes&limit=0", []string{"since", "access", "limit"}},
		{"since=2026-02-01T00:00&until=2026-01-01T00:00", []string{"until"}},
		{"before=page-two", []string{"before"}},
		{"acount=" + e.dev, []string{"acount"}},
		{"sensitive=maybe", []string{"sensitive"}},
	} {
		r := get("/api/v1/activity/events?"+tc.query, nil)
		var ae apiError
		r.JSON(t, &ae)
		// An end before the start is well formed: refused for its meaning.
		want := http.StatusBadRequest
		if strings.HasPrefix(tc.query, "since=2026-02-01") {
			want = http.StatusUnprocessableEntity
		}
		if r.StatusCode != want || ae.Error.Code != "invalid" {
			t.Errorf("?%s: got %d %q, want %d invalid", tc.query, r.StatusCode, ae.Error.Code, want)
		}
		var got []string
		for k := range ae.Error.Fields {
			got = append(got, k)
		}
		slices.Sort(got)
		slices.Sort(tc.fields)
		if !slices.Equal(got, tc.fields) {
			t.Errorf("?%s: fields %v (%q), want %v", tc.query, got, ae.Error.Message, tc.fields)
		}
	}

	// Validate the logs: they pass; a tampered log file is named.
	validate := func() apiValidationJSON {
		t.Helper()
		r := h.api(t, http.MethodPost, "/api/v1/activity/validations", token, "", "")
		if r.StatusCode != http.StatusCreated {
			t.Fatalf("POST validations: got %d, want 201\n%s", r.StatusCode, r.Body)
		}
		var v apiValidationJSON
		r.JSON(t, &v)
		return v
	}
	v := validate()
	if !v.OK || v.Digests != 96 || v.LogFiles != 96 || len(v.Chains) != 4 || len(v.Problems) != 0 {
		t.Errorf("first validation: got %+v, want ok with 96 digests and 96 log files in 4 chains", v)
	}
	tampered := e.logs[17]
	putBody(t, e, tampered, `{"Records":[]}`)
	v = validate()
	if v.OK || len(v.Problems) != 1 || v.Problems[0].Key != tampered || v.Problems[0].Kind != activity.ProblemLogChanged || v.Problems[0].Bucket != e.bucket {
		t.Errorf("after tampering: got %+v, want one %q naming %s", v, activity.ProblemLogChanged, tampered)
	}
	var list struct {
		Items []apiValidationJSON `json:"items"`
	}
	if r := get("/api/v1/activity/validations?limit=2", &list); r.StatusCode != http.StatusOK {
		t.Fatalf("GET validations: got %d\n%s", r.StatusCode, r.Body)
	}
	if len(list.Items) != 2 || list.Items[0].ID != v.ID || list.Items[0].OK || !list.Items[1].OK ||
		!strings.Contains(list.Items[0].StartedBy, officer.Email) {
		t.Errorf("validations: got %+v, want the failed one by %s, then the passed one", list.Items, officer.Email)
	}
	recs := h.records(t, audit.Filter{Action: "activity.validate_logs"})
	if len(recs) == 0 || !strings.Contains(recs[0].Actor, "via api-token:") || recs[0].Details["ok"] != false {
		t.Errorf("audit: got %+v, want the failed validation made via an API token", recs)
	}
	if r := get("/api/v1/activity/validations?limit=many", nil); r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, `"limit"`) {
		t.Errorf("limit=many: got %d %s, want 400 naming limit", r.StatusCode, r.Body)
	}

	// Evidence reports: none, then the one generated on the page.
	var reports struct {
		Items []struct {
			ID           int64  `json:"id"`
			Jurisdiction string `json:"jurisdiction"`
			GeneratedBy  string `json:"generated_by"`
			Passed       int    `json:"passed"`
			Failed       int    `json:"failed"`
			SHA256       string `json:"sha256"`
		} `json:"items"`
	}
	if r := get("/api/v1/activity/evidence", &reports); r.StatusCode != http.StatusOK || reports.Items == nil || len(reports.Items) != 0 {
		t.Errorf("no reports yet: got %d %s, want an empty list", r.StatusCode, r.Body)
	}
	c := h.client()
	c.signIn(t, officer, "/")
	if r := c.submit(t, "/activity/evidence", "/activity/evidence", url.Values{"jurisdiction": {"eu"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("generate a report: got %d\n%s", r.StatusCode, r.Body)
	}
	get("/api/v1/activity/evidence", &reports)
	audited := h.records(t, audit.Filter{Action: "evidence.pack"})
	if len(reports.Items) != 1 || reports.Items[0].Jurisdiction != "eu" || len(audited) != 1 || reports.Items[0].SHA256 != audited[0].Details["html_sha256"] ||
		!strings.Contains(reports.Items[0].GeneratedBy, officer.Email) || reports.Items[0].Passed+reports.Items[0].Failed == 0 {
		t.Errorf("reports: got %+v, want the EU report with the SHA-256 the audit trail holds", reports.Items)
	}

	// Ops read activity on the pages, but the API is for auditors.
	ops := h.newUser(t, staff.Ops)
	if r := h.api(t, http.MethodGet, "/api/v1/activity/events", h.apiToken(t, ops.User), "", ""); r.StatusCode != http.StatusForbidden {
		t.Errorf("ops token: got %d, want 403", r.StatusCode)
	}
}

// TestActivityAPIWithoutTrail: with no trail bucket configured, starting
// a validation says so.
func TestActivityAPIWithoutTrail(t *testing.T) {
	h := newHarness(t)
	admin := h.newUser(t, staff.Admin)
	r := h.api(t, http.MethodPost, "/api/v1/activity/validations", h.apiToken(t, admin.User), "", "")
	var ae apiError
	r.JSON(t, &ae)
	if r.StatusCode != http.StatusConflict || !strings.Contains(ae.Error.Message, "no trail bucket") {
		t.Errorf("validate without a trail: got %d %+v, want 409 saying no trail bucket is configured", r.StatusCode, ae.Error)
	}
	var page apiEventPageJSON
	r = h.api(t, http.MethodGet, "/api/v1/activity/events", h.apiToken(t, admin.User), "", "")
	r.JSON(t, &page)
	if r.StatusCode != http.StatusOK || page.Items == nil || len(page.Items) != 0 || page.Next != "" {
		t.Errorf("no events: got %d %s, want 200 with an empty list", r.StatusCode, r.Body)
	}
}
