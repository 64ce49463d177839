package versions_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	shipped "portal/blueprints"
	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/guardrails"
	"portal/internal/peers/peertest"
	"portal/internal/store"
	"portal/internal/versions"
	"portal/internal/workflows"
)

// The provisioning workflows read versions and exceptions through this.
var _ workflows.Blueprints = (*versions.Service)(nil)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func TestMain(m *testing.M) { peertest.Main(m) }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	db    *store.DB
	audit *audit.Log
	svc   *versions.Service
	clock *clock
	first versions.Version
}

var ops = audit.Entry{Actor: "user:7 olga@example.com", SourceIP: "192.0.2.1", RequestID: "req-1"}

// newFixture opens a fresh database and imports the shipped blueprints as
// the first version.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	db := peertest.StoreForTest(t)
	clk := &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	log := audit.New(db, clk.Now)
	f := &fixture{db: db, audit: log, svc: versions.New(db, log, clk.Now), clock: clk}
	v, created, err := f.svc.Import(ctx, audit.Entry{Actor: "system"}, shipped.FS, "Shipped blueprints")
	if err != nil {
		t.Fatalf("import shipped blueprints: %v", err)
	}
	if !created || v.Seq != 1 || v.Parent != "" || v.Author != "system" {
		t.Fatalf("import: got %+v created=%v, want version 1 by system without parent", v, created)
	}
	f.first = v
	return f
}

// shippedFile returns a shipped file's content with old replaced by new
// (which must occur exactly once).
func shippedFile(t *testing.T, path, old, new string) []byte {
	t.Helper()
	files, err := versions.ReadFS(shipped.FS)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Path == path {
			if n := strings.Count(string(f.Content), old); n != 1 {
				t.Fatalf("%s holds %q %d times, want once", path, old, n)
			}
			return []byte(strings.Replace(string(f.Content), old, new, 1))
		}
	}
	t.Fatalf("no shipped file %s", path)
	return nil
}

// shippedLine returns the 1-based line of a shipped file holding sub.
func shippedLine(t *testing.T, path, sub string) int {
	t.Helper()
	b, err := shipped.FS.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, sub) {
			return i + 1
		}
	}
	t.Fatalf("%s has no line with %q", path, sub)
	return 0
}

func (f *fixture) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	if err := f.db.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

const prodEU = "stacks/prod-eu.yaml"

