package access

import (
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"portal/internal/apperr"
	"portal/internal/csvcell"
	"portal/internal/store"
)

// Review is an access review campaign.
type Review struct {
	ID                     int64
	Title                  string
	OpenedBy               string
	OpenedAt               time.Time
	ClosedBy               string
	ClosedAt               time.Time
	Items, Decided, Revoke int
}

// Closed reports whether the review is finished.
func (r Review) Closed() bool { return !r.ClosedAt.IsZero() }

// ReviewItem is one grant under review.
type ReviewItem struct {
	ID, ReviewID, GrantID int64
	UserEmail             string
	PortalRoles           string
	Environment, Role     string
	Kind                  string
	GrantedAt, ExpiresAt  time.Time
	Principal             string
	// LastUsed is zero when no ingested CloudTrail event of the principal
	// in the environment's account is known.
	LastUsed  time.Time
	Decision  string
	DecidedBy string
	DecidedAt time.Time
	Note      string
}

// LastUsed returns when the Identity Center user principal last called AWS
// in env's account through role's permission set, from the ingested
// CloudTrail events; zero when none is known. Identity Center signs people
// in to the role AWSReservedSSO_<permission set>_<suffix> with their user
// name as the session name, which CloudTrail records.
func (s *Service) LastUsed(ctx context.Context, env, role, principal string) (time.Time, error) {
	t, ok := s.templates.Get(role)
	if !ok {
		return time.Time{}, fmt.Errorf("access: unknown staff role %q", role)
	}
	var ms sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT MAX(at) FROM activity_events WHERE account = ? AND session = ? AND principal_arn LIKE ?`,
		s.accounts[env], principal, "%:assumed-role/AWSReservedSSO_"+t.PermissionSetName(env)+"_%/"+principal).Scan(&ms)
	if err != nil {
		return time.Time{}, fmt.Errorf("access: last used: %w", err)
	}
	if !ms.Valid {
		return time.Time{}, nil
	}
	return time.UnixMilli(ms.Int64).UTC(), nil
}

// OpenReview starts a campaign listing every active grant.
func (s *Service) OpenReview(ctx context.Context, by Actor, title string) (int64, error) {
	title = strings.TrimSpace(title)
	if title == "" {
		title = "Access review " + s.now().Format("2006-01-02")
	}
	if len(title) > 120 {
		return 0, &apperr.Error{Kind: apperr.Invalid, Message: "title is too long", Fields: map[string]string{"title": "is longer than 120 characters"}}
	}
	grants, err := s.List(ctx, Filter{States: []string{Active}, Limit: 100000})
	if err != nil {
		return 0, err
	}
	type row struct {
		g     Grant
		roles string
		princ string
		last  string
	}
	var rows []row
	for _, g := range grants {
		u, err := s.staff.Get(ctx, g.UserID)
		if err != nil {
			return 0, err
		}
		p := UserName(u)
		last, err := s.LastUsed(ctx, g.Environment, g.Role, p)
		if err != nil {
			return 0, err
		}
		r := row{g: g, roles: rolesText(u.Roles), princ: p}
		if !last.IsZero() {
			r.last = store.Time(last)
		}
		rows = append(rows, r)
	}
	var id int64
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `INSERT INTO access_reviews (title, opened_by, opened_at) VALUES (?, ?, ?) RETURNING id`,
			title, by.Entry.Actor, store.Time(s.now())).Scan(&id); err != nil {
			return fmt.Errorf("access: open review: %w", err)
		}
		for _, r := range rows {
			exp := ""
			if !r.g.ExpiresAt.IsZero() {
				exp = store.Time(r.g.ExpiresAt)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO access_review_items (review_id, grant_id, user_email, portal_roles, environment, role, kind,
				granted_at, expires_at, principal, last_used) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				id, r.g.ID, r.g.UserEmail, r.roles, r.g.Environment, r.g.Role, r.g.Kind, store.Time(r.g.ActiveFrom), exp, r.princ, r.last); err != nil {
				return fmt.Errorf("access: review item: %w", err)
			}
		}
		return s.appendAudit(ctx, tx, by, "access.review.open", fmt.Sprintf("access-review:%d", id), map[string]any{"title": title, "grants": len(rows)})
	})
	return id, err
}

const reviewColumns = `r.id, r.title, r.opened_by, r.opened_at, r.closed_by, r.closed_at,
	(SELECT COUNT(*) FROM access_review_items i WHERE i.review_id = r.id),
	(SELECT COUNT(*) FROM access_review_items i WHERE i.review_id = r.id AND i.decision != ''),
	(SELECT COUNT(*) FROM access_review_items i WHERE i.review_id = r.id AND i.decision = 'revoke')`

func scanReview(sc interface{ Scan(...any) error }) (Review, error) {
	var r Review
	var opened, closed string
	err := sc.Scan(&r.ID, &r.Title, &r.OpenedBy, &opened, &r.ClosedBy, &closed, &r.Items, &r.Decided, &r.Revoke)
	r.OpenedAt, _ = store.ParseTime(opened)
	r.ClosedAt, _ = store.ParseTime(closed)
	return r, err
}

// Reviews lists campaigns, newest first.
func (s *Service) Reviews(ctx context.Context, beforeID int64, limit int) ([]Review, error) {
	if beforeID <= 0 {
		beforeID = 1 << 62
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+reviewColumns+` FROM access_reviews r WHERE r.id < ? ORDER BY r.id DESC LIMIT ?`, beforeID, limit)
	if err != nil {
		return nil, fmt.Errorf("access: reviews: %w", err)
	}
	defer rows.Close()
	var out []Review
	for rows.Next() {
		r, err := scanReview(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// GetReview returns campaign id and its items.
func (s *Service) GetReview(ctx context.Context, id int64) (Review, []ReviewItem, error) {
	r, err := scanReview(s.db.QueryRowContext(ctx, `SELECT `+reviewColumns+` FROM access_reviews r WHERE r.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Review{}, nil, apperr.Wrap(apperr.NotFound, store.ErrNotFound, "no access review %d", id)
	} else if err != nil {
		return Review{}, nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, review_id, grant_id, user_email, portal_roles, environment, role, kind, granted_at, expires_at,
		principal, last_used, decision, decided_by, decided_at, note FROM access_review_items WHERE review_id = ? ORDER BY user_email, environment, role, id`, id)
	if err != nil {
		return Review{}, nil, fmt.Errorf("access: review items: %w", err)
	}
	defer rows.Close()
	var items []ReviewItem
	for rows.Next() {
		var it ReviewItem
		var granted, exp, last, decided string
		if err := rows.Scan(&it.ID, &it.ReviewID, &it.GrantID, &it.UserEmail, &it.PortalRoles, &it.Environment, &it.Role, &it.Kind, &granted, &exp,
			&it.Principal, &last, &it.Decision, &it.DecidedBy, &decided, &it.Note); err != nil {
			return Review{}, nil, err
		}
		it.GrantedAt, _ = store.ParseTime(granted)
		it.ExpiresAt, _ = store.ParseTime(exp)
		it.LastUsed, _ = store.ParseTime(last)
		it.DecidedAt, _ = store.ParseTime(decided)
		items = append(items, it)
	}
	return r, items, rows.Err()
}

// DecideItem records keep or revoke for one item of an open review; revoke
// revokes the grant at once (if it is still active).
func (s *Service) DecideItem(ctx context.Context, by Actor, reviewID, itemID int64, decision, note string) error {
	if decision != "keep" && decision != "revoke" {
		return &apperr.Error{Kind: apperr.Invalid, Message: "choose keep or revoke", Fields: map[string]string{"decision": "choose keep or revoke"}}
	}
	r, items, err := s.GetReview(ctx, reviewID)
	if err != nil {
		return err
	}
	if r.Closed() {
		return apperr.New(apperr.Conflict, "review %d is closed", reviewID)
	}
	var it *ReviewItem
	for i := range items {
		if items[i].ID == itemID {
			it = &items[i]
		}
	}
	if it == nil {
		return apperr.New(apperr.NotFound, "no item %d in review %d", itemID, reviewID)
	}
	note = strings.TrimSpace(note)
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE access_review_items SET decision = ?, decided_by = ?, decided_at = ?, note = ? WHERE id = ?`,
			decision, by.Entry.Actor, store.Time(s.now()), note, itemID); err != nil {
			return fmt.Errorf("access: decide item: %w", err)
		}
		return s.appendAudit(ctx, tx, by, "access.review."+decision, fmt.Sprintf("access-review:%d access-grant:%d %s", reviewID, it.GrantID, it.UserEmail),
			map[string]any{"environment": it.Environment, "role": it.Role, "note": note})
	})
	if err != nil {
		return err
	}
	if decision == "revoke" {
		g, err := s.Get(ctx, it.GrantID)
		if err != nil {
			return err
		}
		if g.State == Active {
			_, err = s.Revoke(ctx, by, g.ID, fmt.Sprintf("access review %d", reviewID))
			return err
		}
	}
	return nil
}

