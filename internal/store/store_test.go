package store_test

import (
	"context"
	"database/sql"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"portal/internal/peers/peertest"
	"portal/internal/store"
)

func TestMain(m *testing.M) { peertest.Main(m) }

func TestOpenMigratesOnce(t *testing.T) {
	ctx := context.Background()
	// An empty database (StoreDSNForTest's are migrated already).
	var dsn string
	if peertest.StoreDialect(t) == store.Postgres {
		dsn = peertest.PostgresDatabaseForTest(t)
	} else {
		dsn = filepath.Join(t.TempDir(), "portal.db")
	}
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	want, err := store.MigrationNames(db.Dialect())
	if err != nil {
		t.Fatal(err)
	}
	applied := migrationsApplied(t, db)
	if !slices.Equal(applied, want) {
		t.Fatalf("migrations applied: %v, want %v", applied, want)
	}
	if err := db.IntegrityCheck(ctx); err != nil {
		t.Error(err)
	}
	db.Close()

	// Opening again applies nothing twice.
	db, err = store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if again := migrationsApplied(t, db); !slices.Equal(again, want) {
		t.Errorf("after reopening: %v, want %v", again, want)
	}
}

func migrationsApplied(t *testing.T, db *store.DB) []string {
	t.Helper()
	rows, err := db.Query(`SELECT name FROM schema_migrations ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// TestReplicasStartTogether opens one empty database from several
// handles at once, as replicas starting together do: every migration is
// applied once and every open succeeds.
func TestReplicasStartTogether(t *testing.T) {
	ctx := context.Background()
	var dsn string
	if peertest.StoreDialect(t) == store.Postgres {
		dsn = peertest.PostgresDatabaseForTest(t)
	} else {
		dsn = filepath.Join(t.TempDir(), "portal.db")
	}
	const n = 4
	dbs := make([]*store.DB, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dbs[i], errs[i] = store.Open(ctx, dsn)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		defer dbs[i].Close()
	}
	want, _ := store.MigrationNames(dbs[0].Dialect())
	if got := migrationsApplied(t, dbs[0]); !slices.Equal(got, want) {
		t.Errorf("migrations recorded: %v, want each of %v once", got, want)
	}
}

func TestSQLitePragmas(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "portal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	var fk, busy int
	db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode)
	db.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk)
	db.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&busy)
	if mode != "wal" || fk != 1 || busy < 1000 {
		t.Errorf("journal_mode=%s foreign_keys=%d busy_timeout=%d, want wal, 1, >=1000", mode, fk, busy)
	}
}

// TestMigrationsHaveTwins fails while a migration exists for one database
// and not the other: each SQLite migration needs its PostgreSQL twin
// (internal/store/migrations/postgres, same file name) and the reverse.
func TestMigrationsHaveTwins(t *testing.T) {
	lite, err := store.MigrationNames(store.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := store.MigrationNames(store.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range lite {
		if !slices.Contains(pg, n) {
			t.Errorf("migrations/%s has no PostgreSQL twin: write migrations/postgres/%s (see migrations/README.md)", n, n)
		}
	}
	for _, n := range pg {
		if !slices.Contains(lite, n) {
			t.Errorf("migrations/postgres/%s has no SQLite twin: write migrations/%s", n, n)
		}
	}
}

// TestNoLastInsertId: PostgreSQL's driver has no LastInsertId, so code
// that reads one works on SQLite only. New ids come from INSERT ...
// RETURNING id (both databases), read with QueryRow.
func TestNoLastInsertId(t *testing.T) {
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "LastInsertId" {
				t.Errorf("%s: LastInsertId works on SQLite only: write INSERT ... RETURNING id and read it with QueryRowContext", fset.Position(sel.Pos()))
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestTxRollsBackOnError(t *testing.T) {
	ctx := context.Background()
	db := peertest.StoreForTest(t)
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	_ = db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO t VALUES (1)`); err != nil {
			t.Error(err)
		}
		return context.Canceled
	})
	var n int
	db.QueryRowContext(ctx, `SELECT COUNT(*) FROM t`).Scan(&n)
	if n != 0 {
		t.Errorf("a failed transaction left %d rows, want 0", n)
	}
}

