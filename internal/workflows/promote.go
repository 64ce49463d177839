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
	"portal/internal/engine"
	"portal/internal/regions"
	"portal/internal/store"
	"portal/internal/verify"
)

// Purposes of a promotion.
const (
	PurposePromote   = "promote"
	PurposeRollback  = "rollback"
	PurposeReconcile = "reconcile"
)

// PromoteRequest asks to bring a blueprint version to an environment in
// some jurisdictions.
type PromoteRequest struct {
	// Version is the blueprint version id ("" for the latest).
	Version       string
	Environment   string
	Jurisdictions []string
	Purpose       string
}

// Promotion is a stored promotion with its stacks.
type Promotion struct {
	ID          int64
	Version     string
	Environment string
	Purpose     string
	CreatedBy   string
	CreatedAt   time.Time
	Stacks      []PromotionStack
}

// PromotionStack is one stack of a promotion: its plan, and its run once
// applied (a prod plan waits for approval first).
type PromotionStack struct {
	Stack   string
	PlanID  int64
	RunID   int64
	Refused string
}

// previous returns the environment a version must have been proven in
// before env, "" for dev.
func previous(env string) string {
	names := regions.EnvironmentNames()
	i := slices.Index(names, env)
	if i <= 0 {
		return ""
	}
	return names[i-1]
}

// Gate says why version may not go to stack ("" when it may): it must
// have applied successfully in the previous environment of the stack's
// jurisdiction, and the latest verification of it there must have passed.
func (s *Service) Gate(ctx context.Context, version, stack string) (string, error) {
	if l, ok := s.Catalogue.Layer(stack); ok {
		return s.layerGate(ctx, version, l)
	}
	st, ok := s.Catalogue.Stack(stack)
	if !ok {
		return "", apperr.New(apperr.NotFound, "no stack %q", stack)
	}
	prevEnv := previous(st.Environment.Name)
	if prevEnv == "" {
		return "", nil
	}
	prev := regions.StackID(prevEnv, st.Jurisdiction.ID)
	run, err := s.succeededRun(ctx, prev, version)
	if err != nil {
		return "", err
	}
	if run == 0 {
		return fmt.Sprintf("%s: version %s has not been applied successfully in %s; promote it there first", stack, short(version), prev), nil
	}
	v, err := s.latestVerification(ctx, prev, version)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Sprintf("%s: version %s applied in %s (run #%d) but has not been verified there; verify %s first", stack, short(version), prev, run, prev), nil
	} else if err != nil {
		return "", err
	}
	switch {
	case v.State == verify.Passed:
		return "", nil
	case v.State == "running":
		return fmt.Sprintf("%s: the verification of version %s in %s is still running", stack, short(version), prev), nil
	case v.State == verify.Incomplete && v.Result.OnlyUnsupported() && s.AcceptUnsupported:
		return "", nil
	case v.State == verify.Incomplete:
		return fmt.Sprintf("%s: the verification of version %s in %s is incomplete (%s); steps this endpoint cannot serve do not prove the version", stack, short(version), prev, v.Result.Summary()), nil
	default:
		return fmt.Sprintf("%s: the verification of version %s in %s failed: %s", stack, short(version), prev, v.Result.Summary()), nil
	}
}

