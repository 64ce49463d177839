package guardrails

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeStack is a hand-written Stack for rule tests.
type fakeStack struct {
	id, env, jurisdiction string
	order                 []string
	res                   map[string]*fakeRes
}

type fakeRes struct {
	typ, region string
	fields      map[string]any
}

func (f *fakeStack) StackID() string         { return f.id }
func (f *fakeStack) EnvironmentName() string { return f.env }
func (f *fakeStack) JurisdictionID() string  { return f.jurisdiction }
func (f *fakeStack) ResourceIDs() []string   { return slices.Clone(f.order) }
func (f *fakeStack) ResourceType(id string) string {
	if r, ok := f.res[id]; ok {
		return r.typ
	}
	return ""
}
func (f *fakeStack) ResourceRegion(id string) string {
	if r, ok := f.res[id]; ok {
		return r.region
	}
	return ""
}
func (f *fakeStack) Lookup(id, path string) (any, bool) {
	r, ok := f.res[id]
	if !ok {
		return nil, false
	}
	var cur any = r.fields
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}
func (f *fakeStack) PositionOf(id, path string) (string, int, int) {
	return "fake.yaml", slices.Index(f.order, id) + 1, 3
}

func (f *fakeStack) add(id, typ, region string, fields map[string]any) {
	if region == "" {
		region = map[string]string{"us": "us-east-1", "eu": "eu-central-1", "apac": "ap-southeast-1"}[f.jurisdiction]
	}
	f.order = append(f.order, id)
	f.res[id] = &fakeRes{typ, region, fields}
}

func (f *fakeStack) set(id, field string, v any) { f.res[id].fields[field] = v }

// compliant returns a small stack that passes every rule.
func compliant(env, jurisdiction string) *fakeStack {
	f := &fakeStack{id: env + "-" + jurisdiction, env: env, jurisdiction: jurisdiction, res: map[string]*fakeRes{}}
	second := map[string]string{"us": "us-west-2", "eu": "eu-west-1", "apac": "ap-southeast-1"}[jurisdiction]
	backup := int64(7)
	if env == "prod" {
		backup = 35
	}
	f.add("key", "kms_key", "", map[string]any{"rotation": true})
	f.add("replica_key", "kms_key", second, map[string]any{"rotation": true})
	bucket := func() map[string]any {
		return map[string]any{"kms_key": "${ref.key.arn}", "versioning": true, "public_access_block": true, "tls_only": true}
	}
	f.add("bucket", "s3_bucket", "", bucket())
	f.add("replica", "s3_bucket", second, bucket())
	f.set("replica", "kms_key", "${ref.replica_key.arn}")
	f.add("repl", "s3_replication", "", map[string]any{"destination_bucket": "${ref.replica.arn}"})
	f.add("table", "dynamodb_table", "", map[string]any{"kms_key": "${ref.key.arn}", "deletion_protection": true, "replica_regions": []any{second}})
	f.add("db", "rds_instance", "", map[string]any{"kms_key": "${ref.key.arn}", "backup_retention_days": backup, "multi_az": true, "deletion_protection": true})
	f.add("db_replica", "rds_read_replica", second, map[string]any{"kms_key": "${ref.replica_key.arn}"})
	f.add("topic", "sns_topic", "", map[string]any{"kms_key": "${ref.key.arn}"})
	f.add("app_logs", "log_group", "", map[string]any{"kms_key": "${ref.key.arn}", "data_class": "patient", "log_class": "application", "retention_days": int64(365)})
	f.add("audit_logs", "log_group", "", map[string]any{"kms_key": "${ref.key.arn}", "data_class": "audit", "log_class": "audit", "retention_days": auditLogMinDays(jurisdiction)})
	f.add("cdn", "cloudfront_distribution", "", map[string]any{"viewer_protocol_policy": "https-only",
		"origins": []any{map[string]any{"id": "assets", "s3_bucket": "${ref.bucket.arn}"}, map[string]any{"id": "app", "alb": "${ref.alb.dns_name}", "protocol_policy": "https-only"}}})
	f.add("alb_5xx", "metric_alarm", "", map[string]any{"namespace": "AWS/ApplicationELB", "metric": "HTTPCode_ELB_5XX_Count", "alarm_actions": []any{"${ref.topic.arn}"}})
	f.add("db_cpu", "metric_alarm", "", map[string]any{"namespace": "AWS/RDS", "metric": "CPUUtilization", "alarm_actions": []any{"${ref.topic.arn}"}})
	f.add("policy", "iam_policy", "", map[string]any{"statements": []any{
		map[string]any{"effect": "Allow", "actions": []any{"s3:GetObject"}, "resources": []any{"${ref.bucket.arn}/*"}},
		map[string]any{"effect": "Deny", "actions": []any{"*"}, "resources": []any{"*"}},
	}})
	return f
}

