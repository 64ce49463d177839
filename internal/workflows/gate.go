package workflows

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/engine"
	"portal/internal/guardrails"
	"portal/internal/store"
)

// PlanRequest asks for a plan of one stack.
type PlanRequest struct {
	Stack string
	// Version is the blueprint version id ("" for the latest).
	Version string
	// Kind is "apply" (the default) or "destroy".
	Kind string
	// Emergency, when not empty, is the named reason for an emergency
	// change: an apply to test or prod of a version that has not gone the
	// normal road. It needs the approval of one admin and one compliance
	// officer (neither the plan's author), is audited, and is shown on the
	// Overview until the version has gone the normal road.
	Emergency string
}

// Limits of an emergency change's reason.
const (
	MinEmergencyReason = 20
	MaxEmergencyReason = 1000
)

// EmergencyPolicy is who approves an emergency change: one admin and one
// compliance officer, neither the plan's author, valid for expiry.
func EmergencyPolicy(expiry time.Duration) ApprovalPolicy {
	return ApprovalPolicy{Slots: [][]string{{"admin"}, {"compliance"}}, Expiry: expiry}
}

// Plan plans a blueprint version against a stack and stores the plan. An
// apply is refused unless the version went the normal road (Gate) or the
// request names an emergency.
func (s *Service) Plan(ctx context.Context, by audit.Entry, req PlanRequest) (*engine.Plan, error) {
	if req.Kind == "" {
		req.Kind = "apply"
	}
	req.Emergency = strings.TrimSpace(req.Emergency)
	var v, rules apperr.Validation
	if req.Kind != "apply" && req.Kind != "destroy" {
		v.Add("kind", fmt.Sprintf("must be apply or destroy, not %q", req.Kind))
	}
	if req.Emergency != "" {
		switch n := utf8.RuneCountInString(req.Emergency); {
		case req.Kind == "destroy":
			// Each field well formed, the pair refused: a rule of meaning.
			rules.Add("emergency_reason", "only an apply can be an emergency change: a destroy already needs approval")
		case n < MinEmergencyReason:
			v.Add("emergency_reason", fmt.Sprintf("name the incident and why it cannot wait, in at least %d characters", MinEmergencyReason))
		case n > MaxEmergencyReason:
			v.Add("emergency_reason", fmt.Sprintf("is longer than %d characters", MaxEmergencyReason))
		}
	}
	if err := v.WithRules(rules); err != nil {
		return nil, err
	}
	env, ok := s.environmentOf(req.Stack)
	if !ok {
		return nil, &apperr.Error{Kind: apperr.NotFound, Message: fmt.Sprintf("no stack %q (stacks are named like prod-eu, layers like prod-global)", req.Stack),
			Fields: map[string]string{"stack": "is not one of the nine stacks or three layers"}}
	}
	if s.Blueprints == nil {
		return nil, apperr.New(apperr.Conflict, "no blueprint versions are available to plan from")
	}
	stack, version, err := s.Blueprints.Resolve(ctx, req.Version, req.Stack)
	if err != nil {
		return nil, err
	}
	if req.Kind == "apply" {
		why, err := s.Gate(ctx, version, req.Stack)
		if err != nil {
			return nil, err
		}
		switch {
		case req.Emergency != "" && previous(env) == "":
			return nil, &apperr.Error{Kind: apperr.Invalid, Unprocessable: true, Message: "dev needs no emergency change: any version may be planned there",
				Fields: map[string]string{"emergency_reason": "leave empty: every version may enter " + req.Stack}}
		case req.Emergency != "" && why == "":
			return nil, &apperr.Error{Kind: apperr.Invalid, Message: fmt.Sprintf("version %s may go to %s the normal road: no emergency change is needed", short(version), req.Stack),
				Fields: map[string]string{"emergency_reason": "leave empty: the version went the normal road"}}
		case req.Emergency == "" && why != "":
			return nil, apperr.New(apperr.Conflict, "plan refused: %s", why)
		}
	}
	info, err := s.Info(req.Stack, stack.Version)
	if err != nil {
		return nil, err
	}
	exc, err := s.Blueprints.Exceptions(ctx, req.Stack)
	if err != nil {
		return nil, err
	}
	p, err := s.Engine.Plan(ctx, engine.Target{Stack: stack, Info: info, BlueprintVersion: version, Exceptions: exc}, req.Kind)
	if err != nil {
		return nil, apperr.Wrap(apperr.Conflict, err, "%s", planError(err))
	}
	if err := s.Engine.SavePlan(ctx, by, p); err != nil {
		return nil, err
	}
	if req.Emergency != "" {
		if err := s.recordEmergency(ctx, by, p, req.Emergency); err != nil {
			return nil, err
		}
	}
	a, err := s.ApprovalOf(ctx, p)
	if err != nil {
		return nil, err
	}
	if a.Needed && p.HasChanges() && len(p.Blocking()) == 0 {
		s.requestApproval(ctx, p, a)
	}
	return p, nil
}

