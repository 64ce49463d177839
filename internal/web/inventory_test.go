package web_test

import (
	"context"
	"encoding/csv"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"portal/internal/audit"
	"portal/internal/engine"
	"portal/internal/inventory"
	"portal/internal/peers"
	"portal/internal/peers/peertest"
	"portal/internal/staff"
)

// invEstate is a portal whose dev, test and prod accounts are fresh moto
// accounts holding, in dev: the EU documents bucket of stack dev-eu (created
// by run #7 from blueprint version bp-1), a bucket made by hand in
// us-east-1, and a bucket tagged for dev-eu but made in us-east-1.
type invEstate struct {
	h                            *harness
	moto                         *peers.Moto
	dev                          string
	docs, byHand, misplaced, sfx string
}

func newInvEstate(t *testing.T) *invEstate {
	t.Helper()
	moto := peertest.MotoForTest(t)
	dev, tst, prod := peertest.AccountForTest(t), peertest.AccountForTest(t), peertest.AccountForTest(t)
	peertest.SetAWSEnv(t, moto)
	e := &invEstate{moto: moto, dev: dev, sfx: dev[:6]}
	e.docs = e.bucket(t, "eu-central-1", "docs-"+e.sfx, map[string]string{engine.TagStack: "dev-eu", engine.TagResource: "documents", engine.TagVersion: "v1"})
	e.byHand = e.bucket(t, "us-east-1", "by-hand-"+e.sfx, nil)
	e.misplaced = e.bucket(t, "us-east-1", "eu-in-us-"+e.sfx, map[string]string{engine.TagStack: "dev-eu", engine.TagResource: "stray"})
	e.h = newHarness(t, "-dev-account-id", dev, "-test-account-id", tst, "-prod-account-id", prod)
	for _, q := range []string{
		`INSERT INTO stack_resources (stack, resource_id, type, region, physical_id, updated_at) VALUES ('dev-eu', 'documents', 's3_bucket', 'eu-central-1', 'docs', '2026-01-01T00:00:00Z')`,
		`INSERT INTO plans (id, stack, kind, version, blueprint_version, hash, body, created_by, created_at) VALUES (1, 'dev-eu', 'apply', 'v1', 'bp-1', 'h', '{}', 'ops', '2026-01-01T00:00:00Z')`,
		`INSERT INTO runs (id, plan_id, stack, kind, version, state, created_by, created_at) VALUES (7, 1, 'dev-eu', 'apply', 'v1', 'succeeded', 'ops', '2026-01-01T00:00:00Z')`,
		`INSERT INTO run_steps (run_id, resource_id, type, region, action, state, position) VALUES (7, 'documents', 's3_bucket', 'eu-central-1', 'create', 'done', 0)`,
	} {
		if _, err := e.h.app.DB.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// bucket makes a bucket by hand in the dev account.
func (e *invEstate) bucket(t *testing.T, region, name string, tags map[string]string) string {
	t.Helper()
	ctx := context.Background()
	c := s3.NewFromConfig(peers.AssumeAccount(ctx, e.moto.AWSConfig(region), e.dev, peertest.TestRole))
	in := &s3.CreateBucketInput{Bucket: aws.String(name)}
	if region != "us-east-1" {
		in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)}
	}
	if _, err := c.CreateBucket(ctx, in); err != nil {
		t.Fatal(err)
	}
	if len(tags) > 0 {
		var ts []s3types.Tag
		for k, v := range tags {
			ts = append(ts, s3types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		if _, err := c.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String(name), Tagging: &s3types.Tagging{TagSet: ts}}); err != nil {
			t.Fatal(err)
		}
	}
	return "arn:aws:s3:::" + name
}