// compliantLayer returns an environment layer that passes every rule: the
// account's trail, its audit logs, the CDN's assets.
func compliantLayer(env string) *fakeStack {
	f := &fakeStack{id: env + "-global", env: env, jurisdiction: "", res: map[string]*fakeRes{}}
	f.add("key", "kms_key", "us-east-1", map[string]any{"rotation": true})
	f.add("assets", "s3_bucket", "us-east-1", map[string]any{"kms_key": "${ref.key.arn}", "versioning": true, "public_access_block": true, "tls_only": true, "data_class": "public"})
	f.add("trail_bucket", "s3_bucket", "us-east-1", map[string]any{"kms_key": "${ref.key.arn}", "versioning": true, "public_access_block": true, "tls_only": true, "data_class": "audit"})
	f.add("audit_logs", "log_group", "us-east-1", map[string]any{"kms_key": "${ref.key.arn}", "data_class": "audit", "log_class": "audit", "retention_days": int64(2192)})
	f.add("trail", "cloudtrail", "us-east-1", map[string]any{"multi_region": true, "log_file_validation": true, "kms_key": "${ref.key.arn}"})
	f.add("cdn", "cloudfront_distribution", "us-east-1", map[string]any{"viewer_protocol_policy": "https-only",
		"origins": []any{map[string]any{"id": "assets", "s3_bucket": "${ref.assets.arn}"}, map[string]any{"id": "app", "domain": "origin.medportal.example", "protocol_policy": "https-only"}}})
	return f
}

// works reports whether r is one of the "will it work" rules: the small
// fixtures here hold only what the compliance rules read, not whole
// environments; those rules are tested on the shipped estate and its
// mutations (shipped_test.go, package analysis).
func works(r Result) bool { return strings.HasPrefix(r.RuleID, "works-") }

func failures(rep Report, rule string) []Result {
	var out []Result
	for _, r := range rep.Results {
		if r.RuleID == rule && r.Status == Fail {
			out = append(out, r)
		}
	}
	return out
}

var now = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// allTrailCitations is cloudtrail-integrity's citation for an environment
// layer: every regime's.
const allTrailCitations = "45 CFR 164.312(b); GDPR Art. 32(1)(d); PDPA s24"

func TestCompliantStacksPassEveryRule(t *testing.T) {
	for _, env := range []string{"dev", "test", "prod"} {
		rep := Evaluate(compliantLayer(env), nil, now)
		for _, r := range rep.Results {
			if r.Status != Pass && !works(r) {
				t.Errorf("%s-global: %s", env, r)
			}
		}
		for _, j := range []string{"us", "eu", "apac"} {
			rep := Evaluate(compliant(env, j), nil, now)
			for _, r := range rep.Results {
				if r.Status != Pass && !works(r) {
					t.Errorf("%s-%s: %s", env, j, r)
				}
			}
		}
	}
}

