// Package access manages what staff may do in AWS: one IAM group per staff
// function in each environment account, who is in which group (standing
// grants and just-in-time elevations), access reviews, and where portal
// roles and AWS access disagree.
//
// # Staff roles are a stack
//
// The policies are reviewed JSON templates in blueprints/staff-roles
// (checked by LoadTemplates: MFA on every Allow, no "*" or "*:*", no
// service-wide wildcard outside break-glass, patient-data reads denied).
// For each environment they become a stack "staff-roles-ENV" of
// staff_group resources (this package's Driver, registered with the
// engine next to the estate's drivers), so they are planned, applied and
// audited like any other resource. A prod plan is applied only after
// another admin approved that plan's hash (PlanRoles, ApproveRoles,
// ApplyRoles). IAM groups cannot carry tags, so ownership is the group's
// path, /portal/staff-roles-ENV/, which the driver reports as the
// engine's ownership tag.
//
// # Grants are group memberships
//
// Each person has one IAM user per environment account (PrincipalName,
// created on first grant, tagged with their portal id and email; the portal
// never creates passwords or keys for it: people enrol their own MFA
// device). A grant of role R in environment E adds that user to R's group;
// revoking removes it. Group policies are evaluated on every request made
// with the user's credentials, so a removal takes effect at once, unlike a
// role trust, whose sessions live on until they expire.
//
// A user is in a group exactly when at least one grant of that role in that
// environment is active (a standing grant, or an elevation not yet
// expired). So elevations never shorten each other or a standing grant:
// the membership ends when the last of them ends. Every change records the
// (person, environment, role) as needing a sync in the same transaction,
// then syncs at once; the expiry job retries syncs that failed, so a
// revocation the AWS call could not carry out is retried, and shown, until
// it is.
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
// OpenReview snapshots every active grant with when its IAM user last
// called AWS in that account, from ingested CloudTrail events
// (activity_events; "unknown" when none: moto has no
// GenerateServiceLastAccessedDetails). Reviewers keep or revoke each;
// WriteReviewCSV is the evidence. Consistency lists where portal roles,
// grants and live IAM group members disagree.
package access
