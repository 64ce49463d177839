package engine

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/blueprints"
	"portal/internal/store"
)

// Run states.
const (
	RunQueued      = "queued"
	RunRunning     = "running"
	RunSucceeded   = "succeeded"
	RunFailed      = "failed"
	RunCancelled   = "cancelled"
	RunInterrupted = "interrupted"
)

// Step states.
const (
	StepPending     = "pending"
	StepRunning     = "running"
	StepDone        = "done"
	StepFailed      = "failed"
	StepSkipped     = "skipped"
	StepInterrupted = "interrupted"
)

// Run is one execution of a stored plan.
type Run struct {
	ID, PlanID                       int64
	Stack, Kind, Version, State      string
	CreatedBy                        string
	CreatedAt, StartedAt, FinishedAt time.Time
	Error                            string
	CancelRequested                  bool
	Attempt, Calls                   int
	Holder                           string
}

// Finished reports whether the run has reached an end state.
func (r Run) Finished() bool {
	return r.State == RunSucceeded || r.State == RunFailed || r.State == RunCancelled
}

// Step is one resource of a run.
type Step struct {
	ResourceID, Type, Region string
	Action                   Action
	State                    string
	StartedAt, FinishedAt    time.Time
	Error                    string
	RequestIDs               []string
	Calls                    int
	Position                 int
}

// LogLine is one line of a run's log.
type LogLine struct {
	ID         int64
	At         time.Time
	ResourceID string
	Line       string
}

// SavePlan stores p, audits it, and sets p.ID.
func (e *Engine) SavePlan(ctx context.Context, by audit.Entry, p *Plan) error {
	p.CreatedBy = by.Actor
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("engine: encode plan: %w", err)
	}
	return e.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `INSERT INTO plans (stack, kind, version, blueprint_version, hash, body, blocking, calls, created_by, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, p.Stack.ID, p.Kind, p.Stack.Version, p.BlueprintVersion, p.Hash, string(body),
			len(p.Blocking()), p.Calls, by.Actor, store.Time(p.CreatedAt)).Scan(&p.ID); err != nil {
			return fmt.Errorf("engine: save plan: %w", err)
		}
		counts := map[string]any{}
		for a, n := range p.Counts() {
			counts[string(a)] = n
		}
		e2 := by
		e2.Action, e2.Target = "plan.create", fmt.Sprintf("plan:%d stack:%s", p.ID, p.Stack.ID)
		e2.Details = map[string]any{"kind": p.Kind, "hash": p.Hash, "version": p.Stack.Version, "changes": counts, "blocking": len(p.Blocking())}
		_, err := e.audit.Append(ctx, tx, e2)
		return err
	})
}

// GetPlan returns stored plan id.
func (e *Engine) GetPlan(ctx context.Context, id int64) (*Plan, error) {
	var body string
	err := e.db.QueryRowContext(ctx, `SELECT body FROM plans WHERE id = ?`, id).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.Wrap(apperr.NotFound, store.ErrNotFound, "no plan %d", id)
	} else if err != nil {
		return nil, fmt.Errorf("engine: get plan %d: %w", id, err)
	}
	var p Plan
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		return nil, fmt.Errorf("engine: decode plan %d: %w", id, err)
	}
	p.ID = id
	return &p, nil
}

// Apply queues a run of stored plan planID. It refuses a plan with a
// blocking guardrail failure or an unresolved problem, and while the
// stack has an interrupted run.
func (e *Engine) Apply(ctx context.Context, by audit.Entry, planID int64) (int64, error) {
	p, err := e.GetPlan(ctx, planID)
	if err != nil {
		return 0, err
	}
	if b := p.Blocking(); len(b) > 0 {
		return 0, apperr.New(apperr.Conflict, "this plan cannot be applied: %s", strings.Join(b, "; "))
	}
	now, err := e.db.Now(ctx)
	if err != nil {
		return 0, err
	}
	var runID int64
	err = e.db.Tx(ctx, func(tx *sql.Tx) error {
		// A run the portal stopped during holds the stack until someone
		// resumes or cancels it; a run queued behind it would wait for
		// ever, so say so now.
		var stuck int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM runs WHERE stack = ? AND (state = 'interrupted' OR (state = 'running' AND lease_until < ?)) ORDER BY id LIMIT 1`,
			p.Stack.ID, store.Time(now)).Scan(&stuck)
		if err == nil {
			return apperr.New(apperr.Conflict, "run %d of %s was interrupted when the portal running it stopped: resume or cancel it before applying another plan", stuck, p.Stack.ID)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO runs (plan_id, stack, kind, version, state, created_by, created_at, attempt)
			VALUES (?, ?, ?, ?, 'queued', ?, ?, 0) RETURNING id`, p.ID, p.Stack.ID, p.Kind, p.Stack.Version, by.Actor, store.Time(e.now())).Scan(&runID); err != nil {
			return fmt.Errorf("engine: queue run: %w", err)
		}
		for i, c := range p.Changes {
			if _, err := tx.ExecContext(ctx, `INSERT INTO run_steps (run_id, resource_id, type, region, action, state, position) VALUES (?, ?, ?, ?, ?, 'pending', ?)`,
				runID, c.ID, c.Type, c.Region, string(c.Action), i); err != nil {
				return fmt.Errorf("engine: queue run: %w", err)
			}
		}
		e2 := by
		e2.Action, e2.Target = "run."+p.Kind, fmt.Sprintf("run:%d stack:%s", runID, p.Stack.ID)
		e2.Details = map[string]any{"plan": p.ID, "hash": p.Hash, "version": p.Stack.Version}
		_, err = e.audit.Append(ctx, tx, e2)
		return err
	})
	return runID, err
}

// Cancel asks run id to stop: no new step starts; running steps finish.
// A queued or interrupted run is cancelled at once. Each change is
// conditional on the state it changes, so a run claimed or finished
// meanwhile by another replica is never overwritten.
func (e *Engine) Cancel(ctx context.Context, by audit.Entry, id int64) error {
	return e.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE runs SET state = 'cancelled', cancel_requested = 1, finished_at = ?, holder = '', lease_until = ''
			WHERE id = ? AND state IN ('queued', 'interrupted')`, store.Time(e.now()), id)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			if res, err = tx.ExecContext(ctx, `UPDATE runs SET cancel_requested = 1 WHERE id = ? AND state = 'running'`, id); err != nil {
				return err
			}
			if n, err = res.RowsAffected(); err != nil {
				return err
			}
		}
		if n == 0 {
			var state string
			if err := tx.QueryRowContext(ctx, `SELECT state FROM runs WHERE id = ?`, id).Scan(&state); errors.Is(err, sql.ErrNoRows) {
				return apperr.New(apperr.NotFound, "no run %d", id)
			} else if err != nil {
				return err
			}
			return apperr.New(apperr.Conflict, "run %d has already %s", id, state)
		}
		e2 := by
		e2.Action, e2.Target = "run.cancel", fmt.Sprintf("run:%d", id)
		_, err = e.audit.Append(ctx, tx, e2)
		return err
	})
}

