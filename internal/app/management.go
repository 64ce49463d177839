package app

import (
	"flag"
	"fmt"
	"time"

	"portal/internal/accounts"
)

// SandboxManagement is the sandbox organization's management account:
// Organizations and IAM Identity Center live there.
var SandboxManagement = accounts.ManagementConfig{AccountID: "444444444444",
	RoleARN: "arn:aws:iam::444444444444:role/PortalOrganizationAdmin", IdentityCenterRegion: "eu-central-1"}

// SandboxAuditAnchor is the sandbox's audit account and its anchor bucket
// (Object Lock, compliance mode), where the head of the audit chain is
// anchored every minute.
var SandboxAuditAnchor = AnchorConfig{Bucket: "portal-sandbox-audit-anchors", Prefix: "portal/", Region: "us-east-1",
	AccountID: "555555555555", RoleARN: "arn:aws:iam::555555555555:role/PortalAuditAnchor",
	Interval: time.Minute, Retention: 2190 * 24 * time.Hour}

// managementFlags declares the management-account flags on fs and returns
// a function that, after parsing, gives its configuration (nil when no
// management account is configured).
func managementFlags(fs *flag.FlagSet) func() (*accounts.ManagementConfig, error) {
	account := fs.String("management-account-id", "", "AWS account id of the organization's management account (AWS Organizations, IAM Identity Center): staff AWS access and the residency policies live there")
	role := fs.String("management-role-arn", "", "ARN of the role the portal assumes in the management account (default arn:aws:iam::ACCOUNT:role/PortalOrganizationAdmin)")
	region := fs.String("identity-center-region", "us-east-1", "home region of the organization's IAM Identity Center instance")
	return func() (*accounts.ManagementConfig, error) {
		if *account == "" && *role == "" {
			return nil, nil
		}
		m := accounts.ManagementConfig{AccountID: *account, RoleARN: *role, IdentityCenterRegion: *region}
		if m.RoleARN == "" {
			m.RoleARN = "arn:aws:iam::" + m.AccountID + ":role/PortalOrganizationAdmin"
		}
		if err := m.Validate(); err != nil {
			return nil, fmt.Errorf("-management-account-id: %w", err)
		}
		return &m, nil
	}
}