func TestRules(t *testing.T) {
	tests := []struct {
		name         string
		env, j       string
		mutate       func(f *fakeStack)
		rule         string // the rule expected to fail; "" = everything passes
		resource     string
		wantCitation string
		wantMsg      string
	}{
		{"aws-managed key", "prod", "eu", func(f *fakeStack) { f.set("bucket", "kms_key", "alias/aws/s3") }, "kms-customer-managed", "bucket", "GDPR Art. 32(1)(a)", "not one of the stack's customer-managed keys"},
		{"no key", "dev", "us", func(f *fakeStack) { delete(f.res["topic"].fields, "kms_key") }, "kms-customer-managed", "topic", "45 CFR 164.312(a)(2)(iv)", "not encrypted"},
		{"key in other region", "prod", "eu", func(f *fakeStack) { f.set("db_replica", "kms_key", "${ref.key.arn}") }, "kms-customer-managed", "db_replica", "GDPR Art. 32(1)(a)", "key key is in eu-central-1 but the data is in eu-west-1"},
		{"rotation off", "test", "apac", func(f *fakeStack) { f.set("key", "rotation", false) }, "kms-rotation", "key", "PDPA s24", "rotation is off"},
		{"public bucket", "prod", "us", func(f *fakeStack) { f.set("bucket", "public_access_block", false) }, "s3-public-access-blocked", "bucket", "45 CFR 164.312(a)(1)", "not blocked"},
		{"unversioned bucket", "prod", "us", func(f *fakeStack) { f.set("replica", "versioning", false) }, "s3-versioning", "replica", "45 CFR 164.312(c)(1)", "versioning is off"},
		{"bucket without TLS", "dev", "eu", func(f *fakeStack) { f.set("bucket", "tls_only", false) }, "s3-tls-only", "bucket", "GDPR Art. 32(1)(a)", "without TLS"},
		{"EU replicates to us-east-1", "prod", "eu", func(f *fakeStack) {
			for _, id := range []string{"replica", "replica_key", "db_replica"} {
				f.res[id].region = "us-east-1"
			}
		}, "data-residency", "repl", "GDPR Art. 44", "replicates to bucket replica in us-east-1, outside the EU regions (eu-central-1, eu-west-1)"},
		{"APAC replica outside Singapore", "prod", "apac", func(f *fakeStack) {
			for _, id := range []string{"replica", "replica_key", "db_replica"} {
				f.res[id].region = "ap-southeast-2"
			}
		}, "data-residency", "db_replica", "PDPA s26", "db_replica is in ap-southeast-2"},
		{"global table outside", "prod", "eu", func(f *fakeStack) { f.set("table", "replica_regions", []any{"us-west-2"}) }, "data-residency", "table", "GDPR Art. 44", "global table replica in us-west-2"},
		{"backup copy outside", "prod", "us", func(f *fakeStack) { f.set("db", "backup_copy_region", "eu-west-1") }, "data-residency", "db", "45 CFR 164.308(b)(1)", "backups copied to eu-west-1"},
		{"US second region is fine", "prod", "us", func(f *fakeStack) { f.set("db", "backup_copy_region", "us-east-2") }, "", "", "", ""},
		{"single-region trail", "prod", "global", func(f *fakeStack) { f.set("trail", "multi_region", false) }, "cloudtrail-integrity", "trail", allTrailCitations, "not multi-region"},
		{"unvalidated trail", "dev", "global", func(f *fakeStack) { f.set("trail", "log_file_validation", false) }, "cloudtrail-integrity", "trail", allTrailCitations, "validation is off"},
		{"no trail", "dev", "global", func(f *fakeStack) { f.order = slices.DeleteFunc(f.order, func(s string) bool { return s == "trail" }) }, "cloudtrail-integrity", "", allTrailCitations, "no CloudTrail trail"},
		{"a stack's own multi-region trail", "prod", "eu", func(f *fakeStack) {
			f.add("trail", "cloudtrail", "", map[string]any{"multi_region": true, "log_file_validation": true, "kms_key": "${ref.key.arn}"})
		}, "cloudtrail-integrity", "trail", "GDPR Art. 32(1)(d)", "the environment layer holds the account's one trail"},
		{"a stack without a trail is fine", "dev", "apac", func(f *fakeStack) {}, "", "", "", ""},
		{"patient data in the layer", "prod", "global", func(f *fakeStack) { f.set("assets", "data_class", "patient") }, "data-residency", "assets", "45 CFR 164.308(b)(1); GDPR Art. 44; PDPA s26", "patient data belongs in a jurisdiction stack"},
		{"layer audit logs one year", "prod", "global", func(f *fakeStack) { f.set("audit_logs", "retention_days", int64(365)) }, "audit-log-retention", "audit_logs", "45 CFR 164.316(b)(2)(i); GDPR Art. 32(1)(d); PDPA s24", "want at least 2192"},
		{"prod backups 14 days", "prod", "eu", func(f *fakeStack) { f.set("db", "backup_retention_days", int64(14)) }, "rds-backup-retention", "db", "GDPR Art. 32(1)(c)", "kept 14 days, want at least 35"},
		{"dev backups 3 days", "dev", "eu", func(f *fakeStack) { f.set("db", "backup_retention_days", int64(3)) }, "rds-backup-retention", "db", "GDPR Art. 32(1)(c)", "kept 3 days, want at least 7"},
		{"prod single-AZ", "prod", "us", func(f *fakeStack) { f.set("db", "multi_az", false) }, "rds-prod-multi-az", "db", "45 CFR 164.308(a)(7)(ii)(B)", "not Multi-AZ"},
		{"dev single-AZ is fine", "dev", "us", func(f *fakeStack) { f.set("db", "multi_az", false) }, "", "", "", ""},
		{"prod without deletion protection", "prod", "apac", func(f *fakeStack) { f.set("table", "deletion_protection", false) }, "prod-deletion-protection", "table", "PDPA s24", "deletion protection is off"},
		{"test without deletion protection is fine", "test", "apac", func(f *fakeStack) { f.set("db", "deletion_protection", false) }, "", "", "", ""},
		{"CloudFront allows HTTP", "prod", "eu", func(f *fakeStack) { f.set("cdn", "viewer_protocol_policy", "allow-all") }, "cloudfront-https-only", "cdn", "GDPR Art. 32(1)(a)", `"allow-all"`},
		{"CloudFront redirects to HTTPS is fine", "prod", "eu", func(f *fakeStack) { f.set("cdn", "viewer_protocol_policy", "redirect-to-https") }, "", "", "", ""},
		{"CloudFront to ALB over HTTP", "prod", "eu", func(f *fakeStack) {
			f.set("cdn", "origins", []any{map[string]any{"id": "app", "alb": "x", "protocol_policy": "http-only"}})
		}, "cloudfront-https-only", "cdn", "GDPR Art. 32(1)(a)", "want https-only"},
		{"prod without DB CPU alarm", "prod", "us", func(f *fakeStack) { f.set("db_cpu", "metric", "FreeStorageSpace") }, "prod-alarms", "", "45 CFR 164.308(a)(1)(ii)(D)", "no alarm on database CPU"},
		{"prod alarm notifying nobody", "prod", "us", func(f *fakeStack) { f.set("alb_5xx", "alarm_actions", []any{}) }, "prod-alarms", "alb_5xx", "45 CFR 164.308(a)(1)(ii)(D)", "notifies no SNS topic"},
		{"dev without alarms is fine", "dev", "us", func(f *fakeStack) { f.set("db_cpu", "metric", "FreeStorageSpace") }, "", "", "", ""},
		{"US audit logs one year", "prod", "us", func(f *fakeStack) { f.set("audit_logs", "retention_days", int64(365)) }, "audit-log-retention", "audit_logs", "45 CFR 164.316(b)(2)(i)", "kept 365 days, want at least 2192"},
		{"EU audit logs 180 days", "dev", "eu", func(f *fakeStack) { f.set("audit_logs", "retention_days", int64(180)) }, "audit-log-retention", "audit_logs", "GDPR Art. 32(1)(d)", "want at least 365"},
		{"patient logs forever", "prod", "eu", func(f *fakeStack) { f.set("app_logs", "retention_days", int64(0)) }, "patient-log-retention-limit", "app_logs", "GDPR Art. 5(1)(e)", "at most 731"},
		{"star star policy", "prod", "eu", func(f *fakeStack) {
			f.set("policy", "statements", []any{map[string]any{"effect": "Allow", "actions": []any{"*"}, "resources": []any{"*"}}})
		}, "iam-no-wildcard", "policy", "GDPR Art. 32", `every action ("*")`},
		{"*:* policy", "dev", "us", func(f *fakeStack) {
			f.set("policy", "statements", []any{map[string]any{"effect": "Allow", "actions": "*:*", "resources": "*"}})
		}, "iam-no-wildcard", "policy", "45 CFR 164.312(a)(1)", "statement 0"},
		{"service wildcard on one resource is fine", "dev", "us", func(f *fakeStack) {
			f.set("policy", "statements", []any{map[string]any{"effect": "Allow", "actions": []any{"*"}, "resources": []any{"${ref.bucket.arn}"}}})
		}, "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := compliant(tt.env, tt.j)
			if tt.j == "global" {
				f = compliantLayer(tt.env)
			}
			tt.mutate(f)
			rep := Evaluate(f, nil, now)
			for _, r := range rep.Results {
				if r.Status == Fail && r.RuleID != tt.rule && !works(r) {
					t.Errorf("unexpected failure: %s", r)
				}
			}
			if tt.rule == "" {
				return
			}
			fs := failures(rep, tt.rule)
			if len(fs) == 0 {
				t.Fatalf("rule %s passed, want a failure", tt.rule)
			}
			found := false
			for _, r := range fs {
				if r.Resource == tt.resource && r.Citation == tt.wantCitation && strings.Contains(r.Message, tt.wantMsg) {
					found = true
				}
			}
			if !found {
				t.Errorf("got failures %v, want resource %q, citation %q, message containing %q", fs, tt.resource, tt.wantCitation, tt.wantMsg)
			}
		})
	}
}

