package activity

import (
	"bytes"
	"fmt"
	"strings"
)

// Sensitive-event categories, as shown on the pages.
const (
	SensIAM          = "IAM policy or role change"
	SensKMS          = "KMS key disabled or scheduled for deletion"
	SensTrail        = "CloudTrail stopped, deleted or changed"
	SensS3Public     = "S3 bucket policy or public access change"
	SensOpenSG       = "Security group opened to 0.0.0.0/0"
	SensConsoleNoMFA = "Console sign-in without MFA"
	SensRoot         = "Root user activity"
)

// SensitiveCategories lists the categories in display order.
func SensitiveCategories() []string {
	return []string{SensRoot, SensIAM, SensKMS, SensTrail, SensS3Public, SensOpenSG, SensConsoleNoMFA}
}

var (
	iamChanges = set("CreateRole", "DeleteRole", "UpdateRole", "UpdateAssumeRolePolicy", "PutRolePolicy", "DeleteRolePolicy", "AttachRolePolicy",
		"DetachRolePolicy", "CreatePolicy", "DeletePolicy", "CreatePolicyVersion", "DeletePolicyVersion", "SetDefaultPolicyVersion",
		"PutUserPolicy", "DeleteUserPolicy", "AttachUserPolicy", "DetachUserPolicy", "PutGroupPolicy", "DeleteGroupPolicy",
		"AttachGroupPolicy", "DetachGroupPolicy", "PutRolePermissionsBoundary", "DeleteRolePermissionsBoundary")
	kmsChanges   = set("DisableKey", "ScheduleKeyDeletion")
	trailChanges = set("StopLogging", "DeleteTrail", "UpdateTrail", "PutEventSelectors", "PutInsightSelectors")
	s3Changes    = set("PutBucketPolicy", "DeleteBucketPolicy", "PutBucketAcl", "PutBucketPublicAccessBlock", "DeleteBucketPublicAccessBlock",
		"PutAccountPublicAccessBlock", "DeleteAccountPublicAccessBlock", "PutObjectAcl")
	sgOpen = set("AuthorizeSecurityGroupIngress", "ModifySecurityGroupRules")
)

func set(xs ...string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// classify returns why a record is sensitive, "" when it is not. A failed
// attempt is sensitive too (someone tried), and says so.
func classify(r *record, raw []byte) string {
	why := classifyKind(r, raw)
	if why != "" && r.ErrorCode != "" {
		why += fmt.Sprintf(" (attempt failed: %s)", r.ErrorCode)
	}
	return why
}

func classifyKind(r *record, raw []byte) string {
	switch {
	case r.UserIdentity.Type == "Root" && r.EventName != "ConsoleLogin":
		return SensRoot
	case r.EventName == "ConsoleLogin":
		if mfa, _ := r.AdditionalEventData.get("MFAUsed"); mfa != "Yes" {
			if r.UserIdentity.Type == "Root" {
				return SensRoot + "; " + SensConsoleNoMFA
			}
			return SensConsoleNoMFA
		}
		if r.UserIdentity.Type == "Root" {
			return SensRoot
		}
	case r.EventSource == "iam.amazonaws.com" && iamChanges[r.EventName]:
		return SensIAM
	case r.EventSource == "kms.amazonaws.com" && kmsChanges[r.EventName]:
		return SensKMS
	case r.EventSource == "cloudtrail.amazonaws.com" && trailChanges[r.EventName]:
		return SensTrail
	case (r.EventSource == "s3.amazonaws.com" || r.EventSource == "s3control.amazonaws.com") && s3Changes[r.EventName]:
		return SensS3Public
	case r.EventSource == "ec2.amazonaws.com" && sgOpen[r.EventName]:
		if opensToWorld(raw) {
			return SensOpenSG
		}
	}
	return ""
}

// opensToWorld reports whether a security-group change's request names
// the whole IPv4 or IPv6 internet.
func opensToWorld(raw []byte) bool {
	i := bytes.Index(raw, []byte(`"requestParameters"`))
	if i < 0 {
		return false
	}
	p := string(raw[i:])
	return strings.Contains(p, `"0.0.0.0/0"`) || strings.Contains(p, `"::/0"`)
}
