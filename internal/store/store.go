// Package store opens the portal's database, SQLite (embedded, the
// default) or PostgreSQL (for several replicas sharing one database), and
// applies its embedded, numbered migrations. Domain packages keep their own
// SQL next to their Scan calls and take a *store.DB (or a *sql.Tx handed
// out by DB.Tx).
//
// # One SQL text for both databases
//
// Domain packages write SQL as SQLite reads it, with ? placeholders; on
// PostgreSQL the store's driver rewrites each statement (rebind) and the
// schema carries the few functions SQLite has and PostgreSQL lacks
// (migrations/postgres/0130_sqlite_functions.sql), so the same text runs
// on both. What cannot be written once lives here, behind methods that
// mean the same on both databases:
//
//   - new row ids: INSERT ... RETURNING id, read with QueryRow (both
//     databases have it; LastInsertId exists only in SQLite's driver, and
//     a test refuses it);
//   - locks: Lock (inside a transaction) and WithLock (around work that is
//     not one transaction, such as the first start);
//   - time: Now is the database's clock, which every replica shares;
//   - errors: IsUniqueViolation;
//   - sessions: SessionStore.
//
// Everything else that differs (full-text search, bulk loading) is
// reached through Dialect by the one package that needs it.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"net/url"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/alexedwards/scs/postgresstore"
	"github.com/alexedwards/scs/sqlite3store"
	"github.com/alexedwards/scs/v2"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql migrations/postgres/*.sql
var migrationFS embed.FS

// ErrNotFound is returned (wrapped) by lookups that match no row.
var ErrNotFound = errors.New("not found")

// Dialect names the database behind a DB.
type Dialect string

// The databases the portal runs on.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is the portal's database handle.
type DB struct {
	*sql.DB
	// Path is the file a SQLite database lives in; "" on PostgreSQL.
	Path string

	dialect Dialect
	name    string // the path, or the address without its password
}

// sqliteLocks stand in for PostgreSQL's advisory locks on SQLite, whose
// file one process owns: one mutex per file and lock name, shared by
// every handle this process opens on the file.
var sqliteLocks sync.Map // "abs path\x00name" -> *sync.Mutex

// Open opens the database named by dsn and applies every pending
// migration. A postgres:// or postgresql:// URL opens PostgreSQL (15 or
// newer); anything else is the path of a SQLite file, created if needed.
func Open(ctx context.Context, dsn string) (*DB, error) {
	var db *DB
	var err error
	if IsPostgresURL(dsn) {
		db, err = openPostgres(ctx, dsn)
	} else {
		db, err = openSQLite(ctx, dsn)
	}
	if err != nil {
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// openSQLite opens (creating if needed) the SQLite database at path.
// Pragmas live in the DSN so that every pooled connection gets them;
// transactions begin IMMEDIATE so that concurrent writers queue on
// busy_timeout instead of failing on lock upgrade.
func openSQLite(ctx context.Context, path string) (*DB, error) {
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
	// A new database is switched to WAL by its first connection, which
	// needs the file alone for a moment: SQLite answers SQLITE_BUSY
	// without waiting to another process opening it at that instant
	// (busy_timeout does not cover the switch). Try again for as long as
	// busy_timeout would wait.
	for deadline := time.Now().Add(10 * time.Second); ; {
		err := sdb.PingContext(ctx)
		if err == nil {
			break
		}
		var se *sqlite.Error
		if !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			sdb.Close()
			return nil, fmt.Errorf("store: open %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			sdb.Close()
			return nil, fmt.Errorf("store: open %s: %w", path, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return &DB{DB: sdb, Path: path, dialect: SQLite, name: path}, nil
}

// Dialect says which database this is. Only code whose SQL cannot be
// written once (full-text search, bulk loading) asks.
func (db *DB) Dialect() Dialect { return db.dialect }

// Name is the SQLite file or the PostgreSQL address (without password),
// for logs and messages.
func (db *DB) Name() string { return db.name }

// Tx runs fn in a transaction, committing when fn returns nil and rolling
// back otherwise, so a failed action leaves nothing half-written.
//
// On SQLite the transaction holds the database's only write lock from its
// start. On PostgreSQL it is READ COMMITTED and others write alongside it:
// code that reads and then writes on what it read claims rows with a
// conditional UPDATE checked by its row count, lets a unique index refuse
// a second row (IsUniqueViolation), or takes Lock.
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

// IntegrityCheck checks the database's own structures: SQLite's
// integrity_check (an error names the first problem it reports); on
// PostgreSQL, which checks its pages itself, that the server answers.
func (db *DB) IntegrityCheck(ctx context.Context) error {
	if db.dialect == Postgres {
		return db.Ready(ctx)
	}
	var res string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil {
		return fmt.Errorf("store: integrity check: %w", err)
	}
	if res != "ok" {
		return fmt.Errorf("store: integrity check: %s", res)
	}
	return nil
}

// Lock takes the lock called name until tx ends. On PostgreSQL it is a
// transaction-scoped advisory lock, so writers on every replica queue on
// it; on SQLite the transaction already holds the only write lock.
func (db *DB) Lock(ctx context.Context, tx *sql.Tx, name string) error {
	if db.dialect != Postgres {
		return nil
	}
	if _, err := tx.ExecContext(native(ctx), `SELECT pg_advisory_xact_lock($1)`, lockKey(name)); err != nil {
		return fmt.Errorf("store: lock %s: %w", name, err)
	}
	return nil
}

// WithLock runs fn holding the lock called name: on PostgreSQL a session
// advisory lock held by a connection of its own, so one replica at a time
// runs fn (and a replica that dies releases it with its connection); on
// SQLite a lock of this process.
func (db *DB) WithLock(ctx context.Context, name string, fn func(ctx context.Context) error) error {
	if db.dialect != Postgres {
		p, err := filepath.Abs(db.Path)
		if err != nil {
			p = db.Path
		}
		v, _ := sqliteLocks.LoadOrStore(p+"\x00"+name, &sync.Mutex{})
		mu := v.(*sync.Mutex)
		mu.Lock()
		defer mu.Unlock()
		return fn(ctx)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: lock %s: %w", name, err)
	}
	key := lockKey(name)
	if _, err := conn.ExecContext(native(ctx), `SELECT pg_advisory_lock($1)`, key); err != nil {
		conn.Close()
		return fmt.Errorf("store: lock %s: %w", name, err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(native(uctx), `SELECT pg_advisory_unlock($1)`, key); err != nil {
			// The connection may still hold the lock: never give it back
			// to the pool.
			_ = conn.Raw(func(any) error { return errBadConn })
		}
		conn.Close()
	}()
	return fn(ctx)
}

// lockKey is the advisory lock number of name.
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("portal:" + name))
	return int64(h.Sum64())
}

// Now is the database's clock: PostgreSQL's, which every replica shares,
// so that leases never depend on one machine's clock; on SQLite, whose
// file one machine holds, that machine's.
func (db *DB) Now(ctx context.Context) (time.Time, error) {
	if db.dialect != Postgres {
		return time.Now().UTC(), nil
	}
	var t time.Time
	if err := db.QueryRowContext(native(ctx), `SELECT clock_timestamp()`).Scan(&t); err != nil {
		return time.Time{}, fmt.Errorf("store: database time: %w", err)
	}
	return t.UTC(), nil
}

// IsUniqueViolation reports whether err is a unique index (or primary
// key) refusing a row, on either database.
func IsUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return isPgCode(err, pgUniqueViolation)
}

// SessionStore keeps signed-in sessions in the database, where every
// replica finds them: scs's store for SQLite or PostgreSQL, over the
// sessions table of migration 0101. It deletes expired sessions every
// cleanup; call StopCleanup when done.
type SessionStore interface {
	scs.Store
	StopCleanup()
}

// SessionStore returns the session store of this database.
func (db *DB) SessionStore(cleanup time.Duration) SessionStore {
	if db.dialect == Postgres {
		return postgresstore.NewWithCleanupInterval(db.DB, cleanup)
	}
	return sqlite3store.NewWithCleanupInterval(db.DB, cleanup)
}

// migrationDir holds each dialect's numbered migrations. The two sets
// have the same file names: a PostgreSQL twin for every SQLite file.
func migrationDir(d Dialect) string {
	if d == Postgres {
		return "migrations/postgres"
	}
	return "migrations"
}

// MigrationNames lists d's migrations in the order they apply.
func MigrationNames(d Dialect) ([]string, error) {
	names, err := fs.Glob(migrationFS, migrationDir(d)+"/*.sql")
	if err != nil {
		return nil, fmt.Errorf("store: list migrations: %w", err)
	}
	for i, n := range names {
		names[i] = path.Base(n)
	}
	sort.Strings(names)
	return names, nil
}

// migrate applies pending migrations, on PostgreSQL holding a lock so
// that replicas starting together apply each once.
func (db *DB) migrate(ctx context.Context) error {
	return db.WithLock(ctx, "migrations", func(ctx context.Context) error {
		table := `CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)`
		if _, err := db.ExecContext(native(ctx), table); err != nil {
			return fmt.Errorf("store: migrations table: %w", err)
		}
		names, err := MigrationNames(db.dialect)
		if err != nil {
			return err
		}
		for _, name := range names {
			if err := db.migrateFile(ctx, name); err != nil {
				return err
			}
		}
		return nil
	})
}

func (db *DB) migrateFile(ctx context.Context, name string) error {
	ctx = native(ctx)
	ph := func(n int) string {
		if db.dialect == Postgres {
			return fmt.Sprintf("$%d", n)
		}
		return "?"
	}
	return db.Tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE name = `+ph(1), name).Scan(&n); err != nil {
			return fmt.Errorf("store: migration %s: %w", name, err)
		}
		if n > 0 {
			return nil
		}
		body, err := migrationFS.ReadFile(migrationDir(db.dialect) + "/" + name)
		if err != nil {
			return fmt.Errorf("store: migration %s: %w", name, err)
		}
		if strings.TrimSpace(string(body)) != "" {
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("store: migration %s (%s): %w", name, db.dialect, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES (`+ph(1)+`, `+ph(2)+`)`,
			name, time.Now().UTC().Format(time.RFC3339)); err != nil {
			return fmt.Errorf("store: migration %s: %w", name, err)
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
