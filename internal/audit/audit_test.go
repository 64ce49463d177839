package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"portal/internal/apperr"
	"portal/internal/peers/peertest"
	"portal/internal/store"
)

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// clock returns t0, t0+step, t0+2*step, ... and is safe for concurrent use.
type clock struct {
	mu   sync.Mutex
	next time.Time
	step time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.next
	c.next = c.next.Add(c.step)
	return t
}

func openTestDB(tb testing.TB) (*store.DB, string) {
	tb.Helper()
	path := peertest.StoreDSNForTest(tb)
	db, err := store.Open(context.Background(), path)
	if err != nil {
		tb.Fatalf("store.Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db, path
}

func newTestLog(tb testing.TB) (*Log, *store.DB, string) {
	tb.Helper()
	db, path := openTestDB(tb)
	c := &clock{next: t0, step: time.Second}
	return New(db, c.now), db, path
}

// seed records n entries: actor alternates alice/bob, action cycles through
// three verbs, target names the index.
func seed(tb testing.TB, l *Log, n int) []Record {
	tb.Helper()
	actors := []string{"user:3 alice@example.com", "user:5 bob@example.com"}
	actions := []string{"auth.sign_in", "staff.create", "blueprint.save"}
	var recs []Record
	for i := range n {
		rec, err := l.Record(context.Background(), Entry{
			Actor:     actors[i%len(actors)],
			Action:    actions[i%len(actions)],
			Target:    fmt.Sprintf("thing:%d", i+1),
			SourceIP:  "192.0.2.1",
			RequestID: fmt.Sprintf("req-%d", i+1),
			Details:   map[string]any{"i": i + 1, "note": fmt.Sprintf("entry %d", i+1)},
		})
		if err != nil {
			tb.Fatalf("Record %d: %v", i+1, err)
		}
		recs = append(recs, rec)
	}
	return recs
}

func seqs(recs []Record) []int64 {
	out := make([]int64, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Seq)
	}
	return out
}

func mustVerify(t *testing.T, l *Log) Verification {
	t.Helper()
	v, err := l.Verify(context.Background())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return v
}

func TestAppendAndVerify(t *testing.T) {
	l, _, _ := newTestLog(t)
	ctx := context.Background()

	v := mustVerify(t, l)
	if want := (Verification{OK: true, HeadHash: GenesisHash}); v != want {
		t.Errorf("empty log: got %+v, want %+v", v, want)
	}

	recs := seed(t, l, 5)
	prev := GenesisHash
	for i, r := range recs {
		if got, want := r.Seq, int64(i+1); got != want {
			t.Errorf("record %d: got seq %d, want %d", i, got, want)
		}
		if got, want := r.At, t0.Add(time.Duration(i)*time.Second); !got.Equal(want) {
			t.Errorf("record %d: got at %v, want %v", i, got, want)
		}
		if r.PrevHash != prev {
			t.Errorf("record %d: got prev hash %s, want %s", r.Seq, r.PrevHash, prev)
		}
		prev = r.Hash
	}

	got, err := l.Get(ctx, 3)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if diff := cmp.Diff(recs[2], got); diff != "" {
		t.Errorf("Get(3) differs from what Record returned (-want +got):\n%s", diff)
	}

	v = mustVerify(t, l)
	want := Verification{OK: true, Checked: 5, HeadSeq: 5, HeadHash: recs[4].Hash, KeyID: "ephemeral"}
	if v != want {
		t.Errorf("got %+v, want %+v", v, want)
	}
}

// TestHashMatchesPackageDoc re-derives a seal from the recipe in the
// package doc, independently of computeHash, so the doc stays true: the
// keyed HMAC of version 2, and the unkeyed SHA-256 of version 1.
func TestHashMatchesPackageDoc(t *testing.T) {
	e := Entry{
		Actor:   "user:3 alice@example.com",
		Action:  "staff.create",
		Target:  "user:5 bob@example.com",
		Details: map[string]any{"z": 1, "a": map[string]any{"y": "<b>", "b": true}},
	}
	ns := func(s string) string { return fmt.Sprintf("%d:%s,", len(s), s) }
	details := `{"a":{"b":true,"y":"<b>"},"z":1}`
	fields := ns("1") + ns("2024-05-01T12:00:00.000000000Z") + ns("user:3 alice@example.com") + ns("staff.create") +
		ns("user:5 bob@example.com") + ns("") + ns("") + ns(details)

	t.Run("keyed", func(t *testing.T) {
		l, _, _ := newTestLog(t)
		rec, err := l.Record(context.Background(), e)
		if err != nil {
			t.Fatal(err)
		}
		key := l.Keys().Current()
		m := hmac.New(sha256.New, key.Secret)
		m.Write([]byte("portal-audit-v2\n" + fields + ns(key.ID) + ns(strings.Repeat("0", 64))))
		if got, want := rec.Hash, hex.EncodeToString(m.Sum(nil)); got != want || rec.KeyID != key.ID {
			t.Errorf("got hash %s key %q, want %s key %q", got, rec.KeyID, want, key.ID)
		}
	})
	t.Run("unkeyed", func(t *testing.T) {
		l, _, _ := newTestLog(t)
		l.ring = nil // a trail from before keying
		rec, err := l.Record(context.Background(), e)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte("portal-audit-v1\n" + fields + ns(strings.Repeat("0", 64))))
		if got, want := rec.Hash, hex.EncodeToString(sum[:]); got != want || rec.KeyID != "" {
			t.Errorf("got hash %s key %q, want %s and no key", got, rec.KeyID, want)
		}
	})
}

