package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"portal/internal/activity"
	"portal/internal/audit"
	"portal/internal/peers"
	"portal/internal/peers/peertest"
	"portal/internal/staff"
)

// trailPortal is a portal whose dev account (a fresh moto account) has an
// empty trail bucket, without the day of activity activityEstate writes.
type trailPortal struct {
	h           *harness
	s3          *s3.Client
	bucket, dev string
}

func newTrailPortal(t *testing.T) *trailPortal {
	t.Helper()
	moto := peertest.MotoForTest(t)
	dev, tst, prod := peertest.AccountForTest(t), peertest.AccountForTest(t), peertest.AccountForTest(t)
	peertest.SetAWSEnv(t, moto)
	ctx := context.Background()
	devCfg := peers.AssumeAccount(ctx, moto.AWSConfig("us-east-1"), dev, "PortalDeployer")
	client := s3.NewFromConfig(devCfg, func(o *s3.Options) { o.UsePathStyle = true })
	bucket := "trail-" + dev
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, "-dev-account-id", dev, "-test-account-id", tst, "-prod-account-id", prod, "-activity-trail-bucket", "dev:"+bucket+":us-east-1")
	// The portal ingests once as it starts; "Ingest now" pressed meanwhile
	// says so instead of ingesting. Let that first pass finish.
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := h.app.Activity.JobStatus(ctx, activity.JobIngest)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Running && st.Runs > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first ingestion has not finished: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &trailPortal{h: h, s3: client, bucket: bucket, dev: dev}
}

// flashOf returns the flash of page r: its text, kind, class and role.
func flashOf(t *testing.T, r *response) (text, kind, class, role string) {
	t.Helper()
	f := r.Doc(t).Find(`[data-testid="flash"]`)
	if f.Length() != 1 {
		t.Fatalf("GET %s: got %d flash messages, want 1\n%s", r.Request.URL.Path, f.Length(), r.Body)
	}
	kind, _ = f.Attr("data-kind")
	class, _ = f.Attr("class")
	role, _ = f.Attr("role")
	return strings.TrimSpace(f.Text()), kind, class, role
}

// TestActivityFlashKinds: what an action did shows in a flash of its kind.
// A successful ingestion is a green status; a failed log validation and
// an ingestion whose source failed are red alerts, in words that count
// right ("1 finding").
func TestActivityFlashKinds(t *testing.T) {
	p := newTrailPortal(t)
	c, _ := p.h.signedIn(t, staff.Compliance)

	for _, tc := range []struct {
		what, from, action, back string
		before                   func()
		text, kind, class, role  string
	}{
		{what: "ingest", from: "/activity", action: "/activity/ingest", back: "/activity",
			text: "Ingested 0 new events (0 sensitive) from 0 files.", kind: "success", class: "flash flash-ok", role: "status"},
		{what: "validate an empty trail", from: "/activity/integrity", action: "/activity/integrity", back: "/activity/integrity",
			text: "failed with 1 finding.", kind: "error", class: "flash flash-error", role: "alert"},
		{what: "ingest from a deleted bucket", from: "/activity", action: "/activity/ingest", back: "/activity",
			before: func() {
				if _, err := p.s3.DeleteBucket(context.Background(), &s3.DeleteBucketInput{Bucket: aws.String(p.bucket)}); err != nil {
					t.Fatal(err)
				}
			},
			text: "Ingested 0 new events from 0 files; some sources failed: ", kind: "error", class: "flash flash-error", role: "alert"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			r := c.submit(t, tc.from, tc.action, nil)
			if r.StatusCode != http.StatusSeeOther || r.Location() != tc.back {
				t.Fatalf("POST %s: got %d to %q, want 303 to %s", tc.action, r.StatusCode, r.Location(), tc.back)
			}
			text, kind, class, role := flashOf(t, c.get(t, tc.back))
			if !strings.Contains(text, tc.text) || kind != tc.kind || class != tc.class || role != tc.role {
				t.Errorf("flash: got %q kind=%q class=%q role=%q, want %q kind=%q class=%q role=%q", text, kind, class, role, tc.text, tc.kind, tc.class, tc.role)
			}
			// A flash is shown once.
			if _, again := c.get(t, tc.back).TestID(t, "flash"); again {
				t.Errorf("flash shown again on the next page")
			}
		})
	}
}

// TestActivityLimitIsAWholeNumber: limit=5abc is refused by name on the
// explorer and in the API, instead of being read as 5.
func TestActivityLimitIsAWholeNumber(t *testing.T) {
	p := newTrailPortal(t)
	c, officer := p.h.signedIn(t, staff.Compliance)
	token := p.h.apiToken(t, officer.User)

	for _, bad := range []string{"5abc", "5.0", "1e2", " 5", "0", "501"} {
		r := c.get(t, "/activity?limit="+url.QueryEscape(bad))
		msg, ok := r.TestID(t, "error-limit")
		if r.StatusCode != http.StatusBadRequest || !ok || !strings.Contains(msg, "limit") || !strings.Contains(msg, "whole number between 1 and 500") {
			t.Errorf("explorer limit=%q: got %d %q, want 400 naming limit", bad, r.StatusCode, msg)
		}
		if _, rows := r.TestID(t, "events"); rows {
			t.Errorf("explorer limit=%q: searched anyway", bad)
		}

		r = p.h.api(t, http.MethodGet, "/api/v1/activity/events?limit="+url.QueryEscape(bad), token, "", "")
		var ae apiError
		r.JSON(t, &ae)
		if r.StatusCode != http.StatusBadRequest || ae.Error.Code != "invalid" || !strings.Contains(ae.Error.Fields["limit"], "whole number") {
			t.Errorf("API limit=%q: got %d %s, want 400 invalid naming limit", bad, r.StatusCode, r.Body)
		}
	}
	// The message names the value as given.
	if msg, _ := c.get(t, "/activity?limit=5abc").TestID(t, "error-limit"); !strings.Contains(msg, `"5abc"`) {
		t.Errorf("explorer limit=5abc: got %q, want the value named", msg)
	}
	if r := c.get(t, "/activity?limit=5"); r.StatusCode != http.StatusOK {
		t.Errorf("explorer limit=5: got %d, want 200", r.StatusCode)
	}
	if r := p.h.api(t, http.MethodGet, "/api/v1/activity/events?limit=5", token, "", ""); r.StatusCode != http.StatusOK {
		t.Errorf("API limit=5: got %d, want 200\n%s", r.StatusCode, r.Body)
	}
}

