-- Emergency changes: a plan that brings a version to test or prod before it
-- went the normal road (applied and verified in the environment below), for
-- a named reason. It needs one admin and one compliance officer to approve,
-- and the Overview shows it until the version has gone the normal road.
CREATE TABLE emergency_changes (
	plan_id BIGINT PRIMARY KEY REFERENCES plans(id),
	stack TEXT NOT NULL,
	blueprint_version TEXT NOT NULL,
	reason TEXT NOT NULL,
	created_by TEXT NOT NULL,
	created_at TEXT NOT NULL
);
CREATE INDEX emergency_changes_stack_idx ON emergency_changes(stack, plan_id);

-- Who asked for a drift check: a person ("Check now") or 'system' (the
-- schedule, and the check after a run that follows drift).
ALTER TABLE drift_checks ADD COLUMN requested_by TEXT NOT NULL DEFAULT 'system';

-- Exceptions to the residency and encryption rules in prod take effect only
-- once a compliance officer other than their author approved them.
ALTER TABLE guardrail_exceptions ADD COLUMN needs_approval BIGINT NOT NULL DEFAULT 0;
ALTER TABLE guardrail_exceptions ADD COLUMN approved_by TEXT NOT NULL DEFAULT '';
ALTER TABLE guardrail_exceptions ADD COLUMN approved_at TEXT NOT NULL DEFAULT '';
UPDATE guardrail_exceptions SET needs_approval = 1
	WHERE stack LIKE 'prod-%' AND rule_id IN ('data-residency', 'kms-customer-managed', 'kms-rotation', 's3-tls-only', 'cloudfront-https-only');