// Resume queues an interrupted run again. Steps already done stay done;
// the others read AWS again before acting, so nothing is created twice.
func (e *Engine) Resume(ctx context.Context, by audit.Entry, id int64) error {
	return e.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE runs SET state = 'queued', error = '', finished_at = '' WHERE id = ? AND state = 'interrupted'`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return apperr.New(apperr.Conflict, "run %d is not interrupted; only an interrupted run can be resumed", id)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE run_steps SET state = 'pending', error = '' WHERE run_id = ? AND state != 'done'`, id); err != nil {
			return err
		}
		e2 := by
		e2.Action, e2.Target = "run.resume", fmt.Sprintf("run:%d", id)
		_, err = e.audit.Append(ctx, tx, e2)
		return err
	})
}

// Recover marks runs whose runner stopped renewing its lease (the portal
// was killed, or lost the database) as interrupted, so people can resume
// them. Leases are compared with the database's clock, which every replica
// shares. Every runner runs it at start and every few seconds; each run is
// marked once, by a conditional UPDATE.
func (e *Engine) Recover(ctx context.Context) (int, error) {
	t, err := e.db.Now(ctx)
	if err != nil {
		return 0, err
	}
	now := store.Time(t)
	// Most of the time there is nothing to recover: a read says so
	// without taking the write lock the transaction below needs.
	var stale bool
	if err := e.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM runs WHERE state = 'running' AND lease_until < ?)`, now).Scan(&stale); err != nil || !stale {
		return 0, err
	}
	var n int64
	err = e.db.Tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM runs WHERE state = 'running' AND lease_until < ?`, now)
		if err != nil {
			return err
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			res, err := tx.ExecContext(ctx, `UPDATE runs SET state = 'interrupted', holder = '', error = 'the portal stopped while this run was in progress; resume it to finish'
				WHERE id = ? AND state = 'running' AND lease_until < ?`, id, now)
			if err != nil {
				return err
			}
			if k, err := res.RowsAffected(); err != nil {
				return err
			} else if k == 0 {
				continue // renewed, finished or recovered meanwhile
			}
			if _, err := tx.ExecContext(ctx, `UPDATE run_steps SET state = 'interrupted' WHERE run_id = ? AND state = 'running'`, id); err != nil {
				return err
			}
			if _, err := e.audit.Append(ctx, tx, audit.Entry{Actor: "system", Action: "run.interrupted", Target: fmt.Sprintf("run:%d", id)}); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return int(n), err
}

