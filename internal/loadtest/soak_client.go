package loadtest

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"portal/internal/app"
	"portal/internal/audit"
	"portal/internal/staff"
	"portal/internal/store"
)

// PrepareToken creates an account holding roles (ops when none is given) in
// the sandbox folder dir, before the portal starts, and returns a personal
// API token for it with every scope.
func PrepareToken(ctx context.Context, dir, email string, roles ...staff.Role) (string, error) {
	if len(roles) == 0 {
		roles = []staff.Role{staff.Ops}
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return "", fmt.Errorf("loadtest: %w", err)
	}
	key, err := app.LoadOrCreateKey(filepath.Join(data, "secret.key"))
	if err != nil {
		return "", err
	}
	sealer, err := staff.NewSealer(key)
	if err != nil {
		return "", err
	}
	db, err := store.Open(ctx, filepath.Join(data, "portal.db"))
	if err != nil {
		return "", err
	}
	defer db.Close()
	log, err := auditLog(db, data)
	if err != nil {
		return "", err
	}
	return CreateToken(ctx, db, log, sealer, email, roles...)
}

// CreateToken creates, in the portal's database db (whose audit trail is
// log and whose two-factor secrets sealer seals), an account holding
// roles and returns a personal API token for it with every scope, as
// PrepareToken does.
func CreateToken(ctx context.Context, db *store.DB, log *audit.Log, sealer *staff.Sealer, email string, roles ...staff.Role) (string, error) {
	svc := staff.NewService(db, log, sealer, staff.DefaultConfig(), nil)
	by := audit.Entry{Actor: "portal soak"}
	u, _, err := svc.Create(ctx, by, staff.NewUser{Email: email, Name: "Soak deployer", Roles: roles})
	if err != nil {
		return "", fmt.Errorf("loadtest: create %s: %w", email, err)
	}
	tok, _, err := svc.CreateToken(ctx, by, u.ID, staff.NewToken{Name: "soak", Scopes: []string{staff.ScopeAll}})
	if err != nil {
		return "", fmt.Errorf("loadtest: token for %s: %w", email, err)
	}
	return tok, nil
}

// Kill sends SIGKILL to the sandbox process and waits for it.
func (s *Sandbox) Kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.wait()
}