// EmergencyChange is a plan made as an emergency change.
type EmergencyChange struct {
	PlanID    int64
	Stack     string
	Version   string
	Reason    string
	CreatedBy string
	CreatedAt time.Time
}

func (s *Service) recordEmergency(ctx context.Context, by audit.Entry, p *engine.Plan, reason string) error {
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO emergency_changes (plan_id, stack, blueprint_version, reason, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			p.ID, p.Stack.ID, p.BlueprintVersion, reason, by.Actor, store.Time(s.now())); err != nil {
			return fmt.Errorf("workflows: record emergency change: %w", err)
		}
		e := by
		e.Action, e.Target = "emergency.request", fmt.Sprintf("plan:%d stack:%s", p.ID, p.Stack.ID)
		e.Details = map[string]any{"version": p.BlueprintVersion, "reason": reason}
		_, err := s.Audit.Append(ctx, tx, e)
		return err
	})
}

// EmergencyOf returns the emergency change plan planID was made as, and
// whether it was one.
func (s *Service) EmergencyOf(ctx context.Context, planID int64) (EmergencyChange, bool, error) {
	var e EmergencyChange
	var at string
	err := s.DB.QueryRowContext(ctx, `SELECT plan_id, stack, blueprint_version, reason, created_by, created_at FROM emergency_changes WHERE plan_id = ?`, planID).
		Scan(&e.PlanID, &e.Stack, &e.Version, &e.Reason, &e.CreatedBy, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return e, false, nil
	} else if err != nil {
		return e, false, fmt.Errorf("workflows: emergency change of plan %d: %w", planID, err)
	}
	e.CreatedAt = parseTime(at)
	return e, true, nil
}

// OutstandingEmergency is an emergency change the Overview keeps showing:
// waiting for its approvals or its run, or in force while its version has
// not yet gone the normal road.
type OutstandingEmergency struct {
	EmergencyChange
	// State is "awaiting approval", "queued" or "in force".
	State string
	RunID int64
	// Road says what the version still lacks on the normal road.
	Road string
}

// OutstandingEmergencies lists the emergency changes still to be shown,
// newest first.
func (s *Service) OutstandingEmergencies(ctx context.Context) ([]OutstandingEmergency, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT e.plan_id, e.stack, e.blueprint_version, e.reason, e.created_by, e.created_at, COALESCE(MAX(r.id), 0)
		FROM emergency_changes e LEFT JOIN runs r ON r.plan_id = e.plan_id GROUP BY e.plan_id, e.stack, e.blueprint_version, e.reason, e.created_by, e.created_at
		ORDER BY e.plan_id DESC LIMIT 200`)
	if err != nil {
		return nil, fmt.Errorf("workflows: emergency changes: %w", err)
	}
	var all []OutstandingEmergency
	for rows.Next() {
		var o OutstandingEmergency
		var at string
		if err := rows.Scan(&o.PlanID, &o.Stack, &o.Version, &o.Reason, &o.CreatedBy, &at, &o.RunID); err != nil {
			rows.Close()
			return nil, err
		}
		o.CreatedAt = parseTime(at)
		all = append(all, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []OutstandingEmergency
	for _, o := range all {
		why, err := s.Gate(ctx, o.Version, o.Stack)
		if err != nil {
			return nil, err
		}
		if why == "" {
			continue // the version has gone the normal road since
		}
		o.Road = why
		if o.RunID == 0 {
			p, err := s.Engine.GetPlan(ctx, o.PlanID)
			if err != nil {
				return nil, err
			}
			a, err := s.ApprovalOf(ctx, p)
			if err != nil {
				return nil, err
			}
			if a.SupersededBy != 0 || a.Rejected != nil || !p.HasChanges() {
				continue
			}
			o.State = "awaiting approval"
			out = append(out, o)
			continue
		}
		r, _, err := s.Engine.GetRun(ctx, o.RunID)
		if err != nil {
			return nil, err
		}
		switch r.State {
		case engine.RunQueued, engine.RunRunning, engine.RunInterrupted:
			o.State = "queued"
		case engine.RunSucceeded:
			in, err := s.VersionInForce(ctx, o.Stack)
			if err != nil {
				return nil, err
			}
			if in.Version != o.Version {
				continue // the stack runs another version now
			}
			o.State = "in force"
		default:
			continue
		}
		out = append(out, o)
	}
	return out, nil
}

// isDriftPlan reports whether plan id was made by a drift check.
func (s *Service) isDriftPlan(ctx context.Context, id int64) (bool, error) {
	var n int
	if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM drift_checks WHERE plan_id = ?`, id).Scan(&n); err != nil {
		return false, fmt.Errorf("workflows: drift plan %d: %w", id, err)
	}
	return n > 0, nil
}

