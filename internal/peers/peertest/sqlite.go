package peertest

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"portal/internal/store"
)

// sqliteShared is the per-test-binary SQLite template: a database file
// migrated once by store.Open, which the tests' databases are copies of
// (migrating costs about half a second of CPU under the race detector;
// copying the file, a millisecond).
var sqliteShared struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// CopySQLiteTemplate writes a migrated, empty SQLite database to path (a
// file that must not exist yet), as store.Open would leave it on first
// use. The portal opening path later finds every migration applied and
// starts as on a new database.
func CopySQLiteTemplate(tb testing.TB, path string) {
	tb.Helper()
	sqliteShared.once.Do(func() {
		sqliteShared.dir, sqliteShared.err = os.MkdirTemp("", "portal-sqlite-template-")
		if sqliteShared.err != nil {
			return
		}
		p := filepath.Join(sqliteShared.dir, "portal.db")
		db, err := store.Open(context.Background(), p)
		if err != nil {
			sqliteShared.err = err
			return
		}
		// Closing the last connection checkpoints the write-ahead log
		// into the file and removes it: the file alone is the database.
		if sqliteShared.err = db.Close(); sqliteShared.err == nil {
			sqliteShared.path = p
		}
	})
	if sqliteShared.err != nil {
		tb.Fatalf("SQLite template database: %v", sqliteShared.err)
	}
	if err := copyFile(sqliteShared.path, path); err != nil {
		tb.Fatalf("SQLite template database: %v", err)
	}
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", from, err)
	}
	return out.Close()
}

// removeSQLiteTemplate deletes the template (StopAll).
func removeSQLiteTemplate() error {
	if sqliteShared.dir == "" {
		return nil
	}
	return os.RemoveAll(sqliteShared.dir)
}
