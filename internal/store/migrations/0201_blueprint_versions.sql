-- Blueprint versions: the whole set (architecture + nine stack files),
-- immutable and content-addressed. id is blueprints.Digest of the set; seq
-- numbers versions in the order they were saved, for people and paging.
-- File bytes are kept as written (comments included) in content-addressed
-- blobs, so identical files shared by many versions are stored once.
CREATE TABLE blueprint_versions (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	id TEXT NOT NULL UNIQUE,
	parent_id TEXT REFERENCES blueprint_versions(id),
	author TEXT NOT NULL,
	message TEXT NOT NULL,
	created_at TEXT NOT NULL
);

CREATE TABLE blueprint_blobs (
	sha256 TEXT PRIMARY KEY,
	content BLOB NOT NULL
);

CREATE TABLE blueprint_files (
	version_id TEXT NOT NULL REFERENCES blueprint_versions(id),
	path TEXT NOT NULL,
	sha256 TEXT NOT NULL REFERENCES blueprint_blobs(sha256),
	PRIMARY KEY (version_id, path)
);

-- A saved version never changes: refuse updates and deletes outright.
CREATE TRIGGER blueprint_versions_no_update BEFORE UPDATE ON blueprint_versions
BEGIN SELECT RAISE(ABORT, 'blueprint versions are immutable'); END;
CREATE TRIGGER blueprint_versions_no_delete BEFORE DELETE ON blueprint_versions
BEGIN SELECT RAISE(ABORT, 'blueprint versions are immutable'); END;
CREATE TRIGGER blueprint_files_no_update BEFORE UPDATE ON blueprint_files
BEGIN SELECT RAISE(ABORT, 'blueprint versions are immutable'); END;
CREATE TRIGGER blueprint_files_no_delete BEFORE DELETE ON blueprint_files
BEGIN SELECT RAISE(ABORT, 'blueprint versions are immutable'); END;
CREATE TRIGGER blueprint_blobs_no_update BEFORE UPDATE ON blueprint_blobs
BEGIN SELECT RAISE(ABORT, 'blueprint versions are immutable'); END;

-- Guardrail exceptions: an owned, reasoned, time-limited deviation from one
-- rule for one resource (or '' for stack-wide) of one stack. Revoking sets
-- revoked_at; rows are never deleted, so the history stays readable.
CREATE TABLE guardrail_exceptions (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	rule_id TEXT NOT NULL,
	stack TEXT NOT NULL,
	resource TEXT NOT NULL DEFAULT '',
	owner TEXT NOT NULL,
	reason TEXT NOT NULL,
	expires_at TEXT NOT NULL,
	created_by TEXT NOT NULL,
	created_at TEXT NOT NULL,
	revoked_by TEXT NOT NULL DEFAULT '',
	revoked_at TEXT NOT NULL DEFAULT ''
);
CREATE INDEX guardrail_exceptions_stack ON guardrail_exceptions (stack, expires_at);
