package web_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"portal/internal/peers/peertest"
	"portal/internal/staff"
)

// TestActivityInBrowser walks the activity pages in headless Chromium as
// a compliance officer: explorer, an event with its run, sensitive
// events, log validation (passing, then naming a tampered file) and
// evidence. PORTAL_SCREENSHOTS=DIR keeps a screenshot of each page.
func TestActivityInBrowser(t *testing.T) {
	e := newActivityEstate(t)
	u := e.h.newUser(t, staff.Compliance)
	ctx := peertest.Chromium(t)
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		start := time.Now()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%s: %s", what, time.Since(start).Round(time.Millisecond))
	}
	shot := func(name string) { peertest.KeepScreenshot(t, ctx, "activity-"+name+".png") }
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}

	run("sign in", e.h.browserSignIn(t, u), chromedp.WaitVisible(`[data-testid="nav-activity"]`))
	run("open activity", chromedp.Click(`[data-testid="nav-activity"]`), chromedp.WaitVisible(`[data-testid="ingest-now"]`),
		// The scheduled ingestion may have listed events already: the
		// flash marks the page the click led to.
		chromedp.Click(`[data-testid="ingest-now"]`), chromedp.WaitVisible(`[data-testid="flash"]`), chromedp.WaitVisible(`[data-testid="events"]`))
	shot("explorer")

	// Who created the EU documents bucket?
	run("search", chromedp.SetValue(`#f-name`, "CreateBucket"), chromedp.SetValue(`#f-resource`, "medportal-dev-eu-documents"),
		// The explorer already lists events: the field's value, as the
		// search's own page writes it, marks that page.
		chromedp.Click(`[data-testid="activity-search"]`), chromedp.WaitVisible(`#f-name[value="CreateBucket"]`),
		chromedp.WaitVisible(`[data-testid="event-link"]`))
	shot("search")
	run("open event", chromedp.Click(`[data-testid="event-link"]`), chromedp.WaitVisible(`[data-testid="event-raw"]`))
	if got := text(`[data-testid="event-run"]`); !strings.Contains(got, "Run #") || !strings.Contains(got, "dev-eu") {
		t.Errorf("event run: got %q, want the run of dev-eu", got)
	}
	shot("event")

	if got := text(`[data-testid="event-run"] [data-testid="actor"]`); got != "ops@example.com" {
		t.Errorf("run started by: got %q, want the person's email, not the portal's label", got)
	}

	// A page size typed into the address bar that is not a number is named.
	run("bad limit", chromedp.Navigate(e.h.url+"/activity?name=CreateBucket&limit=5abc"), chromedp.WaitVisible(`[data-testid="error-limit"]`))
	if got := text(`[data-testid="error-limit"]`); !strings.Contains(got, `limit parameter must be a whole number between 1 and 500, not "5abc"`) {
		t.Errorf("limit=5abc: got %q, want the parameter and value named", got)
	}
	shot("bad-limit")

	// Text finds the words of events' values, the last one cut short;
	// text with no word in it is named under the field.
	run("text", chromedp.Navigate(e.h.url+"/activity?q=medportal-dev-eu-doc"), chromedp.WaitVisible(`[data-testid="event-link"]`),
		chromedp.Click(`[data-testid="text-help"] summary`))
	if got := text(`[data-testid="events"]`); !strings.Contains(got, "CreateBucket") || strings.Contains(got, "GetBucketPolicy") {
		t.Errorf("text medportal-dev-eu-doc: got %q, want the bucket's creation and no event of other buckets", got)
	}
	shot("text")
	run("text without a word", chromedp.Navigate(e.h.url+"/activity?q=--"), chromedp.WaitVisible(`[data-testid="error-q"]`))
	if got := text(`[data-testid="error-q"]`); got != "Text needs at least one letter or digit" {
		t.Errorf("text --: got %q, want the field named and what it needs", got)
	}
	shot("text-error")

	// Hide the reads of S3 and the portal's deploys, and save that search.
	run("hide", chromedp.Navigate(e.h.url+"/activity"), chromedp.WaitVisible(`#f-hide-source`),
		chromedp.SetValue(`#f-hide-source`, "s3.amazonaws.com"), chromedp.SetValue(`#f-made-by`, "people"),
		chromedp.Click(`[data-testid="activity-search"]`), chromedp.WaitVisible(`#f-hide-source[value="s3.amazonaws.com"]`),
		chromedp.WaitVisible(`[data-testid="events"]`))
	if got := text(`[data-testid="events"]`); strings.Contains(got, "s3.amazonaws.com") || !strings.Contains(got, "amazonaws.com") {
		t.Errorf("S3 hidden: got %q, want events and none of S3", got)
	}
	run("save search", chromedp.SetValue(`#save-query-name`, "People, no S3"), chromedp.Click(`[data-testid="save-query-submit"]`),
		chromedp.WaitVisible(`[data-testid="flash"]`), chromedp.WaitVisible(`[data-testid="saved-query"]`))
	if got := text(`[data-testid="saved-query"]`); !strings.Contains(got, "People, no S3") {
		t.Errorf("saved searches: got %q", got)
	}
	shot("saved-search")
	run("audit trail", chromedp.Navigate(e.h.url+"/audit?action=activity.ingest"), chromedp.WaitVisible(`[data-testid="save-query"]`),
		chromedp.SetValue(`#save-query-name`, "Ingestions"), chromedp.Click(`[data-testid="save-query-submit"]`),
		chromedp.WaitVisible(`[data-testid="flash"]`), chromedp.WaitVisible(`[data-testid="saved-query"]`))
	if got := text(`[data-testid="saved-queries"]`); !strings.Contains(got, "Ingestions") || strings.Contains(got, "People, no S3") {
		t.Errorf("audit saved searches: got %q, want its own only", got)
	}
	shot("audit-saved-search")

	run("sensitive", chromedp.Navigate(e.h.url+"/activity/sensitive"), chromedp.WaitVisible(`[data-testid="activity-filter"]`))
	shot("sensitive")

	run("validate", chromedp.Click(`[data-testid="tab-integrity"]`), chromedp.WaitVisible(`[data-testid="validate-now"]`),
		// The page shows the last validation before the click too: the
		// flash says this one has finished.
		chromedp.Click(`[data-testid="validate-now"]`), chromedp.WaitVisible(`[data-testid="flash"]`), chromedp.WaitVisible(`[data-testid="validation-ok"]`))
	shot("integrity-ok")
	tamper(t, e, e.logs[7])
	run("validate again", chromedp.Click(`[data-testid="validate-now"]`), chromedp.WaitVisible(`[data-testid="flash"].flash-error`),
		chromedp.WaitVisible(`[data-testid="validation-failed"]`))
	if got := text(`[data-testid="problems"]`); !strings.Contains(got, e.logs[7]) {
		t.Errorf("findings: got %q, want the tampered file %s", got, e.logs[7])
	}
	// The failure is an alert, not a success message.
	if got := text(`[data-testid="flash"][role="alert"].flash-error`); !strings.HasSuffix(got, "failed with 1 finding.") {
		t.Errorf("flash after the failed validation: got %q, want an alert saying it failed with 1 finding", got)
	}
	shot("integrity-tampered")

	run("alarms", chromedp.Click(`[data-testid="tab-alarms"]`), chromedp.WaitVisible(`[data-testid="tab-alarms"][aria-current="page"]`))
	shot("alarms")
	run("metrics", chromedp.Navigate(e.h.url+"/activity/metrics?stack=dev-eu&range=6h"), chromedp.WaitVisible(`[data-testid="charts"]`))
	shot("metrics")
	run("evidence", chromedp.Click(`[data-testid="tab-evidence"]`), chromedp.WaitVisible(`[data-testid="evidence-form"]`))
	shot("evidence-empty")
	run("generate", chromedp.SetValue(`#f-jurisdiction`, "eu"), chromedp.Click(`[data-testid="evidence-generate"]`),
		chromedp.WaitVisible(`[data-testid="reports"]`))
	shot("evidence")
	attr, err := chromedp.Run(ctx, chromedp.AttributeValue(`[data-testid="report-download"]`, "href"))
	if err != nil {
		t.Fatal(err)
	}
	u2, _ := url.Parse(e.h.url + attr.Value)
	// Chromium downloads attachments; render the stored report instead by
	// fetching it and loading it as a page.
	rep := newClientAs(t, e.h, u).get(t, u2.Path)
	if rep.StatusCode != http.StatusOK || !strings.Contains(rep.Body, "<table>") {
		t.Fatalf("GET %s: got %d\n%s", u2.Path, rep.StatusCode, rep.Body)
	}
	if shots := os.Getenv("PORTAL_SCREENSHOTS"); shots != "" {
		if err := os.WriteFile(filepath.Join(shots, "activity-report.html"), []byte(rep.Body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func newClientAs(t *testing.T, h *harness, u user) *client {
	c := h.client()
	c.signIn(t, u, "/")
	return c
}

func tamper(t *testing.T, e *activityEstate, key string) {
	t.Helper()
	putBody(t, e, key, `{"Records":[{"eventID":"forged"}]}`)
}
