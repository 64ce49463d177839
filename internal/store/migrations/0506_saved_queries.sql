-- Saved searches of the activity explorer and the audit trail: a name, the
-- page's path and its query string, kept for their owner and, when shared,
-- offered to everyone who may open the page. Saving again under the same
-- name replaces the query.
CREATE TABLE saved_queries (
	id INTEGER PRIMARY KEY,
	owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	owner TEXT NOT NULL,
	page TEXT NOT NULL,
	name TEXT NOT NULL,
	query TEXT NOT NULL,
	shared INTEGER NOT NULL DEFAULT 0,
	created_at TEXT NOT NULL,
	UNIQUE (owner_id, page, name)
);
CREATE INDEX saved_queries_page_idx ON saved_queries(page, shared);
