package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	shipped "portal/blueprints"
	"portal/internal/audit"
	"portal/internal/staff"
	"portal/internal/versions"
)

const prodEUPath = "stacks/prod-eu.yaml"

// shippedProdEU returns the shipped prod-eu parameters with old replaced by
// new (which must occur once).
func shippedProdEU(t *testing.T, old, new string) string {
	t.Helper()
	b, err := shipped.FS.ReadFile(prodEUPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), old); n != 1 {
		t.Fatalf("%s holds %q %d times, want once", prodEUPath, old, n)
	}
	return strings.Replace(string(b), old, new, 1)
}

// movedReplica moves the documents replica of every stack with a standby
// to us-east-1: regions come from the catalogue, so only the architecture
// can move data.
var movedReplica = [2]string{
	"    region: ${stack.standby_region}\n    name: ${param.name_prefix}-documents-replica",
	"    region: us-east-1\n    name: ${param.name_prefix}-documents-replica",
}

// shippedArchitecture returns the shipped architecture with old replaced by new.
func shippedArchitecture(t *testing.T, old, new string) string {
	t.Helper()
	b, err := shipped.FS.ReadFile("architecture.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), old); n != 1 {
		t.Fatalf("architecture.yaml holds %q %d times, want once", old, n)
	}
	return strings.Replace(string(b), old, new, 1)
}

// shippedLine returns the 1-based line of the shipped prod-eu file holding sub.
func shippedLine(t *testing.T, sub string) int {
	t.Helper()
	b, err := shipped.FS.ReadFile(prodEUPath)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, sub) {
			return i + 1
		}
	}
	t.Fatalf("%s has no line with %q", prodEUPath, sub)
	return 0
}

