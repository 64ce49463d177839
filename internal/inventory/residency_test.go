package inventory_test

import (
	"testing"

	"portal/internal/engine"
	"portal/internal/guardrails"
	"portal/internal/inventory"
	"portal/internal/regions"
)

// TestResidencyIsJudgedByTheGuardrailsRule: the inventory and the
// guardrails give the same verdict on a resource's region. An EU or APAC
// stack's CloudFront certificate in us-east-1 (where CloudFront takes them
// from) is no violation for either; an EU stack's bucket there is one for
// both, in the same words.
func TestResidencyIsJudgedByTheGuardrailsRule(t *testing.T) {
	for _, c := range []struct {
		name, arn, stack, blueprintType string
		violation                       bool
	}{
		{"EU CloudFront certificate in us-east-1", "arn:aws:acm:us-east-1:111111111111:certificate/1f2e3d4c", "dev-eu", "acm_certificate", false},
		{"APAC CloudFront certificate in us-east-1", "arn:aws:acm:us-east-1:111111111111:certificate/5a6b7c8d", "dev-apac", "acm_certificate", false},
		{"EU bucket in us-east-1", "arn:aws:s3:::eu-docs-in-us", "dev-eu", "s3_bucket", true},
		{"EU table in eu-west-1", "arn:aws:dynamodb:eu-west-1:111111111111:table/medicines", "dev-eu", "dynamodb_table", false},
		{"APAC key in eu-central-1", "arn:aws:kms:eu-central-1:111111111111:key/9e8d", "dev-apac", "kms_key", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := inventory.Resource{ARN: c.arn, Environment: "dev", AccountID: "111111111111", Region: "us-east-1",
				Tags: map[string]string{engine.TagStack: c.stack}}
			if _, region, _, typ, _, ok := inventory.ParseARN(c.arn); ok {
				r.Type = typ
				if region != "" {
					r.Region = region
				}
			}
			inventory.Classify(&r)
			j, _ := regions.JurisdictionByID(c.stack[len("dev-"):])
			want := guardrails.ResidencyViolation(j, c.blueprintType, r.Region)
			if (r.Violation != "") != c.violation || r.Violation != want {
				t.Errorf("inventory says %q, guardrails say %q; want a violation: %v", r.Violation, want, c.violation)
			}
		})
	}
	// An unmanaged resource in a region no jurisdiction allows is a
	// violation, unless it can hold no patient data.
	for arn, want := range map[string]bool{
		"arn:aws:s3:::tokyo-by-hand":                               true,
		"arn:aws:acm:ap-northeast-1:111111111111:certificate/0a0b": false,
	} {
		r := inventory.Resource{ARN: arn, Environment: "dev", AccountID: "111111111111", Region: "ap-northeast-1", Tags: map[string]string{}}
		_, _, _, r.Type, _, _ = inventory.ParseARN(arn)
		inventory.Classify(&r)
		if (r.Violation != "") != want {
			t.Errorf("unmanaged %s in ap-northeast-1: violation %q, want one: %v", arn, r.Violation, want)
		}
	}
}
