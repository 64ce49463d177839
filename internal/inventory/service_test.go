package inventory_test

import (
	"context"
	"encoding/csv"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/inventory"
	"portal/internal/peers/peertest"
	"portal/internal/store"
)

func openDB(t testing.TB) (*store.DB, *audit.Log) {
	t.Helper()
	db := peertest.StoreForTest(t)
	return db, audit.New(db, nil)
}

func arns(rs []inventory.Resource) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ARN
	}
	return out
}

// TestSnapshotsQueriesAndChanges discovers twice around changes made by
// hand and checks the queries, the links to runs, the comparison, the CSV
// export and the audit trail.
func TestSnapshotsQueriesAndChanges(t *testing.T) {
	e := newEstate(t)
	ctx := context.Background()
	db, log := openDB(t)
	svc := inventory.New(db, log, nil, nil, e.discoverer())
	sfx := e.account("dev")[:6]

	docs := e.bucket(t, "dev", "eu-central-1", "docs-"+sfx, ownership("dev-eu", "documents"), true)
	byHand := e.bucket(t, "dev", "us-east-1", "by-hand-"+sfx, nil, false)
	misplaced := e.bucket(t, "dev", "us-east-1", "eu-in-us-"+sfx, ownership("dev-eu", "stray"), false)
	gone := e.bucket(t, "test", "ap-southeast-1", "gone-"+sfx, ownership("test-apac", "assets"), false)

	// The portal's own record: docs was created by run 1 of plan 1, which
	// applied blueprint version bp-1.
	for _, q := range []string{
		`INSERT INTO stack_resources (stack, resource_id, type, region, physical_id, updated_at) VALUES ('dev-eu', 'documents', 's3_bucket', 'eu-central-1', 'docs-` + sfx + `', '2026-01-01T00:00:00Z')`,
		`INSERT INTO plans (id, stack, kind, version, blueprint_version, hash, body, created_by, created_at) VALUES (1, 'dev-eu', 'apply', 'v1', 'bp-1', 'h', '{}', 'ops', '2026-01-01T00:00:00Z')`,
		`INSERT INTO runs (id, plan_id, stack, kind, version, state, created_by, created_at) VALUES (7, 1, 'dev-eu', 'apply', 'v1', 'succeeded', 'ops', '2026-01-01T00:00:00Z')`,
		`INSERT INTO run_steps (run_id, resource_id, type, region, action, state, position) VALUES (7, 'documents', 's3_bucket', 'eu-central-1', 'create', 'done', 0)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}

	first, err := svc.Discover(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if first.State != inventory.Succeeded || first.Resources != 4 || first.TasksDone != first.TasksTotal || first.Calls == 0 {
		t.Fatalf("first discovery: got %+v, want succeeded with 4 resources, every task done, calls counted", first)
	}

	for _, tc := range []struct {
		name string
		f    inventory.Filter
		want []string
	}{
		{"everything", inventory.Filter{}, []string{docs, byHand, misplaced, gone}},
		{"unmanaged", inventory.Filter{Managed: "no"}, []string{byHand}},
		{"managed in eu", inventory.Filter{Managed: "yes", Jurisdiction: "eu"}, []string{docs, misplaced}},
		{"violations", inventory.Filter{Violations: true}, []string{misplaced}},
		{"test environment", inventory.Filter{Environment: "test"}, []string{gone}},
		{"region", inventory.Filter{Region: "us-east-1"}, []string{byHand, misplaced}},
		{"tag key=value", inventory.Filter{Tag: "portal:resource=documents"}, []string{docs}},
		{"tag key", inventory.Filter{Tag: "portal:stack"}, []string{docs, misplaced, gone}},
		{"stack", inventory.Filter{Stack: "test-apac"}, []string{gone}},
		{"service and type", inventory.Filter{Service: "s3", Type: "s3:bucket", Query: "by-hand"}, []string{byHand}},
		{"nothing", inventory.Filter{Service: "rds"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := svc.Query(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if got := arns(p.Resources); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if p.Total != len(tc.want) {
				t.Errorf("total: got %d, want %d", p.Total, len(tc.want))
			}
		})
	}

	// Pages continue where the previous one stopped (environment, then
	// region order).
	p1, err := svc.Query(ctx, inventory.Filter{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(p1.Resources) != 3 || p1.NextAfter == 0 {
		t.Fatalf("first page: got %d resources, next %d; want 3 and a next page", len(p1.Resources), p1.NextAfter)
	}
	p2, err := svc.Query(ctx, inventory.Filter{Limit: 3, After: p1.NextAfter})
	if err != nil {
		t.Fatal(err)
	}
	if got := arns(p2.Resources); !slices.Equal(got, []string{gone}) || p2.NextAfter != 0 {
		t.Errorf("second page: got %v (next %d), want [%s] and no next page", got, p2.NextAfter, gone)
	}

	// The managed bucket links to the run that created it and its version.
	r, _, err := svc.Get(ctx, 0, docs)
	if err != nil {
		t.Fatal(err)
	}
	if r.Managing == nil || !r.Managing.InState || r.Managing.RunID != 7 || r.Managing.BlueprintVersion != "bp-1" {
		t.Errorf("links of %s: got %+v, want in state, run 7, blueprint version bp-1", docs, r.Managing)
	}
	if r, _, _ := svc.Get(ctx, 0, misplaced); r.Managing == nil || r.Managing.InState || r.Managing.BlueprintVersion != "bp-1" {
		t.Errorf("links of a tagged resource the state does not hold: got %+v, want not in state, blueprint version bp-1 from the plan of v1", r.Managing)
	}

	// Bad filters name their field.
	if _, err := svc.Query(ctx, inventory.Filter{Environment: "staging", Managed: "maybe"}); apperr.KindOf(err) != apperr.Invalid ||
		apperr.FieldsOf(err)["environment"] == "" || apperr.FieldsOf(err)["managed"] == "" {
		t.Errorf("bad filter: got %v, want invalid naming environment and managed", err)
	}

	// Change things by hand, discover again, compare.
	c := s3.NewFromConfig(e.cfg(t, "dev", "us-east-1"))
	if _, err := c.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String("by-hand-" + sfx),
		Tagging: &s3types.Tagging{TagSet: []s3types.Tag{{Key: aws.String("owner"), Value: aws.String("alice")}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("by-hand-" + sfx),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	tc := s3.NewFromConfig(e.cfg(t, "test", "ap-southeast-1"))
	if _, err := tc.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("gone-" + sfx)}); err != nil {
		t.Fatal(err)
	}
	added := e.bucket(t, "prod", "eu-west-1", "new-"+sfx, ownership("prod-eu", "assets"), true)

	second, err := svc.Discover(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := svc.Compare(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ch.From.ID != first.ID || ch.To.ID != second.ID {
		t.Errorf("compared #%d with #%d, want #%d with #%d", ch.From.ID, ch.To.ID, first.ID, second.ID)
	}
	if got := changeARNs(ch.Added); !slices.Equal(got, []string{added}) {
		t.Errorf("added: got %v, want [%s]", got, added)
	}
	if got := changeARNs(ch.Removed); !slices.Equal(got, []string{gone}) {
		t.Errorf("removed: got %v, want [%s]", got, gone)
	}
	if got := changeARNs(ch.Changed); !slices.Equal(got, []string{byHand}) {
		t.Fatalf("changed: got %v, want [%s]", got, byHand)
	}
	wantDetails := []string{"versioning: off → enabled", "tag owner added: alice"}
	if got := ch.Changed[0].Details; !slices.Equal(got, wantDetails) {
		t.Errorf("change details: got %q, want %q", got, wantDetails)
	}

	// CSV export streams every matching row.
	var sb strings.Builder
	if err := svc.ExportCSV(ctx, inventory.Filter{Environment: "dev"}, &sb); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(sb.String())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 || !slices.Equal(recs[0], inventory.CSVHeader) {
		t.Fatalf("CSV: got %d lines (header %v), want header and 3 rows", len(recs), recs[0])
	}
	if recs[3][0] != misplaced || recs[3][12] == "" {
		t.Errorf("CSV row 3: got %v, want %s with its residency violation", recs[2], misplaced)
	}

	// Each discovery is audited.
	recsA, _, err := log.List(ctx, audit.Filter{Action: "inventory.snapshot", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(recsA) != 2 {
		t.Errorf("audit: got %d inventory.snapshot records, want 2", len(recsA))
	}
}

func changeARNs(cs []inventory.Change) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Resource.ARN
	}
	return out
}

// TestRequestQueuesOnce checks that an on-demand request is audited and
// that a second request while one is queued returns the same discovery.
func TestRequestQueuesOnce(t *testing.T) {
	ctx := context.Background()
	db, log := openDB(t)
	svc := inventory.New(db, log, nil, func() time.Time { return time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC) }, &inventory.Discoverer{})
	by := audit.Entry{Actor: "user:1 ops@example.com", SourceIP: "127.0.0.1"}
	a, err := svc.Request(ctx, by)
	if err != nil {
		t.Fatal(err)
	}
	b, err := svc.Request(ctx, by)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID || a.State != inventory.Queued || a.RequestedBy != by.Actor {
		t.Errorf("got %+v then %+v, want one queued discovery requested by %s", a, b, by.Actor)
	}
	recs, _, err := log.List(ctx, audit.Filter{Action: "inventory.discover", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Actor != by.Actor {
		t.Errorf("audit: got %+v, want one inventory.discover by %s", recs, by.Actor)
	}
	none := inventory.New(db, log, nil, nil, nil)
	if _, err := none.Request(ctx, by); apperr.KindOf(err) != apperr.Conflict || !strings.Contains(err.Error(), "not configured") {
		t.Errorf("request without AWS: got %v, want a conflict saying AWS is not configured", err)
	}
	if _, err := none.Latest(ctx); apperr.KindOf(err) != apperr.NotFound {
		t.Errorf("latest with nothing discovered: got %v, want not found", err)
	}
}