func (h *harness) versionCount(t *testing.T) int {
	t.Helper()
	list, _, err := h.app.Versions.List(context.Background(), versions.ListFilter{Limit: versions.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}

func texts(d *goquery.Document, sel string) []string {
	var out []string
	d.Find(sel).Each(func(_ int, s *goquery.Selection) { out = append(out, strings.TrimSpace(s.Text())) })
	return out
}

func anyContains(xs []string, sub string) bool {
	for _, x := range xs {
		if strings.Contains(x, sub) {
			return true
		}
	}
	return false
}

// TestOpsEditsEUProdParameters is the story: ops open the EU prod
// parameters, preview a change as a diff, save it as a new version, and are
// refused with line, rule and citation when a change breaks the law.
func TestOpsEditsEUProdParameters(t *testing.T) {
	h := newHarness(t)
	c, u := h.signedIn(t, staff.Ops)
	first, err := h.app.Versions.Latest(context.Background())
	if err != nil {
		t.Fatalf("the shipped blueprints were not imported: %v", err)
	}

	list := c.get(t, "/blueprints")
	if list.StatusCode != http.StatusOK {
		t.Fatalf("GET /blueprints: got %d", list.StatusCode)
	}
	if rows := texts(list.Doc(t), `[data-testid=version-row]`); len(rows) != 1 || !strings.Contains(rows[0], "Shipped blueprints") {
		t.Errorf("history: got %q, want the one shipped version", rows)
	}

	edit := c.get(t, "/blueprints/new?file="+url.QueryEscape(prodEUPath))
	if edit.StatusCode != http.StatusOK {
		t.Fatalf("GET /blueprints/new: got %d\n%s", edit.StatusCode, edit.Body)
	}
	if got, _ := edit.TestID(t, "editor"); !strings.Contains(got, "backup_retention_days: 35") {
		t.Fatalf("the editor does not hold the prod-eu parameters:\n%s", got)
	}
	ed := edit.Doc(t).Find(`[data-testid=editor]`)
	if sc, _ := ed.Attr("spellcheck"); sc != "false" {
		t.Errorf("editor spellcheck=%q, want false", sc)
	}
	form := func(content, message string) url.Values {
		return url.Values{"base": {first.ID}, "path": {prodEUPath}, "content": {content}, "message": {message}}
	}

	t.Run("preview shows the diff", func(t *testing.T) {
		r := c.submit(t, "/blueprints/new", "/blueprints/preview", form(shippedProdEU(t, "    max: 9\n", "    max: 12\n"), ""))
		if r.StatusCode != http.StatusOK {
			t.Fatalf("preview: got %d\n%s", r.StatusCode, r.Body)
		}
		d := r.Doc(t)
		if old, new := texts(d, `[data-testid=diff-old]`), texts(d, `[data-testid=diff-new]`); len(old) != 1 || old[0] != "max: 9" || len(new) != 1 || new[0] != "max: 12" {
			t.Errorf("diff: got old %q new %q, want max: 9 -> max: 12", old, new)
		}
		if m := texts(d, `[data-testid=diff-removed-marker]`); len(m) != 1 || !strings.HasPrefix(m[0], "-") {
			t.Errorf("removed marker: got %q, want a - (not colour alone)", m)
		}
		if m := texts(d, `[data-testid=diff-added-marker]`); len(m) != 1 || !strings.HasPrefix(m[0], "+") {
			t.Errorf("added marker: got %q, want a +", m)
		}
		if _, ok := r.TestID(t, "preview-ok"); !ok {
			t.Errorf("a valid change does not say it can be saved")
		}
		if h.versionCount(t) != 1 {
			t.Errorf("a preview saved a version")
		}
	})

	t.Run("an invalid value is shown at its line and not saved", func(t *testing.T) {
		r := c.submit(t, "/blueprints/new", "/blueprints/versions", form(shippedProdEU(t, "backup_retention_days: 35", "backup_retention_days: 40"), "keep backups 40 days"))
		if r.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("save: got %d, want 422", r.StatusCode)
		}
		d := r.Doc(t)
		line := shippedLine(t, "backup_retention_days:")
		if pos, want := texts(d, `[data-testid=diagnostic-position]`), fmt.Sprintf("stacks/prod-eu.yaml:%d:5", line); len(pos) != 1 || pos[0] != want {
			t.Errorf("diagnostic positions: got %q, want [%s]", pos, want)
		}
		if msgs := texts(d, `[data-testid=diagnostic]`); !anyContains(msgs, "maximum: got 40, want 35") || !anyContains(msgs, "backup_retention_days: 40") {
			t.Errorf("diagnostic: got %q, want the message and the offending line", msgs)
		}
		if marked := d.Find(`.gutter .mark`).Text(); marked != strconv.Itoa(line) {
			t.Errorf("gutter marks line %q, want %d", marked, line)
		}
		if got, _ := r.TestID(t, "editor"); !strings.Contains(got, "backup_retention_days: 40") {
			t.Errorf("the form lost the edit")
		}
		if h.versionCount(t) != 1 {
			t.Errorf("an invalid version was saved")
		}
	})

	var saved string
	t.Run("a valid change is saved as a new version", func(t *testing.T) {
		r := c.submit(t, "/blueprints/new", "/blueprints/versions", form(shippedProdEU(t, "    max: 9\n", "    max: 12\n"), "prod-eu: allow 12 instances"))
		if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Location(), "/blueprints/versions/") {
			t.Fatalf("save: got %d to %q, want 303 to the version\n%s", r.StatusCode, r.Location(), r.Body)
		}
		saved = strings.TrimPrefix(r.Location(), "/blueprints/versions/")
		page := c.get(t, r.Location())
		if flash, _ := page.TestID(t, "flash"); flash != "Saved version #2, changing stacks/prod-eu.yaml." {
			t.Errorf("flash: got %q", flash)
		}
		if msg, _ := page.TestID(t, "version-message"); msg != "prod-eu: allow 12 instances" {
			t.Errorf("message: got %q", msg)
		}
		if _, ok := page.TestID(t, "changed-prod-eu.yaml"); !ok {
			t.Errorf("the version page does not mark prod-eu.yaml as changed")
		}
		recs := h.records(t, audit.Filter{Action: "blueprint.version.create"})
		if len(recs) != 2 || recs[0].Actor != u.Label() || recs[0].Details["version"] != saved || recs[0].Details["parent"] != first.ID {
			t.Errorf("audit: got %+v, want the save by %s", recs, u.Label())
		}
		diff := c.get(t, "/blueprints/diff?from="+first.ID+"&to="+saved)
		if old, new := texts(diff.Doc(t), `[data-testid=diff-old]`), texts(diff.Doc(t), `[data-testid=diff-new]`); len(old) != 1 || old[0] != "max: 9" || new[0] != "max: 12" {
			t.Errorf("diff page: got old %q new %q", old, new)
		}
		file := c.get(t, "/blueprints/versions/"+saved+"/files/prod-eu.yaml")
		n := shippedLine(t, "    max: 9")
		if lines := texts(file.Doc(t), `[data-testid=file-lines] li`); len(lines) < n || lines[n-1] != "max: 12" {
			t.Errorf("file view line %d: got %q", n, lines)
		}
	})

	refusals := []struct {
		name, path, content, rule, citation string
	}{
		{"backups kept 3 days", prodEUPath, shippedProdEU(t, "backup_retention_days: 35", "backup_retention_days: 3"), "rds-backup-retention", "GDPR Art. 32(1)(c)"},
		{"documents replicated to the US", "architecture.yaml", shippedArchitecture(t, movedReplica[0], movedReplica[1]), "data-residency", "GDPR Art. 44"},
	}
	for _, tt := range refusals {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			before := h.versionCount(t)
			f := form(tt.content, tt.name)
			f.Set("path", tt.path)
			r := c.submit(t, "/blueprints/new", "/blueprints/versions", f)
			if r.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("save: got %d, want 422", r.StatusCode)
			}
			d := r.Doc(t)
			rules, cites := texts(d, `[data-testid=finding-rule]`), texts(d, `[data-testid=finding-citation]`)
			i := slices.Index(rules, tt.rule)
			if i < 0 {
				t.Errorf("rules: got %q, want %s among them", rules, tt.rule)
			} else if i >= len(cites) || !slices.Contains(cites, tt.citation) {
				t.Errorf("citations: got %q, want %s", cites, tt.citation)
			}
			if ex := texts(d, `[data-testid=finding-explanation]`); len(ex) == 0 || ex[0] == "" {
				t.Errorf("no plain-language explanation")
			}
			if h.versionCount(t) != before {
				t.Errorf("a blocked version was saved")
			}
		})
	}
	_ = saved
}

