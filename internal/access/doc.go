// Package access manages what staff may do in AWS: IAM Identity Center
// permission sets per staff function and environment, who is assigned
// which in each environment account (standing grants and just-in-time
// elevations), access reviews, and where portal roles and AWS access
// disagree.
//
// # Staff roles are permission sets
//
// The policies are reviewed JSON templates in blueprints/staff-roles
// (checked by LoadTemplates: no "*" or "*:*", no service-wide wildcard
// outside break-glass, patient-data reads denied). For each environment
// they become a stack "staff-permission-sets-ENV" of sso_permission_set
// resources (PermissionSetDriver, registered with the engine next to the
// estate's drivers) in the organization's management account, where
// Identity Center lives; so they are planned, applied and audited like any
// other resource, and a prod plan is applied only after another admin
// approved that plan's hash (PlanRoles, ApproveRoles, ApplyRoles).
//
// # Grants are account assignments
//
// A grant of role R in environment E is the account assignment of R's
// permission set for E to the person's Identity Center user (UserName:
// their email; created when the identity store lacks it) in E's account;
// revoking deletes it. New sessions stop at once; an open one lasts at
// most the permission set's session duration (SessionDuration).
//
// A person holds an assignment exactly when at least one grant of that
// role in that environment is active (a standing grant, or an elevation
// not yet expired). So elevations never shorten each other or a standing
// grant. Every change records the (person, environment, role) as needing a
// sync in the same transaction, then syncs at once; the expiry job retries
// syncs that failed, so a revocation Identity Center could not carry out
// is retried, and shown, until it is.
//
// Grants in prod and every elevation need the approval of another admin
// (never the requester, never the grantee). Elevations end at expires_at,
// stored in the database and acted on by the "access.expire" job, which
// survives restarts; the clock is injected. Disabling a staff account
// revokes everything it holds: the staff service calls OnDisabled (a hook
// this package installs), and the job also revokes grants of disabled
// accounts in case the portal stopped in between.
//
// # Reviews and consistency
//
// OpenReview snapshots every active grant with when its Identity Center
// session (role AWSReservedSSO_<set>_…, session name the user name) last
// called AWS in that account, from ingested CloudTrail events
// (activity_events; "unknown" when none). Reviewers keep or revoke each;
// WriteReviewCSV is the evidence. Consistency lists where portal roles,
// grants and live account assignments disagree.
//
// Staff roles used to be IAM groups (GroupDriver, stacks staff-roles-ENV);
// the driver stays so those legacy stacks can be destroyed.
package access