func TestSaveIsContentAddressed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()

	// A comment changes the bytes but not the content: same version.
	commented := shippedFile(t, prodEU, "  asg:\n", "  # scaled for the spring campaign\n  asg:\n")
	v, created, err := f.svc.Save(ctx, ops, versions.Draft{Message: "comment only", Files: []versions.File{{Path: prodEU, Content: commented}}})
	if err != nil {
		t.Fatal(err)
	}
	if created || v.ID != f.first.ID {
		t.Errorf("saving the same content: got version %s created=%v, want the existing %s", v.Short(), created, f.first.Short())
	}
	if got := f.count(t, "blueprint_versions"); got != 1 {
		t.Errorf("versions stored: got %d, want 1", got)
	}

	// A changed value is a new version whose parent is the one edited.
	changed := shippedFile(t, prodEU, "    max: 9\n", "    max: 12\n")
	v2, created, err := f.svc.Save(ctx, ops, versions.Draft{Base: f.first.ID, Message: "prod-eu: allow 12 instances", Files: []versions.File{{Path: prodEU, Content: changed}}})
	if err != nil {
		t.Fatal(err)
	}
	if !created || v2.Seq != 2 || v2.Parent != f.first.ID || v2.Author != ops.Actor || v2.Message != "prod-eu: allow 12 instances" {
		t.Errorf("new version: got %+v created=%v", v2, created)
	}
	if len(v2.ID) != 64 || v2.ID == f.first.ID {
		t.Errorf("new version id %q, want a new 64-character digest", v2.ID)
	}
	got, err := f.svc.File(ctx, v2.ID, prodEU)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Content) != string(changed) {
		t.Errorf("stored bytes differ from the bytes saved")
	}
	old, err := f.svc.File(ctx, f.first.ID, prodEU)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(old.Content), "max: 12") {
		t.Errorf("saving a new version changed the old one")
	}
	// Unchanged files are stored once.
	if want := len(versions.Paths()) + 1; f.count(t, "blueprint_blobs") != want {
		t.Errorf("blobs stored: got %d, want %d (%d shipped + 1 changed)", f.count(t, "blueprint_blobs"), want, len(versions.Paths()))
	}

	// Saving the same change again returns it, unaudited.
	again, created, err := f.svc.Save(ctx, ops, versions.Draft{Message: "again", Files: []versions.File{{Path: prodEU, Content: changed}}})
	if err != nil || created || again.ID != v2.ID {
		t.Errorf("saving again: got %s created=%v err=%v, want %s unchanged", again.Short(), created, err, v2.Short())
	}
	recs, _, err := f.audit.List(ctx, audit.Filter{Action: "blueprint.version.create", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("audit records of version saves: got %d, want 2 (import and one change)", len(recs))
	}
	if recs[0].Actor != ops.Actor || recs[0].RequestID != "req-1" || recs[0].Details["version"] != v2.ID || recs[0].Details["parent"] != f.first.ID {
		t.Errorf("audit record: got %+v", recs[0])
	}
	if diff := cmp.Diff([]any{prodEU}, recs[0].Details["changed_files"]); diff != "" {
		t.Errorf("audited changed files (-want +got):\n%s", diff)
	}

	list, more, err := f.svc.List(ctx, versions.ListFilter{Limit: 1})
	if err != nil || more != true || len(list) != 1 || list[0].ID != v2.ID {
		t.Errorf("List(limit 1): got %v more=%v err=%v, want [%s] and more", list, more, err, v2.Short())
	}
	list, more, err = f.svc.List(ctx, versions.ListFilter{BeforeSeq: list[0].Seq})
	if err != nil || more || len(list) != 1 || list[0].ID != f.first.ID {
		t.Errorf("List(before 2): got %v more=%v err=%v, want [%s]", list, more, err, f.first.Short())
	}
	if byPrefix, err := f.svc.Get(ctx, v2.ID[:10]); err != nil || byPrefix.ID != v2.ID {
		t.Errorf("Get(prefix): got %s, %v; want %s", byPrefix.Short(), err, v2.Short())
	}
	if _, err := f.svc.Get(ctx, strings.Repeat("0", 64)); apperr.KindOf(err) != apperr.NotFound || !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(unknown): got %v, want not found", err)
	}
}

func TestVersionsAreImmutable(t *testing.T) {
	f := newFixture(t)
	for _, q := range []string{
		`UPDATE blueprint_versions SET message = 'rewritten'`,
		`DELETE FROM blueprint_versions`,
		`UPDATE blueprint_files SET sha256 = 'x'`,
		`DELETE FROM blueprint_files`,
		`UPDATE blueprint_blobs SET content = 'x'`,
	} {
		if _, err := f.db.Exec(q); err == nil || !strings.Contains(err.Error(), "immutable") {
			t.Errorf("%s: got %v, want refused as immutable", q, err)
		}
	}
}

// refuse saves content and checks it is refused with nothing written.
func (f *fixture) refuse(t *testing.T, files ...versions.File) *versions.Rejection {
	t.Helper()
	ctx := context.Background()
	before, beforeAudit := f.count(t, "blueprint_versions"), f.count(t, "audit_log")
	_, _, err := f.svc.Save(ctx, ops, versions.Draft{Message: "bad change", Files: files})
	var rej *versions.Rejection
	if !errors.As(err, &rej) {
		t.Fatalf("Save: got %v, want a *Rejection", err)
	}
	if apperr.KindOf(err) != apperr.Invalid {
		t.Errorf("rejection kind: got %s, want invalid", apperr.KindOf(err))
	}
	if got := f.count(t, "blueprint_versions"); got != before {
		t.Errorf("versions after a refused save: got %d, want %d", got, before)
	}
	if got := f.count(t, "audit_log"); got != beforeAudit {
		t.Errorf("audit records after a refused save: got %d, want %d", got, beforeAudit)
	}
	return rej
}

