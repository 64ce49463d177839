package workflows

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"portal/internal/engine"
	"portal/internal/regions"
	"portal/internal/store"
)

// now is the service's clock.
func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func parseTime(v string) time.Time {
	if v == "" {
		return time.Time{}
	}
	t, _ := store.ParseTime(v)
	return t
}

// InForce is the blueprint version a stack runs: that of its last
// succeeded apply (none after a succeeded destroy).
type InForce struct {
	Version string
	RunID   int64
	At      time.Time
}

// VersionInForce returns the version in force in stack; a zero InForce
// when nothing is deployed.
func (s *Service) VersionInForce(ctx context.Context, stack string) (InForce, error) {
	var in InForce
	var kind, at string
	err := s.DB.QueryRowContext(ctx, `SELECT r.id, r.kind, p.blueprint_version, r.finished_at FROM runs r JOIN plans p ON p.id = r.plan_id
		WHERE r.stack = ? AND r.state = 'succeeded' ORDER BY r.id DESC LIMIT 1`, stack).Scan(&in.RunID, &kind, &in.Version, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return InForce{}, nil
	} else if err != nil {
		return in, fmt.Errorf("workflows: version in force in %s: %w", stack, err)
	}
	if kind != "apply" {
		return InForce{}, nil
	}
	in.At = parseTime(at)
	return in, nil
}

// succeededRun returns the newest succeeded apply of version in stack, or 0.
func (s *Service) succeededRun(ctx context.Context, stack, version string) (int64, error) {
	var id int64
	err := s.DB.QueryRowContext(ctx, `SELECT r.id FROM runs r JOIN plans p ON p.id = r.plan_id
		WHERE r.stack = ? AND r.kind = 'apply' AND r.state = 'succeeded' AND p.blueprint_version = ? ORDER BY r.id DESC LIMIT 1`, stack, version).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return id, err
}

// Lock is who holds a stack's run lock: its running (or interrupted) run.
type Lock struct {
	Held bool
	Run  engine.Run
	// Since is when the holding run started.
	Since time.Time
	// Queue are the runs waiting for the lock, oldest first.
	Queue []engine.Run
}

// LockOf returns stack's lock and queue. A run holds the lock from the
// moment a runner claims it until it succeeds, fails or is cancelled; an
// interrupted run (the portal stopped) keeps it until it is resumed or
// cancelled, so nothing else runs over a half-applied stack.
func (s *Service) LockOf(ctx context.Context, stack string) (Lock, error) {
	var l Lock
	for _, st := range []string{engine.RunRunning, engine.RunInterrupted} {
		rs, _, err := s.Engine.ListRuns(ctx, engine.RunFilter{Stack: stack, State: st, Limit: 1})
		if err != nil {
			return l, err
		}
		if len(rs) > 0 && !l.Held {
			l.Held, l.Run, l.Since = true, rs[0], rs[0].StartedAt
		}
	}
	q, _, err := s.Engine.ListRuns(ctx, engine.RunFilter{Stack: stack, State: engine.RunQueued, Limit: 100})
	if err != nil {
		return l, err
	}
	for i := len(q) - 1; i >= 0; i-- {
		l.Queue = append(l.Queue, q[i])
	}
	return l, nil
}

// StackSummary is what the stacks grid shows about one stack.
type StackSummary struct {
	Stack          string
	VersionInForce string
	LastRunID      int64
	LastRunState   string
	LastRunAt      time.Time
	// Waiting is a version on its way in: a plan awaiting approval or a
	// queued or running run.
	Waiting       string
	WaitingPlanID int64
	WaitingWhy    string
	// Drifted is the number of resources the last drift check found
	// changed behind the portal's back; DriftCheckID that check.
	Drifted      int
	DriftCheckID int64
	// Verification is the state of the latest verification of the
	// version in force ("" when none).
	Verification   string
	VerificationID int64
}

