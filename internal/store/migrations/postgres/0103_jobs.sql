-- Scheduled jobs. A job runs on one replica at a time: the runner holds a
-- lease (holder, lease_until) taken with a conditional UPDATE, so replicas
-- sharing this database never run the same job twice at once.
CREATE TABLE jobs (
	name TEXT PRIMARY KEY,
	holder TEXT NOT NULL DEFAULT '',
	lease_until TEXT NOT NULL DEFAULT '',
	next_run TEXT NOT NULL DEFAULT '',
	last_started TEXT NOT NULL DEFAULT '',
	last_finished TEXT NOT NULL DEFAULT '',
	last_error TEXT NOT NULL DEFAULT '',
	runs BIGINT NOT NULL DEFAULT 0
);
