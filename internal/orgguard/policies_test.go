package orgguard

import (
	"encoding/json"
	"testing"

	"portal/internal/regions"
)

var envs = []string{"dev", "test", "prod"}

const prodAccount = "333333333333"

// Each policy, judged against sample requests as AWS would judge it.
func TestPoliciesAgainstSampleRequests(t *testing.T) {
	pols := map[string]Policy{}
	for _, p := range All(envs, prodAccount) {
		pols[p.Name] = p.Policy
	}
	eu := map[string]string{"aws:PrincipalTag/portal:jurisdiction": "eu"}
	euApp := map[string]string{"aws:PrincipalTag/portal:stack": "prod-eu"}
	with := func(base map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	cases := []struct {
		name, policy, action string
		ctx                  map[string]string
		denied               bool
	}{
		{"EU deployer writes a bucket in Frankfurt", "portal-residency-eu", "s3:PutObject", with(eu, "aws:RequestedRegion", "eu-central-1"), false},
		{"EU deployer in Ireland (allowed second region)", "portal-residency-eu", "rds:CreateDBInstance", with(eu, "aws:RequestedRegion", "eu-west-1"), false},
		{"EU deployer creates a bucket in Virginia", "portal-residency-eu", "s3:CreateBucket", with(eu, "aws:RequestedRegion", "us-east-1"), true},
		{"EU deployer starts an instance in Singapore", "portal-residency-eu", "ec2:RunInstances", with(eu, "aws:RequestedRegion", "ap-southeast-1"), true},
		{"EU deployer's IAM call goes to us-east-1 (global)", "portal-residency-eu", "iam:CreateRole", with(eu, "aws:RequestedRegion", "us-east-1"), false},
		{"EU deployer's CloudFront call (global)", "portal-residency-eu", "cloudfront:CreateDistribution", with(eu, "aws:RequestedRegion", "us-east-1"), false},
		{"EU deployer's Route 53 call (global)", "portal-residency-eu", "route53:ChangeResourceRecordSets", with(eu, "aws:RequestedRegion", "us-east-1"), false},
		{"EU deployer asks STS (global)", "portal-residency-eu", "sts:AssumeRole", with(eu, "aws:RequestedRegion", "us-east-1"), false},
		{"action names are case-insensitive", "portal-residency-eu", "S3:putobject", with(eu, "aws:RequestedRegion", "us-west-2"), true},
		{"EU app role reads patient documents in Virginia", "portal-residency-eu", "s3:GetObject", with(euApp, "aws:RequestedRegion", "us-east-1"), true},
		{"EU app role writes DynamoDB at home", "portal-residency-eu", "dynamodb:PutItem", with(euApp, "aws:RequestedRegion", "eu-central-1"), false},
		{"US app role is not bound by the EU policy", "portal-residency-eu", "s3:PutObject", map[string]string{"aws:PrincipalTag/portal:stack": "prod-us", "aws:RequestedRegion": "us-east-1"}, false},
		{"US deployer in Virginia", "portal-residency-us", "s3:PutObject", map[string]string{"aws:PrincipalTag/portal:jurisdiction": "us", "aws:RequestedRegion": "us-east-1"}, false},
		{"US deployer in Frankfurt", "portal-residency-us", "s3:PutObject", map[string]string{"aws:PrincipalTag/portal:jurisdiction": "us", "aws:RequestedRegion": "eu-central-1"}, true},
		{"APAC app role in Singapore", "portal-residency-apac", "dynamodb:PutItem", map[string]string{"aws:PrincipalTag/portal:stack": "dev-apac", "aws:RequestedRegion": "ap-southeast-1"}, false},
		{"APAC app role in Sydney (outside Singapore)", "portal-residency-apac", "dynamodb:PutItem", map[string]string{"aws:PrincipalTag/portal:stack": "dev-apac", "aws:RequestedRegion": "ap-southeast-2"}, true},
		{"APAC app role in Frankfurt", "portal-residency-apac", "dynamodb:PutItem", map[string]string{"aws:PrincipalTag/portal:stack": "dev-apac", "aws:RequestedRegion": "eu-central-1"}, true},
		{"untagged principal is acting for no jurisdiction", "portal-residency-eu", "s3:PutObject", map[string]string{"aws:RequestedRegion": "us-east-1"}, false},
		{"anyone deleting a trail", "portal-protect-audit", "cloudtrail:DeleteTrail", map[string]string{"aws:RequestedRegion": "eu-central-1", "aws:ResourceAccount": "111111111111"}, true},
		{"anyone stopping a trail", "portal-protect-audit", "cloudtrail:StopLogging", map[string]string{"aws:RequestedRegion": "us-east-1"}, true},
		{"reading trail status", "portal-protect-audit", "cloudtrail:GetTrailStatus", map[string]string{"aws:RequestedRegion": "us-east-1"}, false},
		{"scheduling deletion of a prod key", "portal-protect-audit", "kms:ScheduleKeyDeletion", map[string]string{"aws:ResourceAccount": prodAccount}, true},
		{"scheduling deletion of a dev key", "portal-protect-audit", "kms:ScheduleKeyDeletion", map[string]string{"aws:ResourceAccount": "111111111111"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, ok := pols[c.policy]
			if !ok {
				t.Fatalf("no policy %s", c.policy)
			}
			got, sid := Denied(p, Request{Action: c.action, Context: c.ctx})
			if got != c.denied {
				t.Errorf("%s %v under %s: denied %v (%s), want %v", c.action, c.ctx, c.policy, got, sid, c.denied)
			}
		})
	}
}

// Every policy is what AWS accepts: within the size limit, valid JSON, one
// per jurisdiction naming exactly its allowed regions.
func TestPolicyDocuments(t *testing.T) {
	all := All(envs, prodAccount)
	if len(all) != len(regions.Jurisdictions())+1 {
		t.Fatalf("%d policies, want one per jurisdiction and the audit one", len(all))
	}
	for _, p := range all {
		doc := p.Document()
		if len(doc) > MaxPolicyBytes {
			t.Errorf("%s: %d bytes, more than the %d AWS allows", p.Name, len(doc), MaxPolicyBytes)
		}
		var back Policy
		if err := json.Unmarshal([]byte(doc), &back); err != nil {
			t.Errorf("%s: %v", p.Name, err)
		}
		if p.Jurisdiction == "" {
			continue
		}
		j, _ := regions.JurisdictionByID(p.Jurisdiction)
		for _, st := range p.Policy.Statement {
			if got := st.Condition["StringNotEquals"]["aws:RequestedRegion"]; len(got) != len(j.AllowedRegions) {
				t.Errorf("%s %s: regions %v, want %v", p.Name, st.Sid, got, j.AllowedRegions)
			}
		}
	}
}

func TestEvaluatorSemantics(t *testing.T) {
	p := Policy{Statement: []Statement{{Sid: "S", Effect: "Deny", Action: []string{"ec2:*"}, Resource: "*",
		Condition: map[string]map[string][]string{"StringLike": {"aws:PrincipalTag/team": {"ops-*"}}}}}}
	for _, c := range []struct {
		ctx    map[string]string
		denied bool
	}{
		{map[string]string{"aws:PrincipalTag/team": "ops-eu"}, true},
		{map[string]string{"aws:PrincipalTag/team": "finance"}, false},
		{map[string]string{}, false}, // absent key fails StringLike
	} {
		if got, _ := Denied(p, Request{Action: "ec2:RunInstances", Context: c.ctx}); got != c.denied {
			t.Errorf("context %v: denied %v, want %v", c.ctx, got, c.denied)
		}
	}
	unknown := Policy{Statement: []Statement{{Effect: "Deny", Action: []string{"*"}, Resource: "*",
		Condition: map[string]map[string][]string{"DateGreaterThan": {"aws:CurrentTime": {"2020-01-01T00:00:00Z"}}}}}}
	if got, _ := Denied(unknown, Request{Action: "s3:GetObject"}); got {
		t.Error("an operator the evaluator does not know must not be guessed as denying")
	}
}