// Promote plans version against each requested stack and queues the runs
// that need no approval; prod plans wait for approval. When any stack is
// refused by the promotion order, nothing is planned and the error names
// every reason.
func (s *Service) Promote(ctx context.Context, by audit.Entry, req PromoteRequest) (Promotion, error) {
	var v apperr.Validation
	if !slices.Contains(regions.EnvironmentNames(), req.Environment) {
		v.Add("environment", fmt.Sprintf("must be one of %s", strings.Join(regions.EnvironmentNames(), ", ")))
	}
	var js []string
	for _, j := range regions.Jurisdictions() {
		if slices.Contains(req.Jurisdictions, j.ID) {
			js = append(js, j.ID)
		}
	}
	for _, j := range req.Jurisdictions {
		if _, ok := regions.JurisdictionByID(j); !ok {
			v.Add("jurisdictions", fmt.Sprintf("%q is not a jurisdiction (us, eu or apac)", j))
		}
	}
	if len(js) == 0 && v["jurisdictions"] == "" {
		v.Add("jurisdictions", "choose at least one jurisdiction")
	}
	if req.Purpose == "" {
		req.Purpose = PurposePromote
	}
	if req.Purpose != PurposePromote && req.Purpose != PurposeRollback && req.Purpose != PurposeReconcile {
		v.Add("purpose", "must be promote, rollback or reconcile")
	}
	if err := v.Err(); err != nil {
		return Promotion{}, err
	}
	if s.Blueprints == nil {
		return Promotion{}, apperr.New(apperr.Conflict, "no blueprint versions are available to promote")
	}
	if _, id, err := s.Blueprints.Resolve(ctx, req.Version, regions.StackID(req.Environment, js[0])); err != nil {
		return Promotion{}, err
	} else {
		req.Version = id
	}
	// Every purpose takes the normal road: a rollback or a reconcile
	// brings a version that must have been proven below too.
	var refused []string
	for _, j := range js {
		why, err := s.Gate(ctx, req.Version, regions.StackID(req.Environment, j))
		if err != nil {
			return Promotion{}, err
		}
		if why != "" {
			refused = append(refused, why)
		}
	}
	if len(refused) > 0 {
		return Promotion{}, apperr.New(apperr.Conflict, "%s refused: %s", req.Purpose, strings.Join(refused, "; "))
	}
	pr := Promotion{Version: req.Version, Environment: req.Environment, Purpose: req.Purpose, CreatedBy: by.Actor, CreatedAt: s.now()}
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `INSERT INTO promotions (blueprint_version, environment, purpose, created_by, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id`,
			pr.Version, pr.Environment, pr.Purpose, pr.CreatedBy, store.Time(pr.CreatedAt)).Scan(&pr.ID); err != nil {
			return fmt.Errorf("workflows: store promotion: %w", err)
		}
		for _, j := range js {
			if _, err := tx.ExecContext(ctx, `INSERT INTO promotion_stacks (promotion_id, stack) VALUES (?, ?)`, pr.ID, regions.StackID(pr.Environment, j)); err != nil {
				return fmt.Errorf("workflows: store promotion: %w", err)
			}
		}
		e := by
		e.Action, e.Target = "promotion."+pr.Purpose, fmt.Sprintf("promotion:%d", pr.ID)
		e.Details = map[string]any{"version": pr.Version, "environment": pr.Environment, "jurisdictions": js}
		_, err := s.Audit.Append(ctx, tx, e)
		return err
	})
	if err != nil {
		return pr, err
	}
	// One plan (and run) per stack; a failure in one stack is recorded on
	// it and does not stop the others.
	for _, j := range js {
		stack := regions.StackID(pr.Environment, j)
		ps := PromotionStack{Stack: stack}
		p, err := s.Plan(ctx, by, PlanRequest{Stack: stack, Version: pr.Version, Kind: "apply"})
		if err != nil {
			ps.Refused = apperr.MessageOf(err)
		} else {
			ps.PlanID = p.ID
			if _, err := s.DB.ExecContext(ctx, `UPDATE promotion_stacks SET plan_id = ? WHERE promotion_id = ? AND stack = ?`, p.ID, pr.ID, stack); err != nil {
				return pr, err
			}
			if !NeedsApproval(p) {
				if ps.RunID, err = s.Apply(ctx, by, p.ID, ""); err != nil {
					ps.Refused = apperr.MessageOf(err)
				}
			}
		}
		if ps.Refused != "" {
			if _, err := s.DB.ExecContext(ctx, `UPDATE promotion_stacks SET refused = ? WHERE promotion_id = ? AND stack = ?`, ps.Refused, pr.ID, stack); err != nil {
				return pr, err
			}
		}
		pr.Stacks = append(pr.Stacks, ps)
	}
	return pr, nil
}

