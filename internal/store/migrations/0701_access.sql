-- Staff AWS access (package access). A grant is one person holding one
-- staff role in one environment account: standing, or an elevation that
-- expires. The person is in the role's IAM group exactly while at least
-- one of their grants of it is active.
CREATE TABLE access_grants (
	id INTEGER PRIMARY KEY,
	user_id INTEGER NOT NULL REFERENCES users(id),
	environment TEXT NOT NULL,
	role TEXT NOT NULL,
	kind TEXT NOT NULL CHECK (kind IN ('standing', 'elevation')),
	state TEXT NOT NULL CHECK (state IN ('pending', 'active', 'rejected', 'revoked', 'expired')),
	reason TEXT NOT NULL DEFAULT '',
	-- Elevations: the duration asked for, in minutes.
	minutes INTEGER NOT NULL DEFAULT 0,
	requested_by_id INTEGER NOT NULL,
	requested_by TEXT NOT NULL,
	requested_at TEXT NOT NULL,
	decided_by_id INTEGER NOT NULL DEFAULT 0,
	decided_by TEXT NOT NULL DEFAULT '',
	decided_at TEXT NOT NULL DEFAULT '',
	decision_note TEXT NOT NULL DEFAULT '',
	active_from TEXT NOT NULL DEFAULT '',
	-- '' for standing grants; when the elevation ends by itself.
	expires_at TEXT NOT NULL DEFAULT '',
	ended_at TEXT NOT NULL DEFAULT '',
	ended_by TEXT NOT NULL DEFAULT '',
	end_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX access_grants_state_idx ON access_grants(state, expires_at);
CREATE INDEX access_grants_key_idx ON access_grants(user_id, environment, role, state);
-- At most one standing grant per person, environment and role, pending or active.
CREATE UNIQUE INDEX access_grants_one_standing_idx ON access_grants(user_id, environment, role)
	WHERE kind = 'standing' AND state IN ('pending', 'active');

-- Memberships whose AWS state must be brought in line with the grants:
-- written in the transaction that changes a grant, deleted once IAM
-- agrees. The expiry job retries what is left.
CREATE TABLE access_sync (
	user_id INTEGER NOT NULL,
	environment TEXT NOT NULL,
	role TEXT NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0,
	last_error TEXT NOT NULL DEFAULT '',
	updated_at TEXT NOT NULL,
	PRIMARY KEY (user_id, environment, role)
);

-- Plans of the staff-roles stacks and who approved them (prod needs
-- another admin's approval of the exact plan hash).
CREATE TABLE access_role_plans (
	plan_id INTEGER PRIMARY KEY,
	environment TEXT NOT NULL,
	hash TEXT NOT NULL,
	created_by_id INTEGER NOT NULL,
	created_by TEXT NOT NULL,
	created_at TEXT NOT NULL,
	approved_by_id INTEGER NOT NULL DEFAULT 0,
	approved_by TEXT NOT NULL DEFAULT '',
	approved_at TEXT NOT NULL DEFAULT '',
	run_id INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX access_role_plans_env_idx ON access_role_plans(environment, plan_id);

-- Access review campaigns: every active grant when the review opened,
-- with when its principal last used AWS, and the reviewer's decision.
CREATE TABLE access_reviews (
	id INTEGER PRIMARY KEY,
	title TEXT NOT NULL,
	opened_by TEXT NOT NULL,
	opened_at TEXT NOT NULL,
	closed_by TEXT NOT NULL DEFAULT '',
	closed_at TEXT NOT NULL DEFAULT ''
);
CREATE TABLE access_review_items (
	id INTEGER PRIMARY KEY,
	review_id INTEGER NOT NULL REFERENCES access_reviews(id),
	grant_id INTEGER NOT NULL REFERENCES access_grants(id),
	user_email TEXT NOT NULL,
	portal_roles TEXT NOT NULL,
	environment TEXT NOT NULL,
	role TEXT NOT NULL,
	kind TEXT NOT NULL,
	granted_at TEXT NOT NULL,
	expires_at TEXT NOT NULL DEFAULT '',
	principal TEXT NOT NULL,
	-- '' when no ingested CloudTrail event of the principal is known.
	last_used TEXT NOT NULL DEFAULT '',
	decision TEXT NOT NULL DEFAULT '' CHECK (decision IN ('', 'keep', 'revoke')),
	decided_by TEXT NOT NULL DEFAULT '',
	decided_at TEXT NOT NULL DEFAULT '',
	note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX access_review_items_review_idx ON access_review_items(review_id, id);
