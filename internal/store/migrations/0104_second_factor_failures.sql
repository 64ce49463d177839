-- Wrong second-factor codes, counted per account so that a stolen password
-- does not buy unlimited guesses at the code (each pending sign-in is also
-- limited, in the session).
CREATE TABLE second_factor_failures (
	id INTEGER PRIMARY KEY,
	user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	at TEXT NOT NULL
);
CREATE INDEX second_factor_failures_user_idx ON second_factor_failures(user_id, at);