func TestInvalidContentIsNeverSaved(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name    string
		content []byte
		want    []string // diagnostics as compilers print them
	}{
		{"over the RDS maximum", shippedFile(t, prodEU, "backup_retention_days: 35", "backup_retention_days: 40"),
			[]string{fmt.Sprintf("stacks/prod-eu.yaml:%d:5: params.db.backup_retention_days: maximum: got 40, want 35", shippedLine(t, prodEU, "backup_retention_days:"))}},
		{"broken YAML", shippedFile(t, prodEU, "  asg:\n", "  asg: [\n"), nil},
		{"stack renamed", shippedFile(t, prodEU, "stack: prod-eu", "stack: prod-us"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rej := f.refuse(t, versions.File{Path: prodEU, Content: tt.content})
			if len(rej.Diagnostics) == 0 {
				t.Fatal("no diagnostics")
			}
			for _, d := range rej.Diagnostics {
				if d.File != prodEU || d.Line == 0 {
					t.Errorf("diagnostic %s: want it in %s with a line", d, prodEU)
				}
			}
			if tt.want != nil {
				var got []string
				for _, d := range rej.Diagnostics {
					got = append(got, d.String())
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("diagnostics (-want +got):\n%s", diff)
				}
			}
		})
	}
	t.Run("unknown path", func(t *testing.T) {
		_, _, err := f.svc.Save(context.Background(), ops, versions.Draft{Message: "x", Files: []versions.File{{Path: "stacks/prod-mars.yaml", Content: []byte("kind: stack")}}})
		if apperr.KindOf(err) != apperr.Invalid || !strings.Contains(apperr.FieldsOf(err)["files"], "prod-mars") {
			t.Errorf("got %v, want invalid naming the file", err)
		}
	})
	t.Run("message required", func(t *testing.T) {
		_, _, err := f.svc.Save(context.Background(), ops, versions.Draft{Files: []versions.File{{Path: prodEU, Content: []byte("x")}}})
		if apperr.FieldsOf(err)["message"] == "" {
			t.Errorf("got %v, want the message required", err)
		}
	})
}

// movedReplica moves the documents replica of every stack with a standby
// to us-east-1: regions come from the catalogue, so only an architecture
// edit can move data.
var movedReplica = [2]string{
	"    region: ${stack.standby_region}\n    name: ${param.name_prefix}-documents-replica",
	"    region: us-east-1\n    name: ${param.name_prefix}-documents-replica",
}

func TestBlockingGuardrailRefusesSave(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, path, old, new string
		rule, citation, line string
	}{
		{"backups kept 3 days", prodEU, "backup_retention_days: 35", "backup_retention_days: 3", "rds-backup-retention", "GDPR Art. 32(1)(c)",
			fmt.Sprintf("stacks/prod-eu.yaml:%d", shippedLine(t, prodEU, "backup_retention_days:"))},
		{"documents replicated to the US", versions.ArchitecturePath, movedReplica[0], movedReplica[1], "data-residency", "GDPR Art. 44",
			fmt.Sprintf("architecture.yaml:%d", shippedLine(t, versions.ArchitecturePath, "name: ${param.name_prefix}-documents-replica")-1)},
		// The app's egress to the database removed: the path to the
		// database is broken (a "will it work" rule, blocking in prod),
		// pointed at the group that should open it.
		{"database egress removed", versions.ArchitecturePath, "      - {protocol: tcp, from_port: 5432, to_port: 5432, source: \"${ref.db_sg.id}\", description: the database}\n", "",
			"works-network", "GDPR Art. 32(1)(b)",
			fmt.Sprintf("architecture.yaml:%d", shippedLine(t, versions.ArchitecturePath, "  app_egress_sg:")+5)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rej := f.refuse(t, versions.File{Path: tt.path, Content: shippedFile(t, tt.path, tt.old, tt.new)})
			if len(rej.Diagnostics) != 0 {
				t.Errorf("diagnostics: got %v, want none (the content is valid)", rej.Diagnostics)
			}
			if len(rej.Blocking) == 0 {
				t.Fatal("no blocking findings")
			}
			i := slices.IndexFunc(rej.Blocking, func(b versions.Finding) bool { return b.Stack == "prod-eu" && b.RuleID == tt.rule })
			if i < 0 {
				t.Fatalf("no %s finding for prod-eu among %v", tt.rule, rej.Blocking)
			}
			b := rej.Blocking[i]
			if tt.rule == "works-network" && !strings.Contains(b.Message, "app_asg -> db (prod-eu, eu-central-1) :5432 fails") {
				t.Errorf("finding %q does not name the broken hop", b.Message)
			}
			if b.Citation != tt.citation || b.Explanation == "" {
				t.Errorf("finding: got citation %q, want %q with an explanation", b.Citation, tt.citation)
			}
			if got := b.File + ":" + strconv.Itoa(b.Line); got != tt.line {
				t.Errorf("finding at %s, want %s", got, tt.line)
			}
		})
	}
}