func TestVerifyDetectsTampering(t *testing.T) {
	tests := []struct {
		name       string
		tamper     []string
		wantBroken int64
		wantReason string
	}{
		{
			name:       "details edited",
			tamper:     []string{`UPDATE audit_log SET details = '{"i":3,"note":"nothing to see"}' WHERE seq = 3`},
			wantBroken: 3,
			wantReason: "record 3: hash does not match its contents (changed?)",
		},
		{
			name:       "actor edited",
			tamper:     []string{`UPDATE audit_log SET actor = 'system' WHERE seq = 5`},
			wantBroken: 5,
			wantReason: "record 5: hash does not match its contents (changed?)",
		},
		{
			name:       "middle record deleted",
			tamper:     []string{`DELETE FROM audit_log WHERE seq = 3`},
			wantBroken: 4,
			wantReason: "record 4: previous-hash does not match record 2 (record 3 deleted?)",
		},
		{
			name:       "two records deleted",
			tamper:     []string{`DELETE FROM audit_log WHERE seq IN (2, 3)`},
			wantBroken: 4,
			wantReason: "record 4: previous-hash does not match record 1 (records 2 to 3 deleted?)",
		},
		{
			name:       "first record deleted",
			tamper:     []string{`DELETE FROM audit_log WHERE seq = 1`},
			wantBroken: 2,
			wantReason: "record 2: previous-hash does not match the genesis value (record 1 deleted?)",
		},
		{
			name: "record edited and re-hashed",
			tamper: []string{
				`UPDATE audit_log SET details = '{}' WHERE seq = 3`,
				`UPDATE audit_log SET hash = '` + strings.Repeat("a", 64) + `' WHERE seq = 3`,
			},
			wantBroken: 3,
			wantReason: "record 3: hash does not match its contents (changed?)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, db, _ := newTestLog(t)
			seed(t, l, 6)
			for _, q := range tt.tamper {
				if _, err := db.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			v := mustVerify(t, l)
			if v.OK {
				t.Fatalf("got OK after tampering, want broken at %d", tt.wantBroken)
			}
			if v.FirstBroken != tt.wantBroken {
				t.Errorf("got first broken %d, want %d", v.FirstBroken, tt.wantBroken)
			}
			if v.Reason != tt.wantReason {
				t.Errorf("got reason %q, want %q", v.Reason, tt.wantReason)
			}
		})
	}
}

