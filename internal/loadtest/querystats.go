package loadtest

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// QueryStat is one statement's share of a load on PostgreSQL, from
// pg_stat_statements.
type QueryStat struct {
	Query string `json:"query"` // normalized, whitespace folded, cut at 240 characters
	Calls int64  `json:"calls"`
	// PerRequest is calls divided by the page requests the load made.
	PerRequest float64 `json:"per_request"`
	TotalMs    float64 `json:"total_ms"`
	MeanMs     float64 `json:"mean_ms"`
}

// pgStatSettings load pg_stat_statements into a server, so a load can be
// broken down into the statements each page request costs.
var pgStatSettings = []string{"shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track=all", "pg_stat_statements.max=5000"}

// queryStats reads pg_stat_statements of one database.
type queryStats struct{ url, db string }

// reset creates the extension if needed and forgets what was counted.
func (q queryStats) reset(ctx context.Context) error {
	return q.with(ctx, func(c *pgx.Conn) error {
		if _, err := c.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err != nil {
			return err
		}
		_, err := c.Exec(ctx, "SELECT pg_stat_statements_reset()")
		return err
	})
}

// read returns every statement run on the database since reset (this
// harness's own excluded), the most called first, and their total calls.
func (q queryStats) read(ctx context.Context, requests int) ([]QueryStat, int64, error) {
	var out []QueryStat
	var total int64
	err := q.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `
			SELECT left(regexp_replace(s.query, '\s+', ' ', 'g'), 240), s.calls, s.total_exec_time, s.mean_exec_time
			FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
			WHERE d.datname = $1 AND s.query NOT LIKE '%pg_stat_statements%'
			ORDER BY s.calls DESC, s.total_exec_time DESC`, q.db)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s QueryStat
			if err := rows.Scan(&s.Query, &s.Calls, &s.TotalMs, &s.MeanMs); err != nil {
				return err
			}
			if requests > 0 {
				s.PerRequest = float64(s.Calls) / float64(requests)
			}
			total += s.Calls
			out = append(out, s)
		}
		return rows.Err()
	})
	return out, total, err
}

func (q queryStats) with(ctx context.Context, fn func(*pgx.Conn) error) error {
	c, err := pgx.Connect(ctx, q.url)
	if err != nil {
		return fmt.Errorf("loadtest: pg_stat_statements: %w", err)
	}
	defer c.Close(ctx)
	if err := fn(c); err != nil {
		return fmt.Errorf("loadtest: pg_stat_statements: %w", err)
	}
	return nil
}
