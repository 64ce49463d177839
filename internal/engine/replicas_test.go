package engine_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"portal/internal/engine"
	"portal/internal/peers/peertest"
	"portal/internal/store"
)

// These tests run two engines on two handles of one database, as two
// replicas do (on PostgreSQL with PORTAL_TEST_STORE=postgres).

// queueChain plans and queues an apply of chainStack(n) and returns the
// run's id.
func queueChain(t *testing.T, eng *engine.Engine, account string, n int) int64 {
	t.Helper()
	ctx := context.Background()
	info := engine.StackInfo{ID: "dev-eu", Environment: "dev", Jurisdiction: "eu", Region: "eu-central-1", Version: "v1", AccountID: account}
	p, err := eng.Plan(ctx, engine.Target{Stack: chainStack(n), Info: info, Exceptions: testExceptions}, "apply")
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.SavePlan(ctx, by, p); err != nil {
		t.Fatal(err)
	}
	id, err := eng.Apply(ctx, by, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestReplicasClaimARunOnce: runners on two replicas all try to take the
// same queued runs at once; each run is executed by exactly one, once, and
// a stack never has two runs going.
func TestReplicasClaimARunOnce(t *testing.T) {
	m := peertest.MotoForTest(t)
	account := peertest.AccountForTest(t)
	dsn := peertest.StoreDSNForTest(t)
	a, dbA := crashEngine(t, dsn, m.URL(), m.CAFile(), account, nil)
	defer dbA.Close()
	b, dbB := crashEngine(t, dsn, m.URL(), m.CAFile(), account, nil)
	defer dbB.Close()
	ctx := context.Background()
	first := queueChain(t, a, account, 2)
	second := queueChain(t, b, account, 2) // the same stack: waits for the first

	var wg sync.WaitGroup
	for i := range 6 {
		eng := a
		if i%2 == 1 {
			eng = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := eng.RunNow(ctx, fmt.Sprintf("runner-%d", i)); err != nil {
				t.Error(err)
			}
		}()
	}
	// While they run, never two active runs of the stack.
	stop := make(chan struct{})
	var most atomic.Int32
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			var n int32
			_ = dbA.QueryRowContext(ctx, `SELECT COUNT(*) FROM runs WHERE stack = 'dev-eu' AND state IN ('running', 'interrupted')`).Scan(&n)
			if n > most.Load() {
				most.Store(n)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	wg.Wait()
	// RunNow returns when nothing is left to claim; the second run may
	// still be queued if its stack was busy when the last runner looked.
	if err := a.RunNow(ctx, "finisher"); err != nil {
		t.Fatal(err)
	}
	close(stop)
	if got := most.Load(); got > 1 {
		t.Errorf("%d runs of one stack active at once, want at most 1", got)
	}
	// The second plan was made before the first run changed AWS, so it
	// ends failed as stale; what matters is that each was claimed once.
	for id, want := range map[int64]string{first: engine.RunSucceeded, second: engine.RunFailed} {
		run, _, err := a.GetRun(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if run.State != want || run.Attempt != 1 {
			t.Errorf("run %d: %s after %d claims (%s), want %s after exactly 1", id, run.State, run.Attempt, run.Error, want)
		}
		var starts int
		dbA.QueryRowContext(ctx, `SELECT COUNT(*) FROM run_logs WHERE run_id = ? AND line = 'checking the plan is still current'`, id).Scan(&starts)
		if starts != 1 {
			t.Errorf("run %d was started %d times, want once", id, starts)
		}
	}
	var ended int
	dbA.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_log WHERE action IN ('run.succeeded', 'run.failed')`).Scan(&ended)
	if ended != 2 {
		t.Errorf("%d records of a run ending, want 2", ended)
	}
}

// waitDone waits until run id has at least n steps done.
func waitDone(t *testing.T, db *store.DB, id int64, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var done int
		_ = db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM run_steps WHERE run_id = ? AND state = 'done'`, id).Scan(&done)
		if done >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %d: %d steps done in 60s, want %d", id, done, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLostLeaseStopsTheRunner: a runner whose run was taken from it (its
// lease lapsed, recovery marked the run interrupted and another replica
// resumed it) stops, and writes nothing more of that run.
func TestLostLeaseStopsTheRunner(t *testing.T) {
	m := peertest.MotoForTest(t)
	account := peertest.AccountForTest(t)
	dsn := peertest.StoreDSNForTest(t)
	a, db := crashEngine(t, dsn, m.URL(), m.CAFile(), account, nil)
	defer db.Close()
	ctx := context.Background()
	const n = 12
	id := queueChain(t, a, account, n)
	done := make(chan error, 1)
	go func() { done <- a.RunNow(ctx, "replica-a") }()
	waitDone(t, db, id, 2)
	// As if replica a had paused past its lease: the run is recovered and
	// claimed again by replica b (a new attempt).
	if _, err := db.ExecContext(ctx, `UPDATE runs SET holder = 'replica-b', attempt = attempt + 1 WHERE id = ?`, id); err != nil {
		t.Fatal(err)
	}
	var stepsAtTakeover, logsAtTakeover int
	db.QueryRowContext(ctx, `SELECT COUNT(*) FROM run_steps WHERE run_id = ? AND state IN ('done', 'running')`, id).Scan(&stepsAtTakeover)
	db.QueryRowContext(ctx, `SELECT COUNT(*) FROM run_logs WHERE run_id = ?`, id).Scan(&logsAtTakeover)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the runner that lost the run's lease did not stop in 30s")
	}
	run, steps, _ := a.GetRun(ctx, id)
	if run.State != engine.RunRunning || run.Holder != "replica-b" {
		t.Errorf("after the takeover the run is %s held by %q, want still running, held by replica-b (the old runner wrote its end)", run.State, run.Holder)
	}
	var doneNow, logsNow int
	for _, s := range steps {
		if s.State == engine.StepDone || s.State == engine.StepRunning {
			doneNow++
		}
	}
	db.QueryRowContext(ctx, `SELECT COUNT(*) FROM run_logs WHERE run_id = ?`, id).Scan(&logsNow)
	if doneNow > stepsAtTakeover || logsNow > logsAtTakeover {
		t.Errorf("after losing the lease the old runner recorded %d more steps and %d more log lines, want none",
			doneNow-stepsAtTakeover, logsNow-logsAtTakeover)
	}
	if doneNow >= n {
		t.Errorf("the old runner finished all %d steps after losing the run", n)
	}
}

// TestUnrecordableProgressStopsTheRun: when a step's progress cannot be
// written, the run stops (no further step changes AWS) and ends failed,
// saying why.
func TestUnrecordableProgressStopsTheRun(t *testing.T) {
	m := peertest.MotoForTest(t)
	account := peertest.AccountForTest(t)
	dsn := peertest.StoreDSNForTest(t)
	a, db := crashEngine(t, dsn, m.URL(), m.CAFile(), account, nil)
	defer db.Close()
	ctx := context.Background()
	const n = 12
	id := queueChain(t, a, account, n)
	done := make(chan error, 1)
	go func() { done <- a.RunNow(ctx, "replica-a") }()
	waitDone(t, db, id, 2)
	// The log table goes away: every log line now fails to be written.
	if _, err := db.ExecContext(ctx, `ALTER TABLE run_logs RENAME TO run_logs_gone`); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	run, steps, _ := a.GetRun(ctx, id)
	if run.State != engine.RunFailed || !strings.Contains(run.Error, "could not record") || !strings.Contains(run.Error, "log line") {
		t.Errorf("run is %s (%q), want failed saying a log line could not be recorded", run.State, run.Error)
	}
	doneSteps := 0
	for _, s := range steps {
		if s.State == engine.StepDone {
			doneSteps++
		}
	}
	if doneSteps > 4 {
		t.Errorf("%d of %d steps done after recording broke at step 3, want the run to stop", doneSteps, n)
	}
}
