package activity

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"

	"portal/internal/accounts"
	"portal/internal/apperr"
	"portal/internal/csvcell"
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
	// MadeBy keeps the events of people (MadeByPeople: the portal's own
	// deployer role session hidden) or only the portal's own (MadeByPortal);
	// "" keeps both.
	MadeBy string
	// Hide leaves out the events matching any of its values: HideUsers as
	// User matches (so a role session name hides that session),
	// HideSources and HideNames exactly.
	HideUsers, HideSources, HideNames []string
	// Text finds events with a value holding the words of Text next to
	// each other, in order (ignoring A-Z case, and what separates them),
	// the last word also as the start of a longer one when it has at
	// least 3 characters; or whose event or request id it is. See
	// valueWords for what counts as a word and a value.
	Text string
	// Limit is Search's page size: DefaultLimit when <= 0, at most MaxLimit.
	Limit int
	// Before continues a search after the last event of the previous page.
	Before Cursor
}

// Values of Filter.MadeBy.
const (
	MadeByPeople = "people"
	MadeByPortal = "portal"
)

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

// textPlan is how a query finds the events matching Filter.Text.
type textPlan int

const (
	// textNone: no Text.
	textNone textPlan = iota
	// textRows: few events match; the index lists them and each is
	// looked up by row id.
	textRows
	// textSet: the index lists the matching row ids once, and each row
	// the query's own index order meets is checked against the list.
	textSet
	// textScan: so many events match that listing them all would cost
	// more than reading each row the query meets and checking its words
	// (activity_has_words).
	textScan
	// textVector: PostgreSQL's GIN index of words answers the tsquery
	// of the words (its planner picks how to use it).
	textVector
)

