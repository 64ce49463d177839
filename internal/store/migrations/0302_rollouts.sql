-- Roll-outs: one blueprint version applied to an environment's layer and
-- its three jurisdiction stacks in the rounds their cross-stack references
-- need (the layer's zone, the stacks, the layer's routing). Each step is one
-- stack's plan and run in one round.
CREATE TABLE rollouts (
	id INTEGER PRIMARY KEY,
	environment TEXT NOT NULL,
	blueprint_version TEXT NOT NULL,
	state TEXT NOT NULL CHECK (state IN ('running', 'waiting', 'succeeded', 'failed')),
	message TEXT NOT NULL DEFAULT '',
	created_by TEXT NOT NULL,
	created_at TEXT NOT NULL,
	finished_at TEXT NOT NULL DEFAULT ''
);
CREATE INDEX rollouts_active_idx ON rollouts(state, environment);

CREATE TABLE rollout_steps (
	rollout_id INTEGER NOT NULL REFERENCES rollouts(id),
	position INTEGER NOT NULL,
	round INTEGER NOT NULL,
	stack TEXT NOT NULL,
	plan_id INTEGER REFERENCES plans(id),
	run_id INTEGER REFERENCES runs(id),
	state TEXT NOT NULL DEFAULT 'pending',
	message TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (rollout_id, position)
);
