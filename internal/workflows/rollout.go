package workflows

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/blueprints"
	"portal/internal/engine"
	"portal/internal/regions"
	"portal/internal/store"
)

// Roll-out states.
const (
	RollOutRunning   = "running"
	RollOutWaiting   = "waiting" // a prod plan waits for approval
	RollOutSucceeded = "succeeded"
	RollOutFailed    = "failed"
)

// Roll-out step states.
const (
	StepPending  = "pending"
	StepApproval = "approval" // planned, waiting for approval
	StepRunning  = "running"
	StepDone     = "succeeded"
	StepFailed   = "failed"
)

// RollOut applies one blueprint version to an environment's layer and its
// three jurisdiction stacks, in the rounds their cross-stack references
// need (engine.Rounds): today the layer (its zone), the three stacks, then
// the layer again (its routing to their origins). Each step plans its stack
// when its round starts, so it reads what the earlier rounds made; a prod
// plan waits for its approvals like any other.
type RollOut struct {
	ID          int64
	Version     string
	Environment string
	State       string
	Message     string
	CreatedBy   string
	CreatedAt   time.Time
	FinishedAt  time.Time
	Steps       []RollOutStep
}

// RollOutStep is one stack's apply in one round.
type RollOutStep struct {
	Position, Round int
	Stack           string
	PlanID, RunID   int64
	State, Message  string
}

// Rounds returns the roll-out's steps grouped by round.
func (r RollOut) Rounds() [][]RollOutStep {
	var out [][]RollOutStep
	for _, s := range r.Steps {
		for len(out) < s.Round {
			out = append(out, nil)
		}
		out[s.Round-1] = append(out[s.Round-1], s)
	}
	return out
}

// Finished reports whether the roll-out has ended.
func (r RollOut) Finished() bool { return r.State == RollOutSucceeded || r.State == RollOutFailed }

// environmentStacks resolves an environment's layer and jurisdiction stacks
// from version ("" for the latest), layer first.
func (s *Service) environmentStacks(ctx context.Context, env, version string) ([]*blueprints.Stack, string, error) {
	ids := []string{regions.LayerID(env)}
	for _, st := range s.Catalogue.StacksOf(env) {
		ids = append(ids, st.ID)
	}
	var out []*blueprints.Stack
	for _, id := range ids {
		st, v, err := s.Blueprints.Resolve(ctx, version, id)
		if err != nil {
			return nil, "", err
		}
		version = v
		out = append(out, st)
	}
	return out, version, nil
}

// StartRollOut rolls version ("" for the latest) out to environment env. It
// is refused, with every reason and nothing written, when a stack may not
// receive the version yet (the promotion order) or another roll-out of env
// is under way.
func (s *Service) StartRollOut(ctx context.Context, by audit.Entry, env, version string) (RollOut, error) {
	if !slices.Contains(regions.EnvironmentNames(), env) {
		return RollOut{}, &apperr.Error{Kind: apperr.Invalid, Message: fmt.Sprintf("environment must be one of %s", strings.Join(regions.EnvironmentNames(), ", ")),
			Fields: map[string]string{"environment": "must be dev, test or prod"}}
	}
	if s.Blueprints == nil {
		return RollOut{}, apperr.New(apperr.Conflict, "no blueprint versions are available to roll out")
	}
	stacks, version, err := s.environmentStacks(ctx, env, version)
	if err != nil {
		return RollOut{}, err
	}
	var refused []string
	for _, st := range stacks {
		why, err := s.Gate(ctx, version, st.ID)
		if err != nil {
			return RollOut{}, err
		}
		if why != "" {
			refused = append(refused, why)
		}
	}
	if len(refused) > 0 {
		return RollOut{}, apperr.New(apperr.Conflict, "roll-out refused: %s", strings.Join(refused, "; "))
	}
	rounds, err := engine.Rounds(stacks)
	if err != nil {
		return RollOut{}, apperr.Wrap(apperr.Conflict, err, "%s", strings.TrimPrefix(err.Error(), "engine: "))
	}
	r := RollOut{Version: version, Environment: env, State: RollOutRunning, CreatedBy: by.Actor, CreatedAt: s.now()}
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		var busy int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM rollouts WHERE environment = ? AND state IN ('running', 'waiting') ORDER BY id LIMIT 1`, env).Scan(&busy)
		if err == nil {
			return apperr.New(apperr.Conflict, "roll-out #%d of %s is under way: let it finish first", busy, env)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO rollouts (environment, blueprint_version, state, created_by, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id`,
			env, version, r.State, r.CreatedBy, store.Time(r.CreatedAt)).Scan(&r.ID); err != nil {
			return fmt.Errorf("workflows: store roll-out: %w", err)
		}
		pos := 0
		for i, round := range rounds {
			for _, id := range round {
				pos++
				r.Steps = append(r.Steps, RollOutStep{Position: pos, Round: i + 1, Stack: id, State: StepPending})
				if _, err := tx.ExecContext(ctx, `INSERT INTO rollout_steps (rollout_id, position, round, stack, state) VALUES (?, ?, ?, ?, ?)`,
					r.ID, pos, i+1, id, StepPending); err != nil {
					return fmt.Errorf("workflows: store roll-out: %w", err)
				}
			}
		}
		e := by
		e.Action, e.Target = "rollout.start", fmt.Sprintf("rollout:%d", r.ID)
		e.Details = map[string]any{"version": version, "environment": env, "rounds": rounds}
		_, err = s.Audit.Append(ctx, tx, e)
		return err
	})
	if err != nil {
		return RollOut{}, err
	}
	if err := s.advance(ctx, r.ID); err != nil {
		return r, err
	}
	return s.GetRollOut(ctx, r.ID)
}

