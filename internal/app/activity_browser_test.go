package app_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"portal/internal/activity"
	"portal/internal/app"
	"portal/internal/peers"
	"portal/internal/peers/peertest"
	"portal/internal/regions"
	"portal/internal/staff"
)

// walkClock is real time shifted by an offset the test moves forward, so
// runs take real time and each two-factor code is from a fresh time step.
type walkClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *walkClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().UTC().Add(c.offset)
}

func (c *walkClock) code(t *testing.T, secret string) string {
	t.Helper()
	c.mu.Lock()
	c.offset += 30 * time.Second
	c.mu.Unlock()
	code, err := totp.GenerateCode(secret, c.Now())
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// TestActivityWalkThroughInBrowser is the activity issue's "done when",
// tried as a new user would in `make run`: the portal is wired as the
// sandbox wires it (a week of generated CloudTrail activity and every AWS
// call the portal makes written as CloudTrail records into a trail bucket
// in moto, with digests signed by a sandbox key the portal trusts). An ops
// engineer plans and applies the shipped EU dev stack; a compliance
// officer finds who created the EU documents bucket and when, follows the
// link to the run that did it, exports the week's write events to CSV,
// validates the logs, tampers with the log file holding that CreateBucket
// and sees validation name it.
func TestActivityWalkThroughInBrowser(t *testing.T) {
	// Bucket names are global in moto, and the shipped stack's are fixed:
	// this test creates medportal-dev-eu-* on a moto of its own.
	m := peertest.IsolatedMotoForTest(t)
	peertest.SetAWSEnv(t, m)
	accounts := map[string]string{}
	dir := t.TempDir()
	args := []string{"-addr", "127.0.0.1:0", "-data-dir", dir, "-drift-interval", "0"}
	for _, env := range regions.EnvironmentNames() {
		accounts[env] = peertest.AccountForTest(t)
		args = append(args, "-"+env+"-account-id", accounts[env], "-"+env+"-role-arn", peers.RoleARN(accounts[env], peertest.TestRole))
	}
	cfg, err := app.ParseServe(args)
	if err != nil {
		t.Fatal(err)
	}
	clk := &walkClock{}
	bg := context.Background()

	// The sandbox's trail: a week of background activity in every account
	// and home region, in a bucket of the dev account.
	devS3 := s3.NewFromConfig(peers.AssumeAccount(bg, m.AWSConfig("us-east-1"), accounts["dev"], peertest.TestRole),
		func(o *s3.Options) { o.UsePathStyle, o.DisableLogOutputChecksumValidationSkipped = true, true })
	var accts, regs []string
	for _, env := range regions.EnvironmentNames() {
		accts = append(accts, accounts[env])
	}
	for _, j := range regions.Jurisdictions() {
		regs = append(regs, j.HomeRegion)
	}
	trail, err := activity.StartSandboxTrail(bg, devS3, filepath.Join(dir, "trail"), accts, regs, 7, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Activity.Buckets = append(cfg.Activity.Buckets, trail.Bucket())
	pem, err := os.ReadFile(trail.KeyFile())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := activity.ParseDigestKeys(pem)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Activity.DigestKeys = append(cfg.Activity.DigestKeys, keys...)
	cfg.SandboxNotice = "Sandbox: AWS is moto on this machine."

	runCtx, stop := context.WithCancel(bg)
	a, err := app.New(runCtx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), app.Options{Now: clk.Now, HashParams: &staff.HashParams{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	a.Estate.Engine.OnCall = trail.Record
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		a.Close()
	})
	opsPass, opsSecret := staffUser(t, a, clk, "olga.ops@example.com", "Olga Ops", staff.Ops)
	coraPass, coraSecret := staffUser(t, a, clk, "cora.compliance@example.com", "Cora Compliance", staff.Compliance)

	ctx := peertest.Chromium(t)
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	shot := func(name string) { peertest.KeepScreenshot(t, ctx, "activity-"+name+".png") }
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			shot("failed")
			t.Fatalf("%s: %v", step, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			shot("failed")
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	location := func() string {
		t.Helper()
		u, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	// waitURL waits for the page the browser is on (the form's target
	// once it has navigated) to have want in its address; reads made while
	// it navigates fail and are tried again.
	waitURL := func(want string, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			u, err := chromedp.Run(ctx, chromedp.Location())
			if err == nil && strings.Contains(u, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the browser is at %q (%v), want an address with %q", u, err, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitText := func(sel, want string, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			s, err := chromedp.Run(ctx, chromedp.Text(sel, chromedp.AtLeast(0)))
			if err == nil && strings.Contains(s, want) {
				return
			}
			if time.Now().After(deadline) {
				shot("timeout")
				t.Fatalf("%s: got %q, want it to contain %q", sel, s, want)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	signIn := func(email, password, secret string) {
		t.Helper()
		do("sign in "+email, chromedp.Navigate(a.URL()+"/login"), chromedp.WaitVisible(`[data-testid=login-form]`),
			chromedp.SendKeys(`#f-email`, email), chromedp.SendKeys(`#f-password`, password),
			chromedp.Click(`[data-testid=login-submit]`), chromedp.WaitVisible(`[data-testid=totp-form]`))
		do("two-factor "+email, chromedp.SendKeys(`#f-code`, clk.code(t, secret)), chromedp.Click(`[data-testid=totp-submit]`),
			chromedp.WaitVisible(`[data-testid=who]`))
	}

	// Olga plans the shipped EU dev stack and applies it.
	signIn("olga.ops@example.com", opsPass, opsSecret)
	do("plan dev-eu", chromedp.Navigate(a.URL()+"/runs"), chromedp.WaitVisible(`[data-testid=plan-form]`),
		chromedp.SetValue(`#f-stack`, "dev-eu"), chromedp.Click(`[data-testid=plan-submit]`), chromedp.WaitVisible(`[data-testid=plan-counts]`))
	shot("01-plan")
	do("apply", chromedp.Click(`[data-testid=apply-submit]`), chromedp.WaitVisible(`[data-testid=run-progress]`))
	runURL := location()
	if !regexp.MustCompile(`/runs/\d+$`).MatchString(runURL) {
		t.Fatalf("after apply the browser is on %s, want a run page", runURL)
	}
	waitText(`[data-testid=run-state]`, "succeeded", 3*time.Minute)
	shot("02-run")
	do("sign out", chromedp.Click(`form[action="/logout"] button`), chromedp.WaitVisible(`[data-testid=login-form]`))

	// CloudTrail delivers the run's calls (the sandbox writes them every
	// 30 seconds; here at once).
	if err := trail.Flush(bg, clk.Now()); err != nil {
		t.Fatal(err)
	}

	// Cora ingests and finds who created the EU documents bucket.
	const bucket = "medportal-dev-eu-documents"
	signIn("cora.compliance@example.com", coraPass, coraSecret)
	do("activity", chromedp.Navigate(a.URL()+"/activity"), chromedp.WaitVisible(`[data-testid=ingest-now]`),
		chromedp.Click(`[data-testid=ingest-now]`), chromedp.WaitVisible(`[data-testid=flash]`))
	shot("03-ingested")
	if got := text(`[data-testid=flash]`); !strings.Contains(got, "Ingested") || strings.Contains(got, "failed") {
		t.Errorf("flash after Ingest now: %q", got)
	}
	do("filter", chromedp.SetValue(`#f-name`, "CreateBucket"), chromedp.SetValue(`#f-resource`, bucket),
		chromedp.Click(`[data-testid=activity-search]`))
	// The unfiltered page shows events too: wait for the filtered one.
	waitURL("name=CreateBucket", 30*time.Second)
	do("filtered", chromedp.WaitVisible(`[data-testid=events]`))
	shot("04-create-bucket")
	type eventRow struct {
		Text      string   `json:"text"`
		Href      string   `json:"href"`
		Resources []string `json:"resources"`
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]eventRow](`[...document.querySelectorAll('[data-testid=event-row]')].map(r => ({
		text: r.innerText, href: r.querySelector('[data-testid=event-link]').getAttribute('href'),
		resources: [...r.querySelectorAll('td.resources code')].map(c => c.textContent)}))`))
	if err != nil {
		t.Fatal(err)
	}
	row := -1
	for i, r := range rows {
		// The replica bucket's name contains this one's: the row to open
		// is the one whose resource is exactly the documents bucket.
		if slices.Equal(r.Resources, []string{bucket}) {
			row = i
		}
	}
	if row < 0 {
		t.Fatalf("no CreateBucket row for %s among %+v", bucket, rows)
	}
	if !strings.Contains(rows[row].Text, "portal") || !strings.Contains(rows[row].Text, accounts["dev"]+" · eu-central-1") {
		t.Errorf("CreateBucket row %q: want the portal's role session in the dev account, eu-central-1", rows[row].Text)
	}
	do("open the event", chromedp.Navigate(a.URL()+rows[row].Href), chromedp.WaitVisible(`[data-testid=event-facts]`))
	shot("05-event")
	if got := text(`[data-testid=event-who]`); !strings.HasPrefix(got, "portal") || !strings.Contains(got, "AssumedRole") {
		t.Errorf("who: %q, want the portal's role session", got)
	}
	if got := text(`[data-testid=event-resources]`); got != bucket {
		t.Errorf("resources: %q, want %s", got, bucket)
	}
	when, err := chromedp.Run(ctx, chromedp.AttributeValue(`[data-testid=event-facts] time`, "datetime"))
	if err != nil {
		t.Fatal(err)
	}
	at, err := time.Parse(time.RFC3339, when.Value)
	if err != nil {
		t.Fatalf("event time %q: %v", when.Value, err)
	}
	if d := clk.Now().Sub(at); d < 0 || d > 10*time.Minute {
		t.Errorf("the bucket was created at %s, %s before now; want during the run", at, d)
	}
	run := text(`[data-testid=event-run]`)
	if !strings.Contains(run, "dev-eu") || !strings.Contains(run, "olga.ops@example.com") || !strings.Contains(run, "request id") {
		t.Errorf("portal run: %q, want dev-eu started by olga, known by its request id", run)
	}
	origin, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll('[data-testid=event-facts] dt')]
		.find(d => d.textContent === 'Delivered in').nextElementSibling.textContent.trim()`))
	if err != nil || origin == "" {
		t.Fatalf("the log file the event was delivered in: %q, %v", origin, err)
	}
	do("follow the run link", chromedp.Click(`[data-testid=event-run-link]`), chromedp.WaitVisible(`[data-testid=run-state]`))
	shot("06-run-from-event")
	if got := location(); got != runURL {
		t.Errorf("the run link leads to %s, want the run Olga started, %s", got, runURL)
	}
	if got := text(`[data-testid=run-state]`); got != "succeeded" {
		t.Errorf("run state %q, want succeeded", got)
	}

	// The week's write events, as CSV.
	weekAgo := clk.Now().Add(-7 * 24 * time.Hour).Format("2006-01-02T15:04")
	do("week of writes", chromedp.Navigate(a.URL()+"/activity"), chromedp.WaitVisible(`[data-testid=activity-filter]`),
		chromedp.SetValue(`#f-since`, weekAgo), chromedp.SetValue(`#f-access`, "write"),
		chromedp.Click(`[data-testid=activity-search]`))
	waitURL("access=write", 30*time.Second)
	do("writes", chromedp.WaitVisible(`[data-testid=export-csv]`))
	shot("07-week-writes")
	// The browser fetches the link with Cora's session, as a click would.
	body, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch(document.querySelector('[data-testid=export-csv]').href)
		.then(r => r.ok ? r.text() : Promise.reject(new Error('status ' + r.status)))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("download the CSV: %v", err)
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || len(recs) < 2 {
		t.Fatalf("CSV export: %d records, %v", len(recs), err)
	}
	if !slices.Equal(recs[0], activity.CSVHeader) {
		t.Errorf("CSV header %v, want %v", recs[0], activity.CSVHeader)
	}
	col := func(name string) int { return slices.Index(recs[0], name) }
	sinceT, _ := time.Parse("2006-01-02T15:04", weekAgo)
	found := false
	for _, r := range recs[1:] {
		if r[col("read_only")] != "false" {
			t.Fatalf("CSV row %v is a read event", r)
		}
		if ts, err := time.Parse(time.RFC3339, r[col("event_time")]); err != nil || ts.Before(sinceT) {
			t.Fatalf("CSV row at %q, want within the week", r[col("event_time")])
		}
		if r[col("event_name")] == "CreateBucket" && r[col("resources")] == bucket && r[col("session")] == "portal" {
			found = true
		}
	}
	if !found {
		t.Errorf("the CSV of %d write events lacks the portal's CreateBucket of %s", len(recs)-1, bucket)
	}
	want, err := a.Activity.Count(bg, activity.Filter{Since: sinceT, Access: activity.AccessWrite})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs)-1 != want {
		t.Errorf("CSV holds %d write events, the store %d", len(recs)-1, want)
	}
	t.Logf("week of write events: %d rows in the CSV", len(recs)-1)

	// The logs are intact.
	// The page may already show the scheduled validation's result: the
	// flash is the mark of the page the click led to.
	do("validate", chromedp.Navigate(a.URL()+"/activity/integrity"), chromedp.WaitVisible(`[data-testid=validate-now]`),
		chromedp.Click(`[data-testid=validate-now]`), chromedp.WaitVisible(`[data-testid=flash]`), chromedp.WaitVisible(`[data-testid=validation-result]`))
	shot("08-validation-passed")
	if got := text(`[data-testid=validation-result]`); !strings.Contains(got, "Passed") {
		t.Fatalf("first validation: %q, want passed", got)
	}

	// Someone edits the log file holding the CreateBucket in the bucket.
	obj, err := devS3.GetObject(bg, &s3.GetObjectInput{Bucket: aws.String(activity.SandboxBucket), Key: aws.String(origin)})
	if err != nil {
		t.Fatalf("get s3://%s/%s: %v", activity.SandboxBucket, origin, err)
	}
	plain, err := activity.Inflate(obj.Body)
	obj.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	altered := bytes.Replace(plain, []byte(`"sourceIPAddress":"198.51.100.200"`), []byte(`"sourceIPAddress":"203.0.113.66"`), 1)
	if bytes.Equal(altered, plain) {
		t.Fatalf("log file %s holds no portal source address to alter", origin)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(altered)
	zw.Close()
	if _, err := devS3.PutObject(bg, &s3.PutObjectInput{Bucket: aws.String(activity.SandboxBucket), Key: aws.String(origin), Body: bytes.NewReader(gz.Bytes())}); err != nil {
		t.Fatal(err)
	}
	do("validate again", chromedp.Click(`[data-testid=validate-now]`), chromedp.WaitVisible(`[data-testid=validation-failed]`))
	shot("09-validation-failed")
	problems, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('[data-testid=problem]')].map(p => p.innerText)`))
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 1 || !strings.Contains(problems[0], "log file changed") || !strings.Contains(problems[0], "s3://"+activity.SandboxBucket+"/"+origin) {
		t.Errorf("findings %q, want the one changed log file %s", problems, origin)
	}
}
