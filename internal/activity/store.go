package activity

import (
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"portal/internal/apperr"
	"portal/internal/store"
)

// Page sizes for Search.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Access values of Filter.Access.
const (
	AccessRead  = "read"
	AccessWrite = "write"
)

// AnyError as Filter.ErrorCode keeps every failed call.
const AnyError = "*"

// Filter selects events; every set field must match (AND). Zero fields do
// not filter.
type Filter struct {
	Since, Until time.Time // Since <= time < Until
	Account      string
	Region       string
	// User matches the principal ARN, user name, access key id or role
	// session name, exactly.
	User   string
	Source string // event source, e.g. iam.amazonaws.com
	Name   string // event name
	// Resource is matched as a substring of the ARNs and names the event
	// touched (so a bucket name finds its ARN).
	Resource  string
	SourceIP  string
	ErrorCode string // exact, or AnyError
	Access    string // AccessRead, AccessWrite or ""
	Sensitive bool
	// Text is matched case-insensitively (ASCII) anywhere in the raw record.
	Text string
	// Limit is Search's page size: DefaultLimit when <= 0, at most MaxLimit.
	Limit int
	// Before continues a search after the last event of the previous page.
	Before Cursor
}

// Cursor is a position in the newest-first order.
type Cursor struct {
	At  time.Time
	Seq int64
}

// IsZero reports whether c is the start.
func (c Cursor) IsZero() bool { return c.Seq == 0 }

// String encodes c for a URL.
func (c Cursor) String() string {
	if c.IsZero() {
		return ""
	}
	return strconv.FormatInt(c.At.UnixMilli(), 10) + "-" + strconv.FormatInt(c.Seq, 10)
}

// ParseCursor reads a cursor written by String.
func ParseCursor(s string) (Cursor, error) {
	a, b, ok := strings.Cut(s, "-")
	ms, err1 := strconv.ParseInt(a, 10, 64)
	seq, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil || seq <= 0 {
		return Cursor{}, apperr.New(apperr.Invalid, "is not a page position")
	}
	return Cursor{At: time.UnixMilli(ms).UTC(), Seq: seq}, nil
}

func (f Filter) where() (string, []any) {
	var where []string
	var args []any
	add := func(cond string, a ...any) { where, args = append(where, cond), append(args, a...) }
	if !f.Since.IsZero() {
		add("at >= ?", f.Since.UnixMilli())
	}
	if !f.Until.IsZero() {
		add("at < ?", f.Until.UnixMilli())
	}
	if f.Account != "" {
		add("account = ?", f.Account)
	}
	if f.Region != "" {
		add("region = ?", f.Region)
	}
	if f.User != "" {
		add("(user_name = ? OR principal_arn = ? OR access_key = ? OR session = ?)", f.User, f.User, f.User, f.User)
	}
	if f.Source != "" {
		add("source = ?", f.Source)
	}
	if f.Name != "" {
		add("name = ?", f.Name)
	}
	if f.Resource != "" {
		add("resources LIKE ? ESCAPE '\\'", "%"+escapeLike(f.Resource)+"%")
	}
	if f.SourceIP != "" {
		add("source_ip = ?", f.SourceIP)
	}
	switch f.ErrorCode {
	case "":
	case AnyError:
		add("error_code != ''")
	default:
		add("error_code = ?", f.ErrorCode)
	}
	switch f.Access {
	case AccessRead:
		add("read_only = 1")
	case AccessWrite:
		add("read_only = 0")
	}
	if f.Sensitive {
		add("sensitive != ''")
	}
	if f.Text != "" {
		add("raw LIKE ? ESCAPE '\\'", "%"+escapeLike(f.Text)+"%")
	}
	if !f.Before.IsZero() {
		ms := f.Before.At.UnixMilli()
		add("(at < ? OR (at = ? AND id < ?))", ms, ms, f.Before.Seq)
	}
	if len(where) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

func escapeLike(s string) string { return likeEscaper.Replace(s) }

const eventCols = `id, event_id, at, account, region, source, name, read_only, identity_type, principal_arn, user_name, access_key, session,
	source_ip, error_code, request_id, resources, sensitive, origin, sandbox, raw`

func scanEvent(s interface{ Scan(...any) error }) (Event, error) {
	var e Event
	var at int64
	var resources, raw string
	if err := s.Scan(&e.Seq, &e.ID, &at, &e.Account, &e.Region, &e.Source, &e.Name, &e.ReadOnly, &e.IdentityType, &e.PrincipalARN, &e.UserName,
		&e.AccessKey, &e.Session, &e.SourceIP, &e.ErrorCode, &e.RequestID, &resources, &e.Sensitive, &e.Origin, &e.Sandbox, &raw); err != nil {
		return e, err
	}
	e.Time = time.UnixMilli(at).UTC()
	if resources != "" {
		e.Resources = strings.Split(resources, "\n")
	}
	e.Raw = []byte(raw)
	return e, nil
}

// Insert stores events, skipping any whose event id is already stored, in
// one transaction. It returns the events that were new.
func (s *Service) Insert(ctx context.Context, events []Event) ([]Event, error) {
	var added []Event
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		added, err = insertTx(ctx, tx, events)
		return err
	})
	return added, err
}

