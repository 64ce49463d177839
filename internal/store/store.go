// Package store opens the portal's SQLite database and applies its embedded,
// numbered migrations. Domain packages keep their own SQL next to their Scan
// calls and take a *store.DB (or a *sql.Tx handed out by DB.Tx).
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// ErrNotFound is returned (wrapped) by lookups that match no row.
var ErrNotFound = errors.New("not found")

// DB is the portal's database handle.
type DB struct {
	*sql.DB
	// Path is the file the database lives in.
	Path string
}

// Open opens (creating if needed) the SQLite database at path and applies
// every pending migration. Pragmas live in the DSN so that every pooled
// connection gets them; transactions begin IMMEDIATE so that concurrent
// writers queue on busy_timeout instead of failing on lock upgrade.
func Open(ctx context.Context, path string) (*DB, error) {
	q := url.Values{}
	for _, p := range []string{"foreign_keys(1)", "busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	q.Set("_time_format", "sqlite")
	dsn := "file:" + path + "?" + q.Encode()
	sdb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	sdb.SetMaxOpenConns(8)
	if err := sdb.PingContext(ctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db := &DB{DB: sdb, Path: path}
	if err := db.migrate(ctx); err != nil {
		sdb.Close()
		return nil, err
	}
	return db, nil
}

// Tx runs fn in a transaction, committing when fn returns nil and rolling
// back otherwise, so a failed action leaves nothing half-written.
func (db *DB) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// Ready reports whether the database answers a trivial query.
func (db *DB) Ready(ctx context.Context) error {
	var one int
	return db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// IntegrityCheck runs SQLite's integrity_check and returns an error naming
// the first problem it reports.
func (db *DB) IntegrityCheck(ctx context.Context) error {
	var res string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil {
		return fmt.Errorf("store: integrity check: %w", err)
	}
	if res != "ok" {
		return fmt.Errorf("store: integrity check: %s", res)
	}
	return nil
}

func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name TEXT PRIMARY KEY,
		applied_at TEXT NOT NULL
	)`); err != nil {
		return fmt.Errorf("store: migrations table: %w", err)
	}
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("store: list migrations: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := db.migrateFile(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

func (db *DB) migrateFile(ctx context.Context, name string) error {
	base := strings.TrimPrefix(name, "migrations/")
	return db.Tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE name = ?`, base).Scan(&n); err != nil {
			return fmt.Errorf("store: migration %s: %w", base, err)
		}
		if n > 0 {
			return nil
		}
		body, err := migrationFS.ReadFile(name)
		if err != nil {
			return fmt.Errorf("store: migration %s: %w", base, err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("store: migration %s: %w", base, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)`,
			base, time.Now().UTC().Format(time.RFC3339)); err != nil {
			return fmt.Errorf("store: migration %s: %w", base, err)
		}
		return nil
	})
}

// timeLayout is RFC 3339 in UTC with the fraction fixed at nine digits, so
// that text order is time order (RFC3339Nano trims trailing zeros, and then
// "...:05Z" sorts after "...:05.5Z").
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// Time formats t the way the portal stores times; stored times compare
// correctly as text.
func Time(t time.Time) string { return t.UTC().Format(timeLayout) }

// ParseTime parses a time written by Time.
func ParseTime(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }
