package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"portal/internal/peers/peertest"
	"portal/internal/store"
)

func TestMain(m *testing.M) { peertest.Main(m) }

// anchorBucket creates an Object Lock bucket in a fresh moto account of
// the test's own (the audit account) and returns anchors over it with the
// raw client.
func anchorBucket(t *testing.T) (*S3Anchors, *s3.Client) {
	t.Helper()
	moto := peertest.MotoForTest(t)
	cfg, _ := peertest.AccountConfigForTest(t, moto, "us-east-1")
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if err := CreateAnchorBucket(context.Background(), client, "audit-anchors", "us-east-1", 1); err != nil {
		t.Fatal(err)
	}
	return &S3Anchors{Client: client, Bucket: "audit-anchors", Prefix: "portal/"}, client
}

// TestAnchorsDetectTruncationAndRewrite: the head anchored in S3 catches
// what the chain alone cannot: deleting the newest records, and a chain
// rewritten and re-sealed by someone holding the key.
func TestAnchorsDetectTruncationAndRewrite(t *testing.T) {
	ctx := context.Background()
	st, _ := anchorBucket(t)
	if err := st.Check(ctx); err != nil {
		t.Fatalf("Check on an Object Lock bucket: %v", err)
	}
	// The real clock: Object Lock retains until a time in the future.
	db, _ := openTestDB(t)
	l := New(db, nil)
	seed(t, l, 5)
	a, ok, err := l.Anchor(ctx, st, 24*time.Hour, false)
	if err != nil || !ok || a.Seq != 5 {
		t.Fatalf("Anchor: %+v %v %v, want record 5 anchored", a, ok, err)
	}
	if _, again, err := l.Anchor(ctx, st, 24*time.Hour, false); err != nil || again {
		t.Errorf("Anchor of an unchanged head: anchored %v, %v; want nothing written", again, err)
	}
	seed(t, l, 3)
	if _, ok, err := l.Anchor(ctx, st, 24*time.Hour, false); err != nil || !ok {
		t.Fatalf("second Anchor: %v %v", ok, err)
	}
	anchors, err := st.List(ctx)
	if err != nil || len(anchors) != 2 || anchors[0].Seq != 5 || anchors[1].Seq != 8 {
		t.Fatalf("List: %+v, %v; want anchors of records 5 and 8", anchors, err)
	}
	if v, err := l.VerifyAgainst(ctx, anchors); err != nil || !v.OK || v.Anchors != 2 || v.AnchorSeq != 8 {
		t.Fatalf("VerifyAgainst an intact chain: %+v, %v", v, err)
	}

	t.Run("truncation", func(t *testing.T) {
		snapshot := copyDB(t, db)
		if _, err := snapshot.db.Exec(`DELETE FROM audit_log WHERE seq > 6`); err != nil {
			t.Fatal(err)
		}
		v, err := snapshot.log(l).VerifyAgainst(ctx, anchors)
		if err != nil {
			t.Fatal(err)
		}
		if v.OK || v.FirstBroken != 7 || !strings.Contains(v.Reason, "records 7 to 8 missing") {
			t.Errorf("got %+v, want broken at 7 naming records 7 to 8 as deleted", v)
		}
		// Without the anchors, the shorter chain looks intact.
		if v, _ := snapshot.log(l).Verify(ctx); !v.OK {
			t.Errorf("without anchors: %+v, want OK (truncation is what anchors are for)", v)
		}
	})
	t.Run("rewritten and re-sealed with the key", func(t *testing.T) {
		snapshot := copyDB(t, db)
		resealFrom(t, snapshot.db, l.Keys(), 3, `{"rewritten":true}`)
		sl := snapshot.log(l)
		if v, _ := sl.Verify(ctx); !v.OK {
			t.Fatalf("the re-sealed chain verifies on its own: %+v (the rewrite is not complete)", v)
		}
		v, err := sl.VerifyAgainst(ctx, anchors)
		if err != nil {
			t.Fatal(err)
		}
		if v.OK || v.FirstBroken != 5 || !strings.Contains(v.Reason, "does not match its anchor") {
			t.Errorf("got %+v, want broken at the anchored record 5", v)
		}
	})

	// The anchors themselves cannot be deleted: compliance mode.
	out, err := st.Client.(*s3.Client).ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(st.Bucket)})
	if err != nil || len(out.Versions) == 0 {
		t.Fatalf("ListObjectVersions: %v", err)
	}
	v := out.Versions[0]
	_, err = st.Client.(*s3.Client).DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(st.Bucket), Key: v.Key, VersionId: v.VersionId})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "AccessDenied" {
		t.Errorf("deleting a locked anchor version: %v, want AccessDenied", err)
	}
}