// StackSummaries returns the summary of every stack that was ever planned
// or applied, by stack id.
func (s *Service) StackSummaries(ctx context.Context) (map[string]StackSummary, error) {
	out := map[string]StackSummary{}
	for _, id := range s.stackIDs() {
		sum := StackSummary{Stack: id}
		in, err := s.VersionInForce(ctx, id)
		if err != nil {
			return nil, err
		}
		sum.VersionInForce = in.Version
		rs, _, err := s.Engine.ListRuns(ctx, engine.RunFilter{Stack: id, Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(rs) > 0 {
			sum.LastRunID, sum.LastRunState, sum.LastRunAt = rs[0].ID, rs[0].State, rs[0].CreatedAt
		}
		w, err := s.waiting(ctx, id)
		if err != nil {
			return nil, err
		}
		sum.Waiting, sum.WaitingPlanID, sum.WaitingWhy = w.version, w.planID, w.why
		if d, err := s.LatestDrift(ctx, id); err == nil && d.State == DriftDrifted {
			sum.Drifted, sum.DriftCheckID = d.Drifted, d.ID
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if in.Version != "" {
			if v, err := s.latestVerification(ctx, id, in.Version); err == nil {
				sum.Verification, sum.VerificationID = v.State, v.ID
			} else if !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
		}
		if sum.VersionInForce != "" || sum.LastRunID > 0 || sum.Waiting != "" {
			out[id] = sum
		}
	}
	return out, nil
}

type waitingVersion struct {
	version, why string
	planID       int64
}

// waiting finds the version on its way into stack: a queued or running run,
// else the newest promotion plan awaiting approval.
func (s *Service) waiting(ctx context.Context, stack string) (waitingVersion, error) {
	var w waitingVersion
	var state string
	err := s.DB.QueryRowContext(ctx, `SELECT p.blueprint_version, p.id, r.state FROM runs r JOIN plans p ON p.id = r.plan_id
		WHERE r.stack = ? AND r.kind = 'apply' AND r.state IN ('queued', 'running', 'interrupted') ORDER BY r.id LIMIT 1`, stack).Scan(&w.version, &w.planID, &state)
	if err == nil {
		w.why = "run " + state
		return w, nil
	} else if !errors.Is(err, sql.ErrNoRows) {
		return w, err
	}
	err = s.DB.QueryRowContext(ctx, `SELECT p.blueprint_version, p.id FROM promotion_stacks ps JOIN plans p ON p.id = ps.plan_id
		WHERE ps.stack = ? AND ps.run_id IS NULL AND ps.refused = '' ORDER BY p.id DESC LIMIT 1`, stack).Scan(&w.version, &w.planID)
	if errors.Is(err, sql.ErrNoRows) {
		return waitingVersion{}, nil
	} else if err != nil {
		return w, err
	}
	if sup, err := s.supersededBy(ctx, stack, w.planID); err != nil || sup != 0 {
		return waitingVersion{}, err
	}
	var rejected int
	if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM approvals WHERE plan_id = ? AND decision = 'rejected'`, w.planID).Scan(&rejected); err != nil {
		return w, err
	}
	if rejected > 0 {
		return waitingVersion{}, nil
	}
	w.why = "awaiting approval"
	return w, nil
}

// stackIDs lists the nine stacks in catalogue order.
func (s *Service) stackIDs() []string {
	var out []string
	for _, env := range regions.EnvironmentNames() {
		for _, j := range regions.Jurisdictions() {
			out = append(out, regions.StackID(env, j.ID))
		}
	}
	return out
}

// Travel is how far one blueprint version has gone, per stack.
type Travel struct {
	Version string
	// Stacks maps stack id to the version's state there: "in force",
	// "verified", "applied" (not verified yet, or verification failed),
	// "failed", "waiting" or "" (never tried).
	Stacks map[string]string
	Last   time.Time
}

// Travels returns the most recently deployed versions (up to limit) and
// where each has been.
func (s *Service) Travels(ctx context.Context, limit int) ([]Travel, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT p.blueprint_version, MAX(r.id), MAX(r.created_at) FROM runs r JOIN plans p ON p.id = r.plan_id
		WHERE r.kind = 'apply' AND p.blueprint_version != '' GROUP BY p.blueprint_version ORDER BY MAX(r.id) DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("workflows: travels: %w", err)
	}
	var out []Travel
	for rows.Next() {
		var t Travel
		var maxID int64
		var at string
		if err := rows.Scan(&t.Version, &maxID, &at); err != nil {
			rows.Close()
			return nil, err
		}
		t.Last = parseTime(at)
		out = append(out, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		t := &out[i]
		t.Stacks = map[string]string{}
		for _, id := range s.stackIDs() {
			st, err := s.travelState(ctx, id, t.Version)
			if err != nil {
				return nil, err
			}
			t.Stacks[id] = st
		}
	}
	return out, nil
}

func (s *Service) travelState(ctx context.Context, stack, version string) (string, error) {
	in, err := s.VersionInForce(ctx, stack)
	if err != nil {
		return "", err
	}
	if w, err := s.waiting(ctx, stack); err != nil {
		return "", err
	} else if w.version == version {
		return "waiting", nil
	}
	run, err := s.succeededRun(ctx, stack, version)
	if err != nil {
		return "", err
	}
	if run == 0 {
		var failed int
		if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM runs r JOIN plans p ON p.id = r.plan_id WHERE r.stack = ? AND r.kind = 'apply'
			AND r.state = 'failed' AND p.blueprint_version = ?`, stack, version).Scan(&failed); err != nil {
			return "", err
		}
		if failed > 0 {
			return "failed", nil
		}
		return "", nil
	}
	if in.Version == version {
		return "in force", nil
	}
	v, err := s.latestVerification(ctx, stack, version)
	if err == nil && v.State == "passed" {
		return "verified", nil
	}
	return "applied", nil
}
