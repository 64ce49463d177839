-- Staff AWS access moves from IAM group memberships to IAM Identity Center
-- account assignments: every grant active now is synced again, so the
-- access job creates its assignment once the environment's permission
-- sets exist (until then the consistency page shows it as pending).
INSERT INTO access_sync (user_id, environment, role, updated_at)
SELECT DISTINCT user_id, environment, role, '1970-01-01T00:00:00.000000000Z' FROM access_grants WHERE state = 'active'
ON CONFLICT (user_id, environment, role) DO NOTHING;
