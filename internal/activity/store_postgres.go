package activity

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

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
// tsvector: each word with its positions, the words of one value at
// consecutive positions and a gap between values, so that a phrase (<->)
// matches words side by side in one value only. It is in PostgreSQL's
// binary form, lexemes sorted as the server keeps them, so that COPY
// hands it over as it is: the server neither parses nor sorts it.
func valueVector(raw []byte) vector {
	vb := vectorBuilders.Get().(*vectorBuilder)
	defer vectorBuilders.Put(vb)
	return vb.build(raw)
}

// vectorBuilder holds what valueVector needs for one record, kept from
// record to record (vectorBuilders) so that building a record's vector
// allocates little more than its new words and the result.
type vectorBuilder struct {
	index   map[string]int32 // word -> entries index
	entries []vectorEntry
	occ     []vectorOcc // each kept position, in record order
	order   []int32     // entries, sorted by word
	at      []int32     // where each entry's positions go in pos
	pos     []uint16
	buf     []byte
}

type vectorEntry struct {
	word string
	n    int32  // positions kept
	last uint16 // the last one
}

type vectorOcc struct {
	entry int32
	pos   uint16
}

var vectorBuilders = sync.Pool{New: func() any { return &vectorBuilder{index: map[string]int32{}} }}

func (vb *vectorBuilder) build(raw []byte) vector {
	clear(vb.index)
	vb.entries, vb.occ = vb.entries[:0], vb.occ[:0]
	size := 4
	pos := 0
	forEachValue(raw, func(text []byte) bool {
		forEachWord(text, func(w []byte) {
			pos++
			if len(w) > maxLexeme {
				return
			}
			buf := vb.buf[:0]
			ascii := true
			for _, c := range w {
				if c >= 'A' && c <= 'Z' {
					c += 'a' - 'A'
				}
				ascii = ascii && c < 0x80
				buf = append(buf, c)
			}
			vb.buf = buf
			i, ok := vb.index[string(buf)]
			var word string
			if !ok && !ascii {
				// Words hold letters, digits and non-ASCII bytes: only
				// the latter may need pgText (invalid UTF-8 replaced),
				// which may make two words one lexeme.
				word = pgText(string(buf))
				if len(word) > maxLexeme {
					return
				}
				i, ok = vb.index[word]
			}
			if !ok {
				if word == "" {
					word = string(buf)
				}
				i = int32(len(vb.entries))
				vb.index[word] = i
				vb.entries = append(vb.entries, vectorEntry{word: word})
				size += len(word) + 3
			}
			p := uint16(min(pos, maxPosition))
			if e := &vb.entries[i]; e.n < maxPositions && (e.n == 0 || e.last != p) {
				e.n++
				e.last = p
				vb.occ = append(vb.occ, vectorOcc{i, p})
				size += 2
			}
		})
		pos++ // the gap between two values
		return true
	})
	// Sorted as the server keeps lexemes; each entry's positions laid out
	// in that order, each in the order it came (ascending).
	vb.order = vb.order[:0]
	for i := range vb.entries {
		vb.order = append(vb.order, int32(i))
	}
	slices.SortFunc(vb.order, func(a, b int32) int { return strings.Compare(vb.entries[a].word, vb.entries[b].word) })
	vb.at = slices.Grow(vb.at[:0], len(vb.entries))[:len(vb.entries)]
	next := int32(0)
	for _, i := range vb.order {
		vb.at[i] = next
		next += vb.entries[i].n
	}
	vb.pos = slices.Grow(vb.pos[:0], len(vb.occ))[:len(vb.occ)]
	for _, o := range vb.occ {
		vb.pos[vb.at[o.entry]] = o.pos
		vb.at[o.entry]++
	}
	out := make(vector, 0, size)
	out = binary.BigEndian.AppendUint32(out, uint32(len(vb.entries)))
	k := 0
	for _, i := range vb.order {
		e := vb.entries[i]
		out = append(out, e.word...)
		out = append(out, 0)
		out = binary.BigEndian.AppendUint16(out, uint16(e.n))
		for _, p := range vb.pos[k : k+int(e.n)] {
			out = binary.BigEndian.AppendUint16(out, p) // weight D: 0
		}
		k += int(e.n)
	}
	return out
}

// vector is a tsvector in PostgreSQL's binary form (valueVector). It goes
// into COPY through vectorCodec, which the writer's connection registers
// for tsvector.
type vector []byte