func TestBlueprintRoles(t *testing.T) {
	h := newHarness(t)
	comp, _ := h.signedIn(t, staff.Compliance)
	for _, path := range []string{"/blueprints", "/stacks", "/blueprints/exceptions", "/blueprints/guardrails/stacks/prod-eu", "/blueprints/guardrails/jurisdictions/eu"} {
		if r := comp.get(t, path); r.StatusCode != http.StatusOK {
			t.Errorf("compliance GET %s: got %d, want 200", path, r.StatusCode)
		}
	}
	if _, ok := comp.get(t, "/blueprints").TestID(t, "new-version"); ok {
		t.Errorf("compliance is offered to edit")
	}
	first, _ := h.app.Versions.Latest(context.Background())
	r := comp.submit(t, "/blueprints", "/blueprints/versions", url.Values{"base": {first.ID}, "path": {prodEUPath},
		"content": {shippedProdEU(t, "    max: 9\n", "    max: 12\n")}, "message": {"sneaky"}})
	if r.StatusCode != http.StatusForbidden {
		t.Errorf("compliance POST /blueprints/versions: got %d, want 403", r.StatusCode)
	}
	if h.versionCount(t) != 1 {
		t.Errorf("compliance saved a version")
	}
	fin, _ := h.signedIn(t, staff.Finance)
	for _, path := range []string{"/blueprints", "/stacks", "/blueprints/versions/" + first.ID} {
		if r := fin.get(t, path); r.StatusCode != http.StatusForbidden {
			t.Errorf("finance GET %s: got %d, want 403", path, r.StatusCode)
		}
	}
	if _, ok := fin.get(t, "/").TestID(t, "nav-stacks"); ok {
		t.Errorf("finance sees Stacks in the navigation")
	}
}

