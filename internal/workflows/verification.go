package workflows

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/engine"
	"portal/internal/notify"
	"portal/internal/regions"
	"portal/internal/store"
	"portal/internal/verify"
)

// Verification is a stored post-deploy verification of a stack.
type Verification struct {
	ID         int64
	Stack      string
	RunID      int64 // 0 when run on demand
	Version    string
	State      string // running, passed, failed, incomplete
	Result     verify.Result
	CreatedBy  string
	CreatedAt  time.Time
	FinishedAt time.Time
}

const verificationCols = `id, stack, COALESCE(run_id, 0), blueprint_version, state, steps, created_by, created_at, finished_at`

func scanVerification(r interface{ Scan(...any) error }) (Verification, error) {
	var v Verification
	var steps, at, fin string
	if err := r.Scan(&v.ID, &v.Stack, &v.RunID, &v.Version, &v.State, &steps, &v.CreatedBy, &at, &fin); err != nil {
		return v, err
	}
	_ = json.Unmarshal([]byte(steps), &v.Result.Steps)
	v.Result.State = v.State
	v.CreatedAt, v.FinishedAt = parseTime(at), parseTime(fin)
	return v, nil
}

// GetVerification returns verification id.
func (s *Service) GetVerification(ctx context.Context, id int64) (Verification, error) {
	v, err := scanVerification(s.DB.QueryRowContext(ctx, `SELECT `+verificationCols+` FROM verifications WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return v, apperr.Wrap(apperr.NotFound, store.ErrNotFound, "no verification %d", id)
	}
	return v, err
}

// latestVerification returns the newest verification of version in stack.
func (s *Service) latestVerification(ctx context.Context, stack, version string) (Verification, error) {
	v, err := scanVerification(s.DB.QueryRowContext(ctx, `SELECT `+verificationCols+` FROM verifications WHERE stack = ? AND blueprint_version = ?
		ORDER BY id DESC LIMIT 1`, stack, version))
	if errors.Is(err, sql.ErrNoRows) {
		return v, store.ErrNotFound
	}
	return v, err
}

// Verifications lists the verifications of stack ("" for all), newest
// first.
func (s *Service) Verifications(ctx context.Context, stack string, limit int) ([]Verification, error) {
	q, args := `SELECT `+verificationCols+` FROM verifications`, []any{}
	if stack != "" {
		q, args = q+` WHERE stack = ?`, append(args, stack)
	}
	rows, err := s.DB.QueryContext(ctx, q+` ORDER BY id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("workflows: verifications: %w", err)
	}
	defer rows.Close()
	var out []Verification
	for rows.Next() {
		v, err := scanVerification(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// LowerVerifications returns, for plan p, the latest verification of its
// blueprint version in each lower environment of its jurisdiction: what an
// approver looks at before deciding.
func (s *Service) LowerVerifications(ctx context.Context, p *engine.Plan) ([]Verification, error) {
	var out []Verification
	for env := previous(p.Stack.Environment); env != ""; env = previous(env) {
		stack := env + "-" + p.Stack.Jurisdiction
		v, err := s.latestVerification(ctx, stack, p.BlueprintVersion)
		if errors.Is(err, store.ErrNotFound) {
			out = append(out, Verification{Stack: stack, Version: p.BlueprintVersion})
			continue
		} else if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Verify runs the post-deploy verification of stack now, records it (on
// run runID, 0 for on demand), audits it and notifies ops when it fails.
func (s *Service) Verify(ctx context.Context, by audit.Entry, stack string, runID int64) (Verification, error) {
	info, err := s.Info(stack, "")
	if err != nil {
		return Verification{}, err
	}
	in, err := s.VersionInForce(ctx, stack)
	if err != nil {
		return Verification{}, err
	}
	if in.Version == "" {
		return Verification{}, apperr.New(apperr.Conflict, "%s is not deployed: apply a version before verifying it", stack)
	}
	v := Verification{Stack: stack, RunID: runID, Version: in.Version, State: "running", CreatedBy: by.Actor, CreatedAt: s.now()}
	var run any
	if runID > 0 {
		run = runID
	}
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `INSERT INTO verifications (stack, run_id, blueprint_version, state, created_by, created_at) VALUES (?, ?, ?, 'running', ?, ?) RETURNING id`,
			stack, run, v.Version, v.CreatedBy, store.Time(v.CreatedAt)).Scan(&v.ID); err != nil {
			return fmt.Errorf("workflows: start verification: %w", err)
		}
		e := by
		e.Action, e.Target = "verification.start", fmt.Sprintf("verification:%d stack:%s", v.ID, stack)
		e.Details = map[string]any{"run": runID, "version": v.Version}
		_, err = s.Audit.Append(ctx, tx, e)
		return err
	})
	if err != nil {
		return v, err
	}
	v.Result = s.runVerifier(ctx, info)
	v.State, v.FinishedAt = v.Result.State, s.now()
	steps, _ := json.Marshal(v.Result.Steps)
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE verifications SET state = ?, steps = ?, finished_at = ? WHERE id = ?`,
			v.State, string(steps), store.Time(v.FinishedAt), v.ID); err != nil {
			return fmt.Errorf("workflows: record verification: %w", err)
		}
		_, err := s.Audit.Append(ctx, tx, audit.Entry{Actor: "system", Action: "verification." + v.State, Target: fmt.Sprintf("verification:%d stack:%s", v.ID, stack),
			Details: map[string]any{"run": runID, "version": v.Version, "summary": v.Result.Summary()}})
		return err
	})
	if err != nil {
		return v, err
	}
	if v.State == verify.Failed && s.Notify != nil {
		to, _ := s.recipients(ctx, 0, "ops")
		_, _ = s.Notify.Notify(ctx, notify.Notification{Kind: notify.VerificationFailed, Stack: stack,
			Subject: fmt.Sprintf("Verification of %s failed", stack),
			Message: fmt.Sprintf("Post-deploy verification #%d of %s (version %s) failed: %s", v.ID, stack, short(v.Version), v.Result.Summary()),
			Link:    fmt.Sprintf("/verifications/%d", v.ID), To: to})
	}
	return v, nil
}

func (s *Service) runVerifier(ctx context.Context, info engine.StackInfo) verify.Result {
	fail := func(msg string) verify.Result {
		return verify.Result{State: verify.Failed, Steps: []verify.Step{{Name: verify.StepUpload, Title: verify.Title(verify.StepUpload), State: verify.Failed, Detail: msg}}}
	}
	if s.Verifier == nil {
		return fail("verification is not configured in this portal")
	}
	res, err := s.Engine.Resources(ctx, info.ID)
	if err != nil {
		return fail("could not read the stack's resources: " + err.Error())
	}
	return s.Verifier.VerifyStack(ctx, info, res)
}

// AfterRun is the engine's hook when a run finishes: a failed run is
// notified; a succeeded apply of one of the nine stacks is verified (other
// stacks, such as the staff roles of an account, carry no patient path to
// verify).
func (s *Service) AfterRun(ctx context.Context, r engine.Run) {
	switch {
	case r.State == engine.RunFailed && s.Notify != nil:
		_, _ = s.Notify.Notify(ctx, notify.Notification{Kind: notify.RunFailed, Stack: r.Stack,
			Subject: fmt.Sprintf("Run #%d (%s %s) failed", r.ID, r.Kind, r.Stack),
			Message: fmt.Sprintf("Run #%d, started by %s, failed: %s", r.ID, r.CreatedBy, r.Error),
			Link:    fmt.Sprintf("/runs/%d", r.ID)})
	case r.State == engine.RunSucceeded && r.Kind == "apply" && s.verifiable(r.Stack) && !regions.IsLayerID(r.Stack):
		// An environment layer serves no patient path of its own to verify:
		// its jurisdiction stacks' verifications cover what it routes to.
		if _, err := s.Verify(ctx, audit.Entry{Actor: "system"}, r.Stack, r.ID); err != nil && s.Log != nil {
			s.Log.Warn("verify after apply", slog.Int64("run", r.ID), slog.String("err", err.Error()))
		}
		s.recheckDrift(ctx, r)
	}
}

// recheckDrift checks a stack again right after a succeeded apply when its
// last drift check found drift (or could not plan): a reconcile clears the
// stack at once instead of at the next scheduled check.
func (s *Service) recheckDrift(ctx context.Context, r engine.Run) {
	last, err := s.LatestDrift(ctx, r.Stack)
	if err != nil || last.State == DriftClean {
		return
	}
	by := audit.Entry{Actor: "system", Details: map[string]any{"after_run": r.ID}}
	if _, _, err := s.CheckDrift(ctx, by, r.Stack); err != nil && s.Log != nil {
		s.Log.Warn("drift check after apply", slog.Int64("run", r.ID), slog.String("err", err.Error()))
	}
}

// verifiable reports whether stack is one of the catalogue's stacks, the
// ones a verification knows how to check.
func (s *Service) verifiable(stack string) bool {
	_, ok := s.Catalogue.Stack(stack)
	return ok
}

// VerifyPending verifies succeeded applies of the last day that have no
// verification (the portal stopped before it could run one). The verify
// job runs it.
func (s *Service) VerifyPending(ctx context.Context) error {
	// Runs that finished in the last minute are left to the engine's hook.
	since, until := store.Time(s.now().Add(-24*time.Hour)), store.Time(s.now().Add(-time.Minute))
	rows, err := s.DB.QueryContext(ctx, `SELECT r.id, r.stack FROM runs r WHERE r.kind = 'apply' AND r.state = 'succeeded' AND r.finished_at >= ? AND r.finished_at <= ?
		AND NOT EXISTS (SELECT 1 FROM verifications v WHERE v.run_id = r.id)
		AND r.id = (SELECT MAX(id) FROM runs o WHERE o.stack = r.stack AND o.state = 'succeeded') ORDER BY r.id`, since, until)
	if err != nil {
		return fmt.Errorf("workflows: pending verifications: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		var stack string
		if err := rows.Scan(&id, &stack); err != nil {
			rows.Close()
			return err
		}
		if s.verifiable(stack) {
			ids = append(ids, id)
		}
	}
	rows.Close()
	for _, id := range ids {
		r, _, err := s.Engine.GetRun(ctx, id)
		if err != nil {
			return err
		}
		s.AfterRun(ctx, r)
	}
	return nil
}
