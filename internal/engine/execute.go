package engine

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/smithy-go"

	"portal/internal/audit"
	"portal/internal/store"
)

// Work runs queued runs until ctx ends: one run per stack at a time, runs
// of different stacks in parallel. holder names this runner in leases.
// Replicas sharing the database each run Work: a run is claimed by one of
// them (claim), and every runner marks runs whose lease lapsed as
// interrupted (Recover).
func (e *Engine) Work(ctx context.Context, holder string) {
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var recovered time.Time
	for {
		// Leases last tens of seconds: looking for lapsed ones every
		// couple of seconds is enough.
		if time.Since(recovered) >= 2*time.Second {
			recovered = time.Now()
			if _, err := e.Recover(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("recover runs", slog.String("err", err.Error()))
			}
		}
		for {
			run, ok, err := e.claim(ctx, holder)
			if err != nil {
				if ctx.Err() == nil {
					e.log.Warn("claim run", slog.String("err", err.Error()))
				}
				break
			}
			if !ok {
				break
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.execute(ctx, run, holder)
			}()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// claim takes the oldest queued run of a stack that has no active run. The
// taking is one conditional UPDATE, checked by its row count, so of
// several replicas claiming one run exactly one gets it; and the database
// refuses a second active run of a stack (runs_one_active_idx), so two
// replicas claiming two queued runs of one stack start one of them.
func (e *Engine) claim(ctx context.Context, holder string) (Run, bool, error) {
	// A read first, so that an idle runner polling four times a second
	// does not take the database's write lock each time.
	var queued bool
	if err := e.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM runs WHERE state = 'queued')`).Scan(&queued); err != nil || !queued {
		return Run{}, false, err
	}
	rows, err := e.db.QueryContext(ctx, `SELECT id FROM runs r WHERE state = 'queued'
		AND NOT EXISTS (SELECT 1 FROM runs o WHERE o.stack = r.stack AND o.state IN ('running', 'interrupted'))
		ORDER BY id LIMIT 20`)
	if err != nil {
		return Run{}, false, err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return Run{}, false, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(ids) == 0 {
		return Run{}, false, err
	}
	now, err := e.db.Now(ctx)
	if err != nil {
		return Run{}, false, err
	}
	for _, id := range ids {
		run, err := scanRun(e.db.QueryRowContext(ctx, `UPDATE runs SET state = 'running', holder = ?, lease_until = ?, attempt = attempt + 1,
			started_at = CASE WHEN started_at = '' THEN ? ELSE started_at END WHERE id = ? AND state = 'queued' RETURNING `+runColumns,
			holder, store.Time(now.Add(e.lease())), store.Time(e.now()), id))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			continue // another runner claimed it first
		case store.IsUniqueViolation(err):
			continue // another runner started a run of this stack first
		case err != nil:
			return Run{}, false, fmt.Errorf("engine: claim run %d: %w", id, err)
		}
		return run, true, nil
	}
	return Run{}, false, nil
}

func (e *Engine) lease() time.Duration {
	if e.Lease > 0 {
		return e.Lease
	}
	return DefaultLease
}

// RunNow claims and executes queued runs until none is left, in the
// caller's goroutine. Tests and the command line use it instead of Work.
func (e *Engine) RunNow(ctx context.Context, holder string) error {
	for {
		run, ok, err := e.claim(ctx, holder)
		if err != nil || !ok {
			return err
		}
		e.execute(ctx, run, holder)
	}
}

// execute carries out a claimed run, holding its lease: renewed while it
// runs, checked by every write. A run whose lease is lost stops, and its
// runner writes nothing more of it; a run whose progress cannot be
// recorded stops and ends failed, saying why.
func (e *Engine) execute(ctx context.Context, run Run, holder string) {
	log := e.log.With(slog.Int64("run", run.ID), slog.String("stack", run.Stack))
	rctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	f := fence{db: e.db, run: run.ID, holder: holder, attempt: run.Attempt}
	rec := &stepRecorder{f: f, now: e.now, stop: stop}

	// Renew the lease and watch for a cancel request while the run goes.
	var cancelRequested atomic.Bool
	done := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		e.keepLease(rctx, f, &cancelRequested, stop, done, log)
	}()
	state, msg := e.executeSteps(rctx, run, cancelRequested.Load, rec, log)
	close(done)
	<-renewed

	cause := context.Cause(rctx)
	switch {
	case errors.Is(cause, errLeaseLost):
		log.Warn("run stopped: this runner lost its lease; recovery marks the run interrupted, to be resumed", slog.String("why", cause.Error()))
		return
	case ctx.Err() != nil:
		// A run stopped by the portal shutting down is interrupted, not failed.
		state, msg = RunInterrupted, "the portal stopped while this run was in progress; resume it to finish"
	case rec.Err() != nil:
		state, msg = RunFailed, "the portal could not record this run's progress, so it stopped: "+rec.Err().Error()
	}
	fctx, fcancel := context.WithTimeout(context.Background(), recordTimeout)
	defer fcancel()
	err := f.tx(fctx, func(tx *sql.Tx) error {
		finished := store.Time(e.now())
		if state == RunInterrupted {
			finished = ""
			if _, err := tx.ExecContext(fctx, `UPDATE run_steps SET state = 'interrupted' WHERE run_id = ? AND state = 'running'`, run.ID); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(fctx, `UPDATE runs SET state = ?, error = ?, finished_at = ?, holder = '', lease_until = '' WHERE id = ?`,
			state, msg, finished, run.ID); err != nil {
			return err
		}
		_, err := e.audit.Append(fctx, tx, audit.Entry{Actor: "system", Action: "run." + state, Target: fmt.Sprintf("run:%d stack:%s", run.ID, run.Stack),
			Details: map[string]any{"kind": run.Kind, "error": msg}})
		return err
	})
	switch {
	case errors.Is(err, errLeaseLost):
		log.Warn("run ended after this runner lost its lease: its end is not recorded; recovery marks it interrupted", slog.String("state", state))
		return
	case err != nil:
		// Left running: once its lease lapses, recovery marks it
		// interrupted, which the runs page shows.
		log.Error("run ended but its end could not be recorded", slog.String("state", state), slog.String("err", err.Error()))
		return
	}
	log.Info("run finished", slog.String("state", state))
	if e.OnFinish != nil && state != RunInterrupted {
		if r, _, err := e.GetRun(fctx, run.ID); err == nil {
			e.OnFinish(ctx, r)
		} else {
			log.Error("run finished but could not be read back", slog.String("err", err.Error()))
		}
	}
}

// leaseTick is how often a running run's lease is renewed and its cancel
// flag read.
const leaseTick = 500 * time.Millisecond

// keepLease renews f's lease every leaseTick until done, noting cancel
// requests. When the lease is lost, or cannot be renewed for two thirds of
// its length (the database is unreachable: another replica may take the
// run once it lapses), it stops the run.
func (e *Engine) keepLease(ctx context.Context, f fence, cancelRequested *atomic.Bool, stop context.CancelCauseFunc, done <-chan struct{}, log *slog.Logger) {
	lease := e.lease()
	tick := min(leaseTick, lease/3)
	t := time.NewTicker(tick)
	defer t.Stop()
	confirmed := time.Now()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		flag, err := f.renew(ctx, lease)
		switch {
		case errors.Is(err, errLeaseLost):
			stop(errLeaseLost)
			return
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			log.Warn("renew run lease", slog.String("err", err.Error()))
			if since := time.Since(confirmed); since > lease*2/3 {
				stop(fmt.Errorf("%w: it could not be renewed for %s (%v)", errLeaseLost, since.Round(time.Second), err))
				return
			}
		default:
			confirmed = time.Now()
			if flag {
				cancelRequested.Store(true)
			}
		}
	}
}

// executeSteps walks the run's pending steps and returns the run's end
// state and error message.
func (e *Engine) executeSteps(ctx context.Context, run Run, stop func() bool, r *stepRecorder, log *slog.Logger) (string, string) {
	p, err := e.GetPlan(ctx, run.PlanID)
	if err != nil {
		return RunFailed, err.Error()
	}
	stack := planStack(p)
	nodes, _, err := e.nodes(stack)
	if err != nil {
		return RunFailed, err.Error()
	}
	rec := newRecorder()
	// A log line that cannot be written stops the run (the recorder
	// cancels ctx and keeps the failure for the run's end).
	appendLog := func(resource, line string) { _ = r.log(resource, line) }
	if e.BeforeRun != nil {
		if err := e.BeforeRun(ctx, run, p); err != nil {
			appendLog("", "refused at start: "+err.Error())
			return RunFailed, "refused at start: " + err.Error()
		}
	}
	env, err := e.newEnv(p.Stack, rec, func(f string, a ...any) { appendLog("", fmt.Sprintf(f, a...)) })
	if err != nil {
		return RunFailed, err.Error()
	}
	defer func() { _ = r.calls(rec.Calls()) }()

	if run.Attempt == 1 && p.Kind == "apply" {
		appendLog("", "checking the plan is still current")
		fresh, err := e.Plan(ctx, Target{Stack: stack, Info: p.Stack, BlueprintVersion: p.BlueprintVersion}, "apply")
		if err != nil {
			return RunFailed, "could not re-read AWS to check the plan is current: " + err.Error()
		}
		if fresh.Hash != p.Hash {
			return RunFailed, "the plan is stale: AWS or the recorded state changed since it was made (" + staleSummary(p, fresh) + "); plan again and review the new plan"
		}
	}

	_, steps, err := e.GetRun(ctx, run.ID)
	if err != nil {
		return RunFailed, err.Error()
	}
	changes := map[string]Change{}
	for _, c := range p.Changes {
		changes[c.ID] = c
	}
	state, err := e.loadState(ctx, p.Stack.ID)
	if err != nil {
		return RunFailed, err.Error()
	}
	var mu sync.Mutex
	outputs, err := e.external(ctx, stack)
	if err != nil {
		return RunFailed, err.Error()
	}
	for id, st := range state {
		outputs[id] = st.Outputs
	}
	var waited []string
	ids := make([]string, 0, len(steps))
	inRun := map[string]bool{}
	stepState := map[string]string{}
	for _, s := range steps {
		ids = append(ids, s.ResourceID)
		inRun[s.ResourceID] = true
		stepState[s.ResourceID] = s.State
	}
	waits := map[string][]string{}
	for _, c := range p.Changes {
		for _, d := range c.DependsOn {
			if !inRun[d] {
				continue
			}
			if p.Kind == "destroy" {
				waits[d] = append(waits[d], c.ID) // delete dependants first
			} else {
				waits[c.ID] = append(waits[c.ID], d)
			}
		}
	}
	appendLog("", fmt.Sprintf("%s of %s (version %s): %d steps", p.Kind, p.Stack.ID, shortVersion(p.Stack.Version), len(ids)))
	results := walk(ctx, ids, waits, e.Parallelism, stop, func(ctx context.Context, id string) error {
		_, isData := driverOf(nodes, id).(DataSource)
		if stepState[id] == StepDone && !isData {
			// Done in an earlier attempt; its outputs are in the state.
			// Data sources are read again: their outputs are not recorded.
			return nil
		}
		ch := changes[id]
		if n, ok := nodes[id]; ok && p.Kind == "apply" {
			mu.Lock()
			w := crossWaits(n.res, outputs)
			if len(w) > 0 {
				waited = append(waited, id)
			}
			mu.Unlock()
			if len(w) > 0 {
				msg := "waits for " + describeWaits(w) + ": apply those stacks, then this one again"
				appendLog(id, msg)
				if err := r.step(id, StepSkipped, msg, nil, 0); err != nil {
					return err
				}
				return errors.Join(ErrSkipped, errors.New(msg))
			}
		}
		if err := r.step(id, StepRunning, "", nil, 0); err != nil {
			return err
		}
		stepEnv := *env
		stepEnv.Logf = func(f string, a ...any) { appendLog(id, fmt.Sprintf(f, a...)) }
		start := e.now()
		appendLog(id, fmt.Sprintf("%s %s %s", ch.Action, ch.Type, id))
		sctx := withResource(ctx, id)
		var live *Live
		var err error
		if n, ok := nodes[id]; ok {
			mu.Lock()
			d, derr := e.desired(p.Stack, n, outputs)
			mu.Unlock()
			if derr != nil {
				err = derr
			} else {
				live, err = e.act(sctx, &stepEnv, n.driver, ch, d, state[id])
			}
		} else {
			// A resource no longer in the blueprint: only deletion is possible.
			err = e.deleteOrphan(sctx, &stepEnv, ch, state[id])
		}
		calls, reqIDs := rec.forResource(id)
		if err != nil {
			msg := describe(ch, err)
			appendLog(id, "failed: "+msg)
			if rerr := r.step(id, StepFailed, msg, reqIDs, calls); rerr != nil {
				return rerr
			}
			return err
		}
		if live != nil {
			mu.Lock()
			outputs[id] = live.Outputs
			mu.Unlock()
			// Data sources are recorded too: a later stage reads what they
			// resolved (prod takes the image test resolved).
			if p.Kind == "destroy" && isData {
				if err := r.state("the deletion of "+id, func(tx *sql.Tx) error {
					return e.dropState(ctx, tx, p.Stack.ID, id)
				}); err != nil {
					_ = r.step(id, StepFailed, err.Error(), reqIDs, calls)
					return err
				}
			} else if err := r.state("the state of "+id, func(tx *sql.Tx) error {
				return e.saveState(ctx, tx, p.Stack.ID, id, ch.Type, p.Stack.Version, live)
			}); err != nil {
				_ = r.step(id, StepFailed, err.Error(), reqIDs, calls)
				return err
			}
		} else if ch.Action == Delete {
			if err := r.state("the deletion of "+id, func(tx *sql.Tx) error {
				return e.dropState(ctx, tx, p.Stack.ID, id)
			}); err != nil {
				_ = r.step(id, StepFailed, err.Error(), reqIDs, calls)
				return err
			}
		}
		appendLog(id, fmt.Sprintf("done in %s (%d AWS calls)", e.now().Sub(start).Round(time.Millisecond), calls))
		return r.step(id, StepDone, "", reqIDs, calls)
	})
	var failed, skipped []string
	for _, id := range ids {
		err := results[id]
		switch {
		case err == nil:
		case errors.Is(err, ErrSkipped):
			skipped = append(skipped, id)
			if ctx.Err() == nil && !slices.Contains(waited, id) {
				_ = r.step(id, StepSkipped, strings.TrimPrefix(err.Error(), ErrSkipped.Error()+"\n"), nil, 0)
			}
		default:
			failed = append(failed, id)
		}
	}
	switch {
	case ctx.Err() != nil:
		return RunInterrupted, ""
	case len(failed) > 0:
		return RunFailed, fmt.Sprintf("%d step(s) failed (%s); %d skipped because they depend on them", len(failed), strings.Join(failed, ", "), len(skipped))
	case stop():
		return RunCancelled, fmt.Sprintf("cancelled: %d step(s) not started", len(skipped))
	case len(waited) > 0:
		return RunSucceeded, fmt.Sprintf("%d resource(s) wait for other stacks and %d more for them (%s): apply those stacks, then this one again", len(waited), len(skipped)-len(waited), strings.Join(waited, ", "))
	}
	return RunSucceeded, ""
}

func driverOf(nodes map[string]*node, id string) Driver {
	if n, ok := nodes[id]; ok {
		return n.driver
	}
	return nil
}

// act carries out one planned change, reading AWS first so that a step
// repeated after a crash finds what the first attempt created.
func (e *Engine) act(ctx context.Context, env *Env, drv Driver, ch Change, d *Desired, st *stateRow) (*Live, error) {
	var prior *Prior
	if st != nil {
		prior = &Prior{PhysicalID: st.PhysicalID, Region: st.Region, Outputs: st.Outputs}
	}
	live, err := drv.Read(ctx, env, d, prior)
	if errors.Is(err, ErrNotFound) && prior != nil {
		live, err = drv.Read(ctx, env, d, nil)
	}
	exists := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if _, ok := drv.(DataSource); ok {
		if !exists {
			return nil, fmt.Errorf("nothing matches %s", Display(d.Fields))
		}
		return live, nil
	}
	if ch.Action == Delete {
		if !exists {
			env.Logf("already gone")
			return nil, nil
		}
		if !live.OwnedBy(env.Stack.ID) {
			return nil, fmt.Errorf("%s is not owned by the portal; refusing to delete it", live.PhysicalID)
		}
		if live.DeletionProtected {
			return nil, fmt.Errorf("%s has deletion protection on; refusing to delete it", live.PhysicalID)
		}
		return nil, drv.Delete(ctx, env, live)
	}
	if exists && !live.OwnedBy(env.Stack.ID) {
		return nil, fmt.Errorf("%s exists and is not owned by the portal", live.PhysicalID)
	}
	if exists {
		changes := Diff(d, live, drv.ForceNew())
		if live.Region != "" && d.Region != "" && live.Region != d.Region {
			changes = append(changes, FieldChange{Path: "region", Before: live.Region, After: d.Region, Replace: true})
		}
		if len(changes) == 0 {
			if ch.Action == Create && live.Note == "" {
				env.Logf("already exists (a previous attempt created it); adopted")
			}
			return live, nil
		}
		if anyReplace(changes) {
			env.Logf("replacing %s: %s cannot change in place", live.PhysicalID, replaceFields(changes))
			if err := drv.Delete(ctx, env, live); err != nil {
				return nil, fmt.Errorf("delete for replacement: %w", err)
			}
			return drv.Create(ctx, env, d)
		}
		return drv.Update(ctx, env, d, live, changes)
	}
	return drv.Create(ctx, env, d)
}

func (e *Engine) deleteOrphan(ctx context.Context, env *Env, ch Change, st *stateRow) error {
	drv, ok := e.reg.Driver(ch.Type)
	if !ok || st == nil {
		return fmt.Errorf("no way to delete %s (%s)", ch.ID, ch.Type)
	}
	if _, isData := drv.(DataSource); isData {
		return nil // a look-up made nothing: only its record goes
	}
	d := &Desired{ID: ch.ID, Type: ch.Type, Region: st.Region, Fields: map[string]any{}, Tags: e.tags(env.Stack, ch.ID)}
	_, err := e.act(ctx, env, drv, ch, d, st)
	return err
}

// describe says which resource, which call and why, in plain words.
func describe(ch Change, err error) string {
	var oe *smithy.OperationError
	why := Explain(err)
	if errors.As(err, &oe) {
		return fmt.Sprintf("%s %s (%s): the call %s:%s failed: %s", ch.Action, ch.ID, ch.Type, oe.Service(), oe.Operation(), why)
	}
	return fmt.Sprintf("%s %s (%s) failed: %s", ch.Action, ch.ID, ch.Type, err.Error())
}

func replaceFields(cs []FieldChange) string {
	var out []string
	for _, c := range cs {
		if c.Replace {
			out = append(out, c.Path)
		}
	}
	return strings.Join(out, ", ")
}

func staleSummary(old, fresh *Plan) string {
	before := map[string]Change{}
	for _, c := range old.Changes {
		before[c.ID] = c
	}
	var diffs []string
	for _, c := range fresh.Changes {
		o, ok := before[c.ID]
		if !ok || o.Action != c.Action || len(o.Fields) != len(c.Fields) {
			diffs = append(diffs, fmt.Sprintf("%s now %s", c.ID, c.Action))
		}
		if len(diffs) == 5 {
			diffs = append(diffs, "…")
			break
		}
	}
	if len(diffs) == 0 {
		return "field values differ"
	}
	return strings.Join(diffs, ", ")
}

func shortVersion(v string) string {
	if len(v) > 12 {
		return v[:12]
	}
	return v
}