func (f Filter) where(plan textPlan) (string, []any) {
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
		// != '' lets the planner use the index of failures.
		add("error_code = ? AND error_code != ''", f.ErrorCode)
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
	switch f.MadeBy {
	case MadeByPortal:
		add("identity_type = 'AssumedRole' AND session = ?", accounts.SessionName)
	case MadeByPeople:
		add("NOT (identity_type = 'AssumedRole' AND session = ?)", accounts.SessionName)
	}
	if len(f.HideUsers) > 0 {
		in := placeholders(len(f.HideUsers))
		var a []any
		for range 4 {
			for _, u := range f.HideUsers {
				a = append(a, u)
			}
		}
		add("NOT (user_name IN ("+in+") OR principal_arn IN ("+in+") OR access_key IN ("+in+") OR session IN ("+in+"))", a...)
	}
	if len(f.HideSources) > 0 {
		add("source NOT IN ("+placeholders(len(f.HideSources))+")", anys(f.HideSources)...)
	}
	if len(f.HideNames) > 0 {
		add("name NOT IN ("+placeholders(len(f.HideNames))+")", anys(f.HideNames)...)
	}
	if !f.Before.IsZero() {
		ms := f.Before.At.UnixMilli()
		add("(at < ? OR (at = ? AND id < ?))", ms, ms, f.Before.Seq)
	}
	// Last: the other conditions spare rows this (dearer) test.
	if f.Text != "" {
		q, _ := parseText(f.Text) // checked by Service.plan
		match, complete := q.match(f.valueWords())
		var conds []string
		if plan == textVector {
			match, complete = q.tsquery(), true
			conds = append(conds, "words @@ ?::tsquery")
			args = append(args, match)
		}
		switch plan {
		case textRows:
			conds = append(conds, "id IN (SELECT rowid FROM activity_text WHERE activity_text MATCH ?)")
			args = append(args, match)
		case textSet:
			// + keeps id from being used as an index: the list is a check.
			conds = append(conds, "+id IN (SELECT rowid FROM activity_text WHERE activity_text MATCH ?)")
			args = append(args, match)
		}
		if plan == textScan || !complete {
			conds = append(conds, "activity_has_words(raw, ?) = 1")
			args = append(args, q.String())
		}
		cond := strings.Join(conds, " AND ")
		if q.id != "" {
			cond = "((" + cond + ") OR event_id = ? OR (request_id = ? AND request_id != ''))"
			args = append(args, q.id, q.id)
		}
		where = append(where, cond)
	}
	if len(where) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

// textQuery is a Text filter, read.
type textQuery struct {
	words [][]byte // folded to lower case
	// prefix: the last word may also start a longer one (the text ends in
	// it, and it has at least 3 characters: shorter prefixes would match
	// too many words to be worth it).
	prefix bool
	id     string // the text, trimmed, if it could be an event or request id
}

// maxTextWords bounds a Text filter.
const maxTextWords = 32

func parseText(text string) (textQuery, error) {
	var q textQuery
	forEachWord([]byte(text), func(w []byte) { q.words = append(q.words, lowerASCII(w)) })
	switch {
	case len(q.words) == 0:
		return q, apperr.New(apperr.Invalid, "needs at least one letter or digit")
	case len(q.words) > maxTextWords:
		return q, apperr.New(apperr.Invalid, "has more than %d words", maxTextWords)
	case slices.ContainsFunc(q.words, func(w []byte) bool { return len(w) > maxLexeme }):
		return q, apperr.New(apperr.Invalid, "has a word longer than %d characters", maxLexeme)
	}
	q.prefix = len(q.words[len(q.words)-1]) >= 3 && isWordByte(text[len(text)-1])
	if id := strings.TrimSpace(text); isID(id) {
		q.id = id
	}
	return q, nil
}

// match is the FTS5 query listing the candidates: every word, each a
// quoted string (words hold no quote: only letters, digits and non-ASCII
// bytes), found anywhere in the event, and the words of the filter's
// other values (also). A last word that may be a prefix is left out
// unless it is the only word: FTS5 answers a prefix by merging the lists
// of every word it starts, which costs little only when no other word
// has narrowed the candidates. complete says the index's answer needs no
// check by activity_has_words (one whole word; several must also be next
// to each other in one value).
func (q textQuery) match(also [][]byte) (match string, complete bool) {
	words := q.words
	if q.prefix && len(words) > 1 {
		words = words[:len(words)-1]
	}
	words = append(slices.Clip(words), also...)
	var b strings.Builder
	for i, w := range words {
		if slices.ContainsFunc(words[:i], func(x []byte) bool { return bytes.Equal(x, w) }) {
			continue
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('"')
		b.Write(w)
		b.WriteByte('"')
		if q.prefix && len(q.words) == 1 && i == 0 {
			b.WriteByte('*')
		}
	}
	return b.String(), len(q.words) == 1
}

// valueWords are the words of f's values that must be among an event's
// value words for it to match: an account, region, event source and
// name, source IP and error code are each a value of the record, so the
// text index narrows by them too.
func (f Filter) valueWords() [][]byte {
	var out [][]byte
	for _, v := range []string{f.Account, f.Region, f.Source, f.Name, f.SourceIP, f.ErrorCode} {
		if v != AnyError {
			forEachWord([]byte(v), func(w []byte) { out = append(out, lowerASCII(w)) })
		}
	}
	return out
}

// String is the words, space separated, the last followed by * when it
// is a prefix: activity_has_words' second argument.
func (q textQuery) String() string {
	s := string(bytes.Join(q.words, []byte(" ")))
	if q.prefix {
		s += "*"
	}
	return s
}

func init() {
	// activity_has_words(raw, words) is 1 when a value of the record raw
	// has the words (a textQuery.String) as typed: hasPhrase. Functions
	// are registered with the driver, for every connection it opens.
	sqlite.MustRegisterFunction("activity_has_words", &sqlite.FunctionImpl{NArgs: 2, Deterministic: true, VolatileArgs: true,
		Scalar: func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
			raw, _ := args[0].(string)
			words, _ := args[1].(string)
			prefix := strings.HasSuffix(words, "*")
			want := bytes.Fields([]byte(strings.TrimSuffix(words, "*")))
			if hasPhrase([]byte(raw), want, prefix) {
				return int64(1), nil
			}
			return int64(0), nil
		}})
}

// CheckText says why text cannot be a Text filter, or nil.
func CheckText(text string) error {
	_, err := parseText(text)
	return err
}

// isID reports whether s could be an event or request id: one token of
// letters, digits and dashes, at least 8 long (ids are usually UUIDs).
func isID(s string) bool {
	if len(s) < 8 || len(s) > 128 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
			return false
		}
	}
	return true
}

