-- The explorer says how many stored events the sandbox generated: this
-- partial index counts them without reading every event (and is empty
-- outside a sandbox).
CREATE INDEX activity_events_sandbox_idx ON activity_events(at) WHERE sandbox = 1;