// A row rewritten and re-sealed with the key is caught by the next record's
// prev_hash (and the whole chain re-sealed, by anchors).
func TestVerifyDetectsRehashedRecord(t *testing.T) {
	l, db, _ := newTestLog(t)
	seed(t, l, 5)
	var r row
	if err := r.scanFrom(db.QueryRow(`SELECT ` + rowColumns + ` FROM audit_log WHERE seq = 3`)); err != nil {
		t.Fatal(err)
	}
	r.details = `{}`
	r.hash = r.computeHash(hmac.New(sha256.New, l.Keys().Current().Secret)) // someone holding the key
	if _, err := db.Exec(`UPDATE audit_log SET details = ?, hash = ? WHERE seq = 3`, r.details, r.hash); err != nil {
		t.Fatal(err)
	}
	v := mustVerify(t, l)
	if got, want := v.Reason, "record 4: previous-hash does not match record 3 (record 3 changed?)"; got != want {
		t.Errorf("got reason %q, want %q", got, want)
	}
	if got, want := v.HeadSeq, int64(3); got != want {
		t.Errorf("got head seq %d, want %d", got, want)
	}
}

func TestAppendRollsBackWithCallerTx(t *testing.T) {
	l, db, _ := newTestLog(t)
	ctx := context.Background()
	errAction := errors.New("action failed")
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := l.Append(ctx, tx, Entry{Actor: "system", Action: "staff.create"}); err != nil {
			return err
		}
		return errAction
	})
	if !errors.Is(err, errAction) {
		t.Fatalf("got error %v, want %v", err, errAction)
	}
	recs, _, err := l.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 0 {
		t.Errorf("got %d records after rollback, want 0", len(recs))
	}
	rec, err := l.Record(ctx, Entry{Actor: "system", Action: "staff.create"})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Seq != 1 || rec.PrevHash != GenesisHash {
		t.Errorf("got seq %d prev %s, want seq 1 prev genesis", rec.Seq, rec.PrevHash)
	}
}

func TestAppendRejectsInvalidEntries(t *testing.T) {
	tests := []struct {
		name string
		e    Entry
	}{
		{"no actor", Entry{Action: "auth.sign_in"}},
		{"no action", Entry{Actor: "system"}},
		{"unencodable details", Entry{Actor: "system", Action: "x.y", Details: map[string]any{"c": make(chan int)}}},
		{"NaN details", Entry{Actor: "system", Action: "x.y", Details: map[string]any{"n": nan()}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _, _ := newTestLog(t)
			_, err := l.Record(context.Background(), tt.e)
			if got, want := apperr.KindOf(err), apperr.Invalid; got != want {
				t.Errorf("got kind %q (err %v), want %q", got, err, want)
			}
			if v := mustVerify(t, l); v.Checked != 0 {
				t.Errorf("got %d records, want 0", v.Checked)
			}
		})
	}
}

func nan() float64 { zero := 0.0; return zero / zero }

func TestConcurrentRecord(t *testing.T) {
	l, _, _ := newTestLog(t)
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				_, err := l.Record(context.Background(), Entry{
					Actor: fmt.Sprintf("worker:%d", w), Action: "test.concurrent",
					Details: map[string]any{"i": i},
				})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Record: %v", err)
	}
	v := mustVerify(t, l)
	if !v.OK || v.Checked != workers*each || v.HeadSeq != workers*each {
		t.Errorf("got %+v, want OK with %d records", v, workers*each)
	}
}