// A Text filter's plan follows from how many events its words match,
// counted up to textScanFrom: up to textRowsMax, textRows; from
// textScanFrom or 1/textScanShare of all events, textScan; else textSet.
var (
	textRowsMax   = 10000
	textScanFrom  = 20000
	textScanShare = 20
)

// textSample is how many of the newest events a lone prefix is tried on
// before its matches are counted in the index: FTS5 answers a prefix by
// merging the lists of every word it starts, which takes long exactly
// when they hold many events, and reading rows is then the cheaper plan.
const textSample = 1000

// plan checks f's Text and picks how to find its matches, by counting
// the index's candidates (up to textScanFrom).
func (s *Service) plan(ctx context.Context, f Filter) (textPlan, error) {
	if f.Text == "" {
		return textNone, nil
	}
	q, err := parseText(f.Text)
	if err != nil {
		return textNone, apperr.New(apperr.Invalid, "Text %q %s", f.Text, apperr.MessageOf(err))
	}
	if s.db.Dialect() == store.Postgres {
		return textVector, nil
	}
	if q.prefix && len(q.words) == 1 {
		var k int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT raw FROM activity_events ORDER BY id DESC LIMIT ?)
			WHERE activity_has_words(raw, ?)`, textSample, q.String()).Scan(&k); err != nil {
			return textNone, fmt.Errorf("activity: search %q: %w", f.Text, err)
		}
		if k*textScanShare >= textSample {
			return textScan, nil
		}
	}
	match, _ := q.match(f.valueWords())
	var n, total int
	if err := s.db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM activity_text WHERE activity_text MATCH ? LIMIT ?)),
		(SELECT COALESCE(MAX(id), 0) FROM activity_events)`, match, textScanFrom).Scan(&n, &total); err != nil {
		return textNone, fmt.Errorf("activity: search %q: %w", f.Text, err)
	}
	switch {
	case n <= textRowsMax:
		return textRows, nil
	case n >= textScanFrom || n >= total/textScanShare:
		return textScan, nil
	}
	return textSet, nil
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
	return s.insertTx(ctx, events, nil)
}

// insertTx stores events as Insert does, and runs then (when not nil) in
// the same transaction.
func (s *Service) insertTx(ctx context.Context, events []Event, then func(tx *sql.Tx) error) ([]Event, error) {
	if s.db.Dialect() == store.Postgres {
		return s.pgInsertTx(ctx, events, then)
	}
	var added []Event
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		in, err := newInserter(ctx, tx)
		if err != nil {
			return err
		}
		defer in.close()
		if added, err = in.insert(ctx, events, nil); err != nil || then == nil {
			return err
		}
		return then(tx)
	})
	return added, err
}

// insertBatch is how many rows one INSERT statement carries: fewer
// statements make ingestion several times faster in SQLite.
const insertBatch = 100

const insertCols = 20

// inserter stores events in one transaction: a multi-row INSERT for the
// events and a single-row INSERT into the free-text index for each new
// one. A statement that opens a savepoint makes FTS5 write its pending
// terms out as a new segment (thousands of tiny segments to merge): a
// multi-row insert into the FTS5 table does, so does a trigger, and so
// would an explicit row id or an abortable constraint in the events'
// insert; hence OR IGNORE and row ids worked out rather than given. One
// row at a time, FTS5 collects about a megabyte of terms before writing.
type inserter struct {
	tx   *sql.Tx
	rows *sql.Stmt // insertSQL(insertBatch), prepared on first use
	text *sql.Stmt
	// next is the row id SQLite gives the next event: one more than the
	// largest (the transaction holds the write lock, and retention deletes
	// only in transactions of its own), so the ids of new rows are known
	// without RETURNING.
	next int64
	args []any
}

