package guardrails

import (
	"fmt"
	"slices"
	"strings"

	"portal/internal/analysis"
	"portal/internal/regions"
)

// dataStores returns the resource types that hold data at rest or in
// transit that may be patient data.
func dataStores() []string {
	return []string{"s3_bucket", "dynamodb_table", "dynamodb_table_replica", "rds_instance", "rds_read_replica", "sns_topic", "log_group"}
}

// auditLogMinDays is the minimum retention of audit log groups per
// jurisdiction, in days (a valid CloudWatch Logs retention value):
//   - us: HIPAA 45 CFR 164.316(b)(2)(i) keeps required documentation six
//     years; audit logs are treated as such: 2192 days.
//   - eu: GDPR sets no number; one year (365) lets incidents be investigated
//     and the Art. 33 breach notification be substantiated, and is the common
//     supervisory-authority expectation.
//   - apac: PDPA sets no number; one year (365), following the PDPC's
//     guidance on reasonable security arrangements.
func auditLogMinDays(jurisdiction string) int64 {
	if jurisdiction == "us" || jurisdiction == LayerID {
		return 2192
	}
	return 365
}

// patientLogMaxDays bounds application logs that may contain patient data
// (storage limitation); longer is a warning.
const patientLogMaxDays = 731

// Rules returns every guardrail in evaluation order.
func Rules() []Rule {
	return []Rule{
		{
			ID: "kms-customer-managed", Severity: Blocking, Title: "Data stores encrypted with a customer-managed KMS key in their region",
			Explanation: "Every S3 bucket, DynamoDB table, RDS instance and replica, SNS topic and log group must be encrypted with one of the stack's own KMS keys (not an AWS-managed key), created in the same region as the data, so the company controls who can decrypt and can revoke access.",
			Citations:   map[string]string{"us": "45 CFR 164.312(a)(2)(iv)", "eu": "GDPR Art. 32(1)(a)", "apac": "PDPA s24"},
			check:       checkCMK,
		},
		{
			ID: "kms-rotation", Severity: Blocking, Title: "KMS keys rotate",
			Explanation: "Customer-managed keys must have automatic yearly rotation on, limiting how much data one key protects.",
			Citations:   map[string]string{"us": "45 CFR 164.312(a)(2)(iv)", "eu": "GDPR Art. 32(1)(a)", "apac": "PDPA s24"},
			check: func(c *checker) {
				for _, id := range c.ofType("kms_key") {
					if !c.boolean(id, "rotation") {
						c.fail(id, "rotation", "key rotation is off")
					}
				}
			},
		},
		{
			ID: "s3-public-access-blocked", Severity: Blocking, Title: "S3 public access blocked",
			Explanation: "Every bucket blocks public access; static assets reach users through CloudFront, never a public bucket.",
			Citations:   map[string]string{"us": "45 CFR 164.312(a)(1)", "eu": "GDPR Art. 32", "apac": "PDPA s24"},
			check:       bucketFlag("public_access_block", "public access is not blocked"),
		},
		{
			ID: "s3-versioning", Severity: Blocking, Title: "S3 versioning on",
			Explanation: "Every bucket keeps object versions so records altered or deleted by mistake or malice can be recovered.",
			Citations:   map[string]string{"us": "45 CFR 164.312(c)(1)", "eu": "GDPR Art. 32(1)(b)", "apac": "PDPA s24"},
			check:       bucketFlag("versioning", "versioning is off"),
		},
		{
			ID: "s3-tls-only", Severity: Blocking, Title: "S3 accessed over TLS only",
			Explanation: "Every bucket policy denies requests not made over TLS (aws:SecureTransport), so data never crosses a network in clear.",
			Citations:   map[string]string{"us": "45 CFR 164.312(e)(1)", "eu": "GDPR Art. 32(1)(a)", "apac": "PDPA s24"},
			check:       bucketFlag("tls_only", "the bucket accepts requests without TLS"),
		},
		{
			ID: "data-residency", Severity: Blocking, Title: "Data stays in the jurisdiction's regions",
			Explanation: "Nothing the portal provisions may place data, replicas, backup copies or global-table replicas outside the regions allowed for the jurisdiction. In the US, HIPAA itself has no residency clause; company policy and the BAA scope keep PHI in US regions.",
			Citations:   map[string]string{"us": "45 CFR 164.308(b)(1)", "eu": "GDPR Art. 44", "apac": "PDPA s26"},
			check:       checkResidency,
		},
		{
			ID: "cloudtrail-integrity", Severity: Blocking, Title: "CloudTrail multi-region, validated and encrypted",
			Explanation: "Each account has one CloudTrail trail covering all regions, with log file validation (tamper evidence) and encryption with a customer-managed key, so every API call on patient data is recorded: the environment layer holds it, and a jurisdiction stack adds no multi-region trail of its own (it would store every event again).",
			Citations:   map[string]string{"us": "45 CFR 164.312(b)", "eu": "GDPR Art. 32(1)(d)", "apac": "PDPA s24"},
			check:       checkTrail,
		},
		{
			ID: "rds-backup-retention", Severity: Blocking, Title: "Database backups kept long enough", StacksOnly: true,
			Explanation: "RDS automated backups are kept at least 7 days, and 35 days (the RDS maximum) in prod, so data can be restored after loss or corruption.",
			Citations:   map[string]string{"us": "45 CFR 164.308(a)(7)(ii)(A)", "eu": "GDPR Art. 32(1)(c)", "apac": "PDPA s24"},
			check: func(c *checker) {
				want := int64(7)
				if c.prod {
					want = 35
				}
				for _, id := range c.ofType("rds_instance") {
					if n, _ := c.integer(id, "backup_retention_days"); n < want {
						c.fail(id, "backup_retention_days", "backups are kept %d days, want at least %d", n, want)
					}
				}
			},
		},
		{
			ID: "rds-prod-multi-az", Severity: Blocking, Title: "Prod databases Multi-AZ", ProdOnly: true, StacksOnly: true,
			Explanation: "Prod RDS instances run Multi-AZ so the loss of one availability zone does not make patient records unavailable.",
			Citations:   map[string]string{"us": "45 CFR 164.308(a)(7)(ii)(B)", "eu": "GDPR Art. 32(1)(b)", "apac": "PDPA s24"},
			check: func(c *checker) {
				for _, id := range c.ofType("rds_instance") {
					if !c.boolean(id, "multi_az") {
						c.fail(id, "multi_az", "prod database is not Multi-AZ")
					}
				}
			},
		},
		{
			ID: "prod-deletion-protection", Severity: Blocking, Title: "Prod databases protected from deletion", ProdOnly: true,
			Explanation: "Prod RDS instances and DynamoDB tables have deletion protection, so no single mistaken call destroys patient records.",
			Citations:   map[string]string{"us": "45 CFR 164.312(c)(1)", "eu": "GDPR Art. 32(1)(b)", "apac": "PDPA s24"},
			check: func(c *checker) {
				for _, id := range c.ofType("rds_instance", "dynamodb_table") {
					if !c.boolean(id, "deletion_protection") {
						c.fail(id, "deletion_protection", "deletion protection is off in prod")
					}
				}
			},
		},
		{
			ID: "cloudfront-https-only", Severity: Blocking, Title: "CloudFront serves HTTPS only",
			Explanation: "Viewers reach CloudFront over HTTPS only (https-only, or redirect-to-https so nothing is served over HTTP), and CloudFront reaches the load balancer over HTTPS.",
			Citations:   map[string]string{"us": "45 CFR 164.312(e)(1)", "eu": "GDPR Art. 32(1)(a)", "apac": "PDPA s24"},
			check:       checkCloudFront,
		},
		{
			ID: "prod-alarms", Severity: Blocking, Title: "Prod alarms on load balancer 5xx and database CPU", ProdOnly: true, StacksOnly: true,
			Explanation: "Prod has CloudWatch alarms on load balancer 5xx responses and on database CPU, each notifying an SNS topic, so outages affecting patients are noticed.",
			Citations:   map[string]string{"us": "45 CFR 164.308(a)(1)(ii)(D)", "eu": "GDPR Art. 32(1)(b)", "apac": "PDPA s24"},
			check:       checkAlarms,
		},
		{
			ID: "audit-log-retention", Severity: Blocking, Title: "Audit logs kept as long as the regime asks",
			Explanation: "Audit log groups keep events at least 2192 days (six years) in the US and 365 days in the EU and Singapore; the environment layer's, which records every jurisdiction, the longest of them.",
			Citations:   map[string]string{"us": "45 CFR 164.316(b)(2)(i)", "eu": "GDPR Art. 32(1)(d)", "apac": "PDPA s24"},
			check: func(c *checker) {
				want := auditLogMinDays(c.j.ID)
				for _, id := range c.ofType("log_group") {
					if c.str(id, "log_class") != "audit" {
						continue
					}
					if n, _ := c.integer(id, "retention_days"); n < want {
						c.fail(id, "retention_days", "audit logs are kept %d days, want at least %d", n, want)
					}
				}
			},
		},
		{
			ID: "patient-log-retention-limit", Severity: Warning, Title: "Logs with patient data not kept longer than needed",
			Explanation: fmt.Sprintf("Application logs that may hold patient data should not be kept more than %d days (two years): keep data no longer than its purpose needs.", patientLogMaxDays),
			Citations:   map[string]string{"us": "45 CFR 164.502(b)", "eu": "GDPR Art. 5(1)(e)", "apac": "PDPA s25"},
			check: func(c *checker) {
				for _, id := range c.ofType("log_group") {
					if c.str(id, "data_class") != "patient" {
						continue
					}
					if n, ok := c.integer(id, "retention_days"); !ok || n == 0 || n > patientLogMaxDays {
						c.fail(id, "retention_days", "logs with patient data are kept %d days (0 = forever), want at most %d", n, patientLogMaxDays)
					}
				}
			},
		},
		{
			ID: "iam-no-wildcard", Severity: Blocking, Title: "No IAM policy grants every action on every resource",
			Explanation: `No policy statement may Allow Action "*" (or "*:*") on Resource "*": grant the actions a role needs on the resources it uses.`,
			Citations:   map[string]string{"us": "45 CFR 164.312(a)(1)", "eu": "GDPR Art. 32", "apac": "PDPA s24"},
			check:       checkIAM,
		},
		{
			ID: analysis.RuleNetwork, Severity: Blocking, ProdBlocking: true, Title: "Will it work: every network path goes through",
			Explanation: "Followed from the route tables, security groups, network ACLs and VPC endpoints of the blueprint: the internet reaches CloudFront and the load balancer, the load balancer the app, the app its database and every AWS API its role may call, and Route 53's health checkers the load balancer. A path AWS would drop leaves patients without the service (blocking in prod, a warning in dev and test).",
			Citations:   map[string]string{"us": "45 CFR 164.308(a)(7)(i)", "eu": "GDPR Art. 32(1)(b)", "apac": "PDPA s24"},
			check:       worksRule(analysis.RuleNetwork),
		},
		{
			ID: analysis.RuleKeys, Severity: Blocking, ProdBlocking: true, Title: "Will it work: every user of a key is allowed by its key policy",
			Explanation: "Each AWS service or role that uses a customer-managed key (CloudFront for the assets, the Auto Scaling service-linked role for volumes, CloudTrail, CloudWatch Logs, CloudWatch alarms publishing to encrypted topics, S3 replication, the app's role) is allowed by the key's policy with the conditions AWS sends, and what AWS checks at creation is created after the policy.",
			Citations:   map[string]string{"us": "45 CFR 164.312(a)(2)(iv)", "eu": "GDPR Art. 32(1)(a)", "apac": "PDPA s24"},
			check:       worksRule(analysis.RuleKeys),
		},
		{
			ID: analysis.RuleTLS, Severity: Blocking, ProdBlocking: true, Title: "Will it work: certificates cover every hostname, zones are delegated",
			Explanation: "Every certificate covers each hostname that reaches its listener or distribution (CloudFront's origin name included, or CloudFront answers 502), is validated in a zone holding its names, and that zone is delegated from its parent domain (or ACM never issues it).",
			Citations:   map[string]string{"us": "45 CFR 164.312(e)(1)", "eu": "GDPR Art. 32(1)(a)", "apac": "PDPA s24"},
			check:       worksRule(analysis.RuleTLS),
		},
		{
			ID: analysis.RuleRouting, Severity: Blocking, ProdBlocking: true, Title: "Will it work: every jurisdiction served, failover inside it",
			Explanation: "Geolocation sends each jurisdiction's patients to their jurisdiction, with a default; each jurisdiction fails over from its home region to its standby (or, allowed one region, to a maintenance page); no failure of any region sends a jurisdiction's patients to a region it does not allow.",
			Citations:   map[string]string{"us": "45 CFR 164.308(a)(7)(ii)(B)", "eu": "GDPR Art. 32(1)(c); Art. 44", "apac": "PDPA s24; s26"},
			check:       worksRule(analysis.RuleRouting),
		},
	}
}

