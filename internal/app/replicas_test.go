package app_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"portal/internal/app"
	"portal/internal/audit"
	"portal/internal/billing"
	"portal/internal/blueprints"
	"portal/internal/engine"
	"portal/internal/guardrails"
	"portal/internal/peers"
	"portal/internal/peers/peertest"
	"portal/internal/regions"
	"portal/internal/staff"
)

// replicaKey is the secret key both replicas are given.
var replicaKey = hex.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

// newReplica builds (without running) a portal on the PostgreSQL database
// at url, with its own data folder, as a second machine would.
func newReplica(t *testing.T, url, key string, extra ...string) (*app.App, error) {
	t.Helper()
	args := append([]string{"-addr", "127.0.0.1:0", "-data-dir", t.TempDir(), "-db", url, "-drift-interval", "0"}, extra...)
	cfg, err := app.ParseServe(args)
	if err != nil {
		t.Fatal(err)
	}
	cfg.SecretKey = billing.NewSecret(key)
	a, err := app.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), app.Options{HashParams: &staff.HashParams{Memory: 64, Time: 1, Threads: 1}})
	if err == nil {
		t.Cleanup(func() { a.Close() })
	}
	return a, err
}

// run serves a until the test ends.
func run(t *testing.T, a *app.App) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// TestReplicasOnOnePostgres runs two portals on one PostgreSQL database:
// they start together on an empty database, append to one audit trail at
// once, and race for the same queued runs.
func TestReplicasOnOnePostgres(t *testing.T) {
	peertest.SetAWSEnv(t, peertest.MotoForTest(t))
	var estate []string
	var devAccount string
	for _, env := range regions.EnvironmentNames() {
		acct := peertest.AccountForTest(t)
		if env == "dev" {
			devAccount = acct
		}
		estate = append(estate, "-"+env+"-account-id", acct, "-"+env+"-role-arn", peers.RoleARN(acct, peertest.TestRole))
	}
	url := peertest.PostgresDatabaseForTest(t)
	ctx := context.Background()
	// Replicas share the audit key ring as they share the secret key.
	t.Setenv(app.AuditKeysEnv, "k1 "+hex.EncodeToString([]byte("the replicas' audit key, 32 byte")))

	// Both start at once on an empty database.
	var a, b *app.App
	var errA, errB error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a, errA = newReplica(t, url, replicaKey, estate...) }()
	go func() { defer wg.Done(); b, errB = newReplica(t, url, replicaKey, estate...) }()
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("starting together: %v; %v", errA, errB)
	}
	if (a.FirstAdmin == nil) == (b.FirstAdmin == nil) {
		t.Errorf("first administrator created by A: %v, by B: %v; want by exactly one", a.FirstAdmin != nil, b.FirstAdmin != nil)
	}
	counts := map[string]string{
		"SELECT COUNT(*) FROM users":                                               "1",
		"SELECT COUNT(*) FROM blueprint_versions":                                  "1",
		"SELECT COUNT(*) FROM audit_log WHERE action = 'staff.create'":             "1",
		"SELECT COUNT(*) FROM audit_log WHERE action = 'blueprint.version.create'": "1",
		"SELECT COUNT(*) - COUNT(DISTINCT name) FROM schema_migrations":            "0",
	}
	for q, want := range counts {
		var got string
		if err := a.DB.QueryRowContext(ctx, q).Scan(&got); err != nil || got != want {
			t.Errorf("%s: %s (%v), want %s", q, got, err, want)
		}
	}

	// A replica with another key refuses to start, and says why.
	other := hex.EncodeToString([]byte("another key, another machine!!!!"))
	if _, err := newReplica(t, url, other, estate...); !errors.Is(err, staff.ErrKeyMismatch) {
		t.Errorf("a replica with another key: %v, want it refused as a key mismatch", err)
	}

	// Both append to the audit trail at once: one intact chain.
	const each = 40
	wg = sync.WaitGroup{}
	for i, r := range []*app.App{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range each {
				if _, err := r.Audit.Record(ctx, audit.Entry{Actor: fmt.Sprintf("writer-%d", i), Action: "test.concurrent", Target: fmt.Sprint(k)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	v, err := b.Audit.Verify(ctx)
	if err != nil || !v.OK {
		t.Fatalf("audit chain after concurrent appends from two replicas: %+v, %v", v, err)
	}
	var appended int
	a.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_log WHERE action = 'test.concurrent'`).Scan(&appended)
	if appended != 4*each {
		t.Errorf("%d concurrent records kept, want %d", appended, 4*each)
	}

	// Both run their runners; runs queued on A are each claimed once.
	run(t, a)
	run(t, b)
	var ids []int64
	for _, j := range []string{"eu", "us", "apac"} {
		ids = append(ids, queueKeyRun(t, a.Estate.Engine, devAccount, j))
	}
	deadline := time.Now().Add(90 * time.Second)
	for _, id := range ids {
		for {
			r, _, err := b.Estate.Engine.GetRun(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if r.Finished() {
				if r.State != engine.RunSucceeded || r.Attempt != 1 {
					t.Errorf("run %d: %s after %d claims (%s), want succeeded after exactly 1", id, r.State, r.Attempt, r.Error)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %d still %s after 90s", id, r.State)
			}
			time.Sleep(50 * time.Millisecond)
		}
		var starts int
		a.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM run_logs WHERE run_id = ? AND line = 'checking the plan is still current'`, id).Scan(&starts)
		if starts != 1 {
			t.Errorf("run %d started %d times, want once", id, starts)
		}
	}
	if v, err := a.Audit.Verify(ctx); err != nil || !v.OK {
		t.Errorf("audit chain after the runs: %+v, %v", v, err)
	}
}

// queueKeyRun queues an apply of one KMS key in jurisdiction j's dev stack
// and returns the run's id.
func queueKeyRun(t *testing.T, eng *engine.Engine, account, j string) int64 {
	t.Helper()
	ctx := context.Background()
	jur, ok := regions.JurisdictionByID(j)
	if !ok {
		t.Fatalf("no jurisdiction %s", j)
	}
	id := regions.StackID("dev", j)
	st := &blueprints.Stack{ID: id, Environment: "dev", Jurisdiction: j, Region: jur.HomeRegion, Version: "v1",
		Resources: []blueprints.Resource{{ID: "documents_key", Type: "kms_key", Region: jur.HomeRegion,
			Fields: map[string]any{"data_class": "documents", "rotation": true, "alias": "alias/replicas-" + j}}}}
	exceptions := []guardrails.Exception{{RuleID: "cloudtrail-integrity", Stack: id, Owner: "ops@example.com", Reason: "a one-key test stack has no trail", Expires: time.Now().Add(time.Hour)}}
	p, err := eng.Plan(ctx, engine.Target{Stack: st, Exceptions: exceptions,
		Info: engine.StackInfo{ID: id, Environment: "dev", Jurisdiction: j, Region: jur.HomeRegion, Version: "v1", AccountID: account}}, "apply")
	if err != nil {
		t.Fatal(err)
	}
	by := audit.Entry{Actor: "user:1 ops@example.com"}
	if err := eng.SavePlan(ctx, by, p); err != nil {
		t.Fatal(err)
	}
	runID, err := eng.Apply(ctx, by, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	return runID
}
