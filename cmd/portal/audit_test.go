package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"portal/internal/audit"
	"portal/internal/peers/peertest"
	"portal/internal/store"
)

func TestMain(m *testing.M) { peertest.Main(m) }

// portalData makes a data folder with a few keyed audit records (two
// accounts added), as `portal users add` leaves it.
func portalData(t *testing.T) (dir string) {
	t.Helper()
	dir = t.TempDir()
	for _, email := range []string{"ann@example.com", "bob@example.com"} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{"users", "add", "-data-dir", dir, "-email", email, "-role", "compliance"}, &out, &errOut); code != 0 {
			t.Fatalf("users add %s: exit %d, %s", email, code, errOut.String())
		}
	}
	return dir
}

// head returns the newest record of the trail in dir.
func head(t *testing.T, dir string) audit.Record {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(dir, "portal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs, _, err := audit.New(db, nil).List(context.Background(), audit.Filter{Limit: 1})
	if err != nil || len(recs) != 1 {
		t.Fatalf("head: %v %v", recs, err)
	}
	return recs[0]
}

func tamper(t *testing.T, dir, q string) {
	t.Helper()
	sdb, err := sql.Open("sqlite", filepath.Join(dir, "portal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	if _, err := sdb.Exec(q); err != nil {
		t.Fatal(err)
	}
}

func TestAuditVerifyCommand(t *testing.T) {
	dir := portalData(t)
	db := filepath.Join(dir, "portal.db")
	h := head(t, dir)
	tampered := portalData(t)
	tamper(t, tampered, `UPDATE audit_log SET target = 'x' WHERE seq = 1`)
	keyless := portalData(t)
	if err := os.Rename(filepath.Join(keyless, "audit.key"), filepath.Join(keyless, "audit.key.away")); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout []string
	}{
		{"unknown flag", []string{"--nope"}, 2, nil},
		{"missing database", []string{"-db", filepath.Join(t.TempDir(), "absent.db")}, 2, nil},
		{"bad anchor", []string{"-db", db, "-anchor", "x"}, 2, nil},
		{"intact", []string{"-db", db}, 0, []string{"intact", fmt.Sprintf("%d records", h.Seq), "sealed with key k1", h.Hash}},
		{"intact, by data folder", []string{"-data-dir", dir}, 0, []string{"intact"}},
		{"intact with anchor", []string{"-db", db, "-anchor", fmt.Sprintf("%d:%s", h.Seq, h.Hash)}, 0, []string{"intact"}},
		{"anchor hash differs", []string{"-db", db, "-anchor", fmt.Sprintf("%d:%s", h.Seq, strings.Repeat("b", 64))}, 1, []string{"BROKEN", "does not match its anchor"}},
		{"anchor beyond head", []string{"-db", db, "-anchor", "99:" + strings.Repeat("b", 64)}, 1, []string{"BROKEN", "holds record 99"}},
		{"tampered", []string{"-data-dir", tampered}, 1, []string{"BROKEN at record 1", "record 1: hash does not match"}},
		{"without the key", []string{"-data-dir", keyless}, 1, []string{"BROKEN at record 1", "not in the key ring"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"audit", "verify"}, tt.args...), &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("got exit %d, want %d (stdout %q, stderr %q)", code, tt.wantCode, stdout.String(), stderr.String())
			}
			for _, want := range tt.wantStdout {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("got stdout %q, want it to contain %q", stdout.String(), want)
				}
			}
			if tt.wantCode == 2 && stderr.Len() == 0 {
				t.Errorf("got empty stderr, want a usage or open error")
			}
			if n := strings.Count(stdout.String(), "\n"); tt.wantCode != 2 && n != 1 {
				t.Errorf("got %d stdout lines, want 1", n)
			}
		})
	}
}

