-- What the portal knows about the AWS resources it manages, per stack.
CREATE TABLE stack_resources (
	stack TEXT NOT NULL,
	resource_id TEXT NOT NULL,
	type TEXT NOT NULL,
	region TEXT NOT NULL,
	physical_id TEXT NOT NULL,
	outputs TEXT NOT NULL DEFAULT '{}',
	version TEXT NOT NULL DEFAULT '',
	updated_at TEXT NOT NULL,
	PRIMARY KEY (stack, resource_id)
);

-- Stored plans: the reviewed diff a run applies.
CREATE TABLE plans (
	id INTEGER PRIMARY KEY,
	stack TEXT NOT NULL,
	kind TEXT NOT NULL CHECK (kind IN ('apply', 'destroy')),
	version TEXT NOT NULL,
	blueprint_version TEXT NOT NULL DEFAULT '',
	hash TEXT NOT NULL,
	body TEXT NOT NULL,
	blocking INTEGER NOT NULL DEFAULT 0,
	calls INTEGER NOT NULL DEFAULT 0,
	created_by TEXT NOT NULL,
	created_at TEXT NOT NULL
);
CREATE INDEX plans_stack_idx ON plans(stack, id);

-- Runs execute plans, step by step; a restart finds them here.
CREATE TABLE runs (
	id INTEGER PRIMARY KEY,
	plan_id INTEGER NOT NULL REFERENCES plans(id),
	stack TEXT NOT NULL,
	kind TEXT NOT NULL,
	version TEXT NOT NULL,
	state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted')),
	created_by TEXT NOT NULL,
	created_at TEXT NOT NULL,
	started_at TEXT NOT NULL DEFAULT '',
	finished_at TEXT NOT NULL DEFAULT '',
	error TEXT NOT NULL DEFAULT '',
	cancel_requested INTEGER NOT NULL DEFAULT 0,
	attempt INTEGER NOT NULL DEFAULT 0,
	calls INTEGER NOT NULL DEFAULT 0,
	holder TEXT NOT NULL DEFAULT '',
	lease_until TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runs_stack_idx ON runs(stack, id);
CREATE INDEX runs_state_idx ON runs(state, id);

CREATE TABLE run_steps (
	run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
	resource_id TEXT NOT NULL,
	type TEXT NOT NULL,
	region TEXT NOT NULL,
	action TEXT NOT NULL,
	state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed', 'skipped', 'interrupted')),
	started_at TEXT NOT NULL DEFAULT '',
	finished_at TEXT NOT NULL DEFAULT '',
	error TEXT NOT NULL DEFAULT '',
	request_ids TEXT NOT NULL DEFAULT '[]',
	calls INTEGER NOT NULL DEFAULT 0,
	position INTEGER NOT NULL,
	PRIMARY KEY (run_id, resource_id)
);

CREATE TABLE run_logs (
	id INTEGER PRIMARY KEY,
	run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
	at TEXT NOT NULL,
	resource_id TEXT NOT NULL DEFAULT '',
	line TEXT NOT NULL
);
CREATE INDEX run_logs_run_idx ON run_logs(run_id, id);
