-- Passkeys and security keys (WebAuthn) as a second factor beside TOTP.
-- credential is the library's credential record as JSON (public key, sign
-- counter, flags, transports, authenticator AAGUID); nothing secret.
CREATE TABLE webauthn_credentials (
	id INTEGER PRIMARY KEY,
	user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	credential_id TEXT NOT NULL UNIQUE,
	name TEXT NOT NULL,
	credential TEXT NOT NULL,
	created_at TEXT NOT NULL,
	last_used_at TEXT
);
CREATE INDEX webauthn_credentials_user_idx ON webauthn_credentials(user_id);

-- The WebAuthn user handle: random, so it says nothing about the account.
ALTER TABLE users ADD COLUMN webauthn_handle TEXT NOT NULL DEFAULT '';
