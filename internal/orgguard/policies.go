// Package orgguard is the preventive layer behind the portal's own
// guardrails: service control policies in AWS Organizations that make AWS
// itself refuse what patient-data law forbids, whoever asks and however
// they reach AWS.
//
// # What AWS refuses
//
//   - Residency, one policy per jurisdiction (portal-residency-JUR): any
//     regional action outside the jurisdiction's allowed regions by a
//     principal acting for it. Global services are exempted as AWS Control
//     Tower's Region deny control exempts them (GlobalActions), since their
//     endpoints live in us-east-1.
//   - Audit (portal-protect-audit): stopping or deleting a CloudTrail trail,
//     in every account, and scheduling the deletion of a KMS key of the prod
//     account.
//
// # Who acts for a jurisdiction: principal tags
//
// The estate has one account per environment, each running all three
// jurisdictions, so accounts per jurisdiction in OUs would mean nine
// accounts and a different estate. Instead the policies select principals
// by tag: the application roles a stack creates carry the ownership tag
// portal:stack=ENV-JUR, and a session acting for one jurisdiction carries
// the session tag portal:jurisdiction=JUR (set on AssumeRole; the role's
// trust policy must allow sts:TagSession). A principal with neither tag (an
// admin's break-glass session, the portal's cross-jurisdiction work such
// as inventory) is not acting for one jurisdiction and is not bound by a
// residency policy; the audit policy binds everyone. The policies are
// attached to the organization's root, so every member account gets them;
// AWS never applies SCPs to the management account itself.
package orgguard

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"portal/internal/regions"
)

// Tag keys the residency policies select principals by.
const (
	// TagJurisdiction is the session tag of the portal's deployer sessions.
	TagJurisdiction = "portal:jurisdiction"
	// TagStack is the ownership tag of every role a stack creates.
	TagStack = "portal:stack"
)

// GlobalActions are exempt from region denial: the services AWS Control
// Tower's Region deny control (GRREGIONDENY, "Deny access to AWS based on
// the requested AWS Region") lists in its NotAction, whose calls go to a
// global endpoint whatever the caller's region.
var GlobalActions = []string{
	"a4b:*", "access-analyzer:*", "account:*", "acm:*", "activate:*", "artifact:*",
	"aws-marketplace-management:*", "aws-marketplace:*", "aws-portal:*", "billing:*", "billingconductor:*",
	"budgets:*", "ce:*", "chatbot:*", "chime:*", "cloudfront:*", "cloudtrail:LookupEvents",
	"compute-optimizer:*", "config:*", "cur:*", "datapipeline:GetAccountLimits", "devicefarm:*",
	"directconnect:*", "discovery-marketplace:*", "ec2:DescribeRegions", "ec2:DescribeTransitGateways",
	"ec2:DescribeVpnGateways", "ecr-public:*", "fms:*", "globalaccelerator:*", "health:*", "iam:*",
	"importexport:*", "kms:*", "mobileanalytics:*", "networkmanager:*", "organizations:*", "pricing:*",
	"route53:*", "route53domains:*", "route53-recovery-cluster:*", "route53-recovery-control-config:*",
	"route53-recovery-readiness:*", "s3:GetAccountPublic*", "s3:ListAllMyBuckets",
	"s3:ListMultiRegionAccessPoints", "s3:PutAccountPublic*", "shield:*", "sts:*", "support:*",
	"trustedadvisor:*", "waf-regional:*", "waf:*", "wafv2:*", "wellarchitected:*",
}

// MaxPolicyBytes is AWS's limit on a service control policy's size.
const MaxPolicyBytes = 5120

// Policy is an SCP document.
type Policy struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement of an SCP.
type Statement struct {
	Sid       string                         `json:"Sid"`
	Effect    string                         `json:"Effect"`
	Action    []string                       `json:"Action,omitempty"`
	NotAction []string                       `json:"NotAction,omitempty"`
	Resource  string                         `json:"Resource"`
	Condition map[string]map[string][]string `json:"Condition,omitempty"`
}

// SCP is one service control policy the portal keeps in the organization.
type SCP struct {
	Name, Description string
	// Jurisdiction is the jurisdiction a residency policy is for, "" for
	// the audit policy.
	Jurisdiction string
	Policy       Policy
}

// Document is the policy as AWS receives it: compact JSON (AWS counts
// every character against MaxPolicyBytes).
func (s SCP) Document() string {
	b, _ := json.Marshal(s.Policy)
	return string(b)
}

// Residency is jurisdiction j's region-deny policy for the environments
// envs.
func Residency(j regions.Jurisdiction, envs []string) SCP {
	allowed := append([]string(nil), j.AllowedRegions...)
	sort.Strings(allowed)
	var stacks []string
	for _, e := range envs {
		stacks = append(stacks, regions.StackID(e, j.ID))
	}
	deny := func(sid, key string, values []string) Statement {
		return Statement{Sid: sid, Effect: "Deny", NotAction: GlobalActions, Resource: "*",
			Condition: map[string]map[string][]string{
				"StringNotEquals": {"aws:RequestedRegion": allowed},
				"StringEquals":    {key: values},
			}}
	}
	name := "portal-residency-" + j.ID
	return SCP{Name: name, Jurisdiction: j.ID,
		Description: fmt.Sprintf("%s patient data stays in %s: principals acting for %s may not call regional services elsewhere", j.Name, strings.Join(allowed, ", "), j.ID),
		Policy: Policy{Version: "2012-10-17", Statement: []Statement{
			deny("DenyOtherRegionsToJurisdictionSessions", "aws:PrincipalTag/"+TagJurisdiction, []string{j.ID}),
			deny("DenyOtherRegionsToStackRoles", "aws:PrincipalTag/"+TagStack, stacks),
		}}}
}

// ProtectAudit refuses stopping or deleting any trail, and scheduling the
// deletion of any KMS key in the prod account prodAccount.
func ProtectAudit(prodAccount string) SCP {
	return SCP{Name: "portal-protect-audit",
		Description: "No one stops or deletes a CloudTrail trail, or schedules the deletion of a prod KMS key",
		Policy: Policy{Version: "2012-10-17", Statement: []Statement{
			{Sid: "NeverStopTheTrail", Effect: "Deny", Action: []string{"cloudtrail:DeleteTrail", "cloudtrail:StopLogging"}, Resource: "*"},
			{Sid: "NeverDeleteProdKeys", Effect: "Deny", Action: []string{"kms:ScheduleKeyDeletion"}, Resource: "*",
				Condition: map[string]map[string][]string{"StringEquals": {"aws:ResourceAccount": {prodAccount}}}},
		}}}
}

// All returns the organization's policies: one residency policy per
// jurisdiction, then the audit policy.
func All(envs []string, prodAccount string) []SCP {
	var out []SCP
	for _, j := range regions.Jurisdictions() {
		out = append(out, Residency(j, envs))
	}
	return append(out, ProtectAudit(prodAccount))
}