func TestExceptionsCoverAndExpire(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	short := shippedFile(t, prodEU, "backup_retention_days: 35", "backup_retention_days: 3")
	rej := f.refuse(t, versions.File{Path: prodEU, Content: short})
	res := rej.Blocking[0]

	now := f.clock.Now()
	bad := []struct {
		name  string
		n     versions.NewException
		field string
	}{
		{"unknown rule", versions.NewException{RuleID: "no-such-rule", Stack: "prod-eu", Owner: "Olga", Reason: "r", Expires: now.Add(time.Hour)}, "rule_id"},
		{"unknown stack", versions.NewException{RuleID: res.RuleID, Stack: "prod-mars", Owner: "Olga", Reason: "r", Expires: now.Add(time.Hour)}, "stack"},
		{"no owner", versions.NewException{RuleID: res.RuleID, Stack: "prod-eu", Reason: "r", Expires: now.Add(time.Hour)}, "owner"},
		{"no reason", versions.NewException{RuleID: res.RuleID, Stack: "prod-eu", Owner: "Olga", Expires: now.Add(time.Hour)}, "reason"},
		{"no expiry", versions.NewException{RuleID: res.RuleID, Stack: "prod-eu", Owner: "Olga", Reason: "r"}, "expires"},
		{"expired", versions.NewException{RuleID: res.RuleID, Stack: "prod-eu", Owner: "Olga", Reason: "r", Expires: now.Add(-time.Minute)}, "expires"},
		{"too long", versions.NewException{RuleID: res.RuleID, Stack: "prod-eu", Owner: "Olga", Reason: "r", Expires: now.Add(91 * 24 * time.Hour)}, "expires"},
		{"unknown resource", versions.NewException{RuleID: res.RuleID, Stack: "prod-eu", Resource: "no_such_db", Owner: "Olga", Reason: "r", Expires: now.Add(time.Hour)}, "resource"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.CreateException(ctx, ops, tt.n)
			if apperr.KindOf(err) != apperr.Invalid || apperr.FieldsOf(err)[tt.field] == "" {
				t.Errorf("got %v, want invalid %s", err, tt.field)
			}
		})
	}

	e, err := f.svc.CreateException(ctx, ops, versions.NewException{RuleID: res.RuleID, Stack: "prod-eu", Resource: res.Resource,
		Owner: "Olga Ops", Reason: "Restore drill needs short retention for a week", Expires: now.Add(7 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	v, created, err := f.svc.Save(ctx, ops, versions.Draft{Message: "short backups for the drill", Files: []versions.File{{Path: prodEU, Content: short}}})
	if err != nil || !created {
		t.Fatalf("save covered by an exception: got created=%v err=%v", created, err)
	}
	rep, _, err := f.svc.Report(ctx, v.ID, "prod-eu")
	if err != nil {
		t.Fatal(err)
	}
	if got := statusOf(rep, res.RuleID); got != guardrails.Excepted {
		t.Errorf("%s while excepted: got %s, want excepted", res.RuleID, got)
	}

	// Eight days later the exception has expired: the rule fails again.
	f.clock.Advance(8 * 24 * time.Hour)
	rep, _, err = f.svc.Report(ctx, v.ID, "prod-eu")
	if err != nil {
		t.Fatal(err)
	}
	if got := statusOf(rep, res.RuleID); got != guardrails.Fail {
		t.Errorf("%s after expiry: got %s, want fail", res.RuleID, got)
	}
	list, err := f.svc.ListExceptions(ctx, versions.ExceptionFilter{Stack: "prod-eu"})
	if err != nil || len(list) != 1 || list[0].State(f.clock.Now()) != versions.ExceptionExpired {
		t.Errorf("exceptions after expiry: got %+v, %v; want one expired", list, err)
	}
	if inForce, _ := f.svc.ListExceptions(ctx, versions.ExceptionFilter{InForce: true}); len(inForce) != 0 {
		t.Errorf("in force after expiry: got %d, want 0", len(inForce))
	}

	// A revoked exception stops applying at once, and is revoked once.
	e2, err := f.svc.CreateException(ctx, ops, versions.NewException{RuleID: res.RuleID, Stack: "prod-eu", Resource: res.Resource,
		Owner: "Olga Ops", Reason: "Second drill", Expires: f.clock.Now().Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if rep, _, _ = f.svc.Report(ctx, v.ID, "prod-eu"); statusOf(rep, res.RuleID) != guardrails.Excepted {
		t.Errorf("second exception does not apply")
	}
	if _, err := f.svc.RevokeException(ctx, ops, e2.ID); err != nil {
		t.Fatal(err)
	}
	if rep, _, _ = f.svc.Report(ctx, v.ID, "prod-eu"); statusOf(rep, res.RuleID) != guardrails.Fail {
		t.Errorf("revoked exception still applies")
	}
	if _, err := f.svc.RevokeException(ctx, ops, e2.ID); apperr.KindOf(err) != apperr.Conflict {
		t.Errorf("revoking twice: got %v, want conflict", err)
	}
	for _, action := range []string{"guardrail.exception.create", "guardrail.exception.revoke"} {
		recs, _, err := f.audit.List(ctx, audit.Filter{Action: action, Limit: 10})
		if err != nil || len(recs) == 0 || recs[0].Actor != ops.Actor {
			t.Errorf("audit %s: got %v, %v", action, recs, err)
		}
	}
	_ = e
}

func statusOf(r guardrails.Report, rule string) guardrails.Status {
	for _, res := range r.Results {
		if res.RuleID == rule {
			return res.Status
		}
	}
	return ""
}

func TestDiff(t *testing.T) {
	type line struct {
		op       versions.Op
		old, new int
		text     string
	}
	tests := []struct {
		name     string
		old, new string
		want     []line
	}{
		{"same", "a\nb\n", "a\nb\n", []line{{versions.Equal, 1, 1, "a"}, {versions.Equal, 2, 2, "b"}}},
		{"changed middle", "a\nb\nc\n", "a\nB\nc\n", []line{{versions.Equal, 1, 1, "a"}, {versions.Delete, 2, 0, "b"}, {versions.Insert, 0, 2, "B"}, {versions.Equal, 3, 3, "c"}}},
		{"added at end", "a\n", "a\nb\n", []line{{versions.Equal, 1, 1, "a"}, {versions.Insert, 0, 2, "b"}}},
		{"removed at start", "a\nb\n", "b\n", []line{{versions.Delete, 1, 0, "a"}, {versions.Equal, 2, 1, "b"}}},
		{"from nothing", "", "x\n", []line{{versions.Insert, 0, 1, "x"}}},
		{"moved", "a\nb\nc\nd\n", "a\nc\nb\nd\n", []line{{versions.Equal, 1, 1, "a"}, {versions.Delete, 2, 0, "b"}, {versions.Equal, 3, 2, "c"}, {versions.Insert, 0, 3, "b"}, {versions.Equal, 4, 4, "d"}}},
		{"crlf", "a\r\nb\r\n", "a\nb\n", []line{{versions.Equal, 1, 1, "a"}, {versions.Equal, 2, 2, "b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []line
			for _, d := range versions.Diff([]byte(tt.old), []byte(tt.new)) {
				got = append(got, line{d.Op, d.OldLine, d.NewLine, d.Text})
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(line{})); diff != "" {
				t.Errorf("Diff (-want +got):\n%s", diff)
			}
		})
	}
}

// TestResidencyExceptionInProdNeedsCompliance: an exception to a residency
// or encryption rule in prod is not in force until a compliance officer
// other than its author approves it; elsewhere, and for other rules, it
// takes effect when recorded.
func TestResidencyExceptionInProdNeedsCompliance(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := f.clock.Now()
	inForce := func(stack string) []string {
		t.Helper()
		exc, err := f.svc.Exceptions(ctx, stack)
		if err != nil {
			t.Fatal(err)
		}
		var rules []string
		for _, e := range exc {
			rules = append(rules, e.RuleID)
		}
		return rules
	}
	e, err := f.svc.CreateException(ctx, ops, versions.NewException{RuleID: "data-residency", Stack: "prod-eu", Owner: "Olga Ops",
		Reason: "A one-week copy of documents to the US for a court order", Expires: now.Add(7 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if !e.NeedsApproval || e.State(now) != versions.ExceptionAwaiting {
		t.Fatalf("residency exception in prod: got needs approval %v, state %s, want awaiting approval", e.NeedsApproval, e.State(now))
	}
	if got := inForce("prod-eu"); slices.Contains(got, "data-residency") {
		t.Errorf("exceptions in force before approval: got %v, want no data-residency", got)
	}
	if list, _ := f.svc.ListExceptions(ctx, versions.ExceptionFilter{Awaiting: true}); len(list) != 1 || list[0].ID != e.ID {
		t.Errorf("awaiting approval: got %+v, want exception %d", list, e.ID)
	}
	clara := audit.Entry{Actor: "user:9 clara@example.com"}
	for _, tc := range []struct {
		name  string
		by    audit.Entry
		roles []string
		want  apperr.Kind
	}{
		{"ops", audit.Entry{Actor: "user:8 otto@example.com"}, []string{"ops", "admin"}, apperr.Forbidden},
		{"its author, also compliance", ops, []string{"ops", "compliance"}, apperr.Forbidden},
	} {
		if _, err := f.svc.ApproveException(ctx, tc.by, tc.roles, e.ID); apperr.KindOf(err) != tc.want {
			t.Errorf("%s approving: got %v, want %s", tc.name, err, tc.want)
		}
	}
	approved, err := f.svc.ApproveException(ctx, clara, []string{"compliance"}, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if approved.ApprovedBy != clara.Actor || approved.State(now) != versions.ExceptionActive {
		t.Errorf("after approval: got %+v, want active, approved by %s", approved, clara.Actor)
	}
	if got := inForce("prod-eu"); !slices.Contains(got, "data-residency") {
		t.Errorf("exceptions in force after approval: got %v, want data-residency", got)
	}
	if _, err := f.svc.ApproveException(ctx, clara, []string{"compliance"}, e.ID); apperr.KindOf(err) != apperr.Conflict {
		t.Errorf("approving twice: got %v, want conflict", err)
	}
	if recs, _, err := f.audit.List(ctx, audit.Filter{Action: "guardrail.exception.approve", Limit: 5}); err != nil || len(recs) != 1 || recs[0].Actor != clara.Actor {
		t.Errorf("audit of the approval: got %+v, %v", recs, err)
	}
	// Outside prod, or for another rule, it takes effect when recorded.
	for _, n := range []versions.NewException{
		{RuleID: "data-residency", Stack: "test-eu", Owner: "Olga Ops", Reason: "test copy", Expires: now.Add(time.Hour)},
		{RuleID: "prod-alarms", Stack: "prod-eu", Owner: "Olga Ops", Reason: "alarms come next week", Expires: now.Add(time.Hour)},
	} {
		e, err := f.svc.CreateException(ctx, ops, n)
		if err != nil || e.NeedsApproval || e.State(now) != versions.ExceptionActive {
			t.Errorf("exception to %s in %s: got %+v, %v, want active at once", n.RuleID, n.Stack, e, err)
		}
	}
}