func newInserter(ctx context.Context, tx *sql.Tx) (*inserter, error) {
	in := &inserter{tx: tx}
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) + 1 FROM activity_events`).Scan(&in.next); err != nil {
		return nil, fmt.Errorf("activity: insert events: %w", err)
	}
	var err error
	if in.text, err = tx.PrepareContext(ctx, `INSERT INTO activity_text (rowid, words) VALUES (?, ?)`); err != nil {
		return nil, fmt.Errorf("activity: insert events: %w", err)
	}
	return in, nil
}

func (in *inserter) close() {
	if in.rows != nil {
		in.rows.Close()
	}
	in.text.Close()
}

// insert stores events, skipping stored event ids, and returns the new
// ones in row order. words are the events' valueWords (strings), or nil.
func (in *inserter) insert(ctx context.Context, events []Event, words []any) ([]Event, error) {
	added := make([]Event, 0, len(events))
	for len(events) > 0 {
		n := min(len(events), insertBatch)
		var w []any
		if words != nil {
			w, words = words[:n], words[n:]
		}
		var err error
		if added, err = in.insertRows(ctx, events[:n], w, added); err != nil {
			return nil, err
		}
		events = events[n:]
	}
	return added, nil
}

// insertSQL is an INSERT of n rows that skips stored event ids (OR
// IGNORE rather than an upsert clause: it also spares the statement a
// savepoint, see inserter).
func insertSQL(n int) string {
	var q strings.Builder
	q.WriteString(`INSERT OR IGNORE INTO activity_events (event_id, at, account, region, source, name, read_only, identity_type,
		principal_arn, user_name, access_key, session, source_ip, error_code, request_id, resources, sensitive, origin, sandbox, raw) VALUES `)
	for i := range n {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
	}
	return q.String()
}

// insertRows stores up to insertBatch events in one statement, indexes
// the new ones' words, and appends them to added.
func (in *inserter) insertRows(ctx context.Context, events []Event, words []any, added []Event) ([]Event, error) {
	n := len(events)
	stmt := in.rows
	if n != insertBatch || stmt == nil {
		var err error
		if stmt, err = in.tx.PrepareContext(ctx, insertSQL(n)); err != nil {
			return nil, fmt.Errorf("activity: insert events: %w", err)
		}
		if n == insertBatch {
			in.rows = stmt
		} else {
			defer stmt.Close()
		}
	}
	first := in.next
	args := in.args[:0]
	for _, e := range events {
		args = append(args, e.ID, e.Time.UnixMilli(), e.Account, e.Region, e.Source, e.Name, e.ReadOnly, e.IdentityType,
			e.PrincipalARN, e.UserName, e.AccessKey, e.Session, e.SourceIP, e.ErrorCode, e.RequestID, strings.Join(e.Resources, "\n"),
			e.Sensitive, e.Origin, e.Sandbox, string(e.Raw))
	}
	in.args = args
	res, err := stmt.ExecContext(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("activity: insert events: %w", err)
	}
	stored, err := res.RowsAffected()
	if err != nil {
		return nil, fmt.Errorf("activity: insert events: %w", err)
	}
	in.next += stored
	from := len(added)
	pos := make([]int, 0, n) // of each new row in events
	switch {
	case stored == int64(n):
		for i := range events {
			pos = append(pos, i)
		}
	case stored > 0: // some were stored before: find which rows are new
		byID := make(map[string]int, n)
		for i, e := range events {
			if _, dup := byID[e.ID]; !dup {
				byID[e.ID] = i
			}
		}
		rows, err := in.tx.QueryContext(ctx, `SELECT event_id FROM activity_events WHERE id >= ? ORDER BY id`, first)
		if err != nil {
			return nil, fmt.Errorf("activity: insert events: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("activity: insert events: %w", err)
			}
			pos = append(pos, byID[id])
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("activity: insert events: %w", err)
		}
		if int64(len(pos)) != stored {
			return nil, fmt.Errorf("activity: insert events: stored %d, found %d", stored, len(pos))
		}
	}
	for k, i := range pos {
		e := events[i]
		e.Seq = first + int64(k)
		added = append(added, e)
	}
	for k, e := range added[from:] {
		var w string
		if words != nil {
			w = words[pos[k]].(string)
		} else {
			w = valueWords(e.Raw)
		}
		if _, err := in.text.ExecContext(ctx, e.Seq, w); err != nil {
			return nil, fmt.Errorf("activity: index event %s: %w", e.ID, err)
		}
	}
	return added, nil
}

// writer stores ingested events on one connection whose page cache holds
// a whole ingestion batch, so index pages many events touch are written
// once per transaction rather than spilled again and again. Checkpoints
// (copying the WAL into the database) run on another connection after
// each commit, off the writer's path.
type writer struct {
	conn  *sql.Conn
	cache int64 // the connection's cache_size before
	auto  int64 // and its wal_autocheckpoint
	s     *Service
	tx    *sql.Tx // open until commit
	in    *inserter

	checkpoint chan struct{}
	done       chan struct{}
	pg         bool // PostgreSQL: no page cache or checkpoints to tune
}

// writerCacheKB is the writer's page cache: about what a batch of
// ingestTxEvents dirties.
const writerCacheKB = 128 << 10

func (s *Service) newWriter(ctx context.Context) (*writer, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("activity: writer: %w", err)
	}
	w := &writer{conn: conn, s: s, checkpoint: make(chan struct{}, 1), done: make(chan struct{})}
	if s.db.Dialect() == store.Postgres {
		w.pg = true
		close(w.done)
		return w, nil
	}
	err = conn.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&w.cache)
	if err == nil {
		err = conn.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&w.auto)
	}
	if err == nil {
		_, err = conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA cache_size = -%d`, writerCacheKB))
	}
	if err == nil {
		_, err = conn.ExecContext(ctx, `PRAGMA wal_autocheckpoint = 0`)
	}
	if err != nil {
		w.restore()
		return nil, fmt.Errorf("activity: writer: %w", err)
	}
	go w.checkpoints()
	return w, nil
}