// insertBatch is how many rows one INSERT statement carries: fewer
// statements make ingestion several times faster in SQLite.
const insertBatch = 100

func insertTx(ctx context.Context, tx *sql.Tx, events []Event) ([]Event, error) {
	var added []Event
	for len(events) > 0 {
		n := min(len(events), insertBatch)
		got, err := insertRows(ctx, tx, events[:n])
		if err != nil {
			return nil, err
		}
		added = append(added, got...)
		events = events[n:]
	}
	return added, nil
}

const insertRowSQL = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

// insertRows stores events in one statement and returns the new ones
// (RETURNING names the rows the conflict clause did not skip).
func insertRows(ctx context.Context, tx *sql.Tx, events []Event) ([]Event, error) {
	var q strings.Builder
	q.WriteString(`INSERT INTO activity_events (event_id, at, account, region, source, name, read_only, identity_type,
		principal_arn, user_name, access_key, session, source_ip, error_code, request_id, resources, sensitive, origin, sandbox, raw) VALUES `)
	args := make([]any, 0, len(events)*20)
	byID := make(map[string]int, len(events))
	for i, e := range events {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(insertRowSQL)
		byID[e.ID] = i
		args = append(args, e.ID, e.Time.UnixMilli(), e.Account, e.Region, e.Source, e.Name, e.ReadOnly, e.IdentityType,
			e.PrincipalARN, e.UserName, e.AccessKey, e.Session, e.SourceIP, e.ErrorCode, e.RequestID, strings.Join(e.Resources, "\n"),
			e.Sensitive, e.Origin, e.Sandbox, string(e.Raw))
	}
	q.WriteString(" ON CONFLICT (event_id) DO NOTHING RETURNING id, event_id")
	rows, err := tx.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("activity: insert events: %w", err)
	}
	defer rows.Close()
	var added []Event
	for rows.Next() {
		var seq int64
		var id string
		if err := rows.Scan(&seq, &id); err != nil {
			return nil, fmt.Errorf("activity: insert events: %w", err)
		}
		e := events[byID[id]]
		e.Seq = seq
		added = append(added, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("activity: insert events: %w", err)
	}
	sort.Slice(added, func(a, b int) bool { return added[a].Seq < added[b].Seq })
	return added, nil
}

// Search returns events matching f, newest first, and whether more follow.
func (s *Service) Search(ctx context.Context, f Filter) ([]Event, bool, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	if limit > MaxLimit {
		limit = MaxLimit
	}
	where, args := f.where()
	rows, err := s.db.QueryContext(ctx, `SELECT `+eventCols+` FROM activity_events`+where+` ORDER BY at DESC, id DESC LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return nil, false, fmt.Errorf("activity: search: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, false, fmt.Errorf("activity: search: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("activity: search: %w", err)
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}

// Count returns how many events match f (ignoring Limit and Before).
func (s *Service) Count(ctx context.Context, f Filter) (int, error) {
	f.Before = Cursor{}
	where, args := f.where()
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM activity_events`+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("activity: count: %w", err)
	}
	return n, nil
}

// Get returns the event with row number seq.
func (s *Service) Get(ctx context.Context, seq int64) (Event, error) {
	e, err := scanEvent(s.db.QueryRowContext(ctx, `SELECT `+eventCols+` FROM activity_events WHERE id = ?`, seq))
	if errors.Is(err, sql.ErrNoRows) {
		return e, apperr.Wrap(apperr.NotFound, store.ErrNotFound, "no event %d", seq)
	} else if err != nil {
		return e, fmt.Errorf("activity: get event %d: %w", seq, err)
	}
	return e, nil
}