const runColumns = `id, plan_id, stack, kind, version, state, created_by, created_at, started_at, finished_at, error, cancel_requested, attempt, calls, holder`

func scanRun(s interface{ Scan(...any) error }) (Run, error) {
	var r Run
	var created, started, finished string
	if err := s.Scan(&r.ID, &r.PlanID, &r.Stack, &r.Kind, &r.Version, &r.State, &r.CreatedBy, &created, &started, &finished,
		&r.Error, &r.CancelRequested, &r.Attempt, &r.Calls, &r.Holder); err != nil {
		return r, err
	}
	r.CreatedAt = parseTime(created)
	r.StartedAt = parseTime(started)
	r.FinishedAt = parseTime(finished)
	return r, nil
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, _ := store.ParseTime(s)
	return t
}

// GetRun returns run id with its steps in plan order.
func (e *Engine) GetRun(ctx context.Context, id int64) (Run, []Step, error) {
	r, err := scanRun(e.db.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, nil, apperr.Wrap(apperr.NotFound, store.ErrNotFound, "no run %d", id)
	} else if err != nil {
		return r, nil, fmt.Errorf("engine: get run %d: %w", id, err)
	}
	rows, err := e.db.QueryContext(ctx, `SELECT resource_id, type, region, action, state, started_at, finished_at, error, request_ids, calls, position
		FROM run_steps WHERE run_id = ? ORDER BY position`, id)
	if err != nil {
		return r, nil, fmt.Errorf("engine: steps of run %d: %w", id, err)
	}
	defer rows.Close()
	var steps []Step
	for rows.Next() {
		var s Step
		var started, finished, reqIDs, action string
		if err := rows.Scan(&s.ResourceID, &s.Type, &s.Region, &action, &s.State, &started, &finished, &s.Error, &reqIDs, &s.Calls, &s.Position); err != nil {
			return r, nil, fmt.Errorf("engine: scan step: %w", err)
		}
		s.Action = Action(action)
		s.StartedAt, s.FinishedAt = parseTime(started), parseTime(finished)
		_ = json.Unmarshal([]byte(reqIDs), &s.RequestIDs)
		steps = append(steps, s)
	}
	return r, steps, rows.Err()
}

// Logs returns run id's log lines after line afterID.
func (e *Engine) Logs(ctx context.Context, id, afterID int64, limit int) ([]LogLine, error) {
	if limit <= 0 {
		limit = 500
	}
	rows, err := e.db.QueryContext(ctx, `SELECT id, at, resource_id, line FROM run_logs WHERE run_id = ? AND id > ? ORDER BY id LIMIT ?`, id, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("engine: logs of run %d: %w", id, err)
	}
	defer rows.Close()
	var out []LogLine
	for rows.Next() {
		var l LogLine
		var at string
		if err := rows.Scan(&l.ID, &at, &l.ResourceID, &l.Line); err != nil {
			return nil, err
		}
		l.At = parseTime(at)
		out = append(out, l)
	}
	return out, rows.Err()
}

// RunFilter selects runs for the runs list.
type RunFilter struct {
	Stack, State, User string
	Since, Until       time.Time
	BeforeID           int64
	Limit              int
}

// ListRuns returns runs newest first, keyset-paginated.
func (e *Engine) ListRuns(ctx context.Context, f RunFilter) ([]Run, bool, error) {
	var where []string
	var args []any
	if f.Stack != "" {
		where, args = append(where, "stack = ?"), append(args, f.Stack)
	}
	if f.State != "" {
		where, args = append(where, "state = ?"), append(args, f.State)
	}
	if f.User != "" {
		where, args = append(where, "created_by LIKE ?"), append(args, "%"+f.User+"%")
	}
	if !f.Since.IsZero() {
		where, args = append(where, "created_at >= ?"), append(args, store.Time(f.Since))
	}
	if !f.Until.IsZero() {
		where, args = append(where, "created_at < ?"), append(args, store.Time(f.Until))
	}
	if f.BeforeID > 0 {
		where, args = append(where, "id < ?"), append(args, f.BeforeID)
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	q := `SELECT ` + runColumns + ` FROM runs`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	rows, err := e.db.QueryContext(ctx, q, append(args, f.Limit+1)...)
	if err != nil {
		return nil, false, fmt.Errorf("engine: list runs: %w", err)
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, false, fmt.Errorf("engine: scan run: %w", err)
		}
		out = append(out, r)
	}
	more := len(out) > f.Limit
	if more {
		out = out[:f.Limit]
	}
	return out, more, rows.Err()
}

// planStack rebuilds the resolved stack a plan was made from.
func planStack(p *Plan) *blueprints.Stack {
	return blueprints.NewStack(p.Stack.ID, p.Stack.Environment, p.Stack.Jurisdiction, p.Stack.Region, p.Stack.Version, p.Resources)
}