func TestBlueprintAPI(t *testing.T) {
	h := newHarness(t)
	ops := h.newUser(t, staff.Ops)
	tok := h.apiToken(t, ops.User)
	body := func(content string) string {
		return jsonText(t, map[string]any{"message": "via the API", "files": []map[string]string{{"path": prodEUPath, "content": content}}})
	}

	r := h.api(t, http.MethodPost, "/api/v1/blueprints/versions", tok, "application/json", body(shippedProdEU(t, "    max: 9\n", "    max: 12\n")))
	var created struct {
		Version struct {
			ID, Parent string
			Seq        int64
		}
		Created bool
	}
	r.JSON(t, &created)
	if r.StatusCode != http.StatusCreated || !created.Created || created.Version.Seq != 2 || created.Version.Parent == "" {
		t.Fatalf("POST: got %d %+v\n%s", r.StatusCode, created, r.Body)
	}
	again := h.api(t, http.MethodPost, "/api/v1/blueprints/versions", tok, "application/json", body(shippedProdEU(t, "    max: 9\n", "    max: 12\n")))
	var same struct {
		Version struct{ ID string }
		Created bool
	}
	again.JSON(t, &same)
	if again.StatusCode != http.StatusOK || same.Created || same.Version.ID != created.Version.ID {
		t.Errorf("POST the same content: got %d %+v, want 200 with the existing version", again.StatusCode, same)
	}

	type rejection struct {
		Error struct {
			Code        string
			Diagnostics []struct {
				File         string
				Line, Column int
				Path         string
			}
			Guardrails []struct{ RuleID, Citation, File, Stack string }
		}
	}
	bad := h.api(t, http.MethodPost, "/api/v1/blueprints/versions", tok, "application/json", body(shippedProdEU(t, "backup_retention_days: 35", "backup_retention_days: 40")))
	var rej rejection
	bad.JSON(t, &rej)
	if bad.StatusCode != http.StatusUnprocessableEntity || rej.Error.Code != "invalid" || len(rej.Error.Diagnostics) != 1 {
		t.Fatalf("invalid POST: got %d %+v", bad.StatusCode, rej)
	}
	if d, line := rej.Error.Diagnostics[0], shippedLine(t, "backup_retention_days:"); d.File != prodEUPath || d.Line != line || d.Column != 5 || d.Path != "params.db.backup_retention_days" {
		t.Errorf("diagnostic: got %+v, want %s:%d:5 params.db.backup_retention_days", d, prodEUPath, line)
	}
	blocked := h.api(t, http.MethodPost, "/api/v1/blueprints/versions", tok, "application/json",
		jsonText(t, map[string]any{"message": "via the API", "files": []map[string]string{{"path": "architecture.yaml", "content": shippedArchitecture(t, movedReplica[0], movedReplica[1])}}}))
	rej = rejection{}
	blocked.JSON(t, &rej)
	if blocked.StatusCode != http.StatusUnprocessableEntity || !slices.ContainsFunc(rej.Error.Guardrails, func(g struct{ RuleID, Citation, File, Stack string }) bool {
		return g.Citation == "GDPR Art. 44" && g.Stack == "prod-eu"
	}) {
		t.Errorf("blocked POST: got %d %+v", blocked.StatusCode, rej)
	}

	comp := h.newUser(t, staff.Compliance)
	ctok := h.apiToken(t, comp.User)
	if r := h.api(t, http.MethodPost, "/api/v1/blueprints/versions", ctok, "application/json", body("x")); r.StatusCode != http.StatusForbidden {
		t.Errorf("compliance POST: got %d, want 403", r.StatusCode)
	}
	var list struct{ Items []struct{ ID string } }
	lr := h.api(t, http.MethodGet, "/api/v1/blueprints/versions", ctok, "", "")
	lr.JSON(t, &list)
	if len(list.Items) != 2 || list.Items[0].ID != created.Version.ID {
		t.Errorf("list: got %+v, want 2 versions, newest first", list)
	}
	var stacks struct {
		Items []struct {
			ID              string `json:"id"`
			GuardrailStatus string `json:"guardrail_status"`
		}
	}
	sr := h.api(t, http.MethodGet, "/api/v1/stacks", ctok, "", "")
	sr.JSON(t, &stacks)
	if len(stacks.Items) != 9 || stacks.Items[0].ID != "dev-us" || stacks.Items[0].GuardrailStatus != "pass" {
		t.Errorf("stacks: got %+v", stacks)
	}
}

