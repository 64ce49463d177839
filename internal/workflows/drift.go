package workflows

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/engine"
	"portal/internal/notify"
	"portal/internal/regions"
	"portal/internal/store"
)

// Drift check states.
const (
	DriftClean   = "clean"
	DriftDrifted = "drifted"
	DriftError   = "error"
)

// DriftCheck is one check of a stack against the version in force.
type DriftCheck struct {
	ID        int64
	Stack     string
	PlanID    int64
	Version   string
	State     string
	Drifted   int
	Error     string
	CheckedAt time.Time
	// RequestedBy is who asked for the check: a person, or "system" for
	// the schedule and the check after a run.
	RequestedBy string
}

const driftCols = `id, stack, COALESCE(plan_id, 0), blueprint_version, state, drifted, error, checked_at, requested_by`

func scanDrift(r interface{ Scan(...any) error }) (DriftCheck, error) {
	var d DriftCheck
	var at string
	err := r.Scan(&d.ID, &d.Stack, &d.PlanID, &d.Version, &d.State, &d.Drifted, &d.Error, &at, &d.RequestedBy)
	d.CheckedAt = parseTime(at)
	return d, err
}

// LatestDrift returns the newest drift check of stack.
func (s *Service) LatestDrift(ctx context.Context, stack string) (DriftCheck, error) {
	d, err := scanDrift(s.DB.QueryRowContext(ctx, `SELECT `+driftCols+` FROM drift_checks WHERE stack = ? ORDER BY id DESC LIMIT 1`, stack))
	if errors.Is(err, sql.ErrNoRows) {
		return d, store.ErrNotFound
	}
	return d, err
}

// GetDrift returns drift check id.
func (s *Service) GetDrift(ctx context.Context, id int64) (DriftCheck, error) {
	d, err := scanDrift(s.DB.QueryRowContext(ctx, `SELECT `+driftCols+` FROM drift_checks WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, apperr.Wrap(apperr.NotFound, store.ErrNotFound, "no drift check %d", id)
	}
	return d, err
}

// Drifted returns the changes of a drift check's plan that are drift:
// everything but no-ops and reads.
func Drifted(p *engine.Plan) []engine.Change {
	var out []engine.Change
	for _, c := range p.Changes {
		if c.Action != engine.NoOp && c.Action != engine.Read {
			out = append(out, c)
		}
	}
	return out
}

// CheckDrift plans the version in force of stack without applying it and
// records what differs, as asked by by (the person who pressed "Check now",
// or the portal's schedule). The plan is never applied: Reconcile makes a
// new one. A stack that is not deployed, or whose lock is held by a run, is
// not checked (ok is false).
func (s *Service) CheckDrift(ctx context.Context, by audit.Entry, stack string) (d DriftCheck, ok bool, err error) {
	in, err := s.VersionInForce(ctx, stack)
	if err != nil || in.Version == "" {
		return d, false, err
	}
	lock, err := s.LockOf(ctx, stack)
	if err != nil || lock.Held || len(lock.Queue) > 0 {
		return d, false, err
	}
	d = DriftCheck{Stack: stack, Version: in.Version, CheckedAt: s.now(), RequestedBy: by.Actor}
	var p *engine.Plan
	st, version, err := s.Blueprints.Resolve(ctx, in.Version, stack)
	if err == nil {
		var info engine.StackInfo
		if info, err = s.Info(stack, st.Version); err == nil {
			gex, eerr := s.Blueprints.Exceptions(ctx, stack)
			if eerr != nil {
				return d, false, eerr
			}
			p, err = s.Engine.Plan(ctx, engine.Target{Stack: st, Info: info, BlueprintVersion: version, Exceptions: gex}, "apply")
		}
	}
	if err != nil {
		d.State, d.Error = DriftError, planError(err)
	} else {
		if err := s.Engine.SavePlan(ctx, by, p); err != nil {
			return d, false, err
		}
		d.PlanID = p.ID
		d.Drifted = len(Drifted(p))
		d.State = DriftClean
		if d.Drifted > 0 {
			d.State = DriftDrifted
		}
	}
	prev, perr := s.LatestDrift(ctx, stack)
	if perr != nil && !errors.Is(perr, store.ErrNotFound) {
		return d, false, perr
	}
	var plan any
	if d.PlanID > 0 {
		plan = d.PlanID
	}
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `INSERT INTO drift_checks (stack, plan_id, blueprint_version, state, drifted, error, checked_at, requested_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			stack, plan, d.Version, d.State, d.Drifted, d.Error, store.Time(d.CheckedAt), d.RequestedBy).Scan(&d.ID); err != nil {
			return fmt.Errorf("workflows: record drift check: %w", err)
		}
		e := by
		e.Action, e.Target = "drift.check", fmt.Sprintf("drift:%d stack:%s", d.ID, stack)
		e.Details = map[string]any{"state": d.State, "drifted": d.Drifted, "plan": d.PlanID, "error": d.Error}
		for k, v := range by.Details {
			e.Details[k] = v
		}
		_, err := s.Audit.Append(ctx, tx, e)
		return err
	})
	if err != nil {
		return d, false, err
	}
	// Tell ops when drift appears or changes, not on every check.
	if d.State == DriftDrifted && s.Notify != nil && (prev.State != DriftDrifted || s.driftChanged(ctx, prev, p)) {
		var ids []string
		for _, c := range Drifted(p) {
			ids = append(ids, c.ID)
		}
		to, _ := s.recipients(ctx, 0, "ops")
		_, _ = s.Notify.Notify(ctx, notify.Notification{Kind: notify.Drift, Stack: stack,
			Subject: fmt.Sprintf("Drift in %s: %d resource(s) changed outside the portal", stack, d.Drifted),
			Message: fmt.Sprintf("The drift check of %s against version %s found changes made behind the portal's back: %s.", stack, short(d.Version), strings.Join(ids, ", ")),
			Link:    fmt.Sprintf("/drift/%d", d.ID), To: to})
	}
	return d, true, nil
}

