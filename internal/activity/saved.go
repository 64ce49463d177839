package activity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"portal/internal/apperr"
	"portal/internal/store"
)

// Pages whose searches can be saved.
const (
	PageExplorer  = "/activity"
	PageSensitive = "/activity/sensitive"
	PageAudit     = "/audit"
)

// Limits on saved searches.
const (
	MaxQueryName    = 80
	MaxQueryLength  = 4000
	MaxSavedPerUser = 100
)

// SavedQuery is a search kept under a name: Page?Query opens it.
type SavedQuery struct {
	ID        int64
	OwnerID   int64
	Owner     string // the owner's actor label, "user:3 alice@example.com"
	Page      string
	Name      string
	Query     string
	Shared    bool
	CreatedAt time.Time
}

// URL is where the search opens.
func (q SavedQuery) URL() string {
	if q.Query == "" {
		return q.Page
	}
	return q.Page + "?" + q.Query
}

// SavedQueries lists the searches of page that user may use: their own
// and those others shared, by name.
func (s *Service) SavedQueries(ctx context.Context, page string, userID int64) ([]SavedQuery, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, owner_id, owner, page, name, query, shared, created_at FROM saved_queries
		WHERE page = ? AND (owner_id = ? OR shared = 1) ORDER BY lower(name), name, id`, page, userID)
	if err != nil {
		return nil, fmt.Errorf("activity: saved searches: %w", err)
	}
	defer rows.Close()
	var out []SavedQuery
	for rows.Next() {
		var q SavedQuery
		var at string
		if err := rows.Scan(&q.ID, &q.OwnerID, &q.Owner, &q.Page, &q.Name, &q.Query, &q.Shared, &at); err != nil {
			return nil, err
		}
		q.CreatedAt, _ = store.ParseTime(at)
		out = append(out, q)
	}
	return out, rows.Err()
}

// SaveQuery keeps q (Page, Name, Query, Shared) for its owner (OwnerID,
// Owner), replacing the owner's search of that name on that page. The
// query string keeps only the page's filter: the page position is dropped.
func (s *Service) SaveQuery(ctx context.Context, q SavedQuery) (SavedQuery, error) {
	var v apperr.Validation
	q.Name = strings.TrimSpace(q.Name)
	switch {
	case q.Name == "":
		v.Add("name", "is required: name the search as you will look for it")
	case utf8.RuneCountInString(q.Name) > MaxQueryName:
		v.Add("name", fmt.Sprintf("is longer than %d characters", MaxQueryName))
	case !utf8.ValidString(q.Name) || strings.ContainsFunc(q.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		v.Add("name", "holds control characters")
	}
	if !slices.Contains([]string{PageExplorer, PageSensitive, PageAudit}, q.Page) {
		v.Add("page", fmt.Sprintf("searches of %q cannot be saved", q.Page))
	}
	vals, err := url.ParseQuery(q.Query)
	if err != nil {
		v.Add("query", "is not a query string")
	}
	vals.Del("before")
	if q.Page == PageSensitive {
		vals.Del("sensitive")
	}
	q.Query = vals.Encode()
	if len(q.Query) > MaxQueryLength {
		v.Add("query", fmt.Sprintf("is longer than %d characters", MaxQueryLength))
	}
	if err := v.Err(); err != nil {
		return q, err
	}
	q.CreatedAt = s.now().UTC()
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM saved_queries WHERE owner_id = ? AND NOT (page = ? AND name = ?)`, q.OwnerID, q.Page, q.Name).Scan(&n); err != nil {
			return err
		}
		if n >= MaxSavedPerUser {
			return apperr.New(apperr.Conflict, "you have %d saved searches, the most kept: delete one first", n)
		}
		return tx.QueryRowContext(ctx, `INSERT INTO saved_queries (owner_id, owner, page, name, query, shared, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (owner_id, page, name) DO UPDATE SET query = excluded.query, shared = excluded.shared, owner = excluded.owner, created_at = excluded.created_at
			RETURNING id`, q.OwnerID, q.Owner, q.Page, q.Name, q.Query, flag(q.Shared), store.Time(q.CreatedAt)).Scan(&q.ID)
	})
	if err != nil {
		if apperr.KindOf(err) != apperr.Internal {
			return q, err
		}
		return q, fmt.Errorf("activity: save search: %w", err)
	}
	return q, nil
}

// DeleteQuery deletes saved search id of userID. Only its owner may.
func (s *Service) DeleteQuery(ctx context.Context, userID, id int64) (SavedQuery, error) {
	var q SavedQuery
	var at string
	err := s.db.QueryRowContext(ctx, `SELECT id, owner_id, owner, page, name, query, shared, created_at FROM saved_queries WHERE id = ?`, id).
		Scan(&q.ID, &q.OwnerID, &q.Owner, &q.Page, &q.Name, &q.Query, &q.Shared, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return q, apperr.New(apperr.NotFound, "no saved search #%d", id)
	} else if err != nil {
		return q, fmt.Errorf("activity: saved search %d: %w", id, err)
	}
	if q.OwnerID != userID {
		if q.Shared {
			return q, apperr.New(apperr.Forbidden, "%q is shared by someone else: only they can delete it", q.Name)
		}
		return q, apperr.New(apperr.NotFound, "no saved search #%d", id)
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM saved_queries WHERE id = ?`, id); err != nil {
		return q, fmt.Errorf("activity: delete saved search %d: %w", id, err)
	}
	return q, nil
}

// flag is b as the 0 or 1 the flag columns hold on both databases.
func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}