func TestGuardrailExceptions(t *testing.T) {
	h := newHarness(t)
	c, u := h.signedIn(t, staff.Ops)
	first, _ := h.app.Versions.Latest(context.Background())
	expires := h.clock.Now().Add(10 * 24 * time.Hour).Format("2006-01-02")

	r := c.submit(t, "/blueprints/exceptions", "/blueprints/exceptions", url.Values{"rule_id": {"rds-backup-retention"}, "stack": {"prod-eu"},
		"resource": {"db"}, "owner": {"Olga Ops"}, "reason": {"Restore drill"}, "expires": {h.clock.Now().Add(100 * 24 * time.Hour).Format("2006-01-02")}})
	if r.StatusCode != http.StatusBadRequest {
		t.Fatalf("100-day exception: got %d, want 400", r.StatusCode)
	}
	if msg, _ := r.TestID(t, "error-expires"); !strings.Contains(msg, "90 days") {
		t.Errorf("expiry error: got %q", msg)
	}

	r = c.submit(t, "/blueprints/exceptions", "/blueprints/exceptions", url.Values{"rule_id": {"rds-backup-retention"}, "stack": {"prod-eu"},
		"resource": {"db"}, "owner": {"Olga Ops"}, "reason": {"Restore drill with short retention"}, "expires": {expires}})
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("record exception: got %d\n%s", r.StatusCode, r.Body)
	}
	if recs := h.records(t, audit.Filter{Action: "guardrail.exception.create"}); len(recs) != 1 || recs[0].Actor != u.Label() {
		t.Errorf("audit of the exception: got %+v", recs)
	}

	// The exception lets the change through, and every report shows it.
	save := c.submit(t, "/blueprints/new", "/blueprints/versions", url.Values{"base": {first.ID}, "path": {prodEUPath},
		"content": {shippedProdEU(t, "backup_retention_days: 35", "backup_retention_days: 3")}, "message": {"drill"}})
	if save.StatusCode != http.StatusSeeOther {
		t.Fatalf("save under an exception: got %d\n%s", save.StatusCode, save.Body)
	}
	rep := c.get(t, "/blueprints/guardrails/stacks/prod-eu")
	d := rep.Doc(t)
	row := d.Find(`[data-testid=result-rds-backup-retention]`)
	if st := strings.TrimSpace(row.Find(`[data-testid=result-status]`).Text()); st != "Excepted" {
		t.Errorf("report status: got %q, want Excepted", st)
	}
	if ex := row.Find(`[data-testid=result-exception]`).Text(); !strings.Contains(ex, "Olga Ops") || !strings.Contains(ex, expires) {
		t.Errorf("report does not show the owner and expiry: %q", ex)
	}
	if pos, want := row.Find(`[data-testid=result-position]`).Text(), fmt.Sprintf("stacks/prod-eu.yaml:%d:5", shippedLine(t, "backup_retention_days:")); pos != want {
		t.Errorf("report position: got %q, want %s", pos, want)
	}
	if n := d.Find(`[data-testid=exception-in-force]`).Length(); n != 1 {
		t.Errorf("exceptions in force on the report: got %d, want 1", n)
	}
	eu := c.get(t, "/blueprints/guardrails/jurisdictions/eu")
	if n := eu.Doc(t).Find(`section[data-testid^=report-]`).Length(); n != 3 {
		t.Errorf("EU report: got %d stack sections, want 3", n)
	}

	// Revoking ends it; expiry would too (see the versions tests).
	list, err := h.app.Versions.ListExceptions(context.Background(), versions.ExceptionFilter{InForce: true})
	if err != nil || len(list) != 1 {
		t.Fatalf("exceptions in force: %v %v", list, err)
	}
	rv := c.submit(t, "/blueprints/exceptions", "/blueprints/exceptions/"+itoa(list[0].ID)+"/revoke", nil)
	if rv.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: got %d", rv.StatusCode)
	}
	rep = c.get(t, "/blueprints/guardrails/stacks/prod-eu")
	if st := strings.TrimSpace(rep.Doc(t).Find(`[data-testid=result-rds-backup-retention] [data-testid=result-status]`).Text()); st != "Fail" {
		t.Errorf("report after revoking: got %q, want Fail", st)
	}
	if recs := h.records(t, audit.Filter{Action: "guardrail.exception.revoke"}); len(recs) != 1 {
		t.Errorf("audit of the revocation: got %d records", len(recs))
	}

	comp, _ := h.signedIn(t, staff.Compliance)
	if _, ok := comp.get(t, "/blueprints/exceptions").TestID(t, "exception-form"); ok {
		t.Errorf("compliance is offered the exception form")
	}
}