// Related returns other events sharing e's request id, and events by the
// same identity on the same resources within an hour either side.
func (s *Service) Related(ctx context.Context, e Event, limit int) ([]Event, error) {
	var out []Event
	seen := map[int64]bool{e.Seq: true}
	collect := func(f Filter) error {
		f.Limit = limit
		evs, _, err := s.Search(ctx, f)
		if err != nil {
			return err
		}
		for _, x := range evs {
			if !seen[x.Seq] && len(out) < limit {
				seen[x.Seq] = true
				out = append(out, x)
			}
		}
		return nil
	}
	win := Filter{Since: e.Time.Add(-time.Hour), Until: e.Time.Add(time.Hour)}
	for _, r := range e.Resources {
		f := win
		f.Resource = r
		if err := collect(f); err != nil {
			return nil, err
		}
	}
	if e.UserName != "" {
		f := win
		f.User, f.Account = e.UserName, e.Account
		if err := collect(f); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Facets are the distinct values the explorer offers in its drop-downs.
type Facets struct {
	Accounts, Regions, Sources []string
	Total                      int
	Sandbox                    int
	Oldest, Newest             time.Time
}

// Facets returns the values seen so far.
func (s *Service) Facets(ctx context.Context) (Facets, error) {
	var f Facets
	for _, q := range []struct {
		col string
		dst *[]string
	}{{"account", &f.Accounts}, {"region", &f.Regions}, {"source", &f.Sources}} {
		// A skip-scan over the small set of distinct values would need an
		// index per column; these columns have few values and the scan
		// is bounded by a sample of recent events instead.
		rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT `+q.col+` FROM (SELECT `+q.col+` FROM activity_events ORDER BY at DESC LIMIT 20000) ORDER BY 1`)
		if err != nil {
			return f, fmt.Errorf("activity: facets: %w", err)
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return f, err
			}
			*q.dst = append(*q.dst, v)
		}
		rows.Close()
	}
	var oldest, newest sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(id), MIN(at), MAX(at) FROM activity_events`).Scan(new(sql.NullInt64), &oldest, &newest); err != nil {
		return f, fmt.Errorf("activity: facets: %w", err)
	}
	if oldest.Valid {
		f.Oldest, f.Newest = time.UnixMilli(oldest.Int64).UTC(), time.UnixMilli(newest.Int64).UTC()
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(sandbox), 0) FROM activity_events`).Scan(&f.Total, &f.Sandbox); err != nil {
			return f, fmt.Errorf("activity: facets: %w", err)
		}
	}
	return f, nil
}

// exportRows streams every event matching f (Limit and Before ignored),
// newest first, to fn.
func (s *Service) exportRows(ctx context.Context, f Filter, fn func(Event) error) error {
	f.Before = Cursor{}
	where, args := f.where()
	rows, err := s.db.QueryContext(ctx, `SELECT `+eventCols+` FROM activity_events`+where+` ORDER BY at DESC, id DESC`, args...)
	if err != nil {
		return fmt.Errorf("activity: export: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return fmt.Errorf("activity: export: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}

// CSVHeader is the first line of a CSV export.
var CSVHeader = []string{"event_time", "event_id", "account", "region", "event_source", "event_name", "read_only", "identity_type",
	"principal_arn", "user_name", "access_key_id", "session", "source_ip", "error_code", "request_id", "resources", "sensitive", "sandbox"}

// ExportCSV writes every event matching f as CSV, one row at a time, so a
// large export never sits in memory.
func (s *Service) ExportCSV(ctx context.Context, f Filter, w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	n := 0
	err := s.exportRows(ctx, f, func(e Event) error {
		n++
		if err := cw.Write([]string{e.Time.Format(time.RFC3339), e.ID, e.Account, e.Region, e.Source, e.Name, strconv.FormatBool(e.ReadOnly),
			e.IdentityType, e.PrincipalARN, e.UserName, e.AccessKey, e.Session, e.SourceIP, e.ErrorCode, e.RequestID,
			strings.Join(e.Resources, " "), e.Sensitive, strconv.FormatBool(e.Sandbox)}); err != nil {
			return err
		}
		if n%1000 == 0 {
			cw.Flush()
			return cw.Error()
		}
		return nil
	})
	if err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

// ExportJSONL writes the raw CloudTrail record of every event matching f,
// one per line.
func (s *Service) ExportJSONL(ctx context.Context, f Filter, w io.Writer) error {
	return s.exportRows(ctx, f, func(e Event) error {
		if _, err := w.Write(e.Raw); err != nil {
			return err
		}
		_, err := w.Write([]byte{'\n'})
		return err
	})
}
