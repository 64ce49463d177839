package activity

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"portal/internal/store"
)

// On PostgreSQL (migrations/postgres 0501 and 0502) activity_events is
// partitioned by month and carries its own free-text index: words, a
// tsvector the portal builds (valueVector) under a GIN index. Events are
// written with COPY into a staging table and moved from there with one
// INSERT that skips stored event ids; a Text filter is a tsquery.

// maxLexeme is the longest word a tsvector holds (PostgreSQL refuses
// longer ones: 2047 bytes); longer words are left out of the index, and
// a Text filter may not hold one (maxTextWordLen).
const maxLexeme = 2047

// maxPosition is the largest word position a tsvector records; later
// words are all at this position (PostgreSQL's own limit, 16383), so a
// phrase is found exactly among a record's first 16383 words.
const maxPosition = 16383

// maxPositions is how many positions of one word a tsvector keeps (256).
const maxPositions = 256

// valueVector returns the words of raw's values (valueWords' words) as a
// tsvector literal: each word with its positions, the words of one value
// at consecutive positions and a gap between values, so that a phrase
// (<->) matches words side by side in one value only.
func valueVector(raw []byte) string {
	type entry struct {
		word []byte
		pos  []int
	}
	var entries []entry
	index := map[string]int{}
	pos := 0
	forEachValue(raw, func(text []byte) bool {
		forEachWord(text, func(w []byte) {
			pos++
			if len(w) > maxLexeme {
				return
			}
			w = lowerASCII(w)
			i, ok := index[string(w)]
			if !ok {
				i = len(entries)
				index[string(w)] = i
				entries = append(entries, entry{word: w})
			}
			p := min(pos, maxPosition)
			if e := &entries[i]; len(e.pos) < maxPositions && (len(e.pos) == 0 || e.pos[len(e.pos)-1] != p) {
				e.pos = append(e.pos, p)
			}
		})
		pos++ // the gap between two values
		return true
	})
	var b strings.Builder
	b.Grow(len(raw) / 2)
	for k, e := range entries {
		if k > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('\'')
		b.Write(e.word) // letters, digits and non-ASCII bytes: nothing to escape
		b.WriteString("':")
		for j, p := range e.pos {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(p))
		}
	}
	return pgText(b.String())
}

// tsquery is q as a PostgreSQL text query: its words side by side, in
// order (<->), the last one as a prefix (:*) when q.prefix.
func (q textQuery) tsquery() string {
	var b strings.Builder
	for i, w := range q.words {
		if i > 0 {
			b.WriteString(" <-> ")
		}
		b.WriteByte('\'')
		b.Write(w)
		b.WriteByte('\'')
		if q.prefix && i == len(q.words)-1 {
			b.WriteString(":*")
		}
	}
	return pgText(b.String())
}

// pgText makes s storable in a PostgreSQL text column, which holds valid
// UTF-8 without NUL characters: a CloudTrail record may have either (its
// JSON decoded), and SQLite keeps them as they are.
func pgText(s string) string {
	if !strings.ContainsRune(s, 0) && isValidUTF8(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

func isValidUTF8(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return strings.ToValidUTF8(s, "\uFFFD") == s
		}
	}
	return true
}

// monthStart returns the first Unix millisecond of the UTC month of ms.
func monthStart(ms int64) int64 {
	t := time.UnixMilli(ms).UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC).UnixMilli()
}

// missingMonths returns the months of events that have no partition yet
// (none on SQLite). It asks the database each time: another replica's
// retention may have dropped a month since.
func (s *Service) missingMonths(ctx context.Context, events []Event) ([]int64, error) {
	if s.db.Dialect() != store.Postgres {
		return nil, nil
	}
	var months []int64
	for _, e := range events {
		if m := monthStart(e.Time.UnixMilli()); !slices.Contains(months, m) {
			months = append(months, m)
		}
	}
	var out []int64
	for _, m := range months {
		var missing bool
		name := "activity_events_" + time.UnixMilli(m).UTC().Format("200601")
		if err := s.db.QueryRowContext(ctx, `SELECT to_regclass(?) IS NULL`, name).Scan(&missing); err != nil {
			return nil, fmt.Errorf("activity: partitions: %w", err)
		}
		if missing {
			out = append(out, m)
		}
	}
	return out, nil
}

// makePartitions makes sure each month has its partition, each in a
// transaction of its own (a new partition locks the whole table until
// its transaction ends). The caller holds no transaction on the table:
// the new partition would wait for it.
func (s *Service) makePartitions(ctx context.Context, months []int64) error {
	for _, m := range months {
		var name string
		if err := s.db.QueryRowContext(ctx, `SELECT activity_month_partition(?)`, m).Scan(&name); err != nil {
			return fmt.Errorf("activity: partition for %s: %w", time.UnixMilli(m).UTC().Format("2006-01"), err)
		}
	}
	return nil
}

// stagingCols are the columns COPY fills in the staging table, in order.
var stagingCols = []string{"ord", "event_id", "at", "account", "region", "source", "name", "read_only", "identity_type",
	"principal_arn", "user_name", "access_key", "session", "source_ip", "error_code", "request_id", "resources", "sensitive",
	"origin", "sandbox", "raw", "words"}