// GetPromotion returns promotion id with its stacks.
func (s *Service) GetPromotion(ctx context.Context, id int64) (Promotion, error) {
	var pr Promotion
	var at string
	err := s.DB.QueryRowContext(ctx, `SELECT id, blueprint_version, environment, purpose, created_by, created_at FROM promotions WHERE id = ?`, id).
		Scan(&pr.ID, &pr.Version, &pr.Environment, &pr.Purpose, &pr.CreatedBy, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return pr, apperr.Wrap(apperr.NotFound, store.ErrNotFound, "no promotion %d", id)
	} else if err != nil {
		return pr, fmt.Errorf("workflows: promotion %d: %w", id, err)
	}
	pr.CreatedAt = parseTime(at)
	rows, err := s.DB.QueryContext(ctx, `SELECT stack, COALESCE(plan_id, 0), COALESCE(run_id, 0), refused FROM promotion_stacks WHERE promotion_id = ?`, id)
	if err != nil {
		return pr, err
	}
	defer rows.Close()
	for rows.Next() {
		var ps PromotionStack
		if err := rows.Scan(&ps.Stack, &ps.PlanID, &ps.RunID, &ps.Refused); err != nil {
			return pr, err
		}
		pr.Stacks = append(pr.Stacks, ps)
	}
	order := map[string]int{}
	for i, id := range s.stackIDs() {
		order[id] = i
	}
	slices.SortFunc(pr.Stacks, func(a, b PromotionStack) int { return order[a.Stack] - order[b.Stack] })
	return pr, rows.Err()
}

// ListPromotions returns promotions newest first, before id beforeID (0 for
// the newest), and whether there are more.
func (s *Service) ListPromotions(ctx context.Context, beforeID int64, limit int) ([]Promotion, bool, error) {
	if limit <= 0 || limit > 100 {
		limit = 25
	}
	q := `SELECT id FROM promotions`
	args := []any{}
	if beforeID > 0 {
		q += ` WHERE id < ?`
		args = append(args, beforeID)
	}
	rows, err := s.DB.QueryContext(ctx, q+` ORDER BY id DESC LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return nil, false, fmt.Errorf("workflows: promotions: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, false, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	more := len(ids) > limit
	if more {
		ids = ids[:limit]
	}
	var out []Promotion
	for _, id := range ids {
		pr, err := s.GetPromotion(ctx, id)
		if err != nil {
			return nil, false, err
		}
		out = append(out, pr)
	}
	return out, more, nil
}

// HistoryEntry is one apply or destroy of a stack, for its history.
type HistoryEntry struct {
	Run     engine.Run
	Version string
	// InForce marks the run whose version the stack runs now.
	InForce bool
	// Verification is the state of the latest verification of that run's
	// version in the stack ("" when none).
	Verification string
}

// History returns the runs of stack, newest first, with their blueprint
// versions, keyset-paginated by run id.
func (s *Service) History(ctx context.Context, stack string, beforeID int64, limit int) ([]HistoryEntry, bool, error) {
	runs, more, err := s.Engine.ListRuns(ctx, engine.RunFilter{Stack: stack, BeforeID: beforeID, Limit: limit})
	if err != nil {
		return nil, false, err
	}
	in, err := s.VersionInForce(ctx, stack)
	if err != nil {
		return nil, false, err
	}
	var out []HistoryEntry
	for _, r := range runs {
		h := HistoryEntry{Run: r, InForce: r.ID == in.RunID}
		if err := s.DB.QueryRowContext(ctx, `SELECT blueprint_version FROM plans WHERE id = ?`, r.PlanID).Scan(&h.Version); err != nil {
			return nil, false, err
		}
		if v, err := s.latestVerification(ctx, stack, h.Version); err == nil {
			h.Verification = v.State
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, false, err
		}
		out = append(out, h)
	}
	return out, more, nil
}
