package web_test

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"portal/internal/activity"
	"portal/internal/audit"
	"portal/internal/evidence"
	"portal/internal/staff"
	"portal/internal/store"
	"portal/internal/versions"
)

// pdfText inflates every stream of a PDF and returns them with the rest of
// the file, so a test can find the text fpdf wrote (as "(…) Tj" strings).
func pdfText(t *testing.T, pdf []byte) string {
	t.Helper()
	var b strings.Builder
	b.Write(pdf)
	rest := pdf
	for {
		i := bytes.Index(rest, []byte(">>\nstream\n"))
		if i < 0 {
			break
		}
		rest = rest[i+len(">>\nstream\n"):]
		j := bytes.Index(rest, []byte("endstream"))
		if j < 0 {
			break
		}
		if r, err := zlib.NewReader(bytes.NewReader(rest[:j])); err == nil {
			if out, err := io.ReadAll(r); err == nil {
				b.Write(out)
			}
		}
		rest = rest[j:]
	}
	return b.String()
}

// TestEvidencePackAsAComplianceOfficerReadsIt is the "done when"
// over HTTP: last month in the EU held two prod runs (one approved by a
// second person and verified, one approved by nobody), an exception in
// force, drift found and reconciled, sensitive events (one the portal's own
// deploy) and staff with and without a second factor. The officer makes
// the pack for last month (the default), reads it as HTML and as PDF,
// follows its evidence lines back to the portal, finds the change record
// complete, and finds both files' SHA-256 in the audit trail. The monthly
// job makes one scheduled pack per jurisdiction, once.
func TestEvidencePackAsAComplianceOfficerReadsIt(t *testing.T) {
	h := newEstateHarness(t)
	ctx := context.Background()
	db := h.app.DB
	now := h.clock.Now()
	last := evidence.LastMonth(now)
	in := last.From.Add(10 * 24 * time.Hour) // the 11th of last month
	author := h.newUser(t, staff.Ops)
	approver := h.newUser(t, staff.Ops)
	h.newUserOTP(t, staff.Finance) // has not enrolled a second factor yet
	exec := func(q string, args ...any) int64 {
		t.Helper()
		var id int64
		if err := db.QueryRowContext(ctx, q+" RETURNING id", args...).Scan(&id); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return id
	}
	bp := "5d41402abc4b2a76b9719d911017c592aaaabbbbccccddddeeeeffff00001111"
	plan := func(at time.Time, hash string) int64 {
		return exec(`INSERT INTO plans (stack, kind, version, blueprint_version, hash, body, created_by, created_at) VALUES ('prod-eu', 'apply', 'v1', ?, ?, ?, ?, ?)`,
			bp, hash, `{"blueprint_version":"`+bp+`"}`, author.Label(), store.Time(at))
	}
	run := func(planID int64, at time.Time) int64 {
		return exec(`INSERT INTO runs (plan_id, stack, kind, version, state, created_by, created_at, started_at, finished_at) VALUES (?, 'prod-eu', 'apply', 'v1', 'succeeded', ?, ?, ?, ?)`,
			planID, author.Label(), store.Time(at), store.Time(at), store.Time(at.Add(3*time.Minute)))
	}
	approved := plan(in, "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2")
	exec(`INSERT INTO approvals (plan_id, plan_hash, stack, decision, approver_id, approver, roles, created_at, expires_at) VALUES (?, 'a1b2', 'prod-eu', 'approved', ?, ?, 'ops', ?, ?)`,
		approved, approver.ID, approver.Label(), store.Time(in.Add(time.Minute)), store.Time(in.Add(24*time.Hour)))
	goodRun := run(approved, in.Add(5*time.Minute))
	exec(`INSERT INTO verifications (stack, run_id, blueprint_version, state, steps, created_by, created_at, finished_at) VALUES ('prod-eu', ?, ?, 'passed', '[{"name":"upload","title":"Upload","state":"passed"}]', 'system', ?, ?)`,
		goodRun, bp, store.Time(in.Add(9*time.Minute)), store.Time(in.Add(10*time.Minute)))
	unapproved := plan(in.Add(48*time.Hour), "ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000")
	badRun := run(unapproved, in.Add(48*time.Hour+time.Minute))
	// Drift found on the 13th, reconciled by the run after it.
	drift := exec(`INSERT INTO drift_checks (stack, blueprint_version, state, drifted, checked_at) VALUES ('prod-eu', ?, 'drifted', 2, ?)`, bp, store.Time(in.Add(47*time.Hour)))
	// An exception recorded on the 11th, in force for a month.
	h.clock.Advance(in.Sub(h.clock.Now()))
	exc, err := h.app.Versions.CreateException(ctx, audit.Entry{Actor: author.Label()}, versions.NewException{RuleID: "prod-alarms", Stack: "prod-eu",
		Owner: "Dana Reliability", Reason: "alarms move to the new ops topic", Expires: in.Add(30 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(now.Sub(h.clock.Now()))
	// Sensitive events: a person opened a security group in Frankfurt, the
	// portal changed a role policy, and a US event that is not the EU's.
	acct := "111111111111"
	records := []activity.Record{
		{EventID: "e1a1a1a1-0000-4000-8000-000000000001", RequestID: "R1", Time: in.Add(3 * time.Hour), Account: acct, Region: "eu-central-1",
			Source: "ec2.amazonaws.com", Name: "AuthorizeSecurityGroupIngress", Identity: activity.Identity{Type: "AssumedRole", Account: acct, Role: "StaffOperator", Session: "ana.ops", AccessKey: "ASIAANA"},
			SourceIP: "198.51.100.7", RequestParameters: map[string]any{"groupId": "sg-0abc", "ipPermissions": map[string]any{"items": []any{map[string]any{"ipRanges": map[string]any{"items": []any{map[string]any{"cidrIp": "0.0.0.0/0"}}}}}}}},
		{EventID: "e1a1a1a1-0000-4000-8000-000000000002", RequestID: "R2", Time: in.Add(6 * time.Minute), Account: acct, Region: "eu-central-1",
			Source: "iam.amazonaws.com", Name: "PutRolePolicy", Identity: activity.Identity{Type: "AssumedRole", Account: acct, Role: "PortalDeployer", Session: "portal", AccessKey: "ASIAPORTAL"},
			SourceIP: "198.51.100.200", RequestParameters: map[string]any{"roleName": "medportal-prod-eu-app", "policyName": "app"}},
		{EventID: "e1a1a1a1-0000-4000-8000-000000000003", RequestID: "R3", Time: in.Add(4 * time.Hour), Account: acct, Region: "us-east-1",
			Source: "kms.amazonaws.com", Name: "ScheduleKeyDeletion", Identity: activity.Identity{Type: "AssumedRole", Account: acct, Role: "StaffOperator", Session: "ben.ops", AccessKey: "ASIABEN"},
			SourceIP: "198.51.100.8", RequestParameters: map[string]any{"keyId": "us-key"}},
	}
	var raws []json.RawMessage
	for _, r := range records {
		raws = append(raws, r.JSON())
	}
	body, _ := json.Marshal(map[string]any{"Records": raws})
	if _, err := h.app.Activity.IngestReader(ctx, bytes.NewReader(body), "test", false); err != nil {
		t.Fatal(err)
	}

	// The officer makes last month's EU pack: both dates left empty.
	c, officer := h.signedIn(t, staff.Compliance)
	r := c.submit(t, "/activity/evidence", "/activity/evidence", url.Values{"jurisdiction": {"eu"}})
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("generate: got %d\n%s", r.StatusCode, r.Body)
	}
	list := c.get(t, "/activity/evidence")
	if flash, _ := list.TestID(t, "flash"); !strings.Contains(flash, "for eu, "+last.String()) {
		t.Errorf("flash: %q, want the pack for eu, %s", flash, last.String())
	}
	row := list.Doc(t).Find(`[data-testid="report"]`).First()
	if got := row.Text(); !strings.Contains(got, last.String()) || !strings.Contains(got, officer.Email) {
		t.Errorf("pack row: %q, want its period and who made it", strings.Join(strings.Fields(got), " "))
	}
	view, _ := row.Find(`[data-testid="report-view"]`).Attr("href")
	pdfLink, _ := row.Find(`[data-testid="report-pdf"]`).Attr("href")

	// Read it as HTML.
	html := c.get(t, view)
	if html.StatusCode != http.StatusOK || !strings.HasPrefix(html.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET %s: got %d %s", view, html.StatusCode, html.Header.Get("Content-Type"))
	}
	htmlSum := sha256.Sum256([]byte(html.Body))
	for _, want := range []string{
		"Evidence pack: European Union (EU), " + last.String(),
		"GDPR Art. 32(1)(a)", "GDPR Art. 44-49",
		// The change record: run, plan hash, author, approver, verification.
		"a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2", author.Email, approver.Email, "every step passed",
		"without an approval by anyone else",
		"applied plan #" + itoa(unapproved) + " of blueprint version 5d41402abc4b: 0 guardrail results",
		// Exceptions, drift, sensitive events, staff.
		"Dana Reliability", "alarms move to the new ops topic",
		"1 by people", "1 by the portal's own deploys", "the portal's deploy",
		"has NO second factor, and their role requires one",
	} {
		if !strings.Contains(html.Body, want) {
			t.Errorf("the HTML pack misses %q", want)
		}
	}
	if strings.Contains(html.Body, "us-key") {
		t.Errorf("the EU pack lists a US event")
	}
	// Every link goes back to this portal; follow three of them.
	doc := html.Doc(t)
	var links []string
	for _, want := range []string{"/runs/" + itoa(goodRun), "/drift/" + itoa(drift), "/access/staff/" + itoa(officer.ID)} {
		found := false
		doc.Find(`a[href]`).EachWithBreak(func(_ int, s *goquery.Selection) bool {
			href, _ := s.Attr("href")
			if href == h.url+want {
				found = true
				links = append(links, href)
				return false
			}
			return true
		})
		if !found {
			t.Errorf("the pack has no link to %s%s", h.url, want)
		}
	}
	admin, _ := h.signedIn(t, staff.Admin)
	for _, l := range links {
		u, _ := url.Parse(l)
		if got := admin.get(t, u.Path); got.StatusCode != http.StatusOK {
			t.Errorf("following %s: got %d", l, got.StatusCode)
		}
	}
	if !regexp.MustCompile(`run #` + itoa(badRun) + `[^<]*</code>: started by [^<]*without an approval by anyone else`).MatchString(html.Body) {
		t.Errorf("the unapproved run #%d is not named as such", badRun)
	}

	// Read it as PDF.
	pdf := c.get(t, pdfLink)
	if pdf.StatusCode != http.StatusOK || pdf.Header.Get("Content-Type") != "application/pdf" || !strings.HasPrefix(pdf.Body, "%PDF-") {
		t.Fatalf("GET %s: got %d %s %q", pdfLink, pdf.StatusCode, pdf.Header.Get("Content-Type"), pdf.Body[:min(8, len(pdf.Body))])
	}
	// PORTAL_SCREENSHOTS=DIR keeps both files, to look at the PDF's pages
	// as images (pdftoppm -png).
	if dir := os.Getenv("PORTAL_SCREENSHOTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, body := range map[string]string{"evidence-eu.html": html.Body, "evidence-eu.pdf": pdf.Body} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	pdfSum := sha256.Sum256([]byte(pdf.Body))
	text := pdfText(t, []byte(pdf.Body))
	for _, want := range []string{"Evidence pack: European Union", "Change record of prod", "Run #" + itoa(goodRun),
		"Dana Reliability", approver.Email, "open in the portal", h.url + "/runs/" + itoa(goodRun)} {
		if !strings.Contains(text, want) {
			t.Errorf("the PDF misses %q", want)
		}
	}

	// Both hashes are in the audit trail.
	recs := h.records(t, audit.Filter{Action: "evidence.pack", Actor: officer.Label()})
	if len(recs) != 1 || recs[0].Details["html_sha256"] != hex.EncodeToString(htmlSum[:]) || recs[0].Details["pdf_sha256"] != hex.EncodeToString(pdfSum[:]) ||
		recs[0].Actor != officer.Label() {
		t.Errorf("audit: got %+v, want one evidence.pack by %s with both files' SHA-256", recs, officer.Email)
	}
	_ = exc

	// The monthly job: one scheduled pack per jurisdiction, once.
	for range 2 {
		if err := h.app.Evidence.MakeMonthly(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var scheduled int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM activity_reports WHERE origin = 'scheduled' AND period_from = ?`, store.Time(last.From)).Scan(&scheduled); err != nil {
		t.Fatal(err)
	}
	if scheduled != 3 {
		t.Errorf("scheduled packs of %s: got %d, want 3 (one per jurisdiction)", last, scheduled)
	}

	// A period given by hand is checked.
	bad := c.submit(t, "/activity/evidence", "/activity/evidence", url.Values{"jurisdiction": {"eu"}, "from": {"2026-11-30"}, "to": {"2026-11-01"}})
	if msg, _ := bad.TestID(t, "error-to"); bad.StatusCode != http.StatusBadRequest || !strings.Contains(msg, "on or after") {
		t.Errorf("a period ending before it starts: got %d %q", bad.StatusCode, msg)
	}
}