// soakClient is one of the soak's clients; what it does depends on i.
func soakClient(ctx context.Context, i int, t *soakTarget, browser *Account, token string, c *soakCounts) {
	rng := rand.New(rand.NewPCG(uint64(i), 2026))
	hc := &http.Client{Timeout: time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var session *http.Client
	n := 0
	for ctx.Err() == nil {
		base, ok := t.up()
		if !ok {
			c.down.Add(1)
			sleep(ctx, 200*time.Millisecond)
			continue
		}
		// do sends one request and says whether the portal answered;
		// a request cut by the restart counts as down, not failed.
		do := func(req *http.Request) (*http.Response, []byte, bool) {
			cl := hc
			if session != nil && req.Header.Get("Authorization") == "" {
				cl = session
			}
			resp, err := cl.Do(req.WithContext(ctx))
			if err != nil {
				if ctx.Err() != nil {
					return nil, nil, false
				}
				if t.get() != base {
					c.down.Add(1)
				} else {
					c.fail(fmt.Sprintf("%s %s: %v", req.Method, req.URL.Path, shortErr(err)))
				}
				return nil, nil, false
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if cutByBalancer(resp.StatusCode, body) {
				c.cut.Add(1)
				return nil, nil, false
			}
			return resp, body, true
		}
		n++
		switch {
		case i == 0:
			planAndApply(ctx, base, token, do, c)
		case i%10 < 5 || i%10 == 9:
			if session == nil {
				s, err := SignIn(ctx, base, browser)
				if err != nil {
					switch {
					case t.get() != base || ctx.Err() != nil:
						c.down.Add(1)
					case strings.Contains(err.Error(), " 502 ") || strings.Contains(err.Error(), "status 502"):
						// The balancer's answer when the replica that
						// took a form post died: SignIn says only the
						// status.
						c.cut.Add(1)
					default:
						c.fail("sign in: " + shortErr(err))
					}
					sleep(ctx, time.Second)
					continue
				}
				session = s
				c.signIns.Add(1)
			}
			p := BenchPages[rng.IntN(len(BenchPages))]
			req, _ := http.NewRequest(http.MethodGet, base+p.Path, nil)
			if resp, _, ok := do(req); ok {
				switch {
				case resp.StatusCode == http.StatusOK:
					c.served.Add(1)
				case resp.StatusCode == http.StatusSeeOther && strings.HasPrefix(resp.Header.Get("Location"), "/login"):
					c.served.Add(1)
					c.signedOut.Add(1)
					session = nil // signed out: sign in again
				default:
					c.fail(fmt.Sprintf("GET %s: status %d", p.Path, resp.StatusCode))
				}
			}
		case i%10 < 7:
			path := []string{"/api/v1/runs", "/api/v1/stacks", "/api/v1/blueprints/exceptions", "/api/v1/me", "/api/v1/blueprints/versions"}[rng.IntN(5)]
			req, _ := http.NewRequest(http.MethodGet, base+path, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			if resp, _, ok := do(req); ok {
				if resp.StatusCode == http.StatusOK {
					c.served.Add(1)
				} else {
					c.fail(fmt.Sprintf("GET %s: status %d", path, resp.StatusCode))
				}
			}
		case i%10 == 7:
			sendWebhook(base, i, n, rng, do, c)
		default:
			malformed(base, token, rng, do, c)
		}
		sleep(ctx, time.Duration(rng.IntN(100))*time.Millisecond)
	}
}

// cutByBalancer reports whether a response is the balancer's 502 for a
// request the replica took and did not answer (see Balancer).
func cutByBalancer(status int, body []byte) bool {
	return status == http.StatusBadGateway && bytes.HasPrefix(body, []byte(balancerCutMessage))
}

type doFunc func(*http.Request) (*http.Response, []byte, bool)

// sendWebhook delivers a signed Stripe event: a new one, or (a third of
// the time) one delivered before, so duplicates arrive; created times are
// random, so events arrive out of order.
func sendWebhook(base string, i, n int, rng *rand.Rand, do doFunc, c *soakCounts) {
	id := fmt.Sprintf("evt_soak_%d_%d", i, n)
	if n > 3 && rng.IntN(3) == 0 {
		id = fmt.Sprintf("evt_soak_%d_%d", i, 1+rng.IntN(n-1))
	}
	typ, obj := "invoice.paid", map[string]any{"id": "in_soak_" + id, "object": "invoice"}
	if rng.IntN(2) == 0 {
		typ, obj = "customer.updated", map[string]any{"id": "cus_soak_" + id, "object": "customer"}
	}
	created := time.Now().Add(-time.Duration(rng.IntN(3600)) * time.Second).Unix()
	payload, _ := json.Marshal(map[string]any{"id": id, "object": "event", "type": typ, "created": created, "livemode": false,
		"api_version": "2023-10-16", "data": map[string]any{"object": obj}})
	sig := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: sandboxWebhookSecret, Timestamp: time.Now()}).Header
	req, _ := http.NewRequest(http.MethodPost, base+"/webhooks/stripe", bytes.NewReader(payload))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", sig)
	c.mu.Lock()
	c.sent[id]++
	c.mu.Unlock()
	if resp, _, ok := do(req); ok {
		if resp.StatusCode == http.StatusOK {
			c.served.Add(1)
			c.mu.Lock()
			c.webhooks[id]++
			c.mu.Unlock()
		} else {
			c.fail(fmt.Sprintf("POST /webhooks/stripe: status %d", resp.StatusCode))
		}
	}
}

// malformed sends a request the portal must refuse with a 4xx.
func malformed(base, token string, rng *rand.Rand, do doFunc, c *soakCounts) {
	var req *http.Request
	switch rng.IntN(5) {
	case 0:
		req, _ = http.NewRequest(http.MethodPost, base+"/api/v1/plans", strings.NewReader(`{"stack":`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
	case 1:
		req, _ = http.NewRequest(http.MethodPost, base+"/webhooks/stripe", strings.NewReader(`{"id":"evt_forged","object":"event","type":"payout.paid"}`))
		req.Header.Set("Stripe-Signature", "t=1,v1=00")
	case 2:
		req, _ = http.NewRequest(http.MethodGet, base+"/api/v1/runs/not-a-number", nil)
		req.Header.Set("Authorization", "Bearer "+token)
	case 3:
		req, _ = http.NewRequest(http.MethodPost, base+"/login", strings.NewReader("email=x&password=y"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	default:
		req, _ = http.NewRequest(http.MethodGet, base+"/api/v1/runs", nil)
		req.Header.Set("Authorization", "Bearer not-a-token")
	}
	if resp, body, ok := do(req); ok {
		if resp.StatusCode >= 400 && resp.StatusCode < 500 {
			c.refused.Add(1)
		} else {
			c.fail(fmt.Sprintf("malformed %s %s: status %d, want 4xx: %.120s", req.Method, req.URL.Path, resp.StatusCode, body))
		}
	}
}

// planAndApply plans dev-eu through the API and applies the plan when it
// has changes, then waits for the run.
func planAndApply(ctx context.Context, base, token string, do doFunc, c *soakCounts) {
	api := func(method, path string, body any, out any) int {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		req.Header.Set("Authorization", "Bearer "+token)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, raw, ok := do(req)
		if !ok {
			return 0
		}
		if out != nil {
			_ = json.Unmarshal(raw, out)
		}
		return resp.StatusCode
	}
	// As an operator would after a crash: resume the runs the portal
	// marked interrupted (a stack with one takes no new apply).
	var interrupted struct {
		Items []struct {
			ID int64 `json:"id"`
		} `json:"items"`
	}
	if code := api(http.MethodGet, "/api/v1/runs?state=interrupted", nil, &interrupted); code == http.StatusOK {
		c.served.Add(1)
		for _, r := range interrupted.Items {
			switch code := api(http.MethodPost, fmt.Sprintf("/api/v1/runs/%d/resume", r.ID), nil, nil); code {
			case 0:
				return
			case http.StatusOK, http.StatusAccepted:
				c.served.Add(1)
				c.resumed.Add(1)
				waitRun(ctx, r.ID, api, c)
			default:
				c.fail(fmt.Sprintf("POST /api/v1/runs/:id/resume: status %d", code))
			}
		}
	} else if code != 0 {
		c.fail(fmt.Sprintf("GET /api/v1/runs?state=interrupted: status %d", code))
	}
	var p struct {
		ID       int64          `json:"id"`
		Counts   map[string]int `json:"counts"`
		Blocking []string       `json:"blocking"`
	}
	switch code := api(http.MethodPost, "/api/v1/plans", map[string]string{"stack": "dev-eu"}, &p); code {
	case 0:
		return
	case http.StatusCreated:
		c.served.Add(1)
		c.mu.Lock()
		c.plans[p.ID] = true
		c.mu.Unlock()
	case http.StatusConflict:
		c.served.Add(1) // the stack is locked by a run: expected while one runs
		sleep(ctx, 2*time.Second)
		return
	default:
		c.fail(fmt.Sprintf("POST /api/v1/plans: status %d", code))
		sleep(ctx, 2*time.Second)
		return
	}
	changes := 0
	for a, n := range p.Counts {
		if a != "no-op" && a != "read" {
			changes += n
		}
	}
	if changes == 0 || len(p.Blocking) > 0 {
		sleep(ctx, 5*time.Second)
		return
	}
	var q struct {
		RunID int64 `json:"run_id"`
	}
	switch code := api(http.MethodPost, fmt.Sprintf("/api/v1/plans/%d/apply", p.ID), nil, &q); code {
	case 0:
		return
	case http.StatusAccepted:
		c.served.Add(1)
		c.mu.Lock()
		c.runs[q.RunID] = true
		c.mu.Unlock()
	case http.StatusConflict:
		// An interrupted run holds the stack (it shows as such once its
		// lease lapses): the next round resumes it.
		c.served.Add(1)
		sleep(ctx, 2*time.Second)
		return
	default:
		c.fail(fmt.Sprintf("POST /api/v1/plans/:id/apply: status %d", code))
		return
	}
	waitRun(ctx, q.RunID, api, c)
}

// waitRun polls a run until it is neither queued nor running, or until it
// has been queued for 20 seconds: a run queued behind one the SIGKILL
// interrupted waits for that one to be resumed, which the caller's next
// round does.
func waitRun(ctx context.Context, id int64, api func(method, path string, body any, out any) int, c *soakCounts) {
	queuedSince := time.Now()
	for ctx.Err() == nil {
		var run struct {
			State string `json:"state"`
		}
		if api(http.MethodGet, fmt.Sprintf("/api/v1/runs/%d", id), nil, &run) == 0 {
			return
		}
		c.served.Add(1)
		switch run.State {
		case "running":
			queuedSince = time.Now()
		case "queued":
			if time.Since(queuedSince) > 20*time.Second {
				return
			}
		default:
			return
		}
		sleep(ctx, time.Second)
	}
}

// waitRuns waits until every run the soak started has finished.
func waitRuns(ctx context.Context, base, token string, c *soakCounts, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for id := range c.runs {
		for time.Now().Before(deadline) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/api/v1/runs/%d", base, id), nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			var run struct {
				State string `json:"state"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&run)
			resp.Body.Close()
			if run.State != "queued" && run.State != "running" {
				break
			}
			sleep(ctx, time.Second)
		}
	}
}

// soakChecks opens the database after the run and checks what the load
// must have left behind.
func soakChecks(ctx context.Context, portal soakPortal, c *soakCounts, took time.Duration, dups Duplicates, w io.Writer) error {
	db, log, err := portal.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	var problems []string
	check := func(ok bool, format string, args ...any) {
		mark := "ok  "
		if !ok {
			mark = "FAIL"
			problems = append(problems, fmt.Sprintf(format, args...))
		}
		fmt.Fprintf(w, "  %s %s\n", mark, fmt.Sprintf(format, args...))
	}
	fmt.Fprintf(w, "\nsoak finished after %s\n", took.Round(time.Second))
	fmt.Fprintf(w, "  requests served %d, failed %d, refused as malformed (4xx, as expected) %d, not attempted or cut while the portal was down %d\n",
		c.served.Load(), c.failed.Load(), c.refused.Load(), c.down.Load())
	for f, n := range c.failures {
		fmt.Fprintf(w, "    failure x%d: %s\n", n, f)
	}
	check(c.failed.Load() == 0, "no request failed while the portal was up (%d failed)", c.failed.Load())

	states := map[string]int{}
	rows, err := db.QueryContext(ctx, `SELECT state, COUNT(*) FROM runs GROUP BY state`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var s string
		var n int
		_ = rows.Scan(&s, &n)
		states[s] = n
	}
	rows.Close()
	fmt.Fprintf(w, "  plans made by the load %d, applies started %d, interrupted runs resumed %d; runs by state %v\n", len(c.plans), len(c.runs), c.resumed.Load(), states)
	check(states["queued"]+states["running"] == 0, "no run left queued or running")
	check(states["succeeded"] > 0, "runs completed: %d succeeded, %d failed (a run cut by the moto restart fails naming the call; a plan made stale by another run is refused when its run starts)",
		states["succeeded"], states["failed"])

	lost, extra := 0, 0
	for id, accepted := range c.webhooks {
		var deliveries int
		err := db.QueryRowContext(ctx, `SELECT deliveries FROM stripe_events WHERE id = ?`, id).Scan(&deliveries)
		switch {
		case err == sql.ErrNoRows:
			lost++
		case err != nil:
			return err
		case deliveries < accepted || deliveries > c.sent[id]:
			extra++
		}
	}
	var dupIDs int
	_ = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT id FROM stripe_events WHERE id LIKE 'evt_soak_%' GROUP BY id HAVING COUNT(*) > 1)`).Scan(&dupIDs)
	redelivered := 0
	for id := range c.webhooks {
		if c.sent[id] > 1 {
			redelivered++
		}
	}
	check(lost == 0 && extra == 0 && dupIDs == 0, "webhooks: %d events accepted (%d delivered more than once, out of order), %d lost, %d with a delivery count unlike what was sent, %d recorded twice",
		len(c.webhooks), redelivered, lost, extra, dupIDs)

	for _, e := range dups.Errors {
		fmt.Fprintf(w, "    discovery error: %s\n", e)
	}
	for _, r := range dups.Repeated {
		fmt.Fprintf(w, "    repeated: %s\n", r)
	}
	check(len(dups.Repeated) == 0 && len(dups.Errors) == 0, "no duplicate AWS resources: %d managed resources found in moto, %d stack resources more than once, %d places not read",
		dups.Managed, len(dups.Repeated), len(dups.Errors))

	v, err := log.Verify(ctx)
	if err != nil {
		return err
	}
	check(v.OK, "audit chain intact (%d records checked)", v.Checked)
	missing := 0
	for id := range c.plans {
		missing += auditMissing(ctx, db, "plan.create", fmt.Sprintf("plan:%d %%", id))
	}
	for id := range c.runs {
		missing += auditMissing(ctx, db, "run.apply", fmt.Sprintf("run:%d %%", id))
	}
	check(missing == 0, "audit complete: every plan and apply the load made is recorded (%d missing)", missing)
	var signIns int64
	_ = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_log WHERE action = 'auth.sign_in' AND target LIKE '% browse-%@portal.local'`).Scan(&signIns)
	// A sign-in cut by the SIGKILL after its commit is recorded but was
	// never answered, so the trail may hold more than the load counted.
	check(signIns >= c.signIns.Load(), "audit complete: every sign-in the load made is recorded (%d made, %d recorded)", c.signIns.Load(), signIns)

	if err := portal.checks(ctx, db, c, w, check); err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("%d check(s) failed: %s", len(problems), strings.Join(problems, "; "))
	}
	return nil
}

func auditMissing(ctx context.Context, db *store.DB, action, target string) int {
	var n int
	_ = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_log WHERE action = ? AND target LIKE ?`, action, target).Scan(&n)
	if n == 0 {
		return 1
	}
	return 0
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && len(s) > 120 {
		s = s[i+2:]
	}
	return s
}
