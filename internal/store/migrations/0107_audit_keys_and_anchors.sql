-- The audit chain is sealed with HMAC-SHA256 under a key kept outside the
-- database; key_id names the key of each record ("" for records from before
-- keying, which keep their unkeyed SHA-256 hashes).
ALTER TABLE audit_log ADD COLUMN key_id TEXT NOT NULL DEFAULT '';

-- Heads of the chain this portal wrote to the anchor store (S3 with Object
-- Lock). The anchor store is the record; this table only says what was
-- sent, for the audit page and to skip an unchanged head.
CREATE TABLE audit_anchors (
	id INTEGER PRIMARY KEY,
	seq INTEGER NOT NULL,
	hash TEXT NOT NULL,
	location TEXT NOT NULL,
	anchored_at TEXT NOT NULL,
	retain_until TEXT NOT NULL
);
CREATE INDEX audit_anchors_seq_idx ON audit_anchors(seq);
