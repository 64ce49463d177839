package activity_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"portal/internal/activity"
	"portal/internal/audit"
	"portal/internal/store"
)

// TestRetentionArchivesThenRemoves: events past their jurisdiction's
// retention (US six years by default, EU set to two, a region of no
// jurisdiction as long as the longest) are written to the trail bucket
// in moto, one object per jurisdiction, account and day, and only then
// removed, each archive in the audit trail; recent events stay; an
// account whose environment has no trail bucket keeps its old events and
// the pass says so. On PostgreSQL the months past every retention, now
// empty, are dropped.
func TestRetentionArchivesThenRemoves(t *testing.T) {
	ctx := context.Background()
	client, bucket, account := trailBucket(t)
	db := openDB(t)
	log := audit.New(db, nil)
	retention, err := activity.ParseRetention("eu:2")
	if err != nil {
		t.Fatal(err)
	}
	s := activity.New(activity.Config{
		Buckets:      []activity.TrailBucket{{Environment: "dev", Bucket: bucket, Region: "us-east-1"}},
		Environments: map[string]string{account: "dev", "999999999999": "prod"},
		Clients:      activity.Clients{S3: func(string, string) (activity.S3API, error) { return client, nil }},
		Retention:    retention,
	}, db, log, nil, nil)
	now, err := db.Now(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type ev struct {
		id, region, acct string
		age              time.Duration
	}
	year := 365 * 24 * time.Hour
	all := []ev{
		{"us-old-event", "us-east-1", account, 7 * year},
		{"us-recent-evt", "us-east-2", account, year},
		{"eu-old-event", "eu-central-1", account, 3 * year},
		{"eu-recent-evt", "eu-west-1", account, year},
		{"global-old-ev", "sa-east-1", account, 6*year + 200*24*time.Hour},
		{"no-bucket-evt", "us-east-1", "999999999999", 8 * year},
	}
	var events []activity.Event
	for _, x := range all {
		e, err := activity.ParseRecord(rec("PutBucketPolicy", "s3.amazonaws.com", func(r *activity.Record) {
			r.EventID, r.Region, r.Account, r.Time = x.id, x.region, x.acct, now.Add(-x.age)
		}).JSON())
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, e)
	}
	if _, err := s.Insert(ctx, events); err != nil {
		t.Fatal(err)
	}

	res, err := s.ApplyRetention(ctx, audit.Entry{Actor: "system"})
	if err == nil || !strings.Contains(err.Error(), "999999999999") || len(res.Kept) == 0 || !strings.Contains(res.Kept[0], "no trail bucket") {
		t.Errorf("an account without a trail bucket: error %v, kept %q; want it named", err, res.Kept)
	}
	if res.Archived != 3 || len(res.Objects) != 3 {
		t.Fatalf("archived %d events in %q, want 3 in 3 objects", res.Archived, res.Objects)
	}
	got, _, err := s.Search(ctx, activity.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range got {
		left = append(left, e.ID)
	}
	slices.Sort(left)
	if want := []string{"eu-recent-evt", "no-bucket-evt", "us-recent-evt"}; !slices.Equal(left, want) {
		t.Errorf("left in the database: %q, want %q", left, want)
	}
	day := now.Add(-7 * year).UTC()
	key := "portal-archive/activity/us/" + account + "/" + day.Format("2006/01/02") + "/" + day.Format("20060102") + ".jsonl.gz"
	if !slices.Contains(res.Objects, "s3://"+bucket+"/"+key) {
		t.Fatalf("objects %q, want %s", res.Objects, key)
	}
	obj, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(obj.Body)
	obj.Body.Close()
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	lines, _ := io.ReadAll(zr)
	if !bytes.Equal(bytes.TrimSpace(lines), events[0].Raw) {
		t.Errorf("the archive holds %q, want the record as delivered %q", lines, events[0].Raw)
	}
	recs, _, err := log.List(ctx, audit.Filter{Action: "activity.archive"})
	if err != nil || len(recs) != 3 {
		t.Errorf("%d activity.archive audit records (%v), want 3", len(recs), err)
	}
	if db.Dialect() == store.Postgres {
		for _, at := range []time.Time{now.Add(-7 * year), now.Add(-6*year - 200*24*time.Hour)} {
			name := "activity_events_" + at.UTC().Format("200601")
			if !slices.Contains(res.Dropped, name) {
				t.Errorf("dropped %q, want %s among them", res.Dropped, name)
			}
		}
		if slices.Contains(res.Dropped, "activity_events_"+now.Add(-8*year).UTC().Format("200601")) {
			t.Errorf("dropped the month whose events could not be archived: %q", res.Dropped)
		}
	}

	// Once done, a second pass archives nothing more, and a late event
	// of a dropped month is stored again (its partition made anew).
	res, _ = s.ApplyRetention(ctx, audit.Entry{Actor: "system"})
	if res.Archived != 0 {
		t.Errorf("second pass archived %d", res.Archived)
	}
	if added, err := s.Insert(ctx, events[:1]); err != nil || len(added) != 1 {
		t.Errorf("a late event of an archived month: %d stored, %v", len(added), err)
	}
}

func TestParseRetention(t *testing.T) {
	r, err := activity.ParseRetention(" us:7, eu:2 ")
	if err != nil || r.Years("us") != 7 || r.Years("eu") != 2 || r.Years("apac") != activity.DefaultRetentionYears {
		t.Fatalf("%v %v", r, err)
	}
	for _, bad := range []string{"us", "mars:3", "eu:0", "eu:x", "apac:101"} {
		if _, err := activity.ParseRetention(bad); err == nil || !strings.Contains(err.Error(), "JURISDICTION:YEARS") {
			t.Errorf("%q: %v, want an error saying the form", bad, err)
		}
	}
}
