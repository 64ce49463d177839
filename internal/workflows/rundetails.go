package workflows

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"portal/internal/store"
)

// RunDetail is what the runs list shows of a run beside the engine's own
// record: the blueprint version its plan was made from, who approved the
// plan, and the verification that followed it.
type RunDetail struct {
	BlueprintVersion string
	PlanHash         string
	// Approvers are the labels of everyone who approved the plan before
	// the run was queued, in the order they did.
	Approvers []string
	// VerificationID is 0 when no verification belongs to the run.
	VerificationID    int64
	VerificationState string
}

// RunDetails returns the details of the runs given by id (planID by run
// id), in three queries whatever the number of runs.
func (s *Service) RunDetails(ctx context.Context, runs map[int64]int64) (map[int64]RunDetail, error) {
	out := make(map[int64]RunDetail, len(runs))
	if len(runs) == 0 || s.DB == nil {
		return out, nil
	}
	runIDs := make([]any, 0, len(runs))
	for id := range runs {
		runIDs = append(runIDs, id)
		out[id] = RunDetail{}
	}
	in := "(" + strings.TrimSuffix(strings.Repeat("?,", len(runIDs)), ",") + ")"
	rows, err := s.DB.QueryContext(ctx, `SELECT r.id, p.blueprint_version, p.hash FROM runs r JOIN plans p ON p.id = r.plan_id WHERE r.id IN `+in, runIDs...)
	if err != nil {
		return nil, fmt.Errorf("workflows: run details: %w", err)
	}
	err = eachRow(rows, func(rs *sql.Rows) error {
		var id int64
		var d RunDetail
		if err := rs.Scan(&id, &d.BlueprintVersion, &d.PlanHash); err != nil {
			return err
		}
		out[id] = d
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("workflows: run details: %w", err)
	}
	// An approval counts for the run it let through: given to the plan
	// before the run was queued, and never a rejection.
	rows, err = s.DB.QueryContext(ctx, `SELECT r.id, a.approver FROM runs r JOIN approvals a ON a.plan_id = r.plan_id
		WHERE a.decision = 'approved' AND a.created_at <= r.created_at AND r.id IN `+in+` ORDER BY a.id`, runIDs...)
	if err != nil {
		return nil, fmt.Errorf("workflows: run approvers: %w", err)
	}
	err = eachRow(rows, func(rs *sql.Rows) error {
		var id int64
		var who string
		if err := rs.Scan(&id, &who); err != nil {
			return err
		}
		d := out[id]
		d.Approvers = append(d.Approvers, who)
		out[id] = d
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("workflows: run approvers: %w", err)
	}
	// The latest verification of each run.
	rows, err = s.DB.QueryContext(ctx, `SELECT v.run_id, v.id, v.state FROM verifications v WHERE v.run_id IN `+in+` ORDER BY v.id`, runIDs...)
	if err != nil {
		return nil, fmt.Errorf("workflows: run verifications: %w", err)
	}
	err = eachRow(rows, func(rs *sql.Rows) error {
		var id, vid int64
		var state string
		if err := rs.Scan(&id, &vid, &state); err != nil {
			return err
		}
		d := out[id]
		d.VerificationID, d.VerificationState = vid, state
		out[id] = d
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("workflows: run verifications: %w", err)
	}
	return out, nil
}

func eachRow(rows *sql.Rows, f func(*sql.Rows) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := f(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// PlanFilter selects plans that were never applied.
type PlanFilter struct {
	Stack, User  string
	Since, Until time.Time
	// BeforeID continues a listing after its last plan.
	BeforeID int64
	Limit    int
}

// PlanSummary is a plan without its body.
type PlanSummary struct {
	ID                     int64
	Stack, Kind            string
	BlueprintVersion, Hash string
	Blocking               bool
	CreatedBy              string
	CreatedAt              time.Time
	// DriftCheck is set for the plans drift checks make (never meant to
	// be applied).
	DriftCheck bool
}

// UnappliedPlans lists plans no run was ever made of, newest first (at
// most f.Limit, 50 by default), and whether there are more: the plans
// someone made and reviewed but did not apply, and the drift checks'.
func (s *Service) UnappliedPlans(ctx context.Context, f PlanFilter) ([]PlanSummary, bool, error) {
	where := []string{"NOT EXISTS (SELECT 1 FROM runs r WHERE r.plan_id = p.id)"}
	var args []any
	if f.Stack != "" {
		where, args = append(where, "p.stack = ?"), append(args, f.Stack)
	}
	if f.User != "" {
		where, args = append(where, "p.created_by LIKE ?"), append(args, "%"+f.User+"%")
	}
	if !f.Since.IsZero() {
		where, args = append(where, "p.created_at >= ?"), append(args, store.Time(f.Since))
	}
	if !f.Until.IsZero() {
		where, args = append(where, "p.created_at < ?"), append(args, store.Time(f.Until))
	}
	if f.BeforeID > 0 {
		where, args = append(where, "p.id < ?"), append(args, f.BeforeID)
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT p.id, p.stack, p.kind, p.blueprint_version, p.hash, p.blocking, p.created_by, p.created_at,
		CASE WHEN EXISTS (SELECT 1 FROM drift_checks d WHERE d.plan_id = p.id) THEN 1 ELSE 0 END
		FROM plans p WHERE `+strings.Join(where, " AND ")+` ORDER BY p.id DESC LIMIT ?`, append(args, f.Limit+1)...)
	if err != nil {
		return nil, false, fmt.Errorf("workflows: unapplied plans: %w", err)
	}
	var out []PlanSummary
	err = eachRow(rows, func(rs *sql.Rows) error {
		var p PlanSummary
		var blocking, drift int
		var at string
		if err := rs.Scan(&p.ID, &p.Stack, &p.Kind, &p.BlueprintVersion, &p.Hash, &blocking, &p.CreatedBy, &at, &drift); err != nil {
			return err
		}
		p.Blocking, p.DriftCheck = blocking != 0, drift != 0
		p.CreatedAt, _ = store.ParseTime(at)
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("workflows: unapplied plans: %w", err)
	}
	more := len(out) > f.Limit
	if more {
		out = out[:f.Limit]
	}
	return out, more, nil
}

// DriftHistory lists the drift checks of stacks made in [from, to), oldest
// first.
func (s *Service) DriftHistory(ctx context.Context, stacks []string, from, to time.Time) ([]DriftCheck, error) {
	if len(stacks) == 0 {
		return nil, nil
	}
	args := make([]any, 0, len(stacks)+2)
	for _, st := range stacks {
		args = append(args, st)
	}
	args = append(args, store.Time(from), store.Time(to))
	rows, err := s.DB.QueryContext(ctx, `SELECT `+driftCols+` FROM drift_checks WHERE stack IN (`+strings.TrimSuffix(strings.Repeat("?,", len(stacks)), ",")+`)
		AND checked_at >= ? AND checked_at < ? ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("workflows: drift history: %w", err)
	}
	var out []DriftCheck
	err = eachRow(rows, func(rs *sql.Rows) error {
		d, err := scanDrift(rs)
		if err != nil {
			return err
		}
		out = append(out, d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("workflows: drift history: %w", err)
	}
	return out, nil
}