func bucketFlag(field, msg string) func(c *checker) {
	return func(c *checker) {
		for _, id := range c.ofType("s3_bucket") {
			if !c.boolean(id, field) {
				c.fail(id, field, "%s", msg)
			}
		}
	}
}

func checkCMK(c *checker) {
	for _, id := range c.ofType(dataStores()...) {
		ref := c.str(id, "kms_key")
		key, ok := target(ref)
		switch {
		case ref == "":
			c.fail(id, "kms_key", "not encrypted with a KMS key")
		case !ok || c.s.ResourceType(key) != "kms_key":
			c.fail(id, "kms_key", "encrypted with %q, which is not one of the stack's customer-managed keys", ref)
		case c.s.ResourceRegion(key) != c.s.ResourceRegion(id):
			c.fail(id, "kms_key", "key %s is in %s but the data is in %s", key, c.s.ResourceRegion(key), c.s.ResourceRegion(id))
		}
	}
}

// holdsNoData are resource types that can store no patient data, so their
// region is not a residency question (CloudFront takes certificates only
// from us-east-1).
var holdsNoData = map[string]bool{"acm_certificate": true}

// ResidencyViolation is the data-residency rule for one placed resource,
// the one rule the guardrails, the inventory and the evidence pack all
// judge residency by: "" when a resource of blueprint type typ (e.g.
// "s3_bucket"; "" when unknown) may be in region for jurisdiction j, or
// else why not ("in us-east-1, outside the EU regions (eu-central-1,
// eu-west-1)"). A type that can hold no patient data may be anywhere: an
// EU stack's CloudFront certificate lives in us-east-1 by AWS's design.
func ResidencyViolation(j regions.Jurisdiction, typ, region string) string {
	if region == "" || holdsNoData[typ] || j.Allows(region) {
		return ""
	}
	return fmt.Sprintf("in %s, outside the %s regions (%s)", region, strings.ToUpper(j.ID), strings.Join(j.AllowedRegions, ", "))
}

