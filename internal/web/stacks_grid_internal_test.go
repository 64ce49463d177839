package web

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	shipped "portal/blueprints"
	"portal/internal/guardrails"
	"portal/internal/regions"
	"portal/internal/versions"
	"portal/web/templates"
)

// fakeRuns is what the engine will report through StackRuns.
type fakeRuns map[string]StackRunSummary

func (f fakeRuns) StackSummaries(context.Context) (map[string]StackRunSummary, error) { return f, nil }

var _ StackRuns = fakeRuns{}

// TestGridShowsWhatTheEngineReports renders the grid with a fake engine:
// a deployed stack links its version in force and last run; others say
// they are not deployed yet.
func TestGridShowsWhatTheEngineReports(t *testing.T) {
	files, err := versions.ReadFS(shipped.FS)
	if err != nil {
		t.Fatal(err)
	}
	checked := versions.Check(files)
	reports := map[string]guardrails.Report{}
	for _, r := range versions.Evaluate(checked, nil, time.Now()) {
		reports[r.Stack] = r
	}
	cat, err := regions.New(regions.SandboxEnvironments())
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	runs, _ := fakeRuns{"prod-eu": {VersionInForce: checked.ID, LastRunID: 42, LastRunState: "failed", LastRunAt: at},
		"test-eu": {LastRunID: 7, LastRunState: "running", LastRunAt: at}}.StackSummaries(context.Background())

	var buf bytes.Buffer
	v := templates.StacksView{Rows: gridRows(reports, runs, cat)}
	if err := templates.Stacks(templates.Page{Title: "Stacks"}, v).Render(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	d, err := goquery.NewDocumentFromReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	cell := func(id, testid string) *goquery.Selection {
		return d.Find(`[data-testid=cell-` + id + `] [data-testid=` + testid + `]`)
	}
	if got := strings.TrimSpace(cell("prod-eu", "cell-in-force").Text()); got != checked.ID[:12] {
		t.Errorf("prod-eu in force: got %q, want %s", got, checked.ID[:12])
	}
	if href, _ := cell("prod-eu", "cell-in-force").Find("a").Attr("href"); href != "/blueprints/versions/"+checked.ID {
		t.Errorf("prod-eu in-force link: got %q", href)
	}
	if got := strings.Join(strings.Fields(cell("prod-eu", "cell-last-run").Text()), " "); !strings.HasPrefix(got, "#42 failed 2026-03-01 10:00") {
		t.Errorf("prod-eu last run: got %q", got)
	}
	if got := strings.TrimSpace(cell("prod-eu", "cell-account").Text()); got != "333333333333" {
		t.Errorf("prod-eu account: got %q", got)
	}
	if got := strings.TrimSpace(cell("test-eu", "cell-in-force").Text()); got != "Not deployed yet" {
		t.Errorf("test-eu (running, nothing applied) in force: got %q", got)
	}
	if got := strings.Join(strings.Fields(cell("dev-us", "cell-last-run").Text()), " "); got != "None" {
		t.Errorf("dev-us last run: got %q", got)
	}
}
