-- Sign-in limits that an attacker cannot turn against the account's owner:
-- failures are counted per account and source together, per source, and per
-- account; the per-account limit does not apply to a browser the account
-- has signed in from before (a known device).
--
-- login_attempts.ip now holds the source a failure is counted against: the
-- IPv4 address, or the IPv6 /64 network. Emails are stored lower-case.
UPDATE login_attempts SET email = lower(email);
CREATE INDEX login_attempts_email_ip_idx ON login_attempts(email, ip, at);

-- Browsers that completed a sign-in: a random token in a cookie, stored
-- here as its SHA-256.
CREATE TABLE known_devices (
	id INTEGER PRIMARY KEY,
	user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	token_hash TEXT NOT NULL UNIQUE,
	created_at TEXT NOT NULL,
	last_used_at TEXT NOT NULL
);
CREATE INDEX known_devices_user_idx ON known_devices(user_id, last_used_at);
