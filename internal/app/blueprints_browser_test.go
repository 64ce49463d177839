package app_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"portal/internal/app"
	"portal/internal/audit"
	"portal/internal/peers/peertest"
	"portal/internal/staff"
	"portal/internal/versions"
)

// stepClock is a clock tests move forward, so each two-factor code is from
// a fresh time step (a code is never accepted twice).
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *stepClock) code(t *testing.T, secret string) string {
	t.Helper()
	c.mu.Lock()
	c.t = c.t.Add(30 * time.Second)
	now := c.t
	c.mu.Unlock()
	code, err := totp.GenerateCode(secret, now)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// opsUser creates an ops engineer with a password and two-factor enrolled
// through the staff service, ready to sign in.
func opsUser(t *testing.T, a *app.App, clk *stepClock) (email, password, secret string) {
	t.Helper()
	ctx := context.Background()
	by := audit.Entry{Actor: "test"}
	u, otp, err := a.Staff.Create(ctx, by, staff.NewUser{Email: "olga.ops@example.com", Name: "Olga Ops", Roles: []staff.Role{staff.Ops}})
	if err != nil {
		t.Fatal(err)
	}
	password = "correct horse battery staple 42"
	if err := a.Staff.ChangePassword(ctx, by, u.ID, otp, password, password); err != nil {
		t.Fatal(err)
	}
	e, err := a.Staff.BeginEnrolment(u)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Staff.ConfirmEnrolment(ctx, by, u.ID, e.Secret, clk.code(t, e.Secret)); err != nil {
		t.Fatal(err)
	}
	return u.Email, password, e.Secret
}

// TestOpsEditsBlueprintInBrowser is the "done when" in a browser:
// an ops engineer opens the stacks, edits the EU prod parameters, sees the
// diff, saves a new version, and is refused with the rule and its citation
// when a change breaks a blocking guardrail.
func TestOpsEditsBlueprintInBrowser(t *testing.T) {
	cfg, err := app.ParseServe([]string{"-addr", "127.0.0.1:0", "-data-dir", t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	clk := &stepClock{t: time.Now().UTC().Truncate(time.Second)}
	runCtx, stop := context.WithCancel(context.Background())
	a, err := app.New(runCtx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), app.Options{Now: clk.Now, HashParams: &staff.HashParams{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		a.Close()
	})
	email, password, secret := opsUser(t, a, clk)

	ctx := peertest.Chromium(t)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	shot := func(name string) { peertest.KeepScreenshot(t, ctx, "bp-"+name+".png") }
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	// edit replaces old with new in the editor's text.
	edit := func(old, new string) {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Value(`[data-testid=editor]`))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(v, old) {
			t.Fatalf("the editor does not hold %q", old)
		}
		do("edit", chromedp.SetValue(`[data-testid=editor]`, strings.Replace(v, old, new, 1)))
	}

	do("sign in", chromedp.Navigate(a.URL()+"/login"), chromedp.WaitVisible(`[data-testid=login-form]`),
		chromedp.SendKeys(`#f-email`, email), chromedp.SendKeys(`#f-password`, password),
		chromedp.Click(`[data-testid=login-submit]`), chromedp.WaitVisible(`[data-testid=totp-form]`))
	do("two-factor", chromedp.SendKeys(`#f-code`, clk.code(t, secret)), chromedp.Click(`[data-testid=totp-submit]`),
		chromedp.WaitVisible(`[data-testid=nav-stacks]`))

	do("open the stacks", chromedp.Click(`[data-testid=nav-stacks]`), chromedp.WaitVisible(`[data-testid=stack-grid]`))
	shot("01-stacks")
	if got := text(`[data-testid=cell-prod-eu] [data-testid=cell-in-force]`); got != "Not deployed yet" {
		t.Errorf("prod-eu in force: got %q, want Not deployed yet", got)
	}
	do("open the EU report", chromedp.Click(`[data-testid=jurisdiction-report-eu]`), chromedp.WaitVisible(`[data-testid=report-prod-eu]`))
	shot("02-report-eu")

	do("open the blueprints", chromedp.Click(`[data-testid=nav-blueprints]`), chromedp.WaitVisible(`[data-testid=version-rows]`))
	shot("03-history")
	do("edit the latest version", chromedp.Click(`[data-testid=new-version]`), chromedp.WaitVisible(`[data-testid=editor]`))
	if got := text(`label[for=f-content]`); got != "Content of stacks/prod-eu.yaml" {
		t.Fatalf("the editor opened %q, want stacks/prod-eu.yaml", got)
	}
	edit("    max: 9\n", "    max: 12\n")
	do("preview", chromedp.SendKeys(`[data-testid=message]`, "prod-eu: allow 12 instances for the spring campaign"),
		chromedp.Click(`[data-testid=preview]`), chromedp.WaitVisible(`[data-testid=diff-new]`))
	shot("04-preview")
	if old, new := text(`[data-testid=diff-old]`), text(`[data-testid=diff-new]`); old != "max: 9" || new != "max: 12" {
		t.Errorf("preview diff: got %q -> %q, want max: 9 -> max: 12", old, new)
	}
	do("save", chromedp.Click(`[data-testid=save]`), chromedp.WaitVisible(`[data-testid=version-facts]`))
	shot("05-saved")
	if got := text(`[data-testid=flash]`); got != "Saved version #2, changing stacks/prod-eu.yaml." {
		t.Errorf("after saving: flash %q", got)
	}

	do("edit again", chromedp.Click(`[data-testid=edit-version]`), chromedp.WaitVisible(`[data-testid=editor]`))
	edit("backup_retention_days: 35", "backup_retention_days: 3")
	do("save a blocked change", chromedp.SendKeys(`[data-testid=message]`, "shorter backups"),
		chromedp.Click(`[data-testid=save]`), chromedp.WaitVisible(`[data-testid=refused]`))
	shot("06-refused")
	if rule, cite := text(`[data-testid=finding-rule]`), text(`[data-testid=finding-citation]`); rule != "rds-backup-retention" || cite != "GDPR Art. 32(1)(c)" {
		t.Errorf("refusal: got %s %q, want rds-backup-retention GDPR Art. 32(1)(c)", rule, cite)
	}
	if got, _ := chromedp.Run(ctx, chromedp.Value(`[data-testid=editor]`)); !strings.Contains(got, "backup_retention_days: 3\n") {
		t.Errorf("the refused edit was lost")
	}

	// Regions come from the catalogue: only the architecture can move data.
	do("edit the architecture", chromedp.Navigate(a.URL()+"/blueprints/new?file=architecture.yaml"), chromedp.WaitVisible(`[data-testid=editor]`))
	edit("    region: ${stack.standby_region}\n    name: ${param.name_prefix}-documents-replica", "    region: us-east-1\n    name: ${param.name_prefix}-documents-replica")
	do("save a transfer out of the EU", chromedp.SendKeys(`[data-testid=message]`, "replicas to Virginia"),
		chromedp.Click(`[data-testid=save]`), chromedp.WaitVisible(`[data-testid=refused]`))
	shot("07-refused-residency")
	cites, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('[data-testid=finding-citation]')].map(e => e.textContent.trim())`))
	if err != nil || !slices.Contains(cites, "GDPR Art. 44") {
		t.Errorf("residency refusal: got %q (%v), want GDPR Art. 44 among the citations", cites, err)
	}

	do("compare", chromedp.Navigate(a.URL()+"/blueprints"), chromedp.WaitVisible(`[data-testid=version-rows]`),
		chromedp.Click(`[data-testid=version-row] a[href^="/blueprints/diff"]`), chromedp.WaitVisible(`[data-testid=diff-form]`))
	shot("08-diff")

	list, _, err := a.Versions.List(context.Background(), versions.ListFilter{})
	if err != nil || len(list) != 2 {
		t.Fatalf("versions: got %d (%v), want 2", len(list), err)
	}
	recs, _, err := a.Audit.List(context.Background(), audit.Filter{Action: "blueprint.version.create", Limit: 10})
	if err != nil || len(recs) != 2 || recs[0].Actor == "system" || recs[1].Actor != "system" {
		t.Errorf("audit: got %+v (%v), want the import by system and the save by the ops engineer", recs, err)
	}
}
