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
	// ExceptionAwaiting is an exception to a residency or encryption rule
	// in prod that no compliance officer has approved yet: not in force.
	ExceptionAwaiting = "awaiting approval"
)

// Exception is a stored guardrail exception.
type Exception struct {
	ID int64
	guardrails.Exception
	CreatedBy string
	CreatedAt time.Time
	RevokedBy string
	RevokedAt time.Time // zero unless revoked
	// NeedsApproval marks an exception that takes effect only once a
	// compliance officer other than its author approved it
	// (NeedsComplianceApproval); ApprovedBy and ApprovedAt say who and
	// when.
	NeedsApproval bool
	ApprovedBy    string
	ApprovedAt    time.Time
}

// State is active, expired, revoked or awaiting approval at now.
func (e Exception) State(now time.Time) string {
	switch {
	case !e.RevokedAt.IsZero():
		return ExceptionRevoked
	case !e.Active(now):
		return ExceptionExpired
	case e.NeedsApproval && e.ApprovedAt.IsZero():
		return ExceptionAwaiting
	}
	return ExceptionActive
}

// ComplianceRules are the rules whose exceptions in prod need a compliance
// officer's approval besides their author: where patient data lives (GDPR
// Art. 44, PDPA s26, HIPAA's business associate boundary) and how it is
// encrypted at rest and in transit.
var ComplianceRules = []string{"data-residency", "kms-customer-managed", "kms-rotation", "s3-tls-only", "cloudfront-https-only"}

