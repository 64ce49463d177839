package audit

import (
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"portal/internal/apperr"
	"portal/internal/store"
)

// Page sizes for List.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Filter selects records. Zero fields do not filter.
type Filter struct {
	Actor  string    // exact match
	Action string    // exact match
	Target string    // exact match
	Since  time.Time // at >= Since
	Until  time.Time // at < Until
	// Query is free text matched, case-insensitively for ASCII, as a
	// substring of actor, action, target or the details JSON.
	Query string
	// Limit is List's page size: DefaultLimit when <= 0, at most MaxLimit.
	// ExportCSV ignores it.
	Limit int
	// BeforeSeq, when > 0, keeps records with seq < BeforeSeq: pass the
	// last Seq of one page to get the next (List is newest first).
	BeforeSeq int64
}

func (f Filter) where() (string, []any) {
	var where []string
	var args []any
	if f.Actor != "" {
		where = append(where, "actor = ?")
		args = append(args, f.Actor)
	}
	if f.Action != "" {
		where = append(where, "action = ?")
		args = append(args, f.Action)
	}
	if f.Target != "" {
		where = append(where, "target = ?")
		args = append(args, f.Target)
	}
	if !f.Since.IsZero() {
		where = append(where, "at >= ?")
		args = append(args, formatAt(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, "at < ?")
		args = append(args, formatAt(f.Until))
	}
	if q := strings.TrimSpace(f.Query); q != "" {
		like := "%" + escapeLike(q) + "%"
		where = append(where, `(actor LIKE ? ESCAPE '\' OR action LIKE ? ESCAPE '\' OR target LIKE ? ESCAPE '\' OR details LIKE ? ESCAPE '\')`)
		args = append(args, like, like, like, like)
	}
	if f.BeforeSeq > 0 {
		where = append(where, "seq < ?")
		args = append(args, f.BeforeSeq)
	}
	if len(where) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

func escapeLike(s string) string { return likeEscaper.Replace(s) }

// List returns one page of the records matching f, newest first, and
// whether older matching records remain (fetch them with
// BeforeSeq = the last record's Seq).
func (l *Log) List(ctx context.Context, f Filter) (records []Record, hasMore bool, err error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	where, args := f.where()
	rows, err := l.db.QueryContext(ctx,
		`SELECT `+rowColumns+` FROM audit_log`+where+` ORDER BY seq DESC LIMIT ?`,
		append(args, limit+1)...)
	if err != nil {
		return nil, false, fmt.Errorf("audit: list: %w", err)
	}
	defer rows.Close()
	records = make([]Record, 0, limit)
	for rows.Next() {
		if len(records) == limit {
			hasMore = true
			break
		}
		var r row
		if err := r.scanFrom(rows); err != nil {
			return nil, false, fmt.Errorf("audit: list: %w", err)
		}
		rec, err := r.record()
		if err != nil {
			return nil, false, err
		}
		records = append(records, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("audit: list: %w", err)
	}
	return records, hasMore, nil
}

// Count returns how many records match f (its Limit and BeforeSeq aside).
func (l *Log) Count(ctx context.Context, f Filter) (int, error) {
	f.BeforeSeq = 0
	where, args := f.where()
	var n int
	if err := l.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_log`+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("audit: count: %w", err)
	}
	return n, nil
}

// Get returns the record with the given seq, or an apperr.NotFound error
// wrapping store.ErrNotFound.
func (l *Log) Get(ctx context.Context, seq int64) (Record, error) {
	var r row
	err := r.scanFrom(l.db.QueryRowContext(ctx, `SELECT `+rowColumns+` FROM audit_log WHERE seq = ?`, seq))
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, apperr.Wrap(apperr.NotFound, store.ErrNotFound, "audit record %d not found", seq)
	}
	if err != nil {
		return Record{}, fmt.Errorf("audit: get %d: %w", seq, err)
	}
	return r.record()
}

// Actions returns the distinct actions recorded so far, sorted, for a
// filter drop-down. It is empty, not nil, when the log is.
func (l *Log) Actions(ctx context.Context) ([]string, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT DISTINCT action FROM audit_log ORDER BY action`)
	if err != nil {
		return nil, fmt.Errorf("audit: actions: %w", err)
	}
	defer rows.Close()
	actions := []string{}
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, fmt.Errorf("audit: actions: %w", err)
		}
		actions = append(actions, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: actions: %w", err)
	}
	return actions, nil
}

// csvHeader is the header row ExportCSV writes: the audit_log columns
// (key_id last, where it was added, so earlier columns keep their place).
var csvHeader = []string{"seq", "at", "actor", "action", "target", "source_ip", "request_id", "details", "prev_hash", "hash", "key_id"}

// ExportCSV streams every record matching f (ignoring Limit) to w as CSV
// with a header row, oldest first, one row at a time. Cells are the stored
// column values, verbatim, so an auditor can re-derive each hash from the
// file (with the audit key for keyed records; see the package doc). Because they are verbatim, a cell may begin with "=", "+", "-" or
// "@": open the file in a spreadsheet as text, not formulas. If writing
// fails part-way, w holds a truncated export and the error says so.
func (l *Log) ExportCSV(ctx context.Context, f Filter, w io.Writer) error {
	where, args := f.where()
	rows, err := l.db.QueryContext(ctx, `SELECT `+rowColumns+` FROM audit_log`+where+` ORDER BY seq ASC`, args...)
	if err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	defer rows.Close()
	cw := csv.NewWriter(w) // buffered: flushes as its buffer fills
	if err := cw.Write(csvHeader); err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	rec := make([]string, len(csvHeader))
	for rows.Next() {
		var r row
		if err := r.scanFrom(rows); err != nil {
			return fmt.Errorf("audit: export: %w", err)
		}
		rec[0] = strconv.FormatInt(r.seq, 10)
		rec[1], rec[2], rec[3], rec[4] = r.at, r.actor, r.action, r.target
		rec[5], rec[6], rec[7] = r.sourceIP, r.requestID, r.details
		rec[8], rec[9], rec[10] = r.prevHash, r.hash, r.keyID
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("audit: export record %d: %w", r.seq, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	return nil
}