// layerGate says why version may not go to environment layer l ("" when it
// may): it must have applied successfully in the previous environment's
// layer. A layer has no verification of its own: what it routes to is its
// jurisdiction stacks', verified there, which their own gates ask for.
func (s *Service) layerGate(ctx context.Context, version string, l regions.Layer) (string, error) {
	prev := previous(l.Environment.Name)
	if prev == "" {
		return "", nil
	}
	run, err := s.succeededRun(ctx, regions.LayerID(prev), version)
	if err != nil || run != 0 {
		return "", err
	}
	return fmt.Sprintf("%s: version %s has not been applied successfully in %s; roll it out there first", l.ID, short(version), regions.LayerID(prev)), nil
}

// GetRollOut returns roll-out id with its steps.
func (s *Service) GetRollOut(ctx context.Context, id int64) (RollOut, error) {
	var r RollOut
	var created, finished string
	err := s.DB.QueryRowContext(ctx, `SELECT id, environment, blueprint_version, state, message, created_by, created_at, finished_at FROM rollouts WHERE id = ?`, id).
		Scan(&r.ID, &r.Environment, &r.Version, &r.State, &r.Message, &r.CreatedBy, &created, &finished)
	if errors.Is(err, sql.ErrNoRows) {
		return r, apperr.Wrap(apperr.NotFound, store.ErrNotFound, "no roll-out %d", id)
	} else if err != nil {
		return r, fmt.Errorf("workflows: roll-out %d: %w", id, err)
	}
	r.CreatedAt, r.FinishedAt = parseTime(created), parseTime(finished)
	rows, err := s.DB.QueryContext(ctx, `SELECT position, round, stack, COALESCE(plan_id, 0), COALESCE(run_id, 0), state, message FROM rollout_steps WHERE rollout_id = ? ORDER BY position`, id)
	if err != nil {
		return r, fmt.Errorf("workflows: steps of roll-out %d: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var st RollOutStep
		if err := rows.Scan(&st.Position, &st.Round, &st.Stack, &st.PlanID, &st.RunID, &st.State, &st.Message); err != nil {
			return r, err
		}
		r.Steps = append(r.Steps, st)
	}
	return r, rows.Err()
}

// ListRollOuts returns the latest roll-outs, newest first.
func (s *Service) ListRollOuts(ctx context.Context, limit int) ([]RollOut, error) {
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT id FROM rollouts ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("workflows: roll-outs: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	var out []RollOut
	for _, id := range ids {
		r, err := s.GetRollOut(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// AdvanceRollOuts moves every unfinished roll-out on: it plans and applies
// the steps of the current round, and starts the next round once every
// apply of this one succeeded. It is the rollout-advance job, and runs
// after each roll-out starts.
func (s *Service) AdvanceRollOuts(ctx context.Context) error {
	rows, err := s.DB.QueryContext(ctx, `SELECT id FROM rollouts WHERE state IN ('running', 'waiting') ORDER BY id`)
	if err != nil {
		return fmt.Errorf("workflows: unfinished roll-outs: %w", err)
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
	var errs []error
	for _, id := range ids {
		errs = append(errs, s.advance(ctx, id))
	}
	return errors.Join(errs...)
}

func (s *Service) advance(ctx context.Context, id int64) error {
	r, err := s.GetRollOut(ctx, id)
	if err != nil || r.Finished() {
		return err
	}
	by := audit.Entry{Actor: r.CreatedBy}
	for _, round := range r.Rounds() {
		waiting, running := false, false
		for _, st := range round {
			st, err := s.step(ctx, by, r, st)
			if err != nil {
				return err
			}
			switch st.State {
			case StepFailed:
				return s.finishRollOut(ctx, r.ID, RollOutFailed, fmt.Sprintf("round %d: %s: %s", st.Round, st.Stack, st.Message))
			case StepApproval:
				waiting = true
			case StepRunning, StepPending:
				running = true
			}
		}
		switch {
		case waiting:
			return s.setRollOutState(ctx, r.ID, RollOutWaiting, "a prod plan waits for its approvals")
		case running:
			return s.setRollOutState(ctx, r.ID, RollOutRunning, "")
		}
	}
	return s.finishRollOut(ctx, r.ID, RollOutSucceeded, "")
}

// step moves one step on and records it.
func (s *Service) step(ctx context.Context, by audit.Entry, r RollOut, st RollOutStep) (RollOutStep, error) {
	before := st
	switch st.State {
	case StepPending:
		p, err := s.Plan(ctx, by, PlanRequest{Stack: st.Stack, Version: r.Version})
		if err != nil {
			st.State, st.Message = StepFailed, apperr.MessageOf(err)
			break
		}
		st.PlanID = p.ID
		if b := p.Blocking(); len(b) > 0 {
			st.State, st.Message = StepFailed, "the plan is blocked: "+strings.Join(b, "; ")
			break
		}
		if NeedsApproval(p) && p.HasChanges() {
			st.State, st.Message = StepApproval, fmt.Sprintf("plan #%d waits for its approvals", p.ID)
			break
		}
		st = s.applyStep(ctx, by, st)
	case StepApproval:
		p, err := s.Engine.GetPlan(ctx, st.PlanID)
		if err != nil {
			return st, err
		}
		a, err := s.ApprovalOf(ctx, p)
		if err != nil {
			return st, err
		}
		switch {
		case a.SupersededBy != 0:
			st.State, st.Message = StepFailed, fmt.Sprintf("plan #%d was superseded by plan #%d", st.PlanID, a.SupersededBy)
		case a.Satisfied:
			st = s.applyStep(ctx, by, st)
		}
	case StepRunning:
		run, _, err := s.Engine.GetRun(ctx, st.RunID)
		if err != nil {
			return st, err
		}
		switch run.State {
		case engine.RunSucceeded:
			st.State, st.Message = StepDone, run.Error
		case engine.RunFailed, engine.RunCancelled:
			st.State, st.Message = StepFailed, fmt.Sprintf("run #%d %s: %s", run.ID, run.State, run.Error)
		}
	}
	if st == before {
		return st, nil
	}
	_, err := s.DB.ExecContext(ctx, `UPDATE rollout_steps SET plan_id = NULLIF(?, 0), run_id = NULLIF(?, 0), state = ?, message = ? WHERE rollout_id = ? AND position = ?`,
		st.PlanID, st.RunID, st.State, st.Message, r.ID, st.Position)
	if err != nil {
		return st, fmt.Errorf("workflows: record roll-out step: %w", err)
	}
	return st, nil
}

func (s *Service) applyStep(ctx context.Context, by audit.Entry, st RollOutStep) RollOutStep {
	runID, err := s.Apply(ctx, by, st.PlanID, "")
	if err != nil {
		st.State, st.Message = StepFailed, apperr.MessageOf(err)
		return st
	}
	st.RunID, st.State, st.Message = runID, StepRunning, ""
	return st
}

func (s *Service) setRollOutState(ctx context.Context, id int64, state, msg string) error {
	_, err := s.DB.ExecContext(ctx, `UPDATE rollouts SET state = ?, message = ? WHERE id = ? AND state IN ('running', 'waiting')`, state, msg, id)
	return err
}

func (s *Service) finishRollOut(ctx context.Context, id int64, state, msg string) error {
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE rollouts SET state = ?, message = ?, finished_at = ? WHERE id = ? AND state IN ('running', 'waiting')`,
			state, msg, store.Time(s.now()), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // finished by another replica meanwhile
		}
		_, err = s.Audit.Append(ctx, tx, audit.Entry{Actor: "system", Action: "rollout." + state, Target: fmt.Sprintf("rollout:%d", id),
			Details: map[string]any{"message": msg}})
		return err
	})
}