func checkResidency(c *checker) {
	if c.layer {
		for _, id := range c.ofType(dataStores()...) {
			if c.str(id, "data_class") == "patient" {
				c.fail(id, "data_class", "%s holds patient data in the environment layer, which serves every jurisdiction: patient data belongs in a jurisdiction stack", id)
			}
		}
	}
	allowed := strings.Join(c.j.AllowedRegions, ", ")
	for _, id := range c.s.ResourceIDs() {
		if v := ResidencyViolation(c.j, c.s.ResourceType(id), c.s.ResourceRegion(id)); v != "" {
			c.fail(id, "region", "%s is %s", id, v)
		}
	}
	for _, id := range c.ofType("s3_replication") {
		dst, ok := target(c.str(id, "destination_bucket"))
		if r := c.s.ResourceRegion(dst); ok && r != "" && !c.j.Allows(r) {
			c.fail(id, "destination_bucket", "replicates to bucket %s in %s, outside the %s regions (%s)", dst, r, strings.ToUpper(c.j.ID), allowed)
		}
	}
	for _, id := range c.ofType("dynamodb_table") {
		for i, v := range c.list(id, "replica_regions") {
			if r, _ := v.(string); !c.j.Allows(r) {
				c.fail(id, fmt.Sprintf("replica_regions[%d]", i), "global table replica in %s, outside the %s regions (%s)", r, strings.ToUpper(c.j.ID), allowed)
			}
		}
	}
	for _, id := range c.ofType("rds_instance") {
		if r := c.str(id, "backup_copy_region"); r != "" && !c.j.Allows(r) {
			c.fail(id, "backup_copy_region", "backups copied to %s, outside the %s regions (%s)", r, strings.ToUpper(c.j.ID), allowed)
		}
	}
}