// TestAnchorBucketMustBeLocked: a bucket without Object Lock is refused
// before any anchor is written there.
func TestAnchorBucketMustBeLocked(t *testing.T) {
	ctx := context.Background()
	moto := peertest.MotoForTest(t)
	cfg, _ := peertest.AccountConfigForTest(t, moto, "us-east-1")
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("plain")}); err != nil {
		t.Fatal(err)
	}
	st := &S3Anchors{Client: client, Bucket: "plain"}
	if err := st.Check(ctx); err == nil || !strings.Contains(err.Error(), "no Object Lock") {
		t.Errorf("Check on a plain bucket: %v, want it to say there is no Object Lock", err)
	}
}

// snapshot is a copy of a test database, to tamper with.
type snapshot struct{ db *store.DB }

func copyDB(t *testing.T, db *store.DB) snapshot {
	t.Helper()
	if db.Dialect() == store.Postgres {
		// A database of the test's own, holding the same trail.
		c := peertest.StoreForTest(t)
		for _, table := range []string{"audit_log", "audit_anchors"} {
			if _, err := c.Exec(`DELETE FROM ` + table); err != nil {
				t.Fatal(err)
			}
		}
		copyRows(t, db, c, `SELECT `+rowColumns+` FROM audit_log ORDER BY seq`, `INSERT INTO audit_log (`+rowColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, 11)
		copyRows(t, db, c, `SELECT seq, hash, location, anchored_at, retain_until FROM audit_anchors ORDER BY id`,
			`INSERT INTO audit_anchors (seq, hash, location, anchored_at, retain_until) VALUES (?, ?, ?, ?, ?)`, 5)
		return snapshot{db: c}
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	if _, err := db.Exec(`VACUUM INTO ?`, path); err != nil {
		t.Fatal(err)
	}
	c, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return snapshot{db: c}
}

// copyRows copies the rows of query (n columns) from one database to
// another with insert.
func copyRows(t *testing.T, from, to *store.DB, query, insert string, n int) {
	t.Helper()
	rows, err := from.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		vals := make([]any, n)
		ptrs := make([]any, n)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		if _, err := to.Exec(insert, vals...); err != nil {
			t.Fatal(err)
		}
	}
}

// log is a Log over the copy with l's keys.
func (s snapshot) log(l *Log) *Log { return NewKeyed(s.db, nil, l.Keys(), nil) }

// resealFrom rewrites record seq's details and re-seals it and every later
// record with the keys of ring, as someone holding the database and the key
// could.
func resealFrom(t *testing.T, db *store.DB, ring *Keyring, seq int64, details string) {
	t.Helper()
	rows, err := db.Query(`SELECT `+rowColumns+` FROM audit_log WHERE seq >= ? ORDER BY seq`, seq-1)
	if err != nil {
		t.Fatal(err)
	}
	var rs []row
	for rows.Next() {
		var r row
		if err := r.scanFrom(rows); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	rows.Close()
	prev := rs[0].hash
	for _, r := range rs[1:] {
		if r.seq == seq {
			r.details = details
		}
		r.prevHash = prev
		k, _ := ring.Get(r.keyID)
		r.hash = r.computeHash(hmac.New(sha256.New, k.Secret))
		if _, err := db.Exec(`UPDATE audit_log SET details = ?, prev_hash = ?, hash = ? WHERE seq = ?`, r.details, r.prevHash, r.hash, r.seq); err != nil {
			t.Fatal(err)
		}
		prev = r.hash
	}
}

// TestCreateAnchorBucketAgainKeepsAnchors: a sandbox restarted against the
// same moto finds its anchor bucket holding anchors; making it again keeps
// the bucket and its anchors instead of failing.
func TestCreateAnchorBucketAgainKeepsAnchors(t *testing.T) {
	ctx := context.Background()
	moto := peertest.MotoForTest(t)
	cfg, _ := peertest.AccountConfigForTest(t, moto, "eu-central-1")
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	const bucket = "audit-anchors-restarted"
	if err := CreateAnchorBucket(ctx, client, bucket, "eu-central-1", 1); err != nil {
		t.Fatal(err)
	}
	st := &S3Anchors{Client: client, Bucket: bucket}
	db, _ := openTestDB(t)
	l := New(db, nil)
	seed(t, l, 2)
	if _, ok, err := l.Anchor(ctx, st, 24*time.Hour, false); err != nil || !ok {
		t.Fatalf("Anchor: %v %v", ok, err)
	}
	if err := CreateAnchorBucket(ctx, client, bucket, "eu-central-1", 1); err != nil {
		t.Fatalf("CreateAnchorBucket on the existing bucket with an anchor: %v", err)
	}
	if err := st.Check(ctx); err != nil {
		t.Errorf("Check after making the bucket again: %v", err)
	}
	if anchors, err := st.List(ctx); err != nil || len(anchors) != 1 {
		t.Errorf("anchors after making the bucket again: %+v, %v; want the one anchor kept", anchors, err)
	}
}
