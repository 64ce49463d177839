package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// IsPostgresURL reports whether dsn names a PostgreSQL database
// (postgres:// or postgresql://) rather than a SQLite file.
func IsPostgresURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Redact returns dsn with any password replaced, for logs and messages.
func Redact(dsn string) string {
	if !IsPostgresURL(dsn) {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://(unreadable address)"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// pgPoolSize bounds a replica's connections: with the default
// max_connections of 100, several replicas fit with room to spare.
const pgPoolSize = 20

func openPostgres(ctx context.Context, dsn string) (*DB, error) {
	name := Redact(dsn)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", name, err)
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "portal"
	}
	cfg.RuntimeParams["timezone"] = "UTC"
	sdb := sql.OpenDB(&pgConnector{base: stdlib.GetConnector(*cfg)})
	sdb.SetMaxOpenConns(pgPoolSize)
	sdb.SetMaxIdleConns(pgPoolSize)
	sdb.SetConnMaxIdleTime(5 * time.Minute)
	if err := sdb.PingContext(ctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("store: open %s: %w", name, err)
	}
	var version int
	if err := sdb.QueryRowContext(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&version); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("store: open %s: %w", name, err)
	}
	if version < 150000 {
		sdb.Close()
		return nil, fmt.Errorf("store: open %s: PostgreSQL %d.%d is too old: the portal needs 15 or newer", name, version/10000, version%10000)
	}
	return &DB{DB: sdb, dialect: Postgres, name: name}, nil
}

// pgConnector opens pgx connections that take the portal's SQL as written
// for SQLite: see rebind.
type pgConnector struct {
	base  driver.Connector
	cache rebindCache
}

func (c *pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.base.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := conn.(*stdlib.Conn)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("store: pgx returned a %T, not a *stdlib.Conn", conn)
	}
	return &pgConn{Conn: sc, cache: &c.cache}, nil
}

func (c *pgConnector) Driver() driver.Driver { return c.base.Driver() }

// pgConn is a pgx connection (every optional database/sql interface it
// implements, through embedding) whose statements are rebound and whose
// arguments are converted as SQLite's driver would store them.
type pgConn struct {
	*stdlib.Conn
	cache *rebindCache
}

// nativeKey marks a context whose statements are PostgreSQL's own (the
// migrations, store's own locking): they are sent as written.
type nativeKey struct{}

func native(ctx context.Context) context.Context { return context.WithValue(ctx, nativeKey{}, true) }

func (c *pgConn) sql(ctx context.Context, query string) string {
	if ctx.Value(nativeKey{}) != nil {
		return query
	}
	return c.cache.rebind(query)
}

func (c *pgConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *pgConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	st, err := c.Conn.PrepareContext(ctx, c.sql(ctx, query))
	if err != nil {
		return nil, err
	}
	return &pgStmt{Stmt: st.(*stdlib.Stmt)}, nil
}

func (c *pgConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if err := convertArgs(args); err != nil {
		return nil, err
	}
	return c.Conn.ExecContext(ctx, c.sql(ctx, query), args)
}

func (c *pgConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if err := convertArgs(args); err != nil {
		return nil, err
	}
	return c.Conn.QueryContext(ctx, c.sql(ctx, query), args)
}

type pgStmt struct{ *stdlib.Stmt }

func (s *pgStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if err := convertArgs(args); err != nil {
		return nil, err
	}
	return s.Stmt.ExecContext(ctx, args)
}

func (s *pgStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if err := convertArgs(args); err != nil {
		return nil, err
	}
	return s.Stmt.QueryContext(ctx, args)
}

// sqliteTimeLayout is how SQLite's driver (with _time_format=sqlite) writes
// a time.Time argument; PostgreSQL reads it as a timestamp too.
const sqliteTimeLayout = "2006-01-02 15:04:05.999999999-07:00"

// convertArgs gives PostgreSQL the values SQLite would have stored: the
// portal keeps flags in integer columns (SQLite has no boolean type), so
// a Go bool becomes 1 or 0, and a time.Time becomes the text SQLite's
// driver writes.
func convertArgs(args []driver.NamedValue) error {
	for i := range args {
		v := args[i].Value
		if val, ok := v.(driver.Valuer); ok {
			var err error
			if v, err = val.Value(); err != nil {
				return err
			}
		}
		switch x := v.(type) {
		case bool:
			if x {
				args[i].Value = int64(1)
			} else {
				args[i].Value = int64(0)
			}
		case time.Time:
			args[i].Value = x.Format(sqliteTimeLayout)
		default:
			args[i].Value = v
		}
	}
	return nil
}

// pgUniqueViolation is PostgreSQL's SQLSTATE for a unique index refusing
// a row.
const pgUniqueViolation = "23505"

func isPgCode(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}

// pgxConn runs fn with the pgx connection under c (for COPY, which
// database/sql has no words for).
func pgxConn(c *sql.Conn, fn func(*pgx.Conn) error) error {
	return c.Raw(func(dc any) error {
		pc, ok := dc.(*pgConn)
		if !ok {
			return fmt.Errorf("store: not a PostgreSQL connection (%T)", dc)
		}
		return fn(pc.Conn.Conn())
	})
}

// WithPgx runs fn with the pgx connection under conn (inside the
// transaction open on it, if any), for what database/sql has no words
// for: COPY with a type map of the caller's.
func WithPgx(conn *sql.Conn, fn func(*pgx.Conn) error) error { return pgxConn(conn, fn) }

// CopyFrom writes rows into table's columns with PostgreSQL's COPY, on
// conn (inside the transaction open on it, if any), and returns how many
// it wrote. Values are pgx's: int64 for BIGINT, string for TEXT.
func CopyFrom(ctx context.Context, conn *sql.Conn, table string, columns []string, rows [][]any) (int64, error) {
	var n int64
	err := pgxConn(conn, func(c *pgx.Conn) error {
		var err error
		n, err = c.CopyFrom(ctx, pgx.Identifier{table}, columns, pgx.CopyFromRows(rows))
		return err
	})
	return n, err
}

// errBadConn, returned from sql.Conn.Raw, makes database/sql close the
// connection instead of pooling it.
var errBadConn = driver.ErrBadConn
