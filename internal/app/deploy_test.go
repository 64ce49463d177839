package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"portal/internal/app"
	"portal/internal/audit"
	"portal/internal/peers"
	"portal/internal/peers/peertest"
	"portal/internal/regions"
	"portal/internal/staff"
)

// TestDeployShippedStackThroughAPI is what automation does on a fresh
// portal: the shipped blueprints are the first version; plan the dev
// environment's layer (the zone the stacks write into) and then the EU dev
// stack through the API, apply each, watch the runs, and plan the stack
// again to find nothing left to change.
func TestDeployShippedStackThroughAPI(t *testing.T) {
	m := peertest.MotoForTest(t)
	peertest.SetAWSEnv(t, m)
	args := []string{"-addr", "127.0.0.1:0", "-data-dir", t.TempDir(), "-drift-interval", "0"}
	for _, env := range regions.EnvironmentNames() {
		acct := peertest.AccountForTest(t)
		args = append(args, "-"+env+"-account-id", acct, "-"+env+"-role-arn", peers.RoleARN(acct, peertest.TestRole))
	}
	cfg, err := app.ParseServe(args)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), app.Options{HashParams: &staff.HashParams{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		<-done
		a.Close()
	})
	u, _, err := a.Staff.Create(context.Background(), audit.Entry{Actor: "test"}, staff.NewUser{Email: "ci@example.com", Roles: []staff.Role{staff.Ops}})
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := a.Staff.CreateToken(context.Background(), audit.Entry{Actor: "test"}, u.ID, staff.NewToken{Name: "CI pipeline", Scopes: []string{staff.ScopeAll}})
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path string, body any, out any) int {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, a.URL()+path, rd)
		req.Header.Set("Authorization", "Bearer "+token)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if out != nil {
			if err := json.Unmarshal(raw, out); err != nil {
				t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, raw)
			}
		}
		if res.StatusCode >= 300 {
			t.Logf("%s %s: %d %s", method, path, res.StatusCode, raw)
		}
		return res.StatusCode
	}

	type plan struct {
		ID       int64          `json:"id"`
		Counts   map[string]int `json:"counts"`
		Blocking []string       `json:"blocking"`
	}
	type runState struct {
		State string `json:"state"`
		Error string `json:"error"`
		Done  int    `json:"done"`
		Total int    `json:"total"`
		Calls int    `json:"calls"`
	}
	wait := func(runID int64) runState {
		t.Helper()
		var run runState
		deadline := time.Now().Add(3 * time.Minute)
		for {
			call("GET", "/api/v1/runs/"+itoa(runID), nil, &run)
			if run.State == "succeeded" || run.State == "failed" || run.State == "cancelled" {
				return run
			}
			if time.Now().After(deadline) {
				t.Fatalf("run still %s (%d of %d) after 3 minutes", run.State, run.Done, run.Total)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	var queued struct {
		RunID int64 `json:"run_id"`
	}
	var layer plan
	if code := call("POST", "/api/v1/plans", map[string]string{"stack": "dev-global"}, &layer); code != http.StatusCreated || len(layer.Blocking) > 0 {
		t.Fatalf("plan dev-global: status %d blocking %v, want 201 and nothing blocking", code, layer.Blocking)
	}
	if code := call("POST", "/api/v1/plans/"+itoa(layer.ID)+"/apply", nil, &queued); code != http.StatusAccepted {
		t.Fatalf("apply dev-global: status %d, want 202", code)
	}
	if run := wait(queued.RunID); run.State != "succeeded" || !strings.Contains(run.Error, "wait for other stacks") {
		t.Fatalf("dev-global's first run: %s (%s), want succeeded with its routing waiting for the stacks", run.State, run.Error)
	}
	var p plan
	if code := call("POST", "/api/v1/plans", map[string]string{"stack": "dev-eu"}, &p); code != http.StatusCreated {
		t.Fatalf("plan dev-eu: status %d, want 201", code)
	}
	if p.Counts["create"] < 50 || len(p.Blocking) > 0 {
		t.Fatalf("plan of the empty dev-eu stack: %v blocking %v, want 50+ creates and nothing blocking", p.Counts, p.Blocking)
	}
	if code := call("POST", "/api/v1/plans/"+itoa(p.ID)+"/apply", nil, &queued); code != http.StatusAccepted {
		t.Fatalf("apply: status %d, want 202", code)
	}
	run := wait(queued.RunID)
	if run.State != "succeeded" || run.Done != run.Total {
		t.Fatalf("run %s (%s), %d of %d steps; want succeeded", run.State, run.Error, run.Done, run.Total)
	}
	t.Logf("applied dev-eu: %d steps, %d AWS calls", run.Total, run.Calls)
	var listed struct {
		Items []struct {
			ID int64 `json:"id"`
		} `json:"items"`
	}
	if code := call("GET", "/api/v1/runs?state=succeeded&stack=dev-eu", nil, &listed); code != http.StatusOK || len(listed.Items) != 1 || listed.Items[0].ID != queued.RunID {
		t.Errorf("runs of dev-eu that succeeded: %d %+v, want run %d", code, listed.Items, queued.RunID)
	}
	var refused struct {
		Error struct {
			Fields map[string]string `json:"fields"`
		} `json:"error"`
	}
	if code := call("GET", "/api/v1/runs?state=done", nil, &refused); code != http.StatusBadRequest || !strings.Contains(refused.Error.Fields["state"], "interrupted") {
		t.Errorf("runs in an unknown state: %d %+v, want 400 listing the states", code, refused)
	}
	var again plan
	if code := call("POST", "/api/v1/plans", map[string]string{"stack": "dev-eu"}, &again); code != http.StatusCreated {
		t.Fatalf("plan again: status %d", code)
	}
	for action, n := range again.Counts {
		if action != "no-op" && action != "read" && n > 0 {
			t.Errorf("plan after apply wants %d %s, want nothing to change (%v)", n, action, again.Counts)
		}
	}

	// A compliance officer reads the plan and the run in a browser.
	clk := &wallClock{}
	pw, secret := staffUser(t, a, clk, "cora@example.com", "Cora Compliance", staff.Compliance)
	bctx := peertest.Chromium(t)
	bctx, cancel := context.WithTimeout(bctx, 3*time.Minute)
	defer cancel()
	if err := chromedp.Do(bctx, signInSteps(t, a.URL(), "cora@example.com", pw, secret, clk),
		chromedp.WaitVisible(`[data-testid=who]`), // signed in: the page names the user
		chromedp.Navigate(a.URL()+"/plans/"+itoa(p.ID)), chromedp.WaitVisible(`[data-testid=plan-counts]`)); err != nil {
		t.Fatalf("open the plan: %v", err)
	}
	peertest.KeepScreenshot(t, bctx, "deploy-plan.png")
	// Will it work: every check passes from the blueprints; the live
	// re-check waits until the stack exists.
	if sum, err := chromedp.Run(bctx, chromedp.Text(`[data-testid=works-summary]`)); err != nil || !strings.Contains(sum, "passes") || !strings.Contains(sum, "checks pass") {
		t.Errorf("the plan's will-it-work summary: %q, %v; want every check passing", sum, err)
	}
	if note, err := chromedp.Run(bctx, chromedp.Text(`[data-testid=works-live-note]`)); err != nil || !strings.Contains(note, "once it exists") {
		t.Errorf("the live re-check before the first apply: %q, %v", note, err)
	}
	if err := chromedp.Do(bctx, chromedp.Navigate(a.URL()+"/plans/"+itoa(again.ID)), chromedp.WaitVisible(`[data-testid=works-live-summary]`),
		chromedp.ScrollIntoView(`[data-testid=works]`)); err != nil {
		t.Fatalf("open the plan after the apply: %v", err)
	}
	peertest.KeepScreenshot(t, bctx, "deploy-plan-works.png")
	for _, id := range []string{"works-summary", "works-live-summary"} {
		if sum, err := chromedp.Run(bctx, chromedp.Text(`[data-testid=`+id+`]`)); err != nil || !strings.Contains(sum, "checks pass") {
			t.Errorf("after the apply, %s: %q, %v; want every check passing", id, sum, err)
		}
	}
	if n, err := chromedp.Run(bctx, chromedp.Text(`[data-testid=service-S3]`)); err != nil || !strings.Contains(n, "documents_bucket") {
		t.Errorf("the plan page's S3 group: %q, %v; want the documents bucket", n, err)
	}

	// The routing explorer: a patient in Germany with Frankfurt's health
	// check failing is answered from Ireland; Singapore down shows the
	// maintenance page.
	if err := chromedp.Do(bctx, chromedp.Navigate(a.URL()+"/routing?env=dev&country=DE&down=dev-eu:health"), chromedp.WaitVisible(`[data-testid=routing-answer]`)); err != nil {
		t.Fatalf("open the routing explorer: %v", err)
	}
	peertest.KeepScreenshot(t, bctx, "routing-explorer.png")
	if ans, err := chromedp.Run(bctx, chromedp.Text(`[data-testid=routing-answer]`)); err != nil || !strings.Contains(ans, "eu-west-1") {
		t.Errorf("German patient, Frankfurt down: %q, %v; want eu-west-1", ans, err)
	}
	if err := chromedp.Do(bctx, chromedp.Navigate(a.URL()+"/routing?env=dev&country=SG&down=dev-apac:health"), chromedp.WaitVisible(`[data-testid=routing-answer]`)); err != nil {
		t.Fatalf("open the routing explorer for Singapore: %v", err)
	}
	if ans, err := chromedp.Run(bctx, chromedp.Text(`[data-testid=routing-answer]`)); err != nil || !strings.Contains(ans, "maintenance page") {
		t.Errorf("Singapore down: %q, %v; want the maintenance page", ans, err)
	}
	if err := chromedp.Do(bctx, chromedp.Navigate(a.URL()+"/runs/"+itoa(queued.RunID)), chromedp.WaitVisible(`[data-testid=run-state]`)); err != nil {
		t.Fatalf("open the run: %v", err)
	}
	peertest.KeepScreenshot(t, bctx, "deploy-run.png")
	if st, _ := chromedp.Run(bctx, chromedp.Text(`[data-testid=run-state]`)); st != "succeeded" {
		t.Errorf("the run page says %q, want succeeded", st)
	}
	if _, err := chromedp.Run(bctx, chromedp.Text(`[data-testid=run-cancel]`, chromedp.AtLeast(0))); err == nil {
		if html, _ := chromedp.Run(bctx, chromedp.OuterHTML(`[data-testid=run-progress]`)); strings.Contains(html, "run-cancel") {
			t.Error("a finished run offers Cancel")
		}
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