// waitDiscovery waits until a discovery newer than after has finished.
func (e *invEstate) waitDiscovery(t *testing.T, after int64) inventory.Snapshot {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		sn, err := e.h.app.Estate.Inventory.Latest(context.Background())
		if err == nil && sn.ID > after {
			return sn
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no discovery after #%d finished within 90s", after)
	return inventory.Snapshot{}
}

func rowByARN(t *testing.T, r *response, arn string) (class string, text string, ok bool) {
	t.Helper()
	sel := r.Doc(t).Find(`[data-testid="inventory-row"][data-arn="` + arn + `"]`)
	if sel.Length() == 0 {
		return "", "", false
	}
	class, _ = sel.Attr("class")
	return class, strings.Join(strings.Fields(sel.Text()), " "), true
}

// TestInventoryAcrossAccounts is the "done when": the scheduled
// discovery finds what was made by hand, flags it, links what the portal
// manages to its run and blueprint version; filters, API and CSV agree;
// an on-demand discovery is audited and its changes are listed.
func TestInventoryAcrossAccounts(t *testing.T) {
	e := newInvEstate(t)
	first := e.waitDiscovery(t, 0)
	if first.RequestedBy != "schedule" || first.State != inventory.Succeeded {
		t.Errorf("first discovery: got %s by %q, want succeeded by the schedule (errors %v)", first.State, first.RequestedBy, first.Errors)
	}
	ops, opsUser := e.h.signedIn(t, staff.Ops)

	r := ops.get(t, "/inventory")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET /inventory: got %d, want 200\n%s", r.StatusCode, r.Body)
	}
	class, text, ok := rowByARN(t, r, e.byHand)
	if !ok || !strings.Contains(class, "inv-unmanaged") || !strings.Contains(text, "Unmanaged") {
		t.Errorf("bucket made by hand: row %v class %q text %q, want highlighted as unmanaged", ok, class, text)
	}
	class, text, ok = rowByARN(t, r, e.misplaced)
	if !ok || !strings.Contains(class, "inv-violation") || !strings.Contains(text, "Residency violation") || !strings.Contains(text, "us-east-1, outside the EU regions") {
		t.Errorf("EU bucket in us-east-1: row %v class %q text %q, want flagged as a residency violation", ok, class, text)
	}
	doc := r.Doc(t)
	row := doc.Find(`[data-testid="inventory-row"][data-arn="` + e.docs + `"]`)
	if href, _ := row.Find(`[data-testid="managed-run"]`).Attr("href"); href != "/runs/7" {
		t.Errorf("managed bucket's run link: got %q, want /runs/7", href)
	}
	if href, _ := row.Find(`[data-testid="managed-version"]`).Attr("href"); href != "/blueprints/versions/bp-1" {
		t.Errorf("managed bucket's blueprint link: got %q, want /blueprints/versions/bp-1", href)
	}
	if href, _ := row.Find(`[data-testid="managed-stack"]`).Attr("href"); href != "/runs?stack=dev-eu" {
		t.Errorf("managed bucket's stack link: got %q, want /runs?stack=dev-eu", href)
	}
	if got, _ := r.TestID(t, "inventory-counts"); !strings.Contains(got, "3 S3") {
		t.Errorf("counts per service: got %q, want 3 S3", got)
	}

	// Filters.
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"managed=no", []string{e.byHand}},
		{"violations=1", []string{e.misplaced}},
		{"jurisdiction=eu&managed=yes", []string{e.docs, e.misplaced}},
		{"region=eu-central-1", []string{e.docs}},
		{"tag=" + url.QueryEscape("portal:resource=documents"), []string{e.docs}},
		{"environment=test", nil},
	} {
		r := ops.get(t, "/inventory?"+tc.query)
		var got []string
		r.Doc(t).Find(`[data-testid="inventory-row"]`).Each(func(_ int, s *goquery.Selection) {
			a, _ := s.Attr("data-arn")
			got = append(got, a)
		})
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("/inventory?%s: got %v, want %v", tc.query, got, tc.want)
		}
	}
	bad := ops.get(t, "/inventory?environment=staging&managed=maybe")
	if msg, ok := bad.TestID(t, "error-environment"); bad.StatusCode != http.StatusBadRequest || !ok || !strings.Contains(msg, "dev, test or prod") {
		t.Errorf("bad filter: got %d %q, want 400 naming the environment field", bad.StatusCode, msg)
	}

	// The resource page.
	rp := ops.get(t, "/inventory/resource?arn="+url.QueryEscape(e.misplaced))
	if msg, ok := rp.TestID(t, "residency-violation"); rp.StatusCode != http.StatusOK || !ok || !strings.Contains(msg, "outside the EU regions") {
		t.Errorf("resource page of the misplaced bucket: got %d %q", rp.StatusCode, msg)
	}

	// The Overview counts resources per service.
	ov := ops.get(t, "/")
	if got, ok := ov.TestID(t, "overview-inventory"); !ok || !strings.Contains(got, "3 S3") || !strings.Contains(got, "1 residency violation") {
		t.Errorf("overview inventory: got %q", got)
	}

	// API and CSV, with a compliance token.
	comp := e.h.newUser(t, staff.Compliance)
	tok := e.h.apiToken(t, comp.User)
	var page struct {
		Items []inventory.Resource `json:"items"`
		Total int                  `json:"total"`
	}
	ar := e.h.api(t, http.MethodGet, "/api/v1/inventory?violations=1", tok, "", "")
	ar.JSON(t, &page)
	if ar.StatusCode != http.StatusOK || page.Total != 1 || len(page.Items) != 1 || page.Items[0].ARN != e.misplaced || page.Items[0].Violation == "" {
		t.Errorf("API violations: got %d %+v", ar.StatusCode, page)
	}
	ar = e.h.api(t, http.MethodGet, "/api/v1/inventory?managed=perhaps", tok, "", "")
	var apiErr apiError
	ar.JSON(t, &apiErr)
	if ar.StatusCode != http.StatusBadRequest || apiErr.Error.Fields["managed"] == "" {
		t.Errorf("API bad filter: got %d %+v, want 400 naming managed", ar.StatusCode, apiErr)
	}
	cr := e.h.api(t, http.MethodGet, "/api/v1/inventory/export.csv?environment=dev", tok, "", "")
	recs, err := csv.NewReader(strings.NewReader(cr.Body)).ReadAll()
	if err != nil || cr.StatusCode != http.StatusOK || len(recs) != 4 || recs[0][0] != "arn" {
		t.Errorf("CSV export: got %d, %d lines (%v), want header and 3 rows", cr.StatusCode, len(recs), err)
	}
	if ct := cr.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Errorf("CSV content type: got %q", ct)
	}
	pc := e.h.client()
	pc.signIn(t, comp, "/")
	if r := pc.get(t, "/inventory"); strings.Contains(r.Body, `data-testid="inventory-discover"`) {
		t.Error("compliance sees the Discover button; compliance is read-only")
	}

	// On demand: a new bucket appears, the discovery is audited, and the
	// changes page lists the addition.
	added := e.bucket(t, "eu-west-1", "added-"+e.sfx, nil)
	dr := ops.submit(t, "/inventory", "/inventory/discover", nil)
	if dr.StatusCode != http.StatusSeeOther || dr.Location() != "/inventory" {
		t.Fatalf("POST /inventory/discover: got %d to %q, want 303 to /inventory\n%s", dr.StatusCode, dr.Location(), dr.Body)
	}
	second := e.waitDiscovery(t, first.ID)
	if second.RequestedBy != opsUser.Label() {
		t.Errorf("second discovery requested by %q, want %q", second.RequestedBy, opsUser.Label())
	}
	recsA := e.h.records(t, audit.Filter{Action: "inventory.discover"})
	if len(recsA) != 1 || recsA[0].Actor != opsUser.Label() {
		t.Errorf("audit of the request: got %+v, want one inventory.discover by %s", recsA, opsUser.Label())
	}
	chg := ops.get(t, "/inventory/changes")
	added1 := chg.Doc(t).Find(`[data-testid="changes-added"] [data-arn="` + added + `"]`)
	if chg.StatusCode != http.StatusOK || added1.Length() != 1 {
		t.Errorf("changes: got %d, added %s listed %d times, want once\n%s", chg.StatusCode, added, added1.Length(), chg.Body)
	}
	if got, _ := chg.TestID(t, "changes-summary"); !strings.Contains(got, "1 added, 0 removed, 0 changed") {
		t.Errorf("changes summary: got %q", got)
	}
}