// Ready says why plan p may not run now ("" when it may): a drift check's
// plan never runs; an apply needs the normal road (or is an approved
// emergency change) and no blocking guardrail under the exceptions in force
// now (one revoked since the plan was made blocks it); a plan needing
// approval needs approvals valid now. Apply checks it before queueing, and
// the engine again when the run starts.
func (s *Service) Ready(ctx context.Context, p *engine.Plan) (string, error) {
	if drift, err := s.isDriftPlan(ctx, p.ID); err != nil {
		return "", err
	} else if drift {
		return fmt.Sprintf("plan #%d was made by a drift check to compare AWS with the version in force, and is never applied: reconcile the stack instead", p.ID), nil
	}
	a, err := s.ApprovalOf(ctx, p)
	if err != nil {
		return "", err
	}
	if a.Blocked != "" {
		return a.Blocked, nil
	}
	if p.Kind == "apply" {
		why, err := s.guardrailsNow(ctx, p)
		if err != nil || why != "" {
			return why, err
		}
	}
	if a.Needed && !a.Satisfied {
		return fmt.Sprintf("plan %d needs approval before it can run: %s", p.ID, a.Missing), nil
	}
	return "", nil
}

// guardrailsNow evaluates the guardrails of p's stack and version with the
// exceptions in force now.
func (s *Service) guardrailsNow(ctx context.Context, p *engine.Plan) (string, error) {
	if s.Blueprints == nil || p.Stack.ID == OrganizationStack {
		// The organization's policies are no blueprint's: their guardrails
		// were judged when they were planned (the engine refuses a plan
		// with a blocking failure).
		return "", nil
	}
	st, _, err := s.Blueprints.Resolve(ctx, p.BlueprintVersion, p.Stack.ID)
	if err != nil {
		return "", err
	}
	exc, err := s.Blueprints.Exceptions(ctx, p.Stack.ID)
	if err != nil {
		return "", err
	}
	rep := guardrails.Evaluate(st, exc, s.now())
	var fails []string
	for _, r := range rep.Blocking() {
		if r.Status != guardrails.Fail {
			continue
		}
		what := r.RuleID
		if r.Resource != "" {
			what += " on " + r.Resource
		}
		if r.Citation != "" {
			what += " (" + r.Citation + ")"
		}
		fails = append(fails, what)
	}
	if len(fails) == 0 {
		return "", nil
	}
	return fmt.Sprintf("blocking guardrails fail now, with the exceptions in force today (an exception may have been revoked or expired since plan #%d was made): %s; record an exception or change the blueprint, then plan again",
		p.ID, strings.Join(fails, "; ")), nil
}

// BeforeRun is the engine's hook when a run starts: it refuses a run whose
// plan is no longer Ready. Runs of stacks outside the catalogue and its
// layers (the staff roles stacks of package access, approved there) are not
// the workflows'.
func (s *Service) BeforeRun(ctx context.Context, r engine.Run, p *engine.Plan) error {
	if _, ok := s.environmentOf(p.Stack.ID); !ok {
		return nil
	}
	why, err := s.Ready(ctx, p)
	if err != nil {
		return err
	}
	if why != "" {
		return errors.New(why)
	}
	return nil
}