func TestRulesAreDocumented(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Rules() {
		if seen[r.ID] {
			t.Errorf("duplicate rule id %s", r.ID)
		}
		seen[r.ID] = true
		if r.Explanation == "" || r.Title == "" || (r.Severity != Blocking && r.Severity != Warning) {
			t.Errorf("rule %s is missing explanation, title or severity", r.ID)
		}
		for _, j := range []string{"us", "eu", "apac"} {
			if r.Citations[j] == "" {
				t.Errorf("rule %s has no citation for %s", r.ID, j)
			}
		}
	}
}

func TestExceptions(t *testing.T) {
	violating := func() *fakeStack {
		f := compliant("prod", "eu")
		f.set("bucket", "versioning", false)
		return f
	}
	valid := Exception{RuleID: "s3-versioning", Stack: "prod-eu", Resource: "bucket", Owner: "ops@example", Reason: "migration", Expires: now.Add(24 * time.Hour)}
	tests := []struct {
		name string
		exc  func(e Exception) Exception
		want Status
	}{
		{"active", func(e Exception) Exception { return e }, Excepted},
		{"expired", func(e Exception) Exception { e.Expires = now.Add(-time.Second); return e }, Fail},
		{"other resource", func(e Exception) Exception { e.Resource = "replica"; return e }, Fail},
		{"other stack", func(e Exception) Exception { e.Stack = "prod-us"; return e }, Fail},
		{"other rule", func(e Exception) Exception { e.RuleID = "s3-tls-only"; return e }, Fail},
		{"no owner", func(e Exception) Exception { e.Owner = ""; return e }, Fail},
		{"no reason", func(e Exception) Exception { e.Reason = ""; return e }, Fail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := Evaluate(violating(), []Exception{tt.exc(valid)}, now)
			var got []Status
			for _, r := range rep.Results {
				if r.RuleID == "s3-versioning" {
					got = append(got, r.Status)
				}
			}
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("status = %v, want [%s]", got, tt.want)
			}
			if tt.want == Excepted && len(slices.DeleteFunc(rep.Blocking(), works)) > 0 {
				t.Errorf("OK() = false with the only failure excepted")
			}
		})
	}
}