// checkpoints runs a passive checkpoint (which never blocks the writer)
// after each commit until the writer closes.
func (w *writer) checkpoints() {
	defer close(w.done)
	for range w.checkpoint {
		if _, err := w.s.db.ExecContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
			w.s.log.Warn("activity: checkpoint", "err", err)
		}
	}
}

// insert stores events in the writer's open transaction (beginning one
// if needed) and returns the new ones.
func (w *writer) insert(ctx context.Context, events []Event, words []any) ([]Event, error) {
	if w.tx == nil {
		tx, err := w.conn.BeginTx(ctx, nil)
		if err != nil {
			return nil, fmt.Errorf("activity: begin: %w", err)
		}
		if !w.pg {
			in, err := newInserter(ctx, tx)
			if err != nil {
				_ = tx.Rollback()
				return nil, err
			}
			w.in = in
		}
		w.tx = tx
	}
	var added []Event
	var err error
	if w.pg {
		added, err = pgInsert(ctx, w.conn, w.tx, events, words)
	} else {
		added, err = w.in.insert(ctx, events, words)
	}
	if err != nil {
		w.rollback()
	}
	return added, err
}

// commit moves source's checkpoint to pos and commits everything
// inserted since the last commit with it.
func (w *writer) commit(ctx context.Context, source, pos string) error {
	if w.tx == nil {
		return nil
	}
	tx := w.tx
	if w.in != nil {
		w.in.close()
	}
	w.tx, w.in = nil, nil
	if err := w.s.saveCheckpoint(ctx, tx, source, pos); err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("activity: checkpoint %s: %w", source, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("activity: commit: %w", err)
	}
	if w.pg {
		return nil
	}
	select {
	case w.checkpoint <- struct{}{}:
	default: // one is pending
	}
	return nil
}

func (w *writer) rollback() {
	if w.tx != nil {
		if w.in != nil {
			w.in.close()
		}
		_ = w.tx.Rollback()
		w.tx, w.in = nil, nil
	}
}

// close gives the connection back to the pool with its own settings
// (which frees the large cache), after the last checkpoint.
func (w *writer) close() {
	w.rollback()
	if !w.pg {
		close(w.checkpoint)
	}
	<-w.done
	w.restore()
}

