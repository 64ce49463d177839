-- Inventory: each discovery of the estate is a snapshot of every resource
-- found, so two discoveries can be compared.
CREATE TABLE inventory_snapshots (
	id INTEGER PRIMARY KEY,
	state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'partial', 'failed')),
	requested_by TEXT NOT NULL,
	created_at TEXT NOT NULL,
	started_at TEXT NOT NULL DEFAULT '',
	finished_at TEXT NOT NULL DEFAULT '',
	tasks_total INTEGER NOT NULL DEFAULT 0,
	tasks_done INTEGER NOT NULL DEFAULT 0,
	last_task TEXT NOT NULL DEFAULT '',
	calls INTEGER NOT NULL DEFAULT 0,
	resources INTEGER NOT NULL DEFAULT 0,
	errors TEXT NOT NULL DEFAULT '[]',
	took_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX inventory_snapshots_state_idx ON inventory_snapshots(state, id);

-- Rows are inserted in display order (environment, region, service, type,
-- ARN), so id order is list order and pages are keyset-paginated on id.
CREATE TABLE inventory_resources (
	id INTEGER PRIMARY KEY,
	snapshot_id INTEGER NOT NULL REFERENCES inventory_snapshots(id) ON DELETE CASCADE,
	arn TEXT NOT NULL,
	environment TEXT NOT NULL,
	account_id TEXT NOT NULL,
	region TEXT NOT NULL,
	service TEXT NOT NULL,
	type TEXT NOT NULL,
	name TEXT NOT NULL,
	managed INTEGER NOT NULL,
	stack TEXT NOT NULL DEFAULT '',
	portal_resource TEXT NOT NULL DEFAULT '',
	version TEXT NOT NULL DEFAULT '',
	jurisdiction TEXT NOT NULL DEFAULT '',
	jurisdiction_by_region INTEGER NOT NULL DEFAULT 0,
	violation TEXT NOT NULL DEFAULT '',
	note TEXT NOT NULL DEFAULT '',
	tags TEXT NOT NULL DEFAULT '{}',
	settings TEXT NOT NULL DEFAULT '{}',
	UNIQUE (snapshot_id, arn)
);
CREATE INDEX inventory_resources_snapshot_idx ON inventory_resources(snapshot_id, service, type);
CREATE INDEX inventory_resources_env_idx ON inventory_resources(snapshot_id, environment);
CREATE INDEX inventory_resources_region_idx ON inventory_resources(snapshot_id, region);
CREATE INDEX inventory_resources_stack_idx ON inventory_resources(snapshot_id, stack);

-- Tags, one row each, for the tag filter.
CREATE TABLE inventory_tags (
	resource INTEGER NOT NULL REFERENCES inventory_resources(id) ON DELETE CASCADE,
	key TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (resource, key)
);
CREATE INDEX inventory_tags_kv_idx ON inventory_tags(key, value, resource);