// vectorCodec is pgx's tsvector codec that also sends a vector as it is.
type vectorCodec struct{ pgtype.TSVectorCodec }

func (c vectorCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.(vector); ok && format == pgtype.BinaryFormatCode {
		return vectorPlan{}
	}
	return c.TSVectorCodec.PlanEncode(m, oid, format, value)
}

type vectorPlan struct{}

func (vectorPlan) Encode(value any, buf []byte) ([]byte, error) {
	return append(buf, value.(vector)...), nil
}

// copyEvents writes rows into table's columns with COPY on conn, whose
// type map learns vectorCodec first.
func copyEvents(ctx context.Context, conn *sql.Conn, table string, columns []string, rows [][]any) error {
	return store.WithPgx(conn, func(c *pgx.Conn) error {
		m := c.TypeMap()
		if t, ok := m.TypeForOID(pgtype.TSVectorOID); !ok || t.Codec != (vectorCodec{}) {
			m.RegisterType(&pgtype.Type{Name: "tsvector", OID: pgtype.TSVectorOID, Codec: vectorCodec{}})
		}
		_, err := c.CopyFrom(ctx, pgx.Identifier{table}, columns, pgx.CopyFromRows(rows))
		return err
	})
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

// eventCopyCols are the columns COPY fills in activity_events, in order;
// stagingCols those of the staging table.
var (
	eventCopyCols = []string{"id", "event_id", "at", "account", "region", "source", "name", "read_only", "identity_type",
		"principal_arn", "user_name", "access_key", "session", "source_ip", "error_code", "request_id", "resources", "sensitive",
		"origin", "sandbox", "raw", "words"}
	stagingCols = append([]string{"ord"}, eventCopyCols[1:]...)
)

// pgInsert stores events on PostgreSQL in tx (begun on conn), skipping
// stored event ids, and returns the new ones in row order. vectors are the
// events' valueVector, or nil. Their months' partitions exist
// (makePartitions).
//
// Events are new but for a re-read batch (after a crash) or a lookup's
// overlap, so they are copied straight into activity_events with ids
// drawn beforehand, under a savepoint; when one is already stored (a
// unique violation), the savepoint is rolled back and the batch goes the
// careful way: COPY into a staging table, then one INSERT that skips
// stored event ids.
func pgInsert(ctx context.Context, conn *sql.Conn, tx *sql.Tx, events []Event, vectors []any) ([]Event, error) {
	if len(events) == 0 {
		return nil, nil
	}
	type key struct {
		id string
		at int64
	}
	// The first of each event id and time in the batch (CloudTrail may
	// deliver an event twice).
	first := make(map[key]int, len(events))
	rows := make([][]any, 0, len(events))
	flag := func(b bool) int64 {
		if b {
			return 1
		}
		return 0
	}
	for i, e := range events {
		k := key{pgText(e.ID), e.Time.UnixMilli()}
		if _, dup := first[k]; dup {
			continue
		}
		first[k] = i
		var v any
		if vectors != nil {
			v = vectors[i]
		} else {
			v = valueVector(e.Raw)
		}
		rows = append(rows, []any{int64(0), k.id, k.at, pgText(e.Account), pgText(e.Region), pgText(e.Source), pgText(e.Name),
			flag(e.ReadOnly), pgText(e.IdentityType), pgText(e.PrincipalARN), pgText(e.UserName), pgText(e.AccessKey), pgText(e.Session),
			pgText(e.SourceIP), pgText(e.ErrorCode), pgText(e.RequestID), pgText(strings.Join(e.Resources, "\n")), pgText(e.Sensitive),
			pgText(e.Origin), flag(e.Sandbox), pgText(string(e.Raw)), v})
	}
	fail := func(err error) ([]Event, error) { return nil, fmt.Errorf("activity: insert events: %w", err) }

	// Ids in row order, drawn from the table's sequence in one query.
	ids, err := tx.QueryContext(ctx, `SELECT nextval('activity_events_id_seq') FROM generate_series(1, ?)`, len(rows))
	if err != nil {
		return fail(err)
	}
	seqs := make([]int64, 0, len(rows))
	for ids.Next() {
		var id int64
		if err := ids.Scan(&id); err != nil {
			ids.Close()
			return fail(err)
		}
		seqs = append(seqs, id)
	}
	ids.Close()
	if err := ids.Err(); err != nil {
		return fail(err)
	}
	slices.Sort(seqs)
	for i := range rows {
		rows[i][0] = seqs[i]
	}
	if _, err := tx.ExecContext(ctx, `SAVEPOINT activity_copy`); err != nil {
		return fail(err)
	}
	if err := copyEvents(ctx, conn, "activity_events", eventCopyCols, rows); err == nil {
		if _, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT activity_copy`); err != nil {
			return fail(err)
		}
		added := make([]Event, len(rows))
		for i, r := range rows {
			added[i] = events[first[key{r[1].(string), r[2].(int64)}]]
			added[i].Seq = seqs[i]
		}
		return added, nil
	} else if !store.IsUniqueViolation(err) {
		return fail(err)
	}
	if _, err := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT activity_copy`); err != nil {
		return fail(err)
	}

	// The staging table lives as long as the connection; ON COMMIT DELETE
	// ROWS empties it with each transaction, TRUNCATE between batches.
	if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE IF NOT EXISTS activity_staging (ord INTEGER NOT NULL,
		event_id TEXT NOT NULL, at BIGINT NOT NULL, account TEXT NOT NULL, region TEXT NOT NULL, source TEXT NOT NULL, name TEXT NOT NULL,
		read_only BIGINT NOT NULL, identity_type TEXT NOT NULL, principal_arn TEXT NOT NULL, user_name TEXT NOT NULL, access_key TEXT NOT NULL,
		session TEXT NOT NULL, source_ip TEXT NOT NULL, error_code TEXT NOT NULL, request_id TEXT NOT NULL, resources TEXT NOT NULL,
		sensitive TEXT NOT NULL, origin TEXT NOT NULL, sandbox BIGINT NOT NULL, raw TEXT NOT NULL, words TSVECTOR NOT NULL) ON COMMIT DELETE ROWS`); err != nil {
		return fail(err)
	}
	if _, err := tx.ExecContext(ctx, `TRUNCATE activity_staging`); err != nil {
		return fail(err)
	}
	for i := range rows {
		rows[i][0] = int32(i)
	}
	if err := copyEvents(ctx, conn, "activity_staging", stagingCols, rows); err != nil {
		return fail(err)
	}
	// Ids are drawn in staging order; ON CONFLICT skips an event id
	// already stored at the same time.
	res, err := tx.QueryContext(ctx, `INSERT INTO activity_events (event_id, at, account, region, source, name, read_only, identity_type,
		principal_arn, user_name, access_key, session, source_ip, error_code, request_id, resources, sensitive, origin, sandbox, raw, words)
		SELECT event_id, at, account, region, source, name, read_only, identity_type, principal_arn, user_name, access_key, session,
			source_ip, error_code, request_id, resources, sensitive, origin, sandbox, raw, words
		FROM activity_staging ORDER BY ord
		ON CONFLICT (event_id, at) DO NOTHING
		RETURNING id, event_id, at`)
	if err != nil {
		return fail(err)
	}
	defer res.Close()
	var added []Event
	for res.Next() {
		var seq int64
		var k key
		if err := res.Scan(&seq, &k.id, &k.at); err != nil {
			return fail(err)
		}
		i, ok := first[k]
		if !ok {
			return fail(fmt.Errorf("stored event %s is not in the batch", k.id))
		}
		e := events[i]
		e.Seq = seq
		added = append(added, e)
	}
	if err := res.Err(); err != nil {
		return fail(err)
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

// planned makes a search's arguments ask PostgreSQL to plan the query with
// its values each time (an unnamed statement), as SQLite does. A cached
// prepared statement gets a generic plan after five runs, made without
// the values: it cannot see which months the period holds nor how rare
// the words of a tsquery are, and for a request id it read every event
// of the month in time order (hundreds of milliseconds) where the indexes
// of words, event and request ids find it in one.
func (s *Service) planned(args []any) []any {
	if s.db.Dialect() != store.Postgres {
		return args
	}
	return append([]any{pgx.QueryExecModeExec}, args...)
}

// wordsOf returns how the words of an event's record are kept for the
// free-text index: valueWords (a string) for SQLite's activity_text,
// valueVector (a pgtype.TSVector) for PostgreSQL's words column.
func (s *Service) wordsOf() func([]byte) any {
	if s.db.Dialect() == store.Postgres {
		return func(raw []byte) any { return valueVector(raw) }
	}
	return func(raw []byte) any { return valueWords(raw) }
}
