-- CloudTrail events, one row per event id, with the fields the explorer
-- filters on and the raw record as delivered. Times are Unix milliseconds
-- (not store.Time text): this table holds millions of rows and every
-- index on it carries the time, so 8 bytes instead of 30 matters.
CREATE TABLE activity_events (
	id INTEGER PRIMARY KEY,
	event_id TEXT NOT NULL UNIQUE,
	at INTEGER NOT NULL,
	account TEXT NOT NULL,
	region TEXT NOT NULL,
	source TEXT NOT NULL,
	name TEXT NOT NULL,
	read_only INTEGER NOT NULL,
	identity_type TEXT NOT NULL DEFAULT '',
	principal_arn TEXT NOT NULL DEFAULT '',
	user_name TEXT NOT NULL DEFAULT '',
	access_key TEXT NOT NULL DEFAULT '',
	session TEXT NOT NULL DEFAULT '',
	source_ip TEXT NOT NULL DEFAULT '',
	error_code TEXT NOT NULL DEFAULT '',
	request_id TEXT NOT NULL DEFAULT '',
	-- ARNs and names the event touched, one per line.
	resources TEXT NOT NULL DEFAULT '',
	-- Why the event is sensitive; '' when it is not.
	sensitive TEXT NOT NULL DEFAULT '',
	-- Where it came from: the S3 key of its log file, or 'lookup:REGION'.
	origin TEXT NOT NULL,
	-- 1 when the sandbox generated it (never real activity).
	sandbox INTEGER NOT NULL DEFAULT 0,
	raw TEXT NOT NULL
);
CREATE INDEX activity_events_at_idx ON activity_events(at);
CREATE INDEX activity_events_name_idx ON activity_events(name, at);
CREATE INDEX activity_events_user_idx ON activity_events(user_name, at);
CREATE INDEX activity_events_sensitive_idx ON activity_events(at) WHERE sensitive != '';

-- Ingestion checkpoints: the last S3 key read under each prefix (keys sort
-- by delivery time), or the newest event time seen through LookupEvents.
CREATE TABLE activity_checkpoints (
	source TEXT PRIMARY KEY,
	position TEXT NOT NULL,
	updated_at TEXT NOT NULL
);

-- Log file integrity validations (on demand and scheduled).
CREATE TABLE activity_validations (
	id INTEGER PRIMARY KEY,
	started_at TEXT NOT NULL,
	finished_at TEXT NOT NULL,
	started_by TEXT NOT NULL,
	ok INTEGER NOT NULL,
	digests INTEGER NOT NULL,
	log_files INTEGER NOT NULL,
	problems INTEGER NOT NULL,
	-- JSON: the full result with every finding.
	result TEXT NOT NULL
);

-- Evidence reports as handed to auditors; body is the exact HTML whose
-- SHA-256 is sha256.
CREATE TABLE activity_reports (
	id INTEGER PRIMARY KEY,
	jurisdiction TEXT NOT NULL,
	generated_at TEXT NOT NULL,
	generated_by TEXT NOT NULL,
	passed INTEGER NOT NULL,
	failed INTEGER NOT NULL,
	unknown INTEGER NOT NULL,
	sha256 TEXT NOT NULL,
	body TEXT NOT NULL
);
CREATE INDEX activity_reports_jurisdiction_idx ON activity_reports(jurisdiction, id);
