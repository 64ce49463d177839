// Package staffroles ships the IAM policy templates of the AWS roles staff
// hold in each environment account (ops-deployer, ops-readonly,
// compliance-auditor, finance-billing, break-glass-admin). They are
// reviewed like code: package access loads and checks them (least
// privilege, MFA on every Allow, no "*" or "*:*" actions) and turns them
// into the staff-roles stack of each environment.
package staffroles

import "embed"

// FS holds the *.json templates byte for byte as committed.
//
//go:embed *.json
var FS embed.FS
