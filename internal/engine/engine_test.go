package engine_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"portal/internal/audit"
	"portal/internal/blueprints"
	"portal/internal/drivers"
	"portal/internal/engine"
	"portal/internal/guardrails"
	"portal/internal/peers"
	"portal/internal/peers/peertest"
	"portal/internal/store"
)

func TestMain(m *testing.M) { peertest.Main(m) }

var by = audit.Entry{Actor: "user:1 ops@example.com"}

type harness struct {
	eng     *engine.Engine
	db      *store.DB
	account string
	cfg     func(region string) aws.Config
}

// newHarness builds an engine over a fresh database and a fresh moto
// account that plays the dev environment.
func newHarness(t *testing.T) *harness {
	return newHarnessVia(t, "")
}

// newHarnessVia is newHarness with AWS calls (other than STS) sent to
// endpoint instead of moto directly, e.g. through a fault proxy.
func newHarnessVia(t *testing.T, endpoint string) *harness {
	t.Helper()
	m := peertest.MotoForTest(t)
	account := peertest.AccountForTest(t)
	db := peertest.StoreForTest(t)
	reg, err := engine.NewRegistry(drivers.All()...)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	cache := map[string]aws.Config{}
	cfg := func(region string) aws.Config {
		mu.Lock()
		defer mu.Unlock()
		if c, ok := cache[region]; ok {
			return c
		}
		c := peers.AssumeAccount(context.Background(), m.AWSConfig(region), account, peertest.TestRole)
		if endpoint != "" {
			c.BaseEndpoint = aws.String(endpoint)
		}
		cache[region] = c
		return c
	}
	source := func(env, region string) (aws.Config, error) { return cfg(region), nil }
	eng := engine.New(reg, source, db, audit.New(db, nil), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	return &harness{eng: eng, db: db, account: account, cfg: cfg}
}

func keyStack(rotation bool) *blueprints.Stack {
	return &blueprints.Stack{ID: "dev-eu", Environment: "dev", Jurisdiction: "eu", Region: "eu-central-1", Version: "v1",
		Resources: []blueprints.Resource{
			{ID: "documents_key", Type: "kms_key", Region: "eu-central-1", Fields: map[string]any{"data_class": "documents", "rotation": true, "alias": "alias/t-documents"}},
			{ID: "logs_key", Type: "kms_key", Region: "eu-central-1", Fields: map[string]any{"data_class": "logs", "rotation": rotation, "alias": "alias/t-logs",
				"description": "logs key next to ${ref.documents_key.arn}"}, DependsOn: []string{"documents_key"}},
		}}
}

// The key-only test stack has no trail and one key may have rotation off:
// exceptions let the engine tests apply it.
var testExceptions = []guardrails.Exception{
	{RuleID: "cloudtrail-integrity", Stack: "dev-eu", Owner: "ops@example.com", Reason: "engine test stack has no trail", Expires: time.Now().Add(time.Hour)},
	{RuleID: "kms-rotation", Stack: "dev-eu", Resource: "logs_key", Owner: "ops@example.com", Reason: "engine test toggles rotation", Expires: time.Now().Add(time.Hour)},
}

func (h *harness) target(s *blueprints.Stack) engine.Target {
	return engine.Target{Stack: s, Exceptions: testExceptions,
		Info: engine.StackInfo{ID: s.ID, Environment: s.Environment, Jurisdiction: s.Jurisdiction, Region: s.Region, Version: s.Version, AccountID: h.account}}
}

func TestBlockingGuardrailRefusesApply(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	tg := h.target(keyStack(false))
	tg.Exceptions = nil
	p, err := h.eng.Plan(ctx, tg, "apply")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.eng.SavePlan(ctx, by, p); err != nil {
		t.Fatal(err)
	}
	_, err = h.eng.Apply(ctx, by, p.ID)
	if err == nil || !contains(err.Error(), "kms-rotation") || !contains(err.Error(), "GDPR Art. 32") {
		t.Errorf("apply of a plan failing kms-rotation: %v, want refused citing the rule and GDPR", err)
	}
}

func (h *harness) planApply(t *testing.T, s *blueprints.Stack, kind string) (*engine.Plan, engine.Run) {
	t.Helper()
	ctx := context.Background()
	p, err := h.eng.Plan(ctx, h.target(s), kind)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if err := h.eng.SavePlan(ctx, by, p); err != nil {
		t.Fatal(err)
	}
	id, err := h.eng.Apply(ctx, by, p.ID)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if err := h.eng.RunNow(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	run, steps, err := h.eng.GetRun(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if run.State != engine.RunSucceeded {
		for _, s := range steps {
			t.Logf("step %s %s: %s %s", s.ResourceID, s.Action, s.State, s.Error)
		}
		t.Fatalf("run %d: %s (%s), want succeeded", id, run.State, run.Error)
	}
	return p, run
}

func counts(p *engine.Plan) map[engine.Action]int { return p.Counts() }

func TestPlanApplyReplanUpdateDestroy(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()

	p, run := h.planApply(t, keyStack(false), "apply")
	if c := counts(p); c[engine.Create] != 2 {
		t.Fatalf("plan from empty: %v, want 2 creates", c)
	}
	if run.Calls == 0 {
		t.Errorf("run recorded no AWS calls")
	}

	again, err := h.eng.Plan(ctx, h.target(keyStack(false)), "apply")
	if err != nil {
		t.Fatal(err)
	}
	if again.HasChanges() {
		t.Fatalf("plan right after apply has changes: %+v", again.Changes)
	}

	upd, err := h.eng.Plan(ctx, h.target(keyStack(true)), "apply")
	if err != nil {
		t.Fatal(err)
	}
	c := counts(upd)
	if c[engine.Update] != 1 || c[engine.NoOp] != 1 {
		t.Fatalf("plan after turning rotation on: %v, want 1 update 1 no-op", c)
	}
	for _, ch := range upd.Changes {
		if ch.Action == engine.Update && (ch.ID != "logs_key" || len(ch.Fields) != 1 || ch.Fields[0].Path != "rotation") {
			t.Errorf("update %s %+v, want logs_key rotation only", ch.ID, ch.Fields)
		}
	}
	h.planApply(t, keyStack(true), "apply")

	// State lost: the next plan finds the keys by their aliases and tags.
	if err := h.eng.ForgetState(ctx, "dev-eu"); err != nil {
		t.Fatal(err)
	}
	adopt, err := h.eng.Plan(ctx, h.target(keyStack(true)), "apply")
	if err != nil {
		t.Fatal(err)
	}
	if adopt.HasChanges() {
		t.Fatalf("plan after losing state wants changes (duplicates?): %v", counts(adopt))
	}
	h.planApply(t, keyStack(true), "apply")

	d, _ := h.planApply(t, keyStack(true), "destroy")
	if c := counts(d); c[engine.Delete] != 2 {
		t.Fatalf("destroy plan %v, want 2 deletes", c)
	}
	if d.Changes[0].ID != "logs_key" {
		t.Errorf("destroy deletes %s first, want the dependant logs_key", d.Changes[0].ID)
	}
	keys, err := kms.NewFromConfig(h.cfg("eu-central-1")).ListAliases(ctx, &kms.ListAliasesInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range keys.Aliases {
		if n := aws.ToString(a.AliasName); n == "alias/t-documents" || n == "alias/t-logs" {
			t.Errorf("alias %s still exists after destroy", n)
		}
	}
	runs, _, err := h.eng.ListRuns(ctx, engine.RunFilter{Stack: "dev-eu"})
	if err != nil || len(runs) != 4 {
		t.Errorf("runs listed: %d (%v), want 4", len(runs), err)
	}
}

func TestStalePlanRefused(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	p, err := h.eng.Plan(ctx, h.target(keyStack(false)), "apply")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.eng.SavePlan(ctx, by, p); err != nil {
		t.Fatal(err)
	}
	// Someone creates the key behind the portal's back after the plan.
	c := kms.NewFromConfig(h.cfg("eu-central-1"))
	k, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/t-documents"), TargetKeyId: k.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	id, err := h.eng.Apply(ctx, by, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.eng.RunNow(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	run, _, _ := h.eng.GetRun(ctx, id)
	if run.State != engine.RunFailed || !contains(run.Error, "stale") {
		t.Errorf("run %s %q, want failed as stale", run.State, run.Error)
	}
}

// TestApplyRefusedWhileInterrupted checks that a stack with an
// interrupted run takes no new apply (a queued run would wait behind it
// for ever) until the interrupted one is cancelled.
func TestApplyRefusedWhileInterrupted(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	plan := func() int64 {
		p, err := h.eng.Plan(ctx, h.target(keyStack(false)), "apply")
		if err != nil {
			t.Fatal(err)
		}
		if err := h.eng.SavePlan(ctx, by, p); err != nil {
			t.Fatal(err)
		}
		return p.ID
	}
	first, err := h.eng.Apply(ctx, by, plan())
	if err != nil {
		t.Fatal(err)
	}
	// How a run comes to be interrupted is TestCancelAndInterruptResume's
	// and TestKilledMidApply's concern; here it is set directly.
	if _, err := h.db.ExecContext(ctx, `UPDATE runs SET state = 'interrupted' WHERE id = ?`, first); err != nil {
		t.Fatal(err)
	}
	second := plan()
	_, err = h.eng.Apply(ctx, by, second)
	if !contains(fmt.Sprint(err), fmt.Sprintf("run %d of", first)) || !contains(fmt.Sprint(err), "resume or cancel it") {
		t.Fatalf("apply beside an interrupted run: %v, want a conflict naming run %d", err, first)
	}
	if err := h.eng.Cancel(ctx, by, first); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.Apply(ctx, by, second); err != nil {
		t.Errorf("apply after the interrupted run was cancelled: %v", err)
	}
}

func TestCancelAndInterruptResume(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	p, err := h.eng.Plan(ctx, h.target(keyStack(false)), "apply")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.eng.SavePlan(ctx, by, p); err != nil {
		t.Fatal(err)
	}
	id, err := h.eng.Apply(ctx, by, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The portal stops mid-run: the run is interrupted, not failed. It
	// stops once the runner has taken the run (a fixed delay would stop
	// it before that on a loaded machine, leaving the run queued).
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		defer cancel()
		for cctx.Err() == nil {
			if r, _, err := h.eng.GetRun(ctx, id); err == nil && r.State != engine.RunQueued {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	h.eng.Work(cctx, "replica-a")
	run, _, _ := h.eng.GetRun(ctx, id)
	if run.State != engine.RunInterrupted && run.State != engine.RunSucceeded {
		t.Fatalf("after stopping mid-run the run is %s (%s), want interrupted", run.State, run.Error)
	}
	if run.State == engine.RunInterrupted {
		if err := h.eng.Resume(ctx, by, id); err != nil {
			t.Fatal(err)
		}
		if err := h.eng.RunNow(ctx, "replica-b"); err != nil {
			t.Fatal(err)
		}
		run, _, _ = h.eng.GetRun(ctx, id)
		if run.State != engine.RunSucceeded {
			t.Fatalf("resumed run %s (%s), want succeeded", run.State, run.Error)
		}
	}
	aliases, err := kms.NewFromConfig(h.cfg("eu-central-1")).ListAliases(ctx, &kms.ListAliasesInput{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range aliases.Aliases {
		if aws.ToString(a.AliasName) == "alias/t-documents" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("alias/t-documents exists %d times, want 1", n)
	}
	if err := h.eng.Cancel(ctx, by, id); err == nil {
		t.Errorf("cancelling a finished run succeeded, want a conflict")
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestApplyThroughFaults applies through a proxy that answers a share of
// AWS calls with throttling errors and 503s: the engine's retries carry the
// apply through.
func TestApplyThroughFaults(t *testing.T) {
	m := peertest.MotoForTest(t)
	proxy := peertest.StartFaultProxy(t, m, 0.25, 7)
	h := newHarnessVia(t, proxy.URL())
	h.eng.MaxBackoff = 50 * time.Millisecond
	_, run := h.planApply(t, keyStack(true), "apply")
	total, injected := proxy.Counts()
	if injected == 0 {
		t.Fatalf("the proxy failed none of %d calls; the test proves nothing", total)
	}
	t.Logf("%d AWS calls through the proxy, %d answered with a fault; the run recorded %d calls", total, injected, run.Calls)
	again, err := h.eng.Plan(context.Background(), h.target(keyStack(true)), "apply")
	if err != nil {
		t.Fatal(err)
	}
	if again.HasChanges() {
		t.Errorf("after an apply through faults the plan still has changes: %v", again.Counts())
	}
}