func checkTrail(c *checker) {
	trails := c.ofType("cloudtrail")
	switch {
	case c.layer && len(trails) == 0:
		c.fail("", "", "the environment layer has no CloudTrail trail: the account would record nothing")
	case !c.layer:
		for _, id := range trails {
			if c.boolean(id, "multi_region") {
				c.fail(id, "multi_region", "a jurisdiction stack's own multi-region trail would record every event of the account again: the environment layer holds the account's one trail")
			}
		}
		return
	}
	for _, id := range trails {
		if !c.boolean(id, "multi_region") {
			c.fail(id, "multi_region", "trail is not multi-region")
		}
		if !c.boolean(id, "log_file_validation") {
			c.fail(id, "log_file_validation", "log file validation is off")
		}
		if key, ok := target(c.str(id, "kms_key")); !ok || c.s.ResourceType(key) != "kms_key" {
			c.fail(id, "kms_key", "trail logs are not encrypted with a customer-managed key")
		}
	}
}

func checkCloudFront(c *checker) {
	for _, id := range c.ofType("cloudfront_distribution") {
		if p := c.str(id, "viewer_protocol_policy"); p != "https-only" && p != "redirect-to-https" {
			c.fail(id, "viewer_protocol_policy", "viewer protocol policy is %q, want https-only or redirect-to-https", p)
		}
		for i, o := range c.list(id, "origins") {
			m, _ := o.(map[string]any)
			_, isALB := m["alb"]
			_, byName := m["domain"]
			if (isALB || byName) && m["protocol_policy"] != "https-only" {
				c.fail(id, fmt.Sprintf("origins[%d].protocol_policy", i), "origin %v is reached with %v, want https-only", m["id"], m["protocol_policy"])
			}
		}
	}
}