func TestStacksGrid(t *testing.T) {
	h := newHarness(t)
	c, _ := h.signedIn(t, staff.Ops)
	r := c.get(t, "/stacks")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET /stacks: got %d", r.StatusCode)
	}
	d := r.Doc(t)
	if n := d.Find(`[data-testid^=cell-][class*=stack-cell]`).Length(); n != 9 {
		t.Errorf("cells: got %d, want 9", n)
	}
	cell := d.Find(`[data-testid=cell-prod-eu]`)
	if txt := cell.Text(); !strings.Contains(txt, "eu-central-1") || !strings.Contains(txt, "Not deployed yet") {
		t.Errorf("prod-eu cell: %q", txt)
	}
	if st := strings.TrimSpace(cell.Find(`[data-testid=status-prod-eu]`).Text()); st != "Pass" {
		t.Errorf("prod-eu guardrails: got %q, want Pass", st)
	}
	href, _ := cell.Find(`[data-testid=cell-report]`).Attr("href")
	if rep := c.get(t, href); rep.StatusCode != http.StatusOK || rep.Doc(t).Find(`[data-testid=result-data-residency]`).Length() != 1 {
		t.Errorf("report link %s: got %d", href, rep.StatusCode)
	}
	if _, ok := r.TestID(t, "nav-stacks"); !ok {
		t.Errorf("no Stacks in the navigation")
	}
}