// driftChanged reports whether plan p finds different drift than check prev.
func (s *Service) driftChanged(ctx context.Context, prev DriftCheck, p *engine.Plan) bool {
	if prev.PlanID == 0 {
		return true
	}
	old, err := s.Engine.GetPlan(ctx, prev.PlanID)
	if err != nil {
		return true
	}
	return old.Hash != p.Hash
}

// CheckAllDrift checks every deployed stack, as asked by by; the drift job
// runs it on its schedule as the system. It returns how many stacks were
// checked and drifted.
func (s *Service) CheckAllDrift(ctx context.Context, by audit.Entry) (checked, drifted int, err error) {
	if s.Blueprints == nil {
		return 0, 0, nil
	}
	var errs []error
	for _, env := range regions.EnvironmentNames() {
		for _, j := range regions.Jurisdictions() {
			if ctx.Err() != nil {
				return checked, drifted, ctx.Err()
			}
			id := regions.StackID(env, j.ID)
			if _, ok := s.Catalogue.Stack(id); !ok {
				continue
			}
			d, ok, err := s.CheckDrift(ctx, by, id)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", id, err))
				continue
			}
			if ok {
				checked++
				if d.State == DriftDrifted {
					drifted++
				}
			}
		}
	}
	return checked, drifted, errors.Join(errs...)
}

// DriftChecks lists the newest drift check of every stack, in catalogue
// order (stacks never checked are left out).
func (s *Service) DriftChecks(ctx context.Context) ([]DriftCheck, error) {
	var out []DriftCheck
	for _, id := range s.stackIDs() {
		d, err := s.LatestDrift(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// Reconcile plans the version in force of stack afresh (by the person
// asking) to bring AWS back in line, and queues it when it needs no
// approval; a prod reconcile waits for approval like any prod apply.
func (s *Service) Reconcile(ctx context.Context, by audit.Entry, stack string) (Promotion, error) {
	st, ok := s.Catalogue.Stack(stack)
	if !ok {
		return Promotion{}, apperr.New(apperr.NotFound, "no stack %q", stack)
	}
	in, err := s.VersionInForce(ctx, stack)
	if err != nil {
		return Promotion{}, err
	}
	if in.Version == "" {
		return Promotion{}, apperr.New(apperr.Conflict, "%s is not deployed, so there is nothing to reconcile", stack)
	}
	return s.Promote(ctx, by, PromoteRequest{Version: in.Version, Environment: st.Environment.Name, Jurisdictions: []string{st.Jurisdiction.ID}, Purpose: PurposeReconcile})
}
