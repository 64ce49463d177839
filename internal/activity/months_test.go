package activity_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"portal/internal/activity"
	"portal/internal/audit"
	"portal/internal/store"
)

// TestEventsAcrossMonths: events of several months (on PostgreSQL each
// month a partition of its own, made as its first events arrive), stored
// once even when delivered again, and holding a NUL character (which
// PostgreSQL's text cannot), are all found by time, by text and by id.
func TestEventsAcrossMonths(t *testing.T) {
	db := openDB(t)
	s := activity.New(activity.Config{}, db, audit.New(db, nil), nil, nil)
	ctx := context.Background()
	var events []activity.Event
	for i, at := range []time.Time{t0.AddDate(0, -14, 0), t0.AddDate(0, -1, 0), t0, t0.AddDate(0, 0, 31)} {
		e, err := activity.ParseRecord(rec("PutBucketPolicy", "s3.amazonaws.com", func(r *activity.Record) {
			r.EventID, r.Time = fmt.Sprintf("month-%04d", i), at
			r.Identity.Session = "nul\x00byte"
		}).JSON())
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, e)
	}
	added, err := s.Insert(ctx, events)
	if err != nil {
		t.Fatal(err)
	}
	if len(added) != 4 {
		t.Fatalf("stored %d of 4 new events", len(added))
	}
	again, err := s.Insert(ctx, append(events[2:], events[:2]...))
	if err != nil || len(again) != 0 {
		t.Fatalf("delivered again: %d stored (%v), want none", len(again), err)
	}
	for _, c := range []struct {
		f    activity.Filter
		want int
	}{
		{activity.Filter{}, 4},
		{activity.Filter{Since: t0.AddDate(0, -1, 0), Until: t0.AddDate(0, 0, 1)}, 2},
		{activity.Filter{Text: "putbucketpol"}, 4},
		{activity.Filter{Text: "s3 amazonaws com", Until: t0}, 2},
		{activity.Filter{Text: "month-0001"}, 1},
	} {
		got, _, err := s.Search(ctx, c.f)
		if err != nil {
			t.Fatalf("%+v: %v", c.f, err)
		}
		if len(got) != c.want {
			t.Errorf("%+v: %d events, want %d", c.f, len(got), c.want)
		}
		if n, err := s.Count(ctx, c.f); err != nil || n != c.want {
			t.Errorf("%+v: counted %d (%v), want %d", c.f, n, err, c.want)
		}
	}
	if db.Dialect() == store.Postgres {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_inherits WHERE inhparent = 'activity_events'::regclass`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 4 {
			t.Errorf("%d partitions of activity_events, want one per month: 4", n)
		}
	}
}