// TestAuditRotateKey: rotating adds a key, records the rotation sealed with
// it, and the trail still verifies with the ring (and not without the old
// key).
func TestAuditRotateKey(t *testing.T) {
	ctx := context.Background()
	dir := portalData(t)
	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"audit", "rotate-key", "-data-dir", dir}, &out, &errOut); code != 0 {
		t.Fatalf("rotate-key: exit %d, %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "Added audit key k2") {
		t.Errorf("rotate-key printed %q", out.String())
	}
	if h := head(t, dir); h.Action != audit.ActionKeyRotated || h.KeyID != "k2" {
		t.Errorf("newest record %s sealed with %q, want %s sealed with k2", h.Action, h.KeyID, audit.ActionKeyRotated)
	}
	if code := run(ctx, []string{"users", "add", "-data-dir", dir, "-email", "cy@example.com", "-role", "ops"}, &out, &errOut); code != 0 {
		t.Fatalf("users add after rotation: exit %d, %s", code, errOut.String())
	}
	out.Reset()
	if code := run(ctx, []string{"audit", "verify", "-data-dir", dir}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "head sealed with key k2") {
		t.Errorf("verify after rotation: exit %d, %q", code, out.String())
	}
}

// TestAuditVerifyAnchors: with the anchor bucket (S3 Object Lock in an
// audit account, moto here), the chain verifies against its anchors across
// a key rotation, and verify catches the newest records deleted.
func TestAuditVerifyAnchors(t *testing.T) {
	ctx := context.Background()
	moto := peertest.MotoForTest(t)
	peertest.SetAWSEnv(t, moto)
	cfg, account := peertest.AccountConfigForTest(t, moto, "us-east-1")
	if err := audit.CreateAnchorBucket(ctx, s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }), "audit-anchors", "us-east-1", 1); err != nil {
		t.Fatal(err)
	}
	dir := portalData(t)
	db, err := store.Open(ctx, filepath.Join(dir, "portal.db"))
	if err != nil {
		t.Fatal(err)
	}
	ring, err := audit.LoadKeyFile(filepath.Join(dir, "audit.key"), false)
	if err != nil {
		t.Fatal(err)
	}
	log := audit.NewKeyed(db, time.Now, ring, nil)
	anchorArgs := []string{"-anchor-bucket", "audit-anchors", "-anchor-account-id", account, "-anchor-role-arn", "arn:aws:iam::" + account + ":role/" + peertest.TestRole}
	st := &audit.S3Anchors{Client: s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }), Bucket: "audit-anchors", Prefix: "portal/"}
	if _, ok, err := log.Anchor(ctx, st, time.Hour, false); err != nil || !ok {
		t.Fatalf("Anchor: %v %v", ok, err)
	}
	db.Close()

	var out, errOut bytes.Buffer
	if code := run(ctx, append([]string{"audit", "verify", "-data-dir", dir}, anchorArgs...), &out, &errOut); code != 0 || !strings.Contains(out.String(), "1 anchors checked") {
		t.Fatalf("verify against the anchors: exit %d, %q %q", code, out.String(), errOut.String())
	}
	// The key is rotated and the new head anchored: the records sealed
	// with k1 and the anchor taken under k1 still verify beside k2's.
	if code := run(ctx, []string{"audit", "rotate-key", "-data-dir", dir}, &out, &errOut); code != 0 {
		t.Fatalf("rotate-key: exit %d, %s", code, errOut.String())
	}
	if db, err = store.Open(ctx, filepath.Join(dir, "portal.db")); err != nil {
		t.Fatal(err)
	}
	if ring, err = audit.LoadKeyFile(filepath.Join(dir, "audit.key"), false); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := audit.NewKeyed(db, time.Now, ring, nil).Anchor(ctx, st, time.Hour, false); err != nil || !ok {
		t.Fatalf("Anchor after rotation: %v %v", ok, err)
	}
	db.Close()
	out.Reset()
	if code := run(ctx, append([]string{"audit", "verify", "-data-dir", dir}, anchorArgs...), &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "2 anchors checked") || !strings.Contains(out.String(), "head sealed with key k2") {
		t.Fatalf("verify against the anchors across a rotation: exit %d, %q %q", code, out.String(), errOut.String())
	}
	tamper(t, dir, `DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)`)
	out.Reset()
	if code := run(ctx, append([]string{"audit", "verify", "-data-dir", dir}, anchorArgs...), &out, &errOut); code != 1 || !strings.Contains(out.String(), "newest records were deleted") {
		t.Errorf("verify after deleting the newest record: exit %d, %q, want 1 naming the deletion", code, out.String())
	}
	out.Reset()
	if code := run(ctx, []string{"audit", "verify", "-data-dir", dir}, &out, &errOut); code != 0 {
		t.Errorf("without the anchors the shorter chain verifies: exit %d, %q (that is what anchors are for)", code, out.String())
	}
}