func checkAlarms(c *checker) {
	var alb5xx, dbCPU bool
	for _, id := range c.ofType("metric_alarm") {
		notifies := false
		for _, a := range c.list(id, "alarm_actions") {
			s, _ := a.(string)
			if t, ok := target(s); ok && c.s.ResourceType(t) == "sns_topic" {
				notifies = true
			}
		}
		ns, metric := c.str(id, "namespace"), c.str(id, "metric")
		if !notifies {
			c.fail(id, "alarm_actions", "alarm %s/%s notifies no SNS topic", ns, metric)
			continue
		}
		switch {
		case ns == "AWS/ApplicationELB" && (metric == "HTTPCode_ELB_5XX_Count" || metric == "HTTPCode_Target_5XX_Count"):
			alb5xx = true
		case ns == "AWS/RDS" && metric == "CPUUtilization":
			dbCPU = true
		}
	}
	if !alb5xx {
		c.fail("", "", "no alarm on load balancer 5xx (AWS/ApplicationELB HTTPCode_ELB_5XX_Count) notifying an SNS topic")
	}
	if !dbCPU {
		c.fail("", "", "no alarm on database CPU (AWS/RDS CPUUtilization) notifying an SNS topic")
	}
}

func checkIAM(c *checker) {
	for _, id := range c.ofType("iam_policy") {
		for i, st := range c.list(id, "statements") {
			m, _ := st.(map[string]any)
			if m["effect"] != "Allow" {
				continue
			}
			if anyIs(m["actions"], "*", "*:*") && anyIs(m["resources"], "*") {
				c.fail(id, fmt.Sprintf("statements[%d]", i), `statement %d allows every action ("*") on every resource ("*")`, i)
			}
		}
	}
}

func anyIs(v any, want ...string) bool {
	switch x := v.(type) {
	case string:
		return slices.Contains(want, x)
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok && slices.Contains(want, s) {
				return true
			}
		}
	}
	return false
}
