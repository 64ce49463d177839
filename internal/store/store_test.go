package store_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"portal/internal/store"
)

func TestOpenMigratesOnceWithPragmas(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "portal.db")
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var applied int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&applied); err != nil || applied == 0 {
		t.Fatalf("migrations applied: %d (%v), want some", applied, err)
	}
	var mode string
	var fk, busy int
	db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode)
	db.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk)
	db.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&busy)
	if mode != "wal" || fk != 1 || busy < 1000 {
		t.Errorf("journal_mode=%s foreign_keys=%d busy_timeout=%d, want wal, 1, >=1000", mode, fk, busy)
	}
	if err := db.IntegrityCheck(ctx); err != nil {
		t.Error(err)
	}
	db.Close()

	// Opening again applies nothing twice.
	db, err = store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var again int
	db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&again)
	if again != applied {
		t.Errorf("after reopening %d migrations recorded, want %d", again, applied)
	}
}

func TestTxRollsBackOnError(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "portal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	_ = db.Tx(ctx, func(tx *sql.Tx) error {
		tx.ExecContext(ctx, `INSERT INTO t VALUES (1)`)
		return context.Canceled
	})
	var n int
	db.QueryRowContext(ctx, `SELECT COUNT(*) FROM t`).Scan(&n)
	if n != 0 {
		t.Errorf("a failed transaction left %d rows, want 0", n)
	}
}

func TestTimeSortsAsText(t *testing.T) {
	a := time.Date(2026, 1, 1, 12, 0, 5, 0, time.UTC)
	b := a.Add(500 * time.Millisecond)
	if !(store.Time(a) < store.Time(b)) {
		t.Errorf("%s sorts after %s", store.Time(a), store.Time(b))
	}
	back, err := store.ParseTime(store.Time(b))
	if err != nil || !back.Equal(b) {
		t.Errorf("ParseTime(Time(t)) = %v, %v; want %v", back, err, b)
	}
}