// CloseReview finishes campaign id once every item is decided.
func (s *Service) CloseReview(ctx context.Context, by Actor, id int64) error {
	r, items, err := s.GetReview(ctx, id)
	if err != nil {
		return err
	}
	if r.Closed() {
		return apperr.New(apperr.Conflict, "review %d is closed already", id)
	}
	if r.Decided < r.Items {
		var undecided []string
		for _, it := range items {
			if it.Decision == "" {
				undecided = append(undecided, fmt.Sprintf("%s (%s in %s)", it.UserEmail, it.Role, it.Environment))
			}
		}
		return apperr.New(apperr.Conflict, "%d of %d grants still need a decision before the review can close: %s", len(undecided), r.Items, strings.Join(undecided, ", "))
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE access_reviews SET closed_by = ?, closed_at = ? WHERE id = ?`, by.Entry.Actor, store.Time(s.now()), id); err != nil {
			return fmt.Errorf("access: close review: %w", err)
		}
		return s.appendAudit(ctx, tx, by, "access.review.close", fmt.Sprintf("access-review:%d", id), map[string]any{"items": r.Items, "revoked": r.Revoke})
	})
}

// WriteReviewCSV writes review r's items as evidence: one row per grant,
// with last use ("unknown" when no CloudTrail event is ingested) and the
// decision.
func WriteReviewCSV(w io.Writer, r Review, items []ReviewItem) error {
	cw := csv.NewWriter(w)
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	_ = cw.Write([]string{"review", "review_title", "review_opened_at", "review_closed_at", "grant_id", "person", "portal_roles", "environment",
		"aws_role", "kind", "granted_at", "expires_at", "iam_principal", "last_used", "decision", "decided_by", "decided_at", "note"})
	for _, it := range items {
		last := ts(it.LastUsed)
		if last == "" {
			last = "unknown"
		}
		_ = cw.Write(csvcell.Row([]string{fmt.Sprint(r.ID), r.Title, ts(r.OpenedAt), ts(r.ClosedAt), fmt.Sprint(it.GrantID), it.UserEmail, it.PortalRoles,
			it.Environment, it.Role, it.Kind, ts(it.GrantedAt), ts(it.ExpiresAt), it.Principal, last, it.Decision, it.DecidedBy, ts(it.DecidedAt), it.Note}))
	}
	cw.Flush()
	return cw.Error()
}
