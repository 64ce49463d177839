-- Single sign-on: the staff accounts an OpenID provider vouches for. An
-- account with a row here signs in through the provider only (its portal
-- password is unusable), takes its roles from the provider's groups, and
-- keeps access only while the provider keeps vouching for it: the refresh
-- token (sealed with the secret key) is redeemed every few minutes, and a
-- refusal suspends the account until its next sign-in.
CREATE TABLE sso_identities (
	user_id BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
	issuer TEXT NOT NULL,
	subject TEXT NOT NULL,
	-- What the provider last said: email, groups (JSON list).
	email TEXT NOT NULL,
	groups TEXT NOT NULL DEFAULT '[]',
	refresh_token TEXT NOT NULL DEFAULT '',
	access_token TEXT NOT NULL DEFAULT '',
	access_expires_at TEXT,
	-- active, or suspended (the provider refused, or the groups map to no
	-- role) with the reason.
	state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'suspended')),
	reason TEXT NOT NULL DEFAULT '',
	-- verified_at: the last time the provider vouched for the account;
	-- checked_at: the last time the portal asked; check_error: why that
	-- ask got no answer ('' when it did).
	verified_at TEXT NOT NULL,
	checked_at TEXT NOT NULL,
	check_error TEXT NOT NULL DEFAULT '',
	created_at TEXT NOT NULL,
	last_sign_in_at TEXT NOT NULL,
	UNIQUE (issuer, subject)
);
CREATE INDEX sso_identities_due_idx ON sso_identities (state, checked_at);
