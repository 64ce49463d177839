-- Failures and writes are a small part of all events, and the explorer
-- filters on them with others (errors from an IP in an account, writes
-- to a resource): these partial indexes give those searches their rows
-- in time order without reading every event of the period.
CREATE INDEX activity_events_errors_idx ON activity_events(at) WHERE error_code != '';
CREATE INDEX activity_events_writes_idx ON activity_events(at) WHERE read_only = 0;