func (w *writer) restore() {
	ctx := context.Background()
	if w.pg {
		w.conn.Close()
		return
	}
	if w.cache != 0 {
		_, _ = w.conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA cache_size = %d`, w.cache))
	}
	if w.auto != 0 {
		_, _ = w.conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA wal_autocheckpoint = %d`, w.auto))
	}
	w.conn.Close()
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
	plan, err := s.plan(ctx, f)
	if err != nil {
		return nil, false, err
	}
	where, args := f.where(plan)
	rows, err := s.db.QueryContext(ctx, `SELECT `+eventCols+` FROM activity_events`+where+` ORDER BY at DESC, id DESC LIMIT ?`, s.planned(append(args, limit+1))...)
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
	plan, err := s.plan(ctx, f)
	if err != nil {
		return 0, err
	}
	if plan == textScan {
		plan = textSet // every match is counted anyway
	}
	where, args := f.where(plan)
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM activity_events`+where, s.planned(args)...).Scan(&n); err != nil {
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

// facetsSample is how many of the newest events the drop-downs' values
// are read from: a skip-scan over the few distinct values would need an
// index per column.
const facetsSample = 20000

// facetCache keeps the last Facets with the newest row id they saw:
// events are added, and removed only by retention (which resets its own
// replica's cache), so while MAX(id) (one index probe) is the same they
// are still true; a page view then costs no scan, and an ingestion that
// adds events makes the next view recompute.
type facetCache struct {
	mu    sync.Mutex // held while computing, so concurrent views wait for one
	ok    bool
	maxID int64
	val   Facets
}

// Facets returns the values seen so far.
func (s *Service) Facets(ctx context.Context) (Facets, error) {
	var maxID int64
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM activity_events`).Scan(&maxID); err != nil {
		return Facets{}, fmt.Errorf("activity: facets: %w", err)
	}
	c := &s.facets
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ok && c.maxID == maxID {
		return c.val.clone(), nil
	}
	f, err := s.facetsOf(ctx)
	if err != nil {
		return f, err
	}
	c.ok, c.maxID, c.val = true, maxID, f
	return f.clone(), nil
}

func (f Facets) clone() Facets {
	f.Accounts, f.Regions, f.Sources = slices.Clone(f.Accounts), slices.Clone(f.Regions), slices.Clone(f.Sources)
	return f
}

func (s *Service) facetsOf(ctx context.Context) (Facets, error) {
	var f Facets
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT account, region, source FROM
		(SELECT account, region, source FROM activity_events ORDER BY at DESC LIMIT ?)`, facetsSample)
	if err != nil {
		return f, fmt.Errorf("activity: facets: %w", err)
	}
	accounts, regions, sources := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for rows.Next() {
		var account, region, source string
		if err := rows.Scan(&account, &region, &source); err != nil {
			rows.Close()
			return f, fmt.Errorf("activity: facets: %w", err)
		}
		accounts[account], regions[region], sources[source] = true, true, true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return f, fmt.Errorf("activity: facets: %w", err)
	}
	f.Accounts, f.Regions, f.Sources = sortedKeys(accounts), sortedKeys(regions), sortedKeys(sources)
	// Each its own query: MIN and MAX are one index probe each only alone.
	var oldest, newest sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT (SELECT MIN(at) FROM activity_events), (SELECT MAX(at) FROM activity_events),
		(SELECT COUNT(*) FROM activity_events), (SELECT COUNT(*) FROM activity_events WHERE sandbox = 1)`).
		Scan(&oldest, &newest, &f.Total, &f.Sandbox); err != nil {
		return f, fmt.Errorf("activity: facets: %w", err)
	}
	if oldest.Valid {
		f.Oldest, f.Newest = time.UnixMilli(oldest.Int64).UTC(), time.UnixMilli(newest.Int64).UTC()
	}
	return f, nil
}

// exportRows streams every event matching f (Limit and Before ignored),
// newest first, to fn.
func (s *Service) exportRows(ctx context.Context, f Filter, fn func(Event) error) error {
	f.Before = Cursor{}
	plan, err := s.plan(ctx, f)
	if err != nil {
		return err
	}
	where, args := f.where(plan)
	rows, err := s.db.QueryContext(ctx, `SELECT `+eventCols+` FROM activity_events`+where+` ORDER BY at DESC, id DESC`, s.planned(args)...)
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
		// Every field but the time and the flags comes from CloudTrail,
		// that is from whoever made the call: neutralise formulas.
		if err := cw.Write(csvcell.Row([]string{e.Time.Format(time.RFC3339), e.ID, e.Account, e.Region, e.Source, e.Name, strconv.FormatBool(e.ReadOnly),
			e.IdentityType, e.PrincipalARN, e.UserName, e.AccessKey, e.Session, e.SourceIP, e.ErrorCode, e.RequestID,
			strings.Join(e.Resources, " "), e.Sensitive, strconv.FormatBool(e.Sandbox)})); err != nil {
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

// MaxHidden bounds the values of each of Filter's Hide lists.
const MaxHidden = 20

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