// TestActivityShowsPeopleByName: the run that made an event, and who
// validated the logs, are shown by the person's name and email, linked to
// their staff page for an admin, never as the portal's internal label.
func TestActivityShowsPeopleByName(t *testing.T) {
	p := newTrailPortal(t)
	ctx := context.Background()
	olga, _, err := p.h.app.Staff.Create(ctx, audit.Entry{Actor: "test"}, staff.NewUser{Email: "olga.ops@example.com", Name: "Olga Ops", Roles: []staff.Role{staff.Ops}})
	if err != nil {
		t.Fatal(err)
	}
	at := p.h.clock.Now().UTC().Add(-2 * time.Hour).Truncate(time.Minute)
	ev := activity.Record{EventID: "5e1d0c0b-2222-4333-8444-555566667777", RequestID: "REQ-OLGA-RUN", Time: at, Account: p.dev, Region: "eu-central-1",
		Source: "s3.amazonaws.com", Name: "CreateBucket",
		Identity:          activity.Identity{Type: "AssumedRole", Account: p.dev, Role: "PortalDeployer", Session: "portal", AccessKey: "ASIAPORTAL"},
		SourceIP:          "198.51.100.200",
		RequestParameters: map[string]any{"bucketName": "medportal-dev-eu-documents"}}
	w := &activity.TrailWriter{Client: p.s3, Bucket: p.bucket, Account: p.dev, Region: "eu-central-1", TrailName: "org-trail"}
	if _, err := w.WriteLogFile(ctx, at.Add(5*time.Minute), []json.RawMessage{ev.JSON()}, "run"); err != nil {
		t.Fatal(err)
	}
	runID := insertRun(t, p.h.app.DB, "dev-eu", at.Add(-time.Minute), at.Add(3*time.Minute), ev.RequestID)
	if _, err := p.h.app.DB.ExecContext(ctx, `UPDATE runs SET created_by = ? WHERE id = ?`, olga.Label(), runID); err != nil {
		t.Fatal(err)
	}
	admin, _ := p.h.signedIn(t, staff.Admin)
	officer, officerUser := p.h.signedIn(t, staff.Compliance)
	officer.submit(t, "/activity", "/activity/ingest", nil)

	r := officer.get(t, "/activity?name=CreateBucket")
	href, ok := r.Doc(t).Find(`[data-testid="event-link"]`).Attr("href")
	if !ok {
		t.Fatalf("no CreateBucket event listed\n%s", r.Body)
	}
	for _, tc := range []struct {
		who  string
		c    *client
		link string
	}{
		{"admin", admin, "/access/staff/" + itoa(olga.ID)},
		{"compliance", officer, ""},
	} {
		page := tc.c.get(t, href)
		run, _ := page.TestID(t, "event-run")
		if !strings.Contains(run, "started by Olga Ops (olga.ops@example.com).") || strings.Contains(run, "user:") {
			t.Errorf("%s: event run: got %q, want it started by Olga Ops (olga.ops@example.com)", tc.who, run)
		}
		link, linked := page.Doc(t).Find(`[data-testid="event-run"] [data-testid="actor-link"]`).Attr("href")
		if link != tc.link || linked != (tc.link != "") {
			t.Errorf("%s: link to Olga's staff page: got %q, want %q", tc.who, link, tc.link)
		}
	}

	// Two validations by the officer: the latest and the earlier one name them.
	officer.submit(t, "/activity/integrity", "/activity/integrity", nil)
	officer.submit(t, "/activity/integrity", "/activity/integrity", nil)
	r = officer.get(t, "/activity/integrity")
	if by := r.Doc(t).Find(`[data-testid="validations"] [data-testid="actor"]`).First().Text(); strings.TrimSpace(by) != officerUser.Email {
		t.Errorf("earlier validations: by %q, want %s", by, officerUser.Email)
	}
	if strings.Contains(r.Body, "user:") {
		t.Errorf("integrity page shows an internal label")
	}
}

// TestIntegrityWithoutDigestKeys checks that a trail without trusted
// digest keys says so, with the flag that gives them, instead of an empty
// list.
func TestIntegrityWithoutDigestKeys(t *testing.T) {
	p := newTrailPortal(t)
	c, _ := p.h.signedIn(t, staff.Compliance)
	got, ok := c.get(t, "/activity/integrity").TestID(t, "no-digest-keys")
	if !ok || !strings.Contains(got, "-activity-digest-keys") {
		t.Errorf("integrity page without keys: %q, want it to say none are configured and name -activity-digest-keys", got)
	}
}
