-- Per-snapshot summary (counts per service and the values filter menus
-- offer), computed once when a discovery is stored, so the Overview and an
-- unfiltered inventory page never count 100,000 rows.
ALTER TABLE inventory_snapshots ADD COLUMN summary TEXT NOT NULL DEFAULT '';

-- violates mirrors violation <> '' so that filtered counts are answered
-- from one covering index.
ALTER TABLE inventory_resources ADD COLUMN violates BIGINT NOT NULL DEFAULT 0;
UPDATE inventory_resources SET violates = CASE WHEN violation <> '' THEN 1 ELSE 0 END;
CREATE INDEX inventory_resources_counts_idx ON inventory_resources(snapshot_id, service, managed, violates, environment, jurisdiction, region, type, stack);
DROP INDEX inventory_resources_snapshot_idx;
DROP INDEX inventory_resources_env_idx;
DROP INDEX inventory_resources_region_idx;
DROP INDEX inventory_resources_stack_idx;
CREATE INDEX inventory_resources_snapshot_idx ON inventory_resources(snapshot_id);
