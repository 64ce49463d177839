package versions

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/guardrails"
	"portal/internal/store"
)

// MaxExceptionDays is the longest an exception may run: a deviation from
// patient-data law is reviewed at least this often.
const MaxExceptionDays = 90

// Exception states.
const (
	ExceptionActive  = "active"
	ExceptionExpired = "expired"
	ExceptionRevoked = "revoked"
)

// Exception is a stored guardrail exception.
type Exception struct {
	ID int64
	guardrails.Exception
	CreatedBy string
	CreatedAt time.Time
	RevokedBy string
	RevokedAt time.Time // zero unless revoked
}

// State is active, expired or revoked at now.
func (e Exception) State(now time.Time) string {
	switch {
	case !e.RevokedAt.IsZero():
		return ExceptionRevoked
	case !e.Active(now):
		return ExceptionExpired
	}
	return ExceptionActive
}

// NewException is an exception to record.
type NewException struct {
	RuleID, Stack, Resource, Owner, Reason string
	Expires                                time.Time
}

var resourceID = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Validate checks n at now: a known rule, one of the nine stacks, a
// resource id or "" for stack-wide, a named owner, a reason, and an expiry
// in the future at most MaxExceptionDays away.
func (n NewException) Validate(now time.Time) error {
	var v apperr.Validation
	if n.RuleID == "" {
		v.Add("rule_id", "is required")
	} else if !slices.ContainsFunc(guardrails.Rules(), func(r guardrails.Rule) bool { return r.ID == n.RuleID }) {
		v.Add("rule_id", fmt.Sprintf("%q is not a guardrail rule", n.RuleID))
	}
	if n.Stack == "" {
		v.Add("stack", "is required")
	} else if !slices.Contains(StackIDs(), n.Stack) {
		v.Add("stack", fmt.Sprintf("%q is not one of the nine stacks (named like prod-eu)", n.Stack))
	}
	if n.Resource != "" && !resourceID.MatchString(n.Resource) {
		v.Add("resource", "must be a resource id like documents_bucket, or empty for the whole stack")
	}
	if strings.TrimSpace(n.Owner) == "" {
		v.Add("owner", "is required: name the person answerable for this exception")
	} else if utf8.RuneCountInString(n.Owner) > 200 {
		v.Add("owner", "is longer than 200 characters")
	}
	if strings.TrimSpace(n.Reason) == "" {
		v.Add("reason", "is required: say why the deviation is acceptable and until when")
	} else if utf8.RuneCountInString(n.Reason) > 2000 {
		v.Add("reason", "is longer than 2000 characters")
	}
	switch {
	case n.Expires.IsZero():
		v.Add("expires", "is required")
	case !n.Expires.After(now):
		v.Add("expires", "must be in the future")
	case n.Expires.After(now.Add(MaxExceptionDays * 24 * time.Hour)):
		v.Add("expires", fmt.Sprintf("must be at most %d days away", MaxExceptionDays))
	}
	return v.Err()
}

// CreateException records n, audited.
func (s *Service) CreateException(ctx context.Context, by audit.Entry, n NewException) (Exception, error) {
	n.Owner, n.Reason, n.Resource = strings.TrimSpace(n.Owner), strings.TrimSpace(n.Reason), strings.TrimSpace(n.Resource)
	now := s.now()
	if err := n.Validate(now); err != nil {
		return Exception{}, err
	}
	if n.Resource != "" {
		// Name a resource the latest version has, so a typo cannot
		// leave a failure unexcepted while looking excepted.
		if st, _, err := s.Resolve(ctx, "", n.Stack); err == nil {
			if _, ok := st.Resource(n.Resource); !ok {
				return Exception{}, &apperr.Error{Kind: apperr.Invalid, Message: "resource: " + n.Stack + " has no resource " + n.Resource,
					Fields: map[string]string{"resource": fmt.Sprintf("%s has no resource %q in the latest version", n.Stack, n.Resource)}}
			}
		} else if apperr.KindOf(err) != apperr.NotFound {
			return Exception{}, err
		}
	}
	e := Exception{Exception: guardrails.Exception{RuleID: n.RuleID, Stack: n.Stack, Resource: n.Resource, Owner: n.Owner, Reason: n.Reason,
		Expires: n.Expires.UTC()}, CreatedBy: by.Actor, CreatedAt: now}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO guardrail_exceptions (rule_id, stack, resource, owner, reason, expires_at, created_by, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, e.RuleID, e.Stack, e.Resource, e.Owner, e.Reason, store.Time(e.Expires), e.CreatedBy, store.Time(now))
		if err != nil {
			return fmt.Errorf("versions: create exception: %w", err)
		}
		if e.ID, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("versions: create exception: %w", err)
		}
		entry := by
		entry.Action = "guardrail.exception.create"
		entry.Target = exceptionTarget(e)
		entry.Details = map[string]any{"rule_id": e.RuleID, "stack": e.Stack, "resource": e.Resource, "owner": e.Owner,
			"reason": e.Reason, "expires": store.Time(e.Expires)}
		_, err = s.audit.Append(ctx, tx, entry)
		return err
	})
	if err != nil {
		return Exception{}, err
	}
	return e, nil
}

