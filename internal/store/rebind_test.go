package store

import "testing"

func TestRebind(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`SELECT a FROM t WHERE b = ? AND c = ?`, `SELECT a FROM t WHERE b = $1 AND c = $2`},
		{`UPDATE p SET x = ?1, y = (SELECT COUNT(*) FROM q WHERE id = ?2) WHERE id = ?2`,
			`UPDATE p SET x = $1, y = (SELECT COUNT(*) FROM q WHERE id = $2) WHERE id = $2`},
		// A bare ? after ?N takes N+1, as in SQLite.
		{`SELECT ?2, ?, ?1`, `SELECT $2, $3, $1`},
		{`SELECT '?', "a?b", ? -- what?` + "\n" + `/* ? */ FROM t`, `SELECT '?', "a?b", $1 -- what?` + "\n" + `/* ? */ FROM t`},
		{`SELECT 'it''s ?', ?`, `SELECT 'it''s ?', $1`},
		{`WHERE created_by LIKE ? AND x NOT like '%a%' ESCAPE '\'`, `WHERE created_by ILIKE $1 AND x NOT ILIKE '%a%' ESCAPE '\'`},
		{`SELECT likes, unlike_me, ILIKE FROM t`, `SELECT likes, unlike_me, ILIKE FROM t`},
		{`SELECT $1, $$ ? LIKE $$, $tag$ ? $tag$, ?`, `SELECT $1, $$ ? LIKE $$, $tag$ ? $tag$, $1`},
		// Subqueries in FROM get a name when they have none.
		{`SELECT COUNT(*) FROM (SELECT 1 FROM t GROUP BY a)`, `SELECT COUNT(*) FROM (SELECT 1 FROM t GROUP BY a) AS _sub1`},
		{`SELECT * FROM (SELECT a FROM t) WHERE a IN (SELECT b FROM (SELECT b FROM u) x) AND f(a, (b))`,
			`SELECT * FROM (SELECT a FROM t) AS _sub1 WHERE a IN (SELECT b FROM (SELECT b FROM u) x) AND f(a, (b))`},
		{`SELECT * FROM (SELECT 1) AS one JOIN (SELECT 2) ON true LEFT JOIN (SELECT 3)`,
			`SELECT * FROM (SELECT 1) AS one JOIN (SELECT 2) AS _sub1 ON true LEFT JOIN (SELECT 3) AS _sub2`},
		{`SELECT DISTINCT a FROM
		(SELECT a FROM t ORDER BY at DESC LIMIT ?)`, `SELECT DISTINCT a FROM
		(SELECT a FROM t ORDER BY at DESC LIMIT $1) AS _sub1`},
	} {
		if got := rebind(tc.in); got != tc.want {
			t.Errorf("rebind(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

func TestRebindCacheStaysBounded(t *testing.T) {
	var c rebindCache
	for i := range rebindCacheSize + 10 {
		q := "SELECT ?" + string(rune('a'+i%26)) + string(rune(i))
		if got := c.rebind(q); got != rebind(q) {
			t.Fatalf("cached rebind differs for %q", q)
		}
	}
	if n := len(c.m); n > rebindCacheSize {
		t.Errorf("cache holds %d statements, want at most %d", n, rebindCacheSize)
	}
}

func BenchmarkRebind(b *testing.B) {
	q := `SELECT id, plan_id, stack, kind FROM runs WHERE stack = ? AND state = ? AND created_by LIKE ? ORDER BY id DESC LIMIT ?`
	for b.Loop() {
		rebind(q)
	}
}
