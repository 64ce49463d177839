package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"portal/internal/store"
)

// Anchor is the head of the chain at one moment, kept outside the portal:
// record Seq had hash Hash (sealed with key KeyID) when it was anchored.
type Anchor struct {
	Seq        int64     `json:"seq"`
	Hash       string    `json:"hash"`
	KeyID      string    `json:"key_id"`
	RecordAt   time.Time `json:"record_at"`
	AnchoredAt time.Time `json:"anchored_at"`
	// RetainUntil is when the store may let the anchor be deleted.
	RetainUntil time.Time `json:"retain_until"`
	// Location is where the anchor lives (an s3:// URL), set when read.
	Location string `json:"-"`
}

// AnchorStore keeps anchors where nobody who can write the portal's
// database can change or delete them: an S3 bucket with Object Lock in
// compliance mode (S3Anchors).
type AnchorStore interface {
	// Put stores a, retained until a.RetainUntil.
	Put(ctx context.Context, a Anchor) (location string, err error)
	// List returns every anchor, oldest record first.
	List(ctx context.Context) ([]Anchor, error)
	// Check says why the store cannot keep anchors safely (no Object Lock,
	// not in compliance mode, unreachable), or nil.
	Check(ctx context.Context) error
	// Describe names the store for people, e.g. "s3://bucket/prefix".
	Describe() string
}

// AnchorRecord is an anchor this portal sent, as remembered in the
// database (the store is the record; this is for the pages).
type AnchorRecord struct {
	Seq         int64
	Hash        string
	Location    string
	AnchoredAt  time.Time
	RetainUntil time.Time
}

// Anchor writes the current head to st, retained for retention, unless it
// was anchored already (anchored is then false) and force is false. An
// empty log is not anchored.
func (l *Log) Anchor(ctx context.Context, st AnchorStore, retention time.Duration, force bool) (a Anchor, anchored bool, err error) {
	var head row
	err = head.scanFrom(l.db.QueryRowContext(ctx, `SELECT `+rowColumns+` FROM audit_log ORDER BY seq DESC LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return Anchor{}, false, nil
	} else if err != nil {
		return Anchor{}, false, fmt.Errorf("audit: anchor: %w", err)
	}
	last, err := l.LastAnchor(ctx)
	if err != nil {
		return Anchor{}, false, err
	}
	if !force && last.Seq == head.seq && last.Hash == head.hash {
		return Anchor{}, false, nil
	}
	at, err := store.ParseTime(head.at)
	if err != nil {
		return Anchor{}, false, fmt.Errorf("audit: anchor: record %d: %w", head.seq, err)
	}
	now := l.now().UTC()
	a = Anchor{Seq: head.seq, Hash: head.hash, KeyID: head.keyID, RecordAt: at, AnchoredAt: now, RetainUntil: now.Add(retention)}
	loc, err := st.Put(ctx, a)
	if err != nil {
		return Anchor{}, false, fmt.Errorf("audit: anchor record %d to %s: %w", a.Seq, st.Describe(), err)
	}
	a.Location = loc
	if _, err := l.db.ExecContext(ctx, `INSERT INTO audit_anchors (seq, hash, location, anchored_at, retain_until) VALUES (?, ?, ?, ?, ?)`,
		a.Seq, a.Hash, loc, store.Time(a.AnchoredAt), store.Time(a.RetainUntil)); err != nil {
		return a, true, fmt.Errorf("audit: anchor: remember %s: %w", loc, err)
	}
	return a, true, nil
}

// LastAnchor returns the newest anchor this portal sent (zero when none).
func (l *Log) LastAnchor(ctx context.Context) (AnchorRecord, error) {
	var r AnchorRecord
	var at, until string
	err := l.db.QueryRowContext(ctx, `SELECT seq, hash, location, anchored_at, retain_until FROM audit_anchors ORDER BY id DESC LIMIT 1`).
		Scan(&r.Seq, &r.Hash, &r.Location, &at, &until)
	if errors.Is(err, sql.ErrNoRows) {
		return AnchorRecord{}, nil
	} else if err != nil {
		return AnchorRecord{}, fmt.Errorf("audit: last anchor: %w", err)
	}
	r.AnchoredAt, _ = store.ParseTime(at)
	r.RetainUntil, _ = store.ParseTime(until)
	return r, nil
}