// NeedsComplianceApproval reports whether an exception to rule in stack
// takes effect only once a compliance officer approved it.
func NeedsComplianceApproval(rule, stack string) bool {
	return strings.HasPrefix(stack, "prod-") && slices.Contains(ComplianceRules, rule)
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
	} else if !slices.Contains(StackIDs(), n.Stack) && !slices.Contains(LayerIDs(), n.Stack) {
		v.Add("stack", fmt.Sprintf("%q is not one of the nine stacks (named like prod-eu) or an environment layer (prod-global)", n.Stack))
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
	// How far away the expiry is depends on when the request comes: a rule
	// of meaning, not of form.
	var rules apperr.Validation
	switch {
	case n.Expires.IsZero():
		v.Add("expires", "is required")
	case !n.Expires.After(now):
		rules.Add("expires", "must be in the future")
	case n.Expires.After(now.Add(MaxExceptionDays * 24 * time.Hour)):
		rules.Add("expires", fmt.Sprintf("must be at most %d days away", MaxExceptionDays))
	}
	return v.WithRules(rules)
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
				return Exception{}, &apperr.Error{Kind: apperr.Invalid, Unprocessable: true, Message: "resource: " + n.Stack + " has no resource " + n.Resource,
					Fields: map[string]string{"resource": fmt.Sprintf("%s has no resource %q in the latest version", n.Stack, n.Resource)}}
			}
		} else if apperr.KindOf(err) != apperr.NotFound {
			return Exception{}, err
		}
	}
	e := Exception{Exception: guardrails.Exception{RuleID: n.RuleID, Stack: n.Stack, Resource: n.Resource, Owner: n.Owner, Reason: n.Reason,
		Expires: n.Expires.UTC()}, CreatedBy: by.Actor, CreatedAt: now, NeedsApproval: NeedsComplianceApproval(n.RuleID, n.Stack)}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `INSERT INTO guardrail_exceptions (rule_id, stack, resource, owner, reason, expires_at, created_by, created_at, needs_approval)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, e.RuleID, e.Stack, e.Resource, e.Owner, e.Reason, store.Time(e.Expires), e.CreatedBy, store.Time(now), e.NeedsApproval).
			Scan(&e.ID); err != nil {
			return fmt.Errorf("versions: create exception: %w", err)
		}
		entry := by
		entry.Action = "guardrail.exception.create"
		entry.Target = exceptionTarget(e)
		entry.Details = map[string]any{"rule_id": e.RuleID, "stack": e.Stack, "resource": e.Resource, "owner": e.Owner,
			"reason": e.Reason, "expires": store.Time(e.Expires), "needs_compliance_approval": e.NeedsApproval}
		_, err := s.audit.Append(ctx, tx, entry)
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

const exceptionCols = `id, rule_id, stack, resource, owner, reason, expires_at, created_by, created_at, revoked_by, revoked_at, needs_approval, approved_by, approved_at`

func scanException(r scanner) (Exception, error) {
	var e Exception
	var exp, created, revoked, approved string
	if err := r.Scan(&e.ID, &e.RuleID, &e.Stack, &e.Resource, &e.Owner, &e.Reason, &exp, &e.CreatedBy, &created, &e.RevokedBy, &revoked,
		&e.NeedsApproval, &e.ApprovedBy, &approved); err != nil {
		return Exception{}, err
	}
	if approved != "" {
		e.ApprovedAt, _ = store.ParseTime(approved)
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
	// InForce keeps only those in force now: neither revoked nor
	// expired, and approved when they need it.
	InForce bool
	// Awaiting keeps only those waiting for a compliance officer's
	// approval.
	Awaiting bool
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
		where, args = append(where, "revoked_at = '' AND expires_at > ? AND (needs_approval = 0 OR approved_at != '')"), append(args, store.Time(s.now()))
	}
	if f.Awaiting {
		where, args = append(where, "revoked_at = '' AND expires_at > ? AND needs_approval = 1 AND approved_at = ''"), append(args, store.Time(s.now()))
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
// revoked and, when they need a compliance officer's approval, approved
// (expired ones included: guardrails ignores them).
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
		if e.RevokedAt.IsZero() && (!e.NeedsApproval || !e.ApprovedAt.IsZero()) {
			out = append(out, e.Exception)
		}
	}
	return out
}

// ApproveException records a compliance officer's approval of exception
// id, which then takes effect. who is the approver's audit label; roles the
// roles they hold. The author cannot approve their own exception, only
// compliance may, and only an exception that needs it and is neither
// revoked, expired nor already approved.
func (s *Service) ApproveException(ctx context.Context, by audit.Entry, roles []string, id int64) (Exception, error) {
	var e Exception
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if e, err = getException(ctx, tx, id); err != nil {
			return err
		}
		now := s.now()
		switch {
		case !slices.Contains(roles, "compliance"):
			return apperr.New(apperr.Forbidden, "only a compliance officer may approve an exception to %s in %s", e.RuleID, e.Stack)
		case !e.NeedsApproval:
			return apperr.New(apperr.Conflict, "exception %d needs no approval: it took effect when it was recorded", id)
		case !e.ApprovedAt.IsZero():
			return apperr.New(apperr.Conflict, "exception %d was already approved by %s", id, e.ApprovedBy)
		case e.State(now) != ExceptionAwaiting:
			return apperr.New(apperr.Conflict, "exception %d is %s and can no longer be approved", id, e.State(now))
		case sameActor(e.CreatedBy, by.Actor):
			return apperr.New(apperr.Forbidden, "you recorded exception %d: another compliance officer must approve it", id)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE guardrail_exceptions SET approved_by = ?, approved_at = ? WHERE id = ?`, by.Actor, store.Time(now), id); err != nil {
			return fmt.Errorf("versions: approve exception %d: %w", id, err)
		}
		e.ApprovedBy, e.ApprovedAt = by.Actor, now
		entry := by
		entry.Action = "guardrail.exception.approve"
		entry.Target = exceptionTarget(e)
		entry.Details = map[string]any{"rule_id": e.RuleID, "stack": e.Stack, "resource": e.Resource, "owner": e.Owner, "recorded_by": e.CreatedBy}
		_, err = s.audit.Append(ctx, tx, entry)
		return err
	})
	return e, err
}

// sameActor reports whether two audit actor labels name the same person:
// "user:3 alice@example.com" and "user:3 alice@example.com (token CI)"
// do.
func sameActor(a, b string) bool {
	id := func(s string) string {
		s, _, _ = strings.Cut(s, " ")
		return s
	}
	return id(a) == id(b)
}
