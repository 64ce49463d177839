package billing

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/store"
)

// MaxNote bounds a reconciliation note, in characters.
const MaxNote = 2000

// PayoutNote is a note on a payout's reconciliation.
type PayoutNote struct {
	ID        int64
	PayoutID  string
	Note      string
	Author    string // audit label of who wrote it
	CreatedAt time.Time
}

// AddPayoutNote records note on payout payoutID by by (authorID its
// account), audited. The payout must have been synced.
func (s *Service) AddPayoutNote(ctx context.Context, by audit.Entry, authorID int64, payoutID, note string) (PayoutNote, error) {
	note = strings.TrimSpace(note)
	switch {
	case note == "":
		return PayoutNote{}, &apperr.Error{Kind: apperr.Invalid, Message: "note: write what you found out", Fields: map[string]string{"note": "is required: write what you found out"}}
	case utf8.RuneCountInString(note) > MaxNote:
		return PayoutNote{}, &apperr.Error{Kind: apperr.Invalid, Message: fmt.Sprintf("note: is longer than %d characters", MaxNote),
			Fields: map[string]string{"note": fmt.Sprintf("is longer than %d characters", MaxNote)}}
	}
	p, err := s.Payout(ctx, payoutID)
	if err != nil {
		return PayoutNote{}, err
	}
	n := PayoutNote{PayoutID: p.ID, Note: note, Author: by.Actor, CreatedAt: s.now().UTC()}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `INSERT INTO billing_payout_notes (payout_id, note, author_id, author, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id`,
			n.PayoutID, n.Note, authorID, n.Author, store.Time(n.CreatedAt)).Scan(&n.ID); err != nil {
			return err
		}
		e := by
		e.Action, e.Target = "billing.payout_note", "payout:"+p.ID
		e.Details = map[string]any{"note_id": n.ID, "state": p.State, "chars": utf8.RuneCountInString(note)}
		_, err := s.audit.Append(ctx, tx, e)
		return err
	})
	if err != nil {
		return PayoutNote{}, fmt.Errorf("billing: note on payout %s: %w", payoutID, err)
	}
	return n, nil
}

// PayoutNotes lists the notes on payout payoutID, oldest first.
func (s *Service) PayoutNotes(ctx context.Context, payoutID string) ([]PayoutNote, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, payout_id, note, author, created_at FROM billing_payout_notes WHERE payout_id = ? ORDER BY id`, payoutID)
	if err != nil {
		return nil, fmt.Errorf("billing: payout notes: %w", err)
	}
	defer rows.Close()
	var out []PayoutNote
	for rows.Next() {
		var n PayoutNote
		var at string
		if err := rows.Scan(&n.ID, &n.PayoutID, &n.Note, &n.Author, &at); err != nil {
			return nil, err
		}
		n.CreatedAt, _ = store.ParseTime(at)
		out = append(out, n)
	}
	return out, rows.Err()
}