// TestInventoryWithoutAWS checks the pages say what will appear and how
// when no AWS account is configured.
func TestInventoryWithoutAWS(t *testing.T) {
	h := newHarness(t)
	ops, _ := h.signedIn(t, staff.Ops)
	r := ops.get(t, "/inventory")
	if got, ok := r.TestID(t, "empty"); r.StatusCode != http.StatusOK || !ok || !strings.Contains(got, "AWS is not configured") {
		t.Errorf("GET /inventory without AWS: got %d %q, want the empty state saying AWS is not configured", r.StatusCode, got)
	}
	dr := ops.submit(t, "/inventory", "/inventory/discover", nil)
	if dr.StatusCode != http.StatusConflict || !strings.Contains(dr.Body, "not configured") {
		t.Errorf("POST /inventory/discover without AWS: got %d, want 409 saying AWS is not configured", dr.StatusCode)
	}
	ov := ops.get(t, "/")
	if got, ok := ov.TestID(t, "overview-inventory"); !ok || !strings.Contains(got, "Nothing discovered yet") {
		t.Errorf("overview without a discovery: got %q", got)
	}
	fin, _ := h.signedIn(t, staff.Finance)
	if got := fin.get(t, "/"); strings.Contains(got.Body, "overview-inventory") {
		t.Error("finance sees inventory counts on the overview; the inventory is for ops, compliance and admins")
	}
}
