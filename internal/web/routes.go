package web

import (
	"net/http"

	"portal/internal/sso"
	"portal/internal/staff"
)

// registerRoutes is the one place every route is declared, with who may
// use it. Read it top to bottom.
func (s *Server) registerRoutes() {
	var (
		get, post = http.MethodGet, http.MethodPost
		admin     = Roles(staff.Admin)
		auditors  = Roles(staff.Compliance, staff.Admin)
		estate    = Roles(staff.Ops, staff.Compliance, staff.Admin)
		money     = Roles(staff.Finance, staff.Admin)
		deployers = Roles(staff.Ops, staff.Admin)
		// compliance approves exceptions to residency and encryption
		// rules in prod.
		compliance = Roles(staff.Compliance)
	)

	// Machines and static files.
	s.handle(get, "/healthz", s.healthz, Public)
	s.handle(get, "/readyz", s.readyz, Public)
	s.handle(get, "/metrics", s.metricsHandler(), Public)
	s.handle(get, "/static/*", s.static(), Public)

	// Signing in and out.
	s.handle(get, "/login", s.loginShow, Public)
	s.handle(post, "/login", s.loginSubmit, Public)
	s.handle(get, "/login/2fa", s.twoFactorShow, Public)
	s.handle(post, "/login/2fa", s.twoFactorSubmit, Public)
	s.handle(get, "/account/2fa", s.enrolShow, Public)
	s.handle(post, "/account/2fa", s.enrolSubmit, Public)
	s.handle(post, "/logout", s.logout, Public)
	// Public so that someone who owes a factor can reach it; the handlers
	// need a signed-in session.
	s.handle(get, "/account/confirm", s.confirmShow, Public)
	s.handle(post, "/account/confirm", s.confirmSubmit, Public)
	// Passkeys: added while setting up two-factor (half-way through a
	// sign-in, or signed in), used as the second factor of a sign-in.
	s.handle(post, "/account/passkeys/options", s.passkeyRegisterOptions, Public)
	s.handle(post, "/account/passkeys", s.passkeyRegister, Public)
	s.handle(post, "/login/passkey/options", s.passkeySignInOptions, Public)
	s.handle(post, "/login/passkey", s.passkeySignIn, Public)
	s.handle(get, "/login/sso", s.ssoStart, Public)
	s.handle(get, sso.CallbackPath, s.ssoCallback, Public)

	// The signed-in person's own account.
	s.handle(get, "/account", s.accountShow, AnyStaff)
	s.handle(get, "/account/password", s.passwordShow, AnyStaff)
	s.handle(post, "/account/password", s.passwordSubmit, AnyStaff)
	s.handle(post, "/account/passkeys/:id/remove", s.passkeyRemove, AnyStaff)

	// Areas.
	s.handle(get, "/", s.overview, AnyStaff)
	s.handle(get, "/stacks", s.stacksGrid, estate)
	s.handle(get, "/blueprints", s.blueprintsList, estate)

	// Blueprint versions and guardrails: ops and admins save versions and
	// record exceptions; compliance reads.
	s.handle(get, "/blueprints/new", s.versionNew, deployers)
	s.handle(post, "/blueprints/preview", s.versionPreview, deployers)
	s.handle(post, "/blueprints/versions", s.versionCreate, deployers)
	s.handle(get, "/blueprints/versions/:id", s.versionShow, estate)
	s.handle(get, "/blueprints/versions/:id/files/:name", s.fileShow, estate)
	s.handle(get, "/blueprints/diff", s.versionsDiff, estate)
	s.handle(get, "/blueprints/exceptions", s.exceptionsList, estate)
	s.handle(post, "/blueprints/exceptions", s.exceptionCreate, deployers)
	s.handle(post, "/blueprints/exceptions/:id/revoke", s.exceptionRevoke, deployers)
	s.handle(post, "/blueprints/exceptions/:id/approve", s.exceptionApprove, compliance)
	s.handle(get, "/blueprints/guardrails/stacks/:stack", s.stackReport, estate)
	s.handle(get, "/blueprints/guardrails/jurisdictions/:jurisdiction", s.jurisdictionReport, estate)
	s.handle(post, "/blueprints/guardrails/organization/plan", s.orgGuardPlan, admin)
	s.handle(post, "/blueprints/guardrails/organization/plans/:id/apply", s.orgGuardApply, admin)
	s.handle(get, "/inventory", s.inventoryList, estate)
	s.handle(get, "/inventory/progress", s.inventoryProgress, estate)
	s.handle(post, "/inventory/discover", s.inventoryDiscover, deployers)
	s.handle(get, "/inventory/resource", s.inventoryResource, estate)
	s.handle(get, "/inventory/changes", s.inventoryChanges, estate)
	s.handle(get, "/inventory/export.csv", s.inventoryExport, estate)
	// Activity: CloudTrail events, log integrity, CloudWatch, evidence.
	// Read by ops, compliance and admins; validating the logs, ingesting
	// now and generating an evidence report change nothing in AWS and are
	// audited.
	s.handle(get, "/activity", s.activityList, estate)
	s.handle(get, "/activity/sensitive", s.activitySensitive, estate)
	s.handle(get, "/activity/events/:id", s.activityEvent, estate)
	s.handle(get, "/activity/export.csv", s.activityExportCSV, estate)
	s.handle(get, "/activity/export.jsonl", s.activityExportJSONL, estate)
	s.handle(post, "/activity/ingest", s.activityIngest, estate)
	s.handle(get, "/activity/integrity", s.activityIntegrity, estate)
	s.handle(post, "/activity/integrity", s.activityValidate, estate)
	s.handle(get, "/activity/integrity/:id", s.activityValidation, estate)
	s.handle(get, "/activity/alarms", s.activityAlarms, estate)
	s.handle(get, "/activity/metrics", s.activityMetrics, estate)
	s.handle(post, "/saved-searches", s.savedQueryCreate, AnyStaff)
	s.handle(post, "/saved-searches/:id/delete", s.savedQueryDelete, AnyStaff)
	s.handle(get, "/activity/evidence", s.activityEvidence, estate)
	s.handle(post, "/activity/evidence", s.activityEvidenceCreate, estate)
	s.handle(get, "/activity/evidence/:id", s.activityEvidenceShow, estate)
	s.handle(get, "/activity/evidence/:id/pdf", s.activityEvidencePDF, estate)
	s.handle(get, "/billing", s.billingRevenue, money)

	// Finance: Stripe revenue, payouts and their reconciliation (read-only
	// copies of Stripe objects; a sync can be asked for).
	s.handle(get, "/billing/revenue.csv", s.billingRevenueExport, money)
	s.handle(get, "/billing/transactions", s.billingTransactions, money)
	s.handle(get, "/billing/transactions.csv", s.billingTransactionsExport, money)
	s.handle(get, "/billing/transactions/:id", s.billingTransaction, money)
	s.handle(get, "/billing/charges/:id", s.billingCharge, money)
	s.handle(get, "/billing/customers/:id", s.billingCustomer, money)
	s.handle(get, "/billing/payouts", s.billingPayouts, money)
	s.handle(get, "/billing/payouts.csv", s.billingPayoutsExport, money)
	s.handle(get, "/billing/payouts/:id", s.billingPayout, money)
	s.handle(post, "/billing/payouts/:id/notes", s.billingPayoutNote, money)
	s.handle(get, "/billing/reconciliation", s.billingReconciliation, money)
	s.handle(get, "/billing/reconciliation.csv", s.billingReconciliationExport, money)
	s.handle(get, "/billing/settings", s.billingSettings, money)
	s.handle(get, "/billing/sync/status", s.billingSyncStatus, money)
	s.handle(post, "/billing/sync", s.billingSyncNow, money)
	// Stripe's event deliveries: authenticated by their signature, so
	// public, and (as everything under /webhooks/) without session or CSRF.
	s.handle(post, "/webhooks/stripe", s.stripeWebhook, Public)

	// Plans and runs: ops and admins plan and apply; compliance reads.
	s.handle(get, "/runs", s.runsList, estate)
	s.handle(post, "/runs/plan", s.planCreate, deployers)
	s.handle(get, "/plans/:id", s.planShow, estate)
	s.handle(post, "/plans/:id/apply", s.planApply, deployers)
	s.handle(get, "/runs/:id", s.runShow, estate)
	s.handle(get, "/runs/:id/progress", s.runProgress, estate)
	s.handle(post, "/runs/:id/cancel", s.runCancel, deployers)
	s.handle(post, "/runs/:id/resume", s.runResume, deployers)

	// Promotion, approvals, drift and verification: ops and admins act
	// (approving is further limited by the approval policy); compliance
	// reads.
	s.handle(get, "/promotions", s.promotionsList, estate)
	s.handle(post, "/promotions", s.promotionCreate, deployers)
	s.handle(get, "/promotions/:id", s.promotionShow, estate)
	s.handle(get, "/promotions/:id/progress", s.promotionProgress, estate)
	s.handle(get, "/routing", s.routingExplorer, estate)
	s.handle(get, "/rollouts", s.rollOutsList, estate)
	s.handle(post, "/rollouts", s.rollOutCreate, deployers)
	s.handle(get, "/rollouts/:id", s.rollOutShow, estate)
	s.handle(get, "/rollouts/:id/progress", s.rollOutProgress, estate)
	s.handle(get, "/approvals", s.approvalsList, estate)
	// Deciding is open to compliance too: an emergency change needs one
	// admin and one compliance officer (the policy checks who fills what).
	s.handle(post, "/plans/:id/decide", s.planDecide, estate)
	s.handle(get, "/drift", s.driftList, estate)
	s.handle(post, "/drift/check", s.driftCheckNow, deployers)
	s.handle(get, "/drift/:id", s.driftShow, estate)
	s.handle(post, "/drift/:id/reconcile", s.driftReconcile, deployers)
	s.handle(get, "/notifications", s.notificationsList, estate)
	s.handle(get, "/stacks/:stack/history", s.stackHistory, estate)
	s.handle(post, "/stacks/:stack/verify", s.stackVerify, deployers)
	s.handle(get, "/verifications/:id", s.verificationShow, estate)
	// The sandbox's alert inbox (404 outside the sandbox).
	s.handle(get, "/sandbox/inbox", s.sandboxInbox, estate)

	// Access: personal API tokens for everyone, staff for admins.
	s.handle(get, "/access", s.accessShow, AnyStaff)
	s.handle(post, "/access/tokens", s.tokenCreate, AnyStaff)
	s.handle(post, "/access/tokens/:id/revoke", s.tokenRevoke, AnyStaff)
	s.handle(post, "/access/tokens/:id/renew", s.tokenRenew, AnyStaff)
	s.handle(get, "/access/staff/new", s.staffNew, admin)
	s.handle(post, "/access/staff", s.staffCreate, admin)
	s.handle(get, "/access/staff/:id", s.staffShow, admin)
	s.handle(post, "/access/staff/:id/roles", s.staffSetRoles, admin)
	s.handle(post, "/access/staff/:id/disable", s.staffDisable, admin)
	s.handle(post, "/access/staff/:id/enable", s.staffEnable, admin)
	s.handle(post, "/access/staff/:id/reset-2fa", s.staffResetTwoFactor, admin)
	s.handle(post, "/access/staff/:id/reset-password", s.staffResetPassword, admin)
	// AWS access: admins grant, approve and review; compliance reads who
	// holds what (active elevations included); anyone asks for elevation.
	s.handle(get, "/access/aws", s.awsAccess, auditors)
	s.handle(post, "/access/aws/grants", s.awsGrantCreate, admin)
	s.handle(post, "/access/aws/grants/:id/approve", s.awsGrantDecide(true), admin)
	s.handle(post, "/access/aws/grants/:id/reject", s.awsGrantDecide(false), admin)
	s.handle(post, "/access/aws/grants/:id/revoke", s.awsGrantRevoke, admin)
	s.handle(get, "/access/aws/elevate", s.awsElevate, AnyStaff)
	s.handle(post, "/access/aws/elevate", s.awsElevateCreate, AnyStaff)
	s.handle(get, "/access/aws/roles", s.awsRoles, auditors)
	s.handle(post, "/access/aws/roles/:env/plan", s.awsRolesPlan, admin)
	s.handle(post, "/access/aws/roles/plans/:id/approve", s.awsRolesApprove, admin)
	s.handle(post, "/access/aws/roles/plans/:id/apply", s.awsRolesApply, admin)
	s.handle(get, "/access/aws/reviews", s.awsReviews, auditors)
	s.handle(post, "/access/aws/reviews", s.awsReviewOpen, admin)
	s.handle(get, "/access/aws/reviews/:id", s.awsReview, auditors)
	s.handle(post, "/access/aws/reviews/:id/items/:item", s.awsReviewDecide, admin)
	s.handle(post, "/access/aws/reviews/:id/close", s.awsReviewClose, admin)
	s.handle(get, "/access/aws/reviews/:id/export.csv", s.awsReviewExport, auditors)
	s.handle(get, "/access/aws/consistency", s.awsConsistency, auditors)

	// Audit trail.
	s.handle(get, "/audit", s.auditList, auditors)
	s.handle(get, "/audit/verify", s.auditVerify, auditors)
	s.handle(get, "/audit/export.csv", s.auditExport, auditors)

	// JSON API (bearer tokens; same roles as the pages).
	s.handle(get, "/api/v1/openapi.json", s.apiOpenAPI, Public)
	s.handle(get, "/api/v1/me", s.apiMe, AnyStaff)
	s.handle(get, "/api/v1/staff", s.apiStaffList, admin)
	s.handle(post, "/api/v1/staff", s.apiStaffCreate, admin)
	s.handle(get, "/api/v1/audit", s.apiAuditList, auditors)
	s.handle(get, "/api/v1/audit/verify", s.apiAuditVerify, auditors)
	s.handle(get, "/api/v1/stacks", s.apiStacks, estate)
	s.handle(get, "/api/v1/blueprints/versions", s.apiVersionsList, estate)
	s.handle(post, "/api/v1/blueprints/versions", s.apiVersionCreate, deployers)
	s.handle(get, "/api/v1/blueprints/versions/:id", s.apiVersionShow, estate)
	s.handle(get, "/api/v1/blueprints/versions/:id/guardrails", s.apiVersionGuardrails, estate)
	s.handle(get, "/api/v1/blueprints/exceptions", s.apiExceptionsList, estate)
	s.handle(post, "/api/v1/blueprints/exceptions", s.apiExceptionCreate, deployers)
	s.handle(post, "/api/v1/blueprints/exceptions/:id/revoke", s.apiExceptionRevoke, deployers)
	s.handle(post, "/api/v1/blueprints/exceptions/:id/approve", s.apiExceptionApprove, compliance)
	s.handle(post, "/api/v1/plans", s.apiPlanCreate, deployers)
	s.handle(get, "/api/v1/plans/:id", s.apiPlanShow, estate)
	s.handle(post, "/api/v1/plans/:id/apply", s.apiPlanApply, deployers)
	s.handle(get, "/api/v1/plans/:id/approval", s.apiPlanApproval, estate)
	s.handle(post, "/api/v1/plans/:id/decide", s.apiPlanDecide, estate)
	s.handle(get, "/api/v1/runs", s.apiRunsList, estate)
	// Promotion, approvals and drift for automation: as the pages.
	s.handle(get, "/api/v1/promotions", s.apiPromotionsList, estate)
	s.handle(post, "/api/v1/promotions", s.apiPromotionCreate, deployers)
	s.handle(get, "/api/v1/promotions/:id", s.apiPromotionShow, estate)
	s.handle(get, "/api/v1/approvals", s.apiApprovalsList, estate)
	s.handle(get, "/api/v1/emergencies", s.apiEmergencies, estate)
	s.handle(get, "/api/v1/drift", s.apiDriftList, estate)
	s.handle(post, "/api/v1/drift/check", s.apiDriftCheck, deployers)
	s.handle(get, "/api/v1/drift/:id", s.apiDriftShow, estate)
	s.handle(post, "/api/v1/drift/:id/reconcile", s.apiDriftReconcile, deployers)
	s.handle(get, "/api/v1/inventory", s.apiInventory, estate)
	s.handle(get, "/api/v1/inventory/export.csv", s.inventoryExport, estate)
	s.handle(get, "/api/v1/inventory/changes", s.apiInventoryChanges, estate)
	s.handle(post, "/api/v1/inventory/discover", s.apiInventoryDiscover, deployers)
	s.handle(get, "/api/v1/inventory/discoveries/:id", s.apiInventorySnapshot, estate)
	s.handle(get, "/api/v1/runs/:id", s.apiRunShow, estate)
	s.handle(post, "/api/v1/runs/:id/cancel", s.apiRunCancel, deployers)
	s.handle(post, "/api/v1/runs/:id/resume", s.apiRunResume, deployers)
	// Activity for automation: compliance and admins only (the pages
	// also let ops read).
	s.handle(get, "/api/v1/activity/events", s.apiActivityEvents, auditors)
	s.handle(get, "/api/v1/activity/events/:id", s.apiActivityEvent, auditors)
	s.handle(get, "/api/v1/activity/validations", s.apiActivityValidations, auditors)
	s.handle(post, "/api/v1/activity/validations", s.apiActivityValidate, auditors)
	s.handle(get, "/api/v1/activity/evidence", s.apiActivityEvidence, auditors)
}