// TestOneVersionChangesSeveralFiles edits prod-eu, opens dev-eu in the same
// editor (the first edit is kept), edits it too, previews both diffs and
// saves them as one version.
func TestOneVersionChangesSeveralFiles(t *testing.T) {
	h := newHarness(t)
	c, _ := h.signedIn(t, staff.Ops)
	first, err := h.app.Versions.Latest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	devEU, err := shipped.FS.ReadFile("stacks/dev-eu.yaml")
	if err != nil {
		t.Fatal(err)
	}
	prodEdit := shippedProdEU(t, "    max: 9\n", "    max: 12\n")
	r := c.submit(t, "/blueprints/new", "/blueprints/preview", url.Values{"base": {first.ID}, "path": {prodEUPath}, "content": {prodEdit},
		"open": {"stacks/dev-eu.yaml"}})
	if r.StatusCode != http.StatusOK {
		t.Fatalf("open dev-eu: got %d\n%s", r.StatusCode, r.Body)
	}
	d := r.Doc(t)
	if got := d.Find(`label[for=f-content]`).Text(); got != "Content of stacks/dev-eu.yaml" {
		t.Fatalf("the editor opened %q, want stacks/dev-eu.yaml", got)
	}
	if got, _ := r.TestID(t, "staged-files"); !strings.Contains(got, prodEUPath) {
		t.Errorf("the page does not say prod-eu is changed too: %q", got)
	}
	if staged := d.Find(`textarea[name=staged_content]`).Text(); !strings.Contains(staged, "max: 12") {
		t.Fatalf("the prod-eu edit is not carried along: %q", staged)
	}
	devEdit := strings.Replace(string(devEU), "instance_type: t3.small", "instance_type: t3.medium", 1)
	form := url.Values{"base": {first.ID}, "path": {"stacks/dev-eu.yaml"}, "content": {devEdit},
		"staged_path": {prodEUPath}, "staged_content": {prodEdit}, "message": {"bigger dev-eu instances, more prod-eu ones"}}
	r = c.submit(t, "/blueprints/new", "/blueprints/preview", form)
	if news := texts(r.Doc(t), `[data-testid=diff-new]`); !anyContains(news, "max: 12") || !anyContains(news, "instance_type: t3.medium") {
		t.Errorf("preview shows %q, want both files' changes", news)
	}
	r = c.submit(t, "/blueprints/new", "/blueprints/versions", form)
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: got %d\n%s", r.StatusCode, r.Body)
	}
	page := c.get(t, r.Location())
	for _, f := range []string{"prod-eu.yaml", "dev-eu.yaml"} {
		if _, ok := page.TestID(t, "changed-"+f); !ok {
			t.Errorf("the version does not mark %s as changed", f)
		}
	}
	if h.versionCount(t) != 2 {
		t.Errorf("versions: got %d, want 2 (one version for both files)", h.versionCount(t))
	}
}

// TestCommentOnlyChangeSaysSo: editing only a comment changes nothing in
// the blueprint; the preview and the save say so, and the edit stays in the
// editor instead of vanishing into the unchanged version.
func TestCommentOnlyChangeSaysSo(t *testing.T) {
	h := newHarness(t)
	c, _ := h.signedIn(t, staff.Ops)
	first, err := h.app.Versions.Latest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	edited := "# Reviewed with the DPO on 2 March.\n" + shippedProdEU(t, "    max: 9\n", "    max: 9\n")
	form := url.Values{"base": {first.ID}, "path": {prodEUPath}, "content": {edited}, "message": {"note the review"}}
	for _, action := range []string{"/blueprints/preview", "/blueprints/versions"} {
		r := c.submit(t, "/blueprints/new", action, form)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("%s: got %d, want 200 with the editor\n%s", action, r.StatusCode, r.Body)
		}
		if got, ok := r.TestID(t, "unchanged"); !ok || !strings.Contains(got, "Only comments or formatting change") {
			t.Errorf("%s: got %q, want it to say only comments change", action, got)
		}
		if _, ok := r.TestID(t, "preview-ok"); ok {
			t.Errorf("%s: a change that saves nothing is offered as savable", action)
		}
		if got, _ := r.TestID(t, "editor"); !strings.Contains(got, "Reviewed with the DPO") {
			t.Errorf("%s: the edit left the editor", action)
		}
	}
	if h.versionCount(t) != 1 {
		t.Errorf("a comment-only change made a version")
	}
}
