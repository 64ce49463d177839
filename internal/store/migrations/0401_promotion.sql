-- Promotions: a request to bring one blueprint version to one environment in
-- one or more jurisdictions. Each stack gets its own plan and run; a stack
-- refused by the promotion order records why.
CREATE TABLE promotions (
	id INTEGER PRIMARY KEY,
	blueprint_version TEXT NOT NULL,
	environment TEXT NOT NULL,
	purpose TEXT NOT NULL CHECK (purpose IN ('promote', 'rollback', 'reconcile')),
	created_by TEXT NOT NULL,
	created_at TEXT NOT NULL
);

CREATE TABLE promotion_stacks (
	promotion_id INTEGER NOT NULL REFERENCES promotions(id),
	stack TEXT NOT NULL,
	plan_id INTEGER REFERENCES plans(id),
	run_id INTEGER REFERENCES runs(id),
	refused TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (promotion_id, stack)
);
CREATE INDEX promotion_stacks_plan_idx ON promotion_stacks(plan_id);

-- Approvals and rejections of a plan, bound to the plan's hash. One live
-- decision per person per plan (checked on insert); validity (expiry, superseded by a re-plan) is decided
-- when read.
CREATE TABLE approvals (
	id INTEGER PRIMARY KEY,
	plan_id INTEGER NOT NULL REFERENCES plans(id),
	plan_hash TEXT NOT NULL,
	stack TEXT NOT NULL,
	decision TEXT NOT NULL CHECK (decision IN ('approved', 'rejected')),
	approver_id INTEGER NOT NULL,
	approver TEXT NOT NULL,
	roles TEXT NOT NULL,
	reason TEXT NOT NULL DEFAULT '',
	created_at TEXT NOT NULL,
	expires_at TEXT NOT NULL
);
CREATE INDEX approvals_plan_idx ON approvals(plan_id, approver_id);
CREATE INDEX approvals_stack_idx ON approvals(stack, id);

-- Post-deploy verifications of a stack, after an apply (run_id) or on demand.
-- steps is the JSON list of step results.
CREATE TABLE verifications (
	id INTEGER PRIMARY KEY,
	stack TEXT NOT NULL,
	run_id INTEGER REFERENCES runs(id),
	blueprint_version TEXT NOT NULL DEFAULT '',
	state TEXT NOT NULL CHECK (state IN ('running', 'passed', 'failed', 'incomplete')),
	steps TEXT NOT NULL DEFAULT '[]',
	created_by TEXT NOT NULL,
	created_at TEXT NOT NULL,
	finished_at TEXT NOT NULL DEFAULT ''
);
CREATE INDEX verifications_stack_idx ON verifications(stack, id);
CREATE INDEX verifications_run_idx ON verifications(run_id);

-- Drift checks: a plan of the version in force, never applied.
CREATE TABLE drift_checks (
	id INTEGER PRIMARY KEY,
	stack TEXT NOT NULL,
	plan_id INTEGER REFERENCES plans(id),
	blueprint_version TEXT NOT NULL DEFAULT '',
	state TEXT NOT NULL CHECK (state IN ('clean', 'drifted', 'error')),
	drifted INTEGER NOT NULL DEFAULT 0,
	error TEXT NOT NULL DEFAULT '',
	checked_at TEXT NOT NULL
);
CREATE INDEX drift_checks_stack_idx ON drift_checks(stack, id);
CREATE INDEX drift_checks_plan_idx ON drift_checks(plan_id);

-- The portal's own list of ops notifications, and whether publishing to the
-- stack's ops topic worked.
CREATE TABLE notifications (
	id INTEGER PRIMARY KEY,
	kind TEXT NOT NULL,
	stack TEXT NOT NULL DEFAULT '',
	subject TEXT NOT NULL,
	message TEXT NOT NULL,
	link TEXT NOT NULL DEFAULT '',
	topic_arn TEXT NOT NULL DEFAULT '',
	message_id TEXT NOT NULL DEFAULT '',
	publish_error TEXT NOT NULL DEFAULT '',
	created_at TEXT NOT NULL
);
CREATE INDEX notifications_stack_idx ON notifications(stack, id);
