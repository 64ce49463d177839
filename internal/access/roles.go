package access

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"portal/internal/accounts"
	"portal/internal/apperr"
	"portal/internal/engine"
	"portal/internal/guardrails"
	"portal/internal/staff"
	"portal/internal/store"
)

// stackExceptions are the estate guardrails that cannot apply to a stack
// holding only IAM groups: the trail and the alarms live in the
// jurisdiction stacks of the same account. They are shown on the plan as
// excepted, with this reason.
func stackExceptions(env string, now time.Time) []guardrails.Exception {
	var out []guardrails.Exception
	for _, rule := range []string{"cloudtrail-integrity", "prod-alarms"} {
		out = append(out, guardrails.Exception{RuleID: rule, Stack: StackID(env), Owner: "portal",
			Reason: "the stack holds Identity Center permission sets only; each account's trail and alarms are in its jurisdiction stacks", Expires: now.Add(time.Hour)})
	}
	return out
}

func (s *Service) checkEnv(env string) error {
	if !slices.Contains(Environments, env) {
		return &apperr.Error{Kind: apperr.Invalid, Message: fmt.Sprintf("unknown environment %q", env), Fields: map[string]string{"environment": "choose dev, test or prod"}}
	}
	if s.engine == nil || s.accounts[env] == "" {
		return apperr.New(apperr.Conflict, "no AWS account is configured for %s", env)
	}
	if s.management == "" {
		return apperr.Wrap(apperr.Conflict, errNoIdentityCenter, "%s", errNoIdentityCenter.Error())
	}
	return nil
}

// RolePlan is a stored plan of a staff-roles stack and its approval.
type RolePlan struct {
	PlanID       int64
	Environment  string
	Hash         string
	CreatedByID  int64
	CreatedBy    string
	CreatedAt    time.Time
	ApprovedByID int64
	ApprovedBy   string
	ApprovedAt   time.Time
	RunID        int64
	// Latest is false once a newer plan of the environment exists.
	Latest bool
}

// NeedsApproval reports whether the plan waits for another admin.
func (p RolePlan) NeedsApproval() bool { return p.Environment == "prod" && p.ApprovedByID == 0 }

// PlanRoles plans environment env's staff-roles stack from the templates
// and stores the plan (audited by the engine).
func (s *Service) PlanRoles(ctx context.Context, by Actor, env string) (*engine.Plan, error) {
	if err := s.checkEnv(env); err != nil {
		return nil, err
	}
	now := s.now()
	st := s.templates.Stack(env, s.ssoRegion)
	// The permission sets live in the management account's Identity
	// Center, whichever environment they are assigned in.
	t := engine.Target{Stack: st, BlueprintVersion: st.Version, Exceptions: stackExceptions(env, now),
		Info: engine.StackInfo{ID: st.ID, Environment: accounts.Management, Jurisdiction: st.Jurisdiction, Region: st.Region, Version: st.Version, AccountID: s.management}}
	p, err := s.engine.Plan(ctx, t, "apply")
	if err != nil {
		return nil, err
	}
	p.CreatedBy = by.Entry.Actor
	if err := s.engine.SavePlan(ctx, by.Entry, p); err != nil {
		return nil, err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO access_role_plans (plan_id, environment, hash, created_by_id, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		p.ID, env, p.Hash, by.User.ID, by.Entry.Actor, store.Time(now))
	if err != nil {
		return nil, fmt.Errorf("access: record plan: %w", err)
	}
	return p, nil
}

const rolePlanColumns = `plan_id, environment, hash, created_by_id, created_by, created_at, approved_by_id, approved_by, approved_at, run_id,
	plan_id = (SELECT MAX(plan_id) FROM access_role_plans l WHERE l.environment = p.environment)`

func scanRolePlan(sc interface{ Scan(...any) error }) (RolePlan, error) {
	var p RolePlan
	var created, approved string
	err := sc.Scan(&p.PlanID, &p.Environment, &p.Hash, &p.CreatedByID, &p.CreatedBy, &created, &p.ApprovedByID, &p.ApprovedBy, &approved, &p.RunID, &p.Latest)
	p.CreatedAt, _ = store.ParseTime(created)
	p.ApprovedAt, _ = store.ParseTime(approved)
	return p, err
}

// GetPlan returns stored plan id as the engine keeps it.
func (s *Service) GetPlan(ctx context.Context, id int64) (*engine.Plan, error) {
	return s.engine.GetPlan(ctx, id)
}

// RolePlanOf returns the record of stored plan id.
func (s *Service) RolePlanOf(ctx context.Context, id int64) (RolePlan, error) {
	p, err := scanRolePlan(s.db.QueryRowContext(ctx, `SELECT `+rolePlanColumns+` FROM access_role_plans p WHERE plan_id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return RolePlan{}, apperr.Wrap(apperr.NotFound, store.ErrNotFound, "no staff-roles plan %d", id)
	}
	return p, err
}

// RolePlans lists the latest plans of env, newest first.
func (s *Service) RolePlans(ctx context.Context, env string, limit int) ([]RolePlan, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+rolePlanColumns+` FROM access_role_plans p WHERE environment = ? ORDER BY plan_id DESC LIMIT ?`, env, limit)
	if err != nil {
		return nil, fmt.Errorf("access: role plans: %w", err)
	}
	defer rows.Close()
	var out []RolePlan
	for rows.Next() {
		p, err := scanRolePlan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// ApproveRoles records by's approval of plan id: an admin other than the
// plan's author, of the environment's latest plan.
func (s *Service) ApproveRoles(ctx context.Context, by Actor, id int64) error {
	p, err := s.RolePlanOf(ctx, id)
	if err != nil {
		return err
	}
	switch {
	case !by.User.Has(staff.Admin):
		return apperr.New(apperr.Forbidden, "only an admin approves staff-roles changes")
	case by.User.ID == p.CreatedByID:
		return apperr.New(apperr.Forbidden, "you made this plan: another admin must approve it")
	case !p.Latest:
		return apperr.New(apperr.Conflict, "a newer plan of %s exists: approve that one", StackID(p.Environment))
	case p.ApprovedByID != 0:
		return apperr.New(apperr.Conflict, "plan %d is already approved by %s", id, p.ApprovedBy)
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE access_role_plans SET approved_by_id = ?, approved_by = ?, approved_at = ? WHERE plan_id = ?`,
			by.User.ID, by.Entry.Actor, store.Time(s.now()), id); err != nil {
			return fmt.Errorf("access: approve plan: %w", err)
		}
		return s.appendAudit(ctx, tx, by, "access.roles.approve", fmt.Sprintf("plan:%d %s", id, StackID(p.Environment)), map[string]any{"hash": p.Hash})
	})
}

// ApplyRoles queues the run of plan id (the engine audits it). A prod plan
// needs another admin's approval; only the environment's latest plan is
// applied.
func (s *Service) ApplyRoles(ctx context.Context, by Actor, id int64) (int64, error) {
	p, err := s.RolePlanOf(ctx, id)
	if err != nil {
		return 0, err
	}
	switch {
	case !p.Latest:
		return 0, apperr.New(apperr.Conflict, "a newer plan of %s exists: apply that one", StackID(p.Environment))
	case p.RunID != 0:
		return 0, apperr.New(apperr.Conflict, "plan %d was already applied (run %d)", id, p.RunID)
	case p.NeedsApproval():
		return 0, apperr.New(apperr.Forbidden, "prod staff roles change only after another admin approves the plan")
	}
	runID, err := s.engine.Apply(ctx, by.Entry, id)
	if err != nil {
		return 0, err
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE access_role_plans SET run_id = ? WHERE plan_id = ?`, runID, id); err != nil {
		return 0, fmt.Errorf("access: record run: %w", err)
	}
	return runID, nil
}

func (s *Service) appendAudit(ctx context.Context, tx *sql.Tx, by Actor, action, target string, details map[string]any) error {
	e := by.Entry
	e.Action, e.Target, e.Details = action, target, details
	if _, err := s.audit.Append(ctx, tx, e); err != nil {
		return fmt.Errorf("access: audit %s: %w", action, err)
	}
	return nil
}
