package peertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"portal/internal/peers"
	"portal/internal/store"
)

// StoreEnv names the environment variable that picks the database the
// store-backed tests run against: "sqlite" (the default) or "postgres".
// `make test` runs the store, jobs, engine, workflows, audit, activity,
// billing and staff tests once with each.
const StoreEnv = "PORTAL_TEST_STORE"

// pgShared is the per-test-binary PostgreSQL server and its migrated
// template database.
var pgShared struct {
	once sync.Once
	pg   *peers.Postgres
	err  error

	templateOnce sync.Once
	templateErr  error
	// ready holds databases already copied from the template: copying
	// takes about a second, so the next test's is made while one runs.
	ready chan readyDB
}

type readyDB struct {
	name string
	err  error
}

const pgTemplate = "portal_template"

// StoreDialect is the database the store-backed tests of this run use,
// from $PORTAL_TEST_STORE. An unknown value fails the test.
func StoreDialect(tb testing.TB) store.Dialect {
	tb.Helper()
	switch v := os.Getenv(StoreEnv); v {
	case "", "sqlite":
		return store.SQLite
	case "postgres":
		return store.Postgres
	default:
		tb.Fatalf("%s=%q: want sqlite or postgres", StoreEnv, v)
		return ""
	}
}

// PostgresForTest returns this test binary's shared PostgreSQL server,
// starting it on first use (StopAll stops it). Tests share it and each
// works in a database of its own (PostgresDatabaseForTest). If it cannot
// start, and in particular if PostgreSQL is not installed, the test fails
// with the reason and the install command.
func PostgresForTest(tb testing.TB) *peers.Postgres {
	tb.Helper()
	pgShared.once.Do(func() {
		pgShared.pg, pgShared.err = peers.StartPostgres(context.Background(), peers.PostgresOptions{})
	})
	if pgShared.err != nil {
		tb.Fatalf("PostgreSQL is required: %v", pgShared.err)
	}
	return pgShared.pg
}

// PostgresDatabaseForTest creates an empty database of this test's own on
// the shared server and returns its URL; the database is dropped when the
// test ends.
func PostgresDatabaseForTest(tb testing.TB) string {
	tb.Helper()
	return pgDatabase(tb, "")
}

func pgDatabase(tb testing.TB, template string) string {
	tb.Helper()
	pg := PostgresForTest(tb)
	name := newDatabaseName()
	if err := pg.CreateDatabase(context.Background(), name, template); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := pg.DropDatabase(context.Background(), name); err != nil {
			tb.Errorf("%v", err)
		}
	})
	return pg.URL(name)
}

// StoreDSNForTest returns where this test's database lives, for
// store.Open, already migrated: a SQLite file in the test's temporary
// folder (a copy of CopySQLiteTemplate's), or (with
// PORTAL_TEST_STORE=postgres) a database of the test's own on the shared
// PostgreSQL server.
func StoreDSNForTest(tb testing.TB) string {
	tb.Helper()
	if StoreDialect(tb) == store.SQLite {
		path := filepath.Join(tb.TempDir(), "portal.db")
		CopySQLiteTemplate(tb, path)
		return path
	}
	pg := PostgresForTest(tb)
	pgShared.templateOnce.Do(func() {
		// Migrating once and copying the result is several times faster
		// than migrating every test's database.
		ctx := context.Background()
		if err := pg.CreateDatabase(ctx, pgTemplate, ""); err != nil {
			pgShared.templateErr = err
			return
		}
		db, err := store.Open(ctx, pg.URL(pgTemplate))
		if err != nil {
			pgShared.templateErr = fmt.Errorf("migrate the template database: %w", err)
			return
		}
		if pgShared.templateErr = db.Close(); pgShared.templateErr == nil {
			pgShared.ready = make(chan readyDB, 1)
			go prepareDatabase(pg)
		}
	})
	if pgShared.templateErr != nil {
		tb.Fatalf("PostgreSQL template database: %v", pgShared.templateErr)
	}
	r := <-pgShared.ready
	go prepareDatabase(pg)
	if r.err != nil {
		tb.Fatal(r.err)
	}
	tb.Cleanup(func() {
		if err := pg.DropDatabase(context.Background(), r.name); err != nil {
			tb.Errorf("%v", err)
		}
	})
	return pg.URL(r.name)
}

// prepareDatabase copies the template into a new database and hands it to
// the next StoreDSNForTest.
func prepareDatabase(pg *peers.Postgres) {
	name := newDatabaseName()
	err := pg.CreateDatabase(context.Background(), name, pgTemplate)
	pgShared.ready <- readyDB{name: name, err: err}
}

func newDatabaseName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "t_" + hex.EncodeToString(b)
}

// StoreForTest opens a database of this test's own (see StoreDSNForTest),
// closed when the test ends.
func StoreForTest(tb testing.TB) *store.DB {
	tb.Helper()
	db, err := store.Open(context.Background(), StoreDSNForTest(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}
