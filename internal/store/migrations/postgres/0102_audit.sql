-- The tamper-evident audit trail: each record carries the SHA-256 of the
-- previous record, so a changed or deleted row breaks the chain.
CREATE TABLE audit_log (
	seq BIGINT PRIMARY KEY,
	at TEXT NOT NULL,
	actor TEXT NOT NULL,
	action TEXT NOT NULL,
	target TEXT NOT NULL DEFAULT '',
	source_ip TEXT NOT NULL DEFAULT '',
	request_id TEXT NOT NULL DEFAULT '',
	details TEXT NOT NULL DEFAULT '{}',
	prev_hash TEXT NOT NULL,
	hash TEXT NOT NULL
);
CREATE INDEX audit_log_actor_idx ON audit_log(actor, seq);
CREATE INDEX audit_log_action_idx ON audit_log(action, seq);
CREATE INDEX audit_log_at_idx ON audit_log(at);