// pgInsert stores events on PostgreSQL in tx (begun on conn), skipping
// stored event ids, and returns the new ones in row order. vectors are the
// events' valueVector, or nil. Their months' partitions exist
// (makePartitions).
func pgInsert(ctx context.Context, conn *sql.Conn, tx *sql.Tx, events []Event, vectors []string) ([]Event, error) {
	if len(events) == 0 {
		return nil, nil
	}
	// The staging table lives as long as the connection; ON COMMIT DELETE
	// ROWS empties it with each transaction, TRUNCATE between batches.
	if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE IF NOT EXISTS activity_staging (ord INTEGER NOT NULL,
		event_id TEXT NOT NULL, at BIGINT NOT NULL, account TEXT NOT NULL, region TEXT NOT NULL, source TEXT NOT NULL, name TEXT NOT NULL,
		read_only BIGINT NOT NULL, identity_type TEXT NOT NULL, principal_arn TEXT NOT NULL, user_name TEXT NOT NULL, access_key TEXT NOT NULL,
		session TEXT NOT NULL, source_ip TEXT NOT NULL, error_code TEXT NOT NULL, request_id TEXT NOT NULL, resources TEXT NOT NULL,
		sensitive TEXT NOT NULL, origin TEXT NOT NULL, sandbox BIGINT NOT NULL, raw TEXT NOT NULL, words TEXT NOT NULL) ON COMMIT DELETE ROWS`); err != nil {
		return nil, fmt.Errorf("activity: insert events: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `TRUNCATE activity_staging`); err != nil {
		return nil, fmt.Errorf("activity: insert events: %w", err)
	}
	rows := make([][]any, len(events))
	flag := func(b bool) int64 {
		if b {
			return 1
		}
		return 0
	}
	for i, e := range events {
		var v string
		if vectors != nil {
			v = vectors[i]
		} else {
			v = valueVector(e.Raw)
		}
		rows[i] = []any{int32(i), pgText(e.ID), e.Time.UnixMilli(), pgText(e.Account), pgText(e.Region), pgText(e.Source), pgText(e.Name),
			flag(e.ReadOnly), pgText(e.IdentityType), pgText(e.PrincipalARN), pgText(e.UserName), pgText(e.AccessKey), pgText(e.Session),
			pgText(e.SourceIP), pgText(e.ErrorCode), pgText(e.RequestID), pgText(strings.Join(e.Resources, "\n")), pgText(e.Sensitive),
			pgText(e.Origin), flag(e.Sandbox), pgText(string(e.Raw)), v}
	}
	if _, err := store.CopyFrom(ctx, conn, "activity_staging", stagingCols, rows); err != nil {
		return nil, fmt.Errorf("activity: insert events: %w", err)
	}
	// Ids are drawn in staging order; ON CONFLICT skips an event id
	// already stored (or twice in the batch) at the same time.
	res, err := tx.QueryContext(ctx, `INSERT INTO activity_events (event_id, at, account, region, source, name, read_only, identity_type,
		principal_arn, user_name, access_key, session, source_ip, error_code, request_id, resources, sensitive, origin, sandbox, raw, words)
		SELECT event_id, at, account, region, source, name, read_only, identity_type, principal_arn, user_name, access_key, session,
			source_ip, error_code, request_id, resources, sensitive, origin, sandbox, raw, words::tsvector
		FROM activity_staging ORDER BY ord
		ON CONFLICT (event_id, at) DO NOTHING
		RETURNING id, event_id, at`)
	if err != nil {
		return nil, fmt.Errorf("activity: insert events: %w", err)
	}
	defer res.Close()
	type key struct {
		id string
		at int64
	}
	first := make(map[key]int, len(events))
	for i, e := range events {
		k := key{pgText(e.ID), e.Time.UnixMilli()}
		if _, dup := first[k]; !dup {
			first[k] = i
		}
	}
	var added []Event
	for res.Next() {
		var seq int64
		var k key
		if err := res.Scan(&seq, &k.id, &k.at); err != nil {
			return nil, fmt.Errorf("activity: insert events: %w", err)
		}
		i, ok := first[k]
		if !ok {
			return nil, fmt.Errorf("activity: insert events: stored event %s is not in the batch", k.id)
		}
		e := events[i]
		e.Seq = seq
		added = append(added, e)
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("activity: insert events: %w", err)
	}
	slices.SortFunc(added, func(a, b Event) int { return cmp.Compare(a.Seq, b.Seq) })
	return added, nil
}

// pgInsertTx stores events in a transaction of their own and runs then in
// it (insertTx on PostgreSQL).
func (s *Service) pgInsertTx(ctx context.Context, events []Event, then func(tx *sql.Tx) error) ([]Event, error) {
	months, err := s.missingMonths(ctx, events)
	if err != nil {
		return nil, err
	}
	if err := s.makePartitions(ctx, months); err != nil {
		return nil, err
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("activity: insert events: %w", err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("activity: insert events: %w", err)
	}
	added, err := pgInsert(ctx, conn, tx, events, nil)
	if err == nil && then != nil {
		err = then(tx)
	}
	if err != nil {
		_ = tx.Rollback()
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("activity: insert events: %w", err)
	}
	return added, nil
}

// wordsOf returns how the words of an event's record are kept for the
// free-text index: valueWords for SQLite's activity_text, valueVector for
// PostgreSQL's words column.
func (s *Service) wordsOf() func([]byte) string {
	if s.db.Dialect() == store.Postgres {
		return valueVector
	}
	return valueWords
}