// TestOneSQLText runs statements written for SQLite, as domain packages
// write them, on this run's database and checks they mean the same.
func TestOneSQLText(t *testing.T) {
	ctx := context.Background()
	db := peertest.StoreForTest(t)
	// Tables are made by migrations, each written for its database.
	id := "id INTEGER PRIMARY KEY"
	if db.Dialect() == store.Postgres {
		id = "id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE things (`+id+`, name TEXT NOT NULL, flag INTEGER NOT NULL, at TEXT NOT NULL DEFAULT '')`); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for i, name := range []string{"Alpha", "beta", "Gamma"} {
		var id int64
		if err := db.QueryRowContext(ctx, `INSERT INTO things (name, flag, at) VALUES (?, ?, ?) RETURNING id`, name, i != 1, store.Time(time.Unix(int64(i), 0))).Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if !slices.IsSorted(ids) || ids[0] == 0 || ids[0] == ids[1] {
		t.Errorf("RETURNING id gave %v, want increasing ids", ids)
	}
	var flagged, likes int
	var names string
	if err := db.QueryRowContext(ctx, `SELECT SUM(flag = 1), SUM(name LIKE ?), (SELECT group_concat(name, ',') FROM (SELECT name FROM things ORDER BY id) AS o) FROM things`, "%A%").
		Scan(&flagged, &likes, &names); err != nil {
		t.Fatal(err)
	}
	if flagged != 2 || likes != 3 || names != "Alpha,beta,Gamma" {
		t.Errorf("SUM(comparison)=%d SUM(LIKE)=%d group_concat=%q, want 2, 3 (LIKE ignores case), Alpha,beta,Gamma", flagged, likes, names)
	}
	var name string
	var flag bool
	if err := db.QueryRowContext(ctx, `SELECT name, flag FROM things WHERE id = ?2 AND flag = ?1`, false, ids[1]).Scan(&name, &flag); err != nil || name != "beta" || flag {
		t.Errorf("numbered placeholders and a bool: got %q %v (%v), want beta false", name, flag, err)
	}
	// A time.Time argument is stored as SQLite's driver writes it.
	at := time.Date(2026, 3, 4, 5, 6, 7, 800, time.UTC)
	if _, err := db.ExecContext(ctx, `UPDATE things SET at = ? WHERE id = ?`, at, ids[0]); err != nil {
		t.Fatal(err)
	}
	var stored string
	db.QueryRowContext(ctx, `SELECT at FROM things WHERE id = ?`, ids[0]).Scan(&stored)
	if stored != "2026-03-04 05:06:07.0000008+00:00" {
		t.Errorf("time argument stored as %q, want 2026-03-04 05:06:07.0000008+00:00", stored)
	}
	// Prepared statements take the same text and arguments.
	st, err := db.PrepareContext(ctx, `SELECT COUNT(*) FROM things WHERE flag = ? AND name LIKE ?`)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var n int
	if err := st.QueryRowContext(ctx, true, "%a").Scan(&n); err != nil || n != 2 {
		t.Errorf("prepared: %d (%v), want 2", n, err)
	}
}

func TestIsUniqueViolation(t *testing.T) {
	ctx := context.Background()
	db := peertest.StoreForTest(t)
	if _, err := db.ExecContext(ctx, `CREATE TABLE u (k TEXT PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `CREATE UNIQUE INDEX u_v ON u (v) WHERE v != ''`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO u VALUES ('a', 'x')`); err != nil {
		t.Fatal(err)
	}
	_, errKey := db.ExecContext(ctx, `INSERT INTO u VALUES ('a', 'y')`)
	_, errIdx := db.ExecContext(ctx, `INSERT INTO u VALUES ('b', 'x')`)
	_, errOther := db.ExecContext(ctx, `INSERT INTO u VALUES ('c', NULL)`)
	if !store.IsUniqueViolation(errKey) || !store.IsUniqueViolation(errIdx) {
		t.Errorf("duplicate key: %v; duplicate in unique index: %v; want both unique violations", errKey, errIdx)
	}
	if errOther == nil || store.IsUniqueViolation(errOther) || store.IsUniqueViolation(errors.New("x")) {
		t.Errorf("NOT NULL violation %v counted as a unique violation", errOther)
	}
}

// TestLockSerializesWriters: read-then-write transactions under Lock never
// lose an update, from two handles on one database (two replicas).
func TestLockSerializesWriters(t *testing.T) {
	ctx := context.Background()
	dsn := peertest.StoreDSNForTest(t)
	a, b := openTwo(t, dsn)
	if _, err := a.ExecContext(ctx, `CREATE TABLE counter (n INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ExecContext(ctx, `INSERT INTO counter VALUES (0)`); err != nil {
		t.Fatal(err)
	}
	const each = 40
	var wg sync.WaitGroup
	for _, db := range []*store.DB{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				err := db.Tx(ctx, func(tx *sql.Tx) error {
					if err := db.Lock(ctx, tx, "counter"); err != nil {
						return err
					}
					var n int
					if err := tx.QueryRowContext(ctx, `SELECT n FROM counter`).Scan(&n); err != nil {
						return err
					}
					_, err := tx.ExecContext(ctx, `UPDATE counter SET n = ?`, n+1)
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var n int
	a.QueryRowContext(ctx, `SELECT n FROM counter`).Scan(&n)
	if n != 4*each {
		t.Errorf("counter %d after %d locked increments", n, 4*each)
	}
}

// TestWithLockIsExclusive: work under WithLock never overlaps, from two
// handles on one database.
func TestWithLockIsExclusive(t *testing.T) {
	ctx := context.Background()
	a, b := openTwo(t, peertest.StoreDSNForTest(t))
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for _, db := range []*store.DB{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				err := db.WithLock(ctx, "first-start", func(context.Context) error {
					n := inside.Add(1)
					defer inside.Add(-1)
					if n > most.Load() {
						most.Store(n)
					}
					time.Sleep(2 * time.Millisecond)
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Errorf("%d holders at once, want 1", most.Load())
	}
}

func openTwo(t *testing.T, dsn string) (*store.DB, *store.DB) {
	t.Helper()
	var dbs [2]*store.DB
	for i := range dbs {
		db, err := store.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs[i] = db
	}
	return dbs[0], dbs[1]
}

func TestNowIsTheDatabaseClock(t *testing.T) {
	db := peertest.StoreForTest(t)
	before := time.Now()
	now, err := db.Now(context.Background())
	after := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	// The server runs on this machine: its clock is this one's.
	if now.Before(before.Add(-time.Second)) || now.After(after.Add(time.Second)) || now.Location() != time.UTC {
		t.Errorf("Now = %v, want UTC between %v and %v", now, before, after)
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

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://portal:s3cret@db.internal:5432/portal?sslmode=require": "postgres://portal:xxxxx@db.internal:5432/portal?sslmode=require",
		"postgresql://db/portal?password=s3cret":                           "postgresql://db/portal?password=xxxxx",
		"data/portal.db":                                                   "data/portal.db",
	} {
		if got := store.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	if _, err := store.Open(context.Background(), "postgres://portal:s3cret@127.0.0.1:1/portal?connect_timeout=1"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("open of an unreachable server: %v, want an error without the password", err)
	}
}