func TestList(t *testing.T) {
	l, _, _ := newTestLog(t)
	ctx := context.Background()
	seed(t, l, 9) // at = t0 + (seq-1)s
	if _, err := l.Record(ctx, Entry{Actor: "system", Action: "billing.charge", Details: map[string]any{"memo": "100% off_sale"}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    Filter
		want []int64
	}{
		{"all", Filter{}, []int64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}},
		{"actor", Filter{Actor: "user:5 bob@example.com"}, []int64{8, 6, 4, 2}},
		{"action", Filter{Action: "staff.create"}, []int64{8, 5, 2}},
		{"target", Filter{Target: "thing:7"}, []int64{7}},
		{"actor and action", Filter{Actor: "user:3 alice@example.com", Action: "auth.sign_in"}, []int64{7, 1}},
		{"since", Filter{Since: t0.Add(7 * time.Second)}, []int64{10, 9, 8}},
		{"until is exclusive", Filter{Until: t0.Add(2 * time.Second)}, []int64{2, 1}},
		{"since and until", Filter{Since: t0.Add(2 * time.Second), Until: t0.Add(4 * time.Second)}, []int64{4, 3}},
		{"since sub-second", Filter{Since: t0.Add(2*time.Second + 500*time.Millisecond)}, []int64{10, 9, 8, 7, 6, 5, 4}},
		{"query in details", Filter{Query: "entry 4"}, []int64{4}},
		{"query is case-insensitive", Filter{Query: "BOB@"}, []int64{8, 6, 4, 2}},
		{"query percent is literal", Filter{Query: "100%"}, []int64{10}},
		{"query underscore is literal", Filter{Query: "f_s"}, []int64{10}},
		{"query wildcard finds nothing", Filter{Query: "%x%"}, nil},
		{"before seq", Filter{BeforeSeq: 4}, []int64{3, 2, 1}},
		{"limit", Filter{Limit: 2}, []int64{10, 9}},
		{"no match", Filter{Action: "nope"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, _, err := l.List(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, seqs(recs), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("seqs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestListPagination(t *testing.T) {
	l, _, _ := newTestLog(t)
	seed(t, l, 7)
	f := Filter{Limit: 3}
	var pages [][]int64
	for {
		recs, more, err := l.List(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, seqs(recs))
		if !more {
			break
		}
		if len(pages) > 5 {
			t.Fatal("pagination does not end")
		}
		f.BeforeSeq = recs[len(recs)-1].Seq
	}
	want := [][]int64{{7, 6, 5}, {4, 3, 2}, {1}}
	if diff := cmp.Diff(want, pages); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}

	// A page that ends exactly at the last record says there is no more.
	recs, more, err := l.List(context.Background(), Filter{Limit: 7})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 7 || more {
		t.Errorf("got %d records, more=%v; want 7, false", len(recs), more)
	}
}

func TestListDetailsKeepLargeNumbers(t *testing.T) {
	l, _, _ := newTestLog(t)
	if _, err := l.Record(context.Background(), Entry{Actor: "system", Action: "x.y", Details: map[string]any{"id": int64(1<<62 + 1)}}); err != nil {
		t.Fatal(err)
	}
	recs, _, err := l.List(context.Background(), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := recs[0].Details["id"], json.Number("4611686018427387905"); got != want {
		t.Errorf("got id %v (%T), want %v", got, got, want)
	}
}

func TestGetNotFound(t *testing.T) {
	l, _, _ := newTestLog(t)
	_, err := l.Get(context.Background(), 42)
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("got error %v, want store.ErrNotFound", err)
	}
	if got, want := apperr.KindOf(err), apperr.NotFound; got != want {
		t.Errorf("got kind %q, want %q", got, want)
	}
}

func TestActions(t *testing.T) {
	l, _, _ := newTestLog(t)
	got, err := l.Actions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got == nil || len(got) != 0 {
		t.Errorf("empty log: got %#v, want empty non-nil slice", got)
	}
	seed(t, l, 5)
	got, err = l.Actions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"auth.sign_in", "blueprint.save", "staff.create"}, got); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
}

func TestExportCSV(t *testing.T) {
	l, _, _ := newTestLog(t)
	ctx := context.Background()
	seed(t, l, 6)
	tricky := Entry{Actor: "system", Action: "staff.create", Target: "=cmd, \"quoted\"\nline",
		Details: map[string]any{"memo": "a,b\n\"c\""}}
	if _, err := l.Record(ctx, tricky); err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	if err := l.ExportCSV(ctx, Filter{Action: "staff.create", Limit: 1}, &buf); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatalf("parse export: %v", err)
	}
	if diff := cmp.Diff(csvHeader, rows[0]); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	var gotSeqs []string
	for _, r := range rows[1:] {
		gotSeqs = append(gotSeqs, r[0])
	}
	if diff := cmp.Diff([]string{"2", "5", "7"}, gotSeqs); diff != "" {
		t.Errorf("exported seqs, oldest first, ignoring Limit (-want +got):\n%s", diff)
	}
	last := rows[len(rows)-1]
	if got, want := last[4], tricky.Target; got != want {
		t.Errorf("got target %q, want %q", got, want)
	}
	if got, want := last[7], `{"memo":"a,b\n\"c\""}`; got != want {
		t.Errorf("got details %q, want %q", got, want)
	}

	// Each exported row carries enough to re-derive its hash, given the key.
	for _, r := range rows[1:] {
		seq, err := strconv.ParseInt(r[0], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		rw := row{seq: seq, at: r[1], actor: r[2], action: r[3], target: r[4], sourceIP: r[5],
			requestID: r[6], details: r[7], prevHash: r[8], keyID: r[10]}
		k, ok := l.Keys().Get(rw.keyID)
		if !ok {
			t.Fatalf("record %d: key %q not in the ring", seq, rw.keyID)
		}
		if got, want := rw.computeHash(hmac.New(sha256.New, k.Secret)), r[9]; got != want {
			t.Errorf("record %d: got re-derived hash %s, want %s", seq, got, want)
		}
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

func TestExportCSVWriteError(t *testing.T) {
	l, _, _ := newTestLog(t)
	seed(t, l, 3)
	errDisk := errors.New("disk full")
	if err := l.ExportCSV(context.Background(), Filter{}, failWriter{errDisk}); !errors.Is(err, errDisk) {
		t.Errorf("got error %v, want %v", err, errDisk)
	}
}

func BenchmarkAppend(b *testing.B) {
	db, _ := openTestDB(b)
	l := New(db, nil)
	e := Entry{Actor: "user:3 alice@example.com", Action: "staff.create", Target: "user:5 bob@example.com",
		SourceIP: "192.0.2.1", RequestID: "req-1", Details: map[string]any{"role": "admin", "team": 7}}
	ctx := context.Background()
	for b.Loop() {
		if _, err := l.Record(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	const n = 10_000
	db, _ := openTestDB(b)
	l := New(db, nil)
	ctx := context.Background()
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		for i := range n {
			if _, err := l.Append(ctx, tx, Entry{Actor: "system", Action: "bench.seed", Target: fmt.Sprintf("thing:%d", i),
				Details: map[string]any{"i": i}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		v, err := l.Verify(ctx)
		if err != nil || !v.OK || v.Checked != n {
			b.Fatalf("got %+v, %v; want OK with %d records", v, err, n)
		}
	}
}

// Times with and without a fraction must compare as times; a trimmed
// fraction would sort "…:01Z" after "…:01.25Z".
func TestListSubSecondBounds(t *testing.T) {
	db, _ := openTestDB(t)
	l := New(db, (&clock{next: t0, step: 250 * time.Millisecond}).now)
	seed(t, l, 8) // seq 5 is at t0+1s exactly
	tests := []struct {
		name string
		f    Filter
		want []int64
	}{
		{"since after a whole second", Filter{Since: t0.Add(1250 * time.Millisecond)}, []int64{8, 7, 6}},
		{"since a whole second", Filter{Since: t0.Add(time.Second)}, []int64{8, 7, 6, 5}},
		{"until after a whole second", Filter{Until: t0.Add(1250 * time.Millisecond)}, []int64{5, 4, 3, 2, 1}},
		{"until a whole second", Filter{Until: t0.Add(time.Second)}, []int64{4, 3, 2, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, _, err := l.List(context.Background(), tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, seqs(recs)); diff != "" {
				t.Errorf("seqs (-want +got):\n%s", diff)
			}
		})
	}
}
