package web_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
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
	"portal/internal/store"
)

// TestMain stops the test peers (moto) the activity tests start.
func TestMain(m *testing.M) { peertest.Main(m) }

// activityEstate is a portal whose dev, test and prod accounts are fresh
// moto accounts, with a trail bucket in dev holding a day of CloudTrail
// log files and signed digests, and the portal's own CreateBucket of the
// EU documents bucket made during run #1.
type activityEstate struct {
	h                  *harness
	s3                 *s3.Client
	bucket, dev        string
	logs               []string
	portalEvent        activity.Record
	runID              int64
	writers            []*activity.TrailWriter
	dayStart, eventsAt time.Time
}

func newActivityEstate(t *testing.T) *activityEstate {
	t.Helper()
	moto := peertest.MotoForTest(t)
	dev, tst, prod := peertest.AccountForTest(t), peertest.AccountForTest(t), peertest.AccountForTest(t)
	peertest.SetAWSEnv(t, moto)
	ctx := context.Background()
	devCfg := peers.AssumeAccount(ctx, moto.AWSConfig("us-east-1"), dev, "PortalDeployer")
	client := s3.NewFromConfig(devCfg, func(o *s3.Options) { o.UsePathStyle, o.DisableLogOutputChecksumValidationSkipped = true, true })
	bucket := "org-trail-" + dev
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "digest-keys.pem")
	if err := os.WriteFile(keyFile, activity.EncodeDigestKey(&key.PublicKey), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &activityEstate{s3: client, bucket: bucket, dev: dev}
	e.h = newHarness(t, "-dev-account-id", dev, "-test-account-id", tst, "-prod-account-id", prod,
		"-activity-trail-bucket", "dev:"+bucket+":us-east-1", "-activity-digest-keys", keyFile)

	// A day of activity, ending an hour ago, in two accounts and regions.
	now := e.h.clock.Now().UTC()
	e.dayStart = now.Truncate(time.Hour).Add(-24 * time.Hour)
	rng := mrand.New(mrand.NewPCG(7, 8))
	for _, acct := range []string{dev, prod} {
		for _, region := range []string{"us-east-1", "eu-central-1"} {
			e.writers = append(e.writers, &activity.TrailWriter{Client: client, Bucket: bucket, Account: acct, Region: region, TrailName: "org-trail", Key: key})
		}
	}
	// Run #1 created the EU documents bucket; its step recorded the request id.
	e.eventsAt = e.dayStart.Add(10*time.Hour + 7*time.Minute)
	e.portalEvent = activity.Record{EventID: "0f0e0d0c-1111-4222-8333-444455556666", RequestID: "REQ-PORTAL-CREATE-BUCKET", Time: e.eventsAt, Account: dev,
		Region: "eu-central-1", Source: "s3.amazonaws.com", Name: "CreateBucket",
		Identity: activity.Identity{Type: "AssumedRole", Account: dev, Role: "PortalDeployer", Session: "portal", AccessKey: "ASIAPORTAL"},
		SourceIP: "198.51.100.200", UserAgent: "aws-sdk-go-v2/1.48.0 portal",
		RequestParameters: map[string]any{"bucketName": "medportal-dev-eu-documents"},
		Resources:         []activity.RecordResource{{ARN: "arn:aws:s3:::medportal-dev-eu-documents", Type: "AWS::S3::Bucket"}}}
	e.runID = insertRun(t, e.h.app.DB, "dev-eu", e.eventsAt.Add(-time.Minute), e.eventsAt.Add(4*time.Minute), e.portalEvent.RequestID)
	for h := range 24 {
		start := e.dayStart.Add(time.Duration(h) * time.Hour)
		for i, w := range e.writers {
			at := start.Add(time.Duration(10+i) * time.Minute)
			var records []json.RawMessage
			for _, r := range activity.Background(rng, []string{w.Account}, []string{w.Region}, start, at, 12) {
				records = append(records, r.JSON())
			}
			if h == 10 && w.Account == dev && w.Region == "eu-central-1" {
				records = append(records, e.portalEvent.JSON())
			}
			k, err := w.WriteLogFile(ctx, at, records, "f"+string(rune('a'+i)))
			if err != nil {
				t.Fatal(err)
			}
			e.logs = append(e.logs, k)
			if _, err := w.WriteDigest(ctx, start, start.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return e
}

// insertRun stores a finished run of stack whose one step recorded reqID,
// as the engine does after applying a plan.
func insertRun(t *testing.T, db *store.DB, stack string, started, finished time.Time, reqID string) int64 {
	t.Helper()
	ctx := context.Background()
	var planID, runID int64
	if err := db.QueryRowContext(ctx, `INSERT INTO plans (stack, kind, version, hash, body, created_by, created_at) VALUES (?, 'apply', 'v1', 'h', '{}', 'user:9 ops@example.com', ?) RETURNING id`,
		stack, store.Time(started)).Scan(&planID); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, `INSERT INTO runs (plan_id, stack, kind, version, state, created_by, created_at, started_at, finished_at) VALUES (?, ?, 'apply', 'v1', 'succeeded', 'user:9 ops@example.com', ?, ?, ?) RETURNING id`,
		planID, stack, store.Time(started), store.Time(started), store.Time(finished)).Scan(&runID); err != nil {
		t.Fatal(err)
	}
	ids, _ := json.Marshal([]string{"REQ-OTHER", reqID})
	if _, err := db.ExecContext(ctx, `INSERT INTO run_steps (run_id, resource_id, type, region, action, state, request_ids, position) VALUES (?, 'documents_bucket', 's3_bucket', 'eu-central-1', 'create', 'done', ?, 0)`,
		runID, string(ids)); err != nil {
		t.Fatal(err)
	}
	return runID
}

// TestActivityForCompliance is the "done when" over HTTP: a
// compliance officer ingests the trail, finds who created the EU documents
// bucket and the run that did it, exports the week's writes, validates
// the logs, sees a tampered file named, and generates evidence.
func TestActivityForCompliance(t *testing.T) {
	e := newActivityEstate(t)
	h := e.h
	c, _ := h.signedIn(t, staff.Compliance)

	// The ingestion job runs at start and every five minutes; "Ingest
	// now" runs it at once. Either way each event is stored once.
	r := c.submit(t, "/activity", "/activity/ingest", nil)
	if r.StatusCode != http.StatusSeeOther || r.Location() != "/activity" {
		t.Fatalf("POST /activity/ingest: got %d to %q, want 303 to /activity", r.StatusCode, r.Location())
	}
	r = c.get(t, "/activity")
	if flash, _ := r.TestID(t, "flash"); !strings.HasPrefix(flash, "Ingested ") {
		t.Errorf("flash: got %q, want it to say what was ingested", flash)
	}
	if st, _ := r.TestID(t, "ingest-status"); !strings.Contains(st, "1153 events stored") {
		t.Errorf("ingest status: got %q, want 1153 events stored (4 accounts and regions x 24 hours x 12, plus the portal's call)", st)
	}
	if n := r.Doc(t).Find(`[data-testid="event-row"]`).Length(); n != 50 {
		t.Errorf("first page: got %d events, want 50", n)
	}
	next, ok := r.Doc(t).Find(`[data-testid="events-next"]`).Attr("href")
	if !ok {
		t.Fatalf("no link to older events")
	}
	if r2 := c.get(t, next); r2.Doc(t).Find(`[data-testid="event-row"]`).Length() != 50 {
		t.Errorf("second page: want 50 events")
	}

	// Who created the EU documents bucket, and when?
	r = c.get(t, "/activity?name=CreateBucket&resource=medportal-dev-eu-documents")
	rows := r.Doc(t).Find(`[data-testid="event-row"]`)
	if rows.Length() != 1 {
		t.Fatalf("CreateBucket of the EU documents bucket: got %d events, want 1\n%s", rows.Length(), r.Body)
	}
	href, _ := rows.Find(`[data-testid="event-link"]`).Attr("href")
	ev := c.get(t, href)
	if who, _ := ev.TestID(t, "event-who"); !strings.HasPrefix(who, "portal") {
		t.Errorf("event who: got %q, want the portal's session", who)
	}
	link, ok := ev.Doc(t).Find(`[data-testid="event-run-link"]`).Attr("href")
	if !ok || link != "/runs/"+strconv.FormatInt(e.runID, 10) {
		t.Errorf("event run link: got %q, want /runs/%d", link, e.runID)
	}
	if run, _ := ev.TestID(t, "event-run"); !strings.Contains(run, "request id REQ-PORTAL-CREATE-BUCKET") {
		t.Errorf("event run: got %q, want it to say how (the request id)", run)
	}
	if raw, _ := ev.TestID(t, "event-raw"); !strings.Contains(raw, `"eventID": "`+e.portalEvent.EventID+`"`) {
		t.Errorf("raw record missing the event id:\n%s", raw)
	}

	// Filters that do not parse name the field.
	r = c.get(t, "/activity?since=yesterday&access=sometimes")
	if r.StatusCode != http.StatusBadRequest {
		t.Errorf("bad filter: got %d, want 400", r.StatusCode)
	}
	for _, f := range []string{"since", "access"} {
		if msg, ok := r.TestID(t, "error-"+f); !ok || msg == "" {
			t.Errorf("bad filter: no error shown for %s", f)
		}
	}

	// Export the week's write events as CSV.
	since := e.dayStart.Add(-6 * 24 * time.Hour).Format("2006-01-02T15:04")
	until := h.clock.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04")
	r = c.get(t, "/activity/export.csv?access=write&since="+url.QueryEscape(since)+"&until="+url.QueryEscape(until))
	if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("CSV export: got %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
	recs, err := csv.NewReader(strings.NewReader(r.Body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 2 {
		t.Fatalf("CSV export: got %d lines, want writes", len(recs))
	}
	found := false
	for _, row := range recs[1:] {
		if row[6] != "false" {
			t.Errorf("CSV row %s: read_only %s in a write-only export", row[1], row[6])
		}
		found = found || row[1] == e.portalEvent.EventID
	}
	if !found {
		t.Errorf("CSV export misses the portal's CreateBucket")
	}
	r = c.get(t, "/activity/export.jsonl?name=CreateBucket")
	if lines := strings.Split(strings.TrimSpace(r.Body), "\n"); len(lines) != 1 || !strings.Contains(lines[0], e.portalEvent.EventID) {
		t.Errorf("JSONL export: got %q, want the one CreateBucket record", r.Body)
	}

	// Validate the logs: they pass.
	r = c.submit(t, "/activity/integrity", "/activity/integrity", nil)
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /activity/integrity: got %d, want 303", r.StatusCode)
	}
	r = c.get(t, "/activity/integrity")
	if ok, found := r.TestID(t, "validation-ok"); !found || !strings.Contains(ok, "96 digests and 96 log files") {
		t.Fatalf("validation: got %q, want passed with 96 digests and 96 log files\n%s", ok, r.Body)
	}
	// Someone edits one log file in the bucket: validation names it.
	tampered := e.logs[42]
	if _, err := e.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(tampered),
		Body: bytes.NewReader([]byte(`{"Records":[]}`))}); err != nil {
		t.Fatal(err)
	}
	c.submit(t, "/activity/integrity", "/activity/integrity", nil)
	r = c.get(t, "/activity/integrity")
	if _, failed := r.TestID(t, "validation-failed"); !failed {
		t.Fatalf("after tampering: want a failed validation\n%s", r.Body)
	}
	probs := r.Doc(t).Find(`[data-testid="problem"]`)
	if probs.Length() != 1 || !strings.Contains(probs.Text(), tampered) || !strings.Contains(probs.Text(), activity.ProblemLogChanged) {
		t.Errorf("findings: got %q, want one %q naming %s", probs.Text(), activity.ProblemLogChanged, tampered)
	}
	var mine []audit.Record
	for _, rec := range h.records(t, audit.Filter{Action: "activity.validate_logs"}) {
		if rec.Actor != "system" { // the scheduled validation runs as the system
			mine = append(mine, rec)
		}
	}
	if len(mine) != 2 || mine[0].Details["ok"] != false || mine[1].Details["ok"] != true {
		t.Errorf("audit: got %d validation records by the officer, want 2 (failed after passed)", len(mine))
	}

	// Sensitive events are listed on their own tab.
	r = c.get(t, "/activity/sensitive")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET /activity/sensitive: got %d", r.StatusCode)
	}
	if badges := r.Doc(t).Find(`[data-testid="sensitive-badge"]`).Length(); badges != r.Doc(t).Find(`[data-testid="event-row"]`).Length() {
		t.Errorf("sensitive tab: %d rows carry the sensitive badge, want all", badges)
	}

	// Evidence for the EU: stored, downloadable, its hash in the audit trail.
	r = c.submit(t, "/activity/evidence", "/activity/evidence", url.Values{"jurisdiction": {"eu"}})
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /activity/evidence: got %d\n%s", r.StatusCode, r.Body)
	}
	r = c.get(t, "/activity/evidence")
	dl, ok := r.Doc(t).Find(`[data-testid="report-download"]`).First().Attr("href")
	if !ok {
		t.Fatalf("no report listed\n%s", r.Body)
	}
	r = c.get(t, dl)
	sum := sha256.Sum256([]byte(r.Body))
	if got := hex.EncodeToString(sum[:]); got != r.Header.Get("X-Report-SHA256") {
		t.Errorf("report SHA-256: got %s, header says %s", got, r.Header.Get("X-Report-SHA256"))
	}
	for _, want := range []string{"Evidence pack: European Union", "CloudTrail log file integrity validation passes", "audit trail is intact", "dev-eu", "prod-eu"} {
		if !strings.Contains(r.Body, want) {
			t.Errorf("report misses %q", want)
		}
	}
	reps := h.records(t, audit.Filter{Action: "evidence.pack"})
	if len(reps) != 1 || reps[0].Details["html_sha256"] != r.Header.Get("X-Report-SHA256") {
		t.Errorf("audit: got %+v, want one evidence.pack with the report's SHA-256", reps)
	}
	r = c.submit(t, "/activity/evidence", "/activity/evidence", url.Values{"jurisdiction": {"mars"}})
	if msg, _ := r.TestID(t, "error-jurisdiction"); r.StatusCode != http.StatusBadRequest || !strings.Contains(msg, `"mars" is not one of`) {
		t.Errorf("bad jurisdiction: got %d %q", r.StatusCode, msg)
	}
}

// putBody overwrites key in the estate's trail bucket, as someone with
// write access to the bucket could.
func putBody(t *testing.T, e *activityEstate, key, body string) {
	t.Helper()
	if _, err := e.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(key),
		Body: bytes.NewReader([]byte(body))}); err != nil {
		t.Fatal(err)
	}
}
