-- Facts about this installation that every replica must agree on, such as
-- the fingerprint of the key that seals two-factor secrets (never the key).
CREATE TABLE portal_settings (
	name TEXT PRIMARY KEY,
	value TEXT NOT NULL,
	updated_at TEXT NOT NULL
);