func exceptionTarget(e Exception) string {
	what := e.Resource
	if what == "" {
		what = "(stack-wide)"
	}
	return fmt.Sprintf("guardrail-exception:%d %s %s %s", e.ID, e.RuleID, e.Stack, what)
}

// RevokeException ends exception id now, audited. Revoking an exception
// that is already revoked is a conflict.
func (s *Service) RevokeException(ctx context.Context, by audit.Entry, id int64) (Exception, error) {
	var e Exception
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if e, err = getException(ctx, tx, id); err != nil {
			return err
		}
		if !e.RevokedAt.IsZero() {
			return apperr.New(apperr.Conflict, "exception %d was already revoked", id)
		}
		now := s.now()
		if _, err := tx.ExecContext(ctx, `UPDATE guardrail_exceptions SET revoked_by = ?, revoked_at = ? WHERE id = ?`, by.Actor, store.Time(now), id); err != nil {
			return fmt.Errorf("versions: revoke exception %d: %w", id, err)
		}
		e.RevokedBy, e.RevokedAt = by.Actor, now
		entry := by
		entry.Action = "guardrail.exception.revoke"
		entry.Target = exceptionTarget(e)
		entry.Details = map[string]any{"rule_id": e.RuleID, "stack": e.Stack, "resource": e.Resource, "owner": e.Owner}
		_, err = s.audit.Append(ctx, tx, entry)
		return err
	})
	return e, err
}

const exceptionCols = `id, rule_id, stack, resource, owner, reason, expires_at, created_by, created_at, revoked_by, revoked_at`

func scanException(r scanner) (Exception, error) {
	var e Exception
	var exp, created, revoked string
	if err := r.Scan(&e.ID, &e.RuleID, &e.Stack, &e.Resource, &e.Owner, &e.Reason, &exp, &e.CreatedBy, &created, &e.RevokedBy, &revoked); err != nil {
		return Exception{}, err
	}
	var err error
	if e.Expires, err = store.ParseTime(exp); err != nil {
		return Exception{}, fmt.Errorf("versions: exception %d expires_at: %w", e.ID, err)
	}
	if e.CreatedAt, err = store.ParseTime(created); err != nil {
		return Exception{}, fmt.Errorf("versions: exception %d created_at: %w", e.ID, err)
	}
	if revoked != "" {
		if e.RevokedAt, err = store.ParseTime(revoked); err != nil {
			return Exception{}, fmt.Errorf("versions: exception %d revoked_at: %w", e.ID, err)
		}
	}
	return e, nil
}

func getException(ctx context.Context, q querier, id int64) (Exception, error) {
	e, err := scanException(q.QueryRowContext(ctx, `SELECT `+exceptionCols+` FROM guardrail_exceptions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Exception{}, apperr.Wrap(apperr.NotFound, store.ErrNotFound, "there is no guardrail exception %d", id)
	}
	if err != nil {
		return Exception{}, fmt.Errorf("versions: exception %d: %w", id, err)
	}
	return e, nil
}

// GetException returns exception id.
func (s *Service) GetException(ctx context.Context, id int64) (Exception, error) {
	return getException(ctx, s.db, id)
}

// ExceptionFilter selects exceptions.
type ExceptionFilter struct {
	Stack string // "" for every stack
	// InForce keeps only those neither revoked nor expired now.
	InForce bool
}

// ListExceptions returns exceptions, those expiring soonest first (in force
// before ended ones).
func (s *Service) ListExceptions(ctx context.Context, f ExceptionFilter) ([]Exception, error) {
	var where []string
	var args []any
	if f.Stack != "" {
		where, args = append(where, "stack = ?"), append(args, f.Stack)
	}
	if f.InForce {
		where, args = append(where, "revoked_at = '' AND expires_at > ?"), append(args, store.Time(s.now()))
	}
	q := `SELECT ` + exceptionCols + ` FROM guardrail_exceptions`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY expires_at, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("versions: exceptions: %w", err)
	}
	defer rows.Close()
	var out []Exception
	for rows.Next() {
		e, err := scanException(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("versions: exceptions: %w", err)
	}
	now := s.now()
	slices.SortStableFunc(out, func(a, b Exception) int {
		return boolInt(a.State(now) != ExceptionActive) - boolInt(b.State(now) != ExceptionActive)
	})
	return out, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Exceptions returns the guardrail exceptions of stackID that are not
// revoked (expired ones included: guardrails ignores them).
func (s *Service) Exceptions(ctx context.Context, stackID string) ([]guardrails.Exception, error) {
	list, err := s.ListExceptions(ctx, ExceptionFilter{Stack: stackID})
	if err != nil {
		return nil, err
	}
	return unrevoked(list), nil
}

func (s *Service) activeExceptions(ctx context.Context) ([]guardrails.Exception, error) {
	list, err := s.ListExceptions(ctx, ExceptionFilter{InForce: true})
	if err != nil {
		return nil, err
	}
	return unrevoked(list), nil
}

func unrevoked(list []Exception) []guardrails.Exception {
	var out []guardrails.Exception
	for _, e := range list {
		if e.RevokedAt.IsZero() {
			out = append(out, e.Exception)
		}
	}
	return out
}
