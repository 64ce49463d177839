-- A change of credentials (password, reset, two-factor, roles) ends the
-- account's other sessions: every session remembers the version it was
-- signed in under, and a session of an older version is void.
ALTER TABLE users ADD COLUMN credentials_version BIGINT NOT NULL DEFAULT 0;

-- API tokens expire (a token made before expiry existed expires 90 days
-- after it was made: expires_at NULL), are renewable for their life in
-- days, and carry scopes ("all", "read", or areas, each optionally
-- ":read"), always within their owner's current roles. Tokens made before
-- scopes existed keep what they had: all.
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
ALTER TABLE api_tokens ADD COLUMN life_days BIGINT NOT NULL DEFAULT 90;
ALTER TABLE api_tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT 'all';
ALTER TABLE api_tokens ADD COLUMN revoked_reason TEXT NOT NULL DEFAULT '';
