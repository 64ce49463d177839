// Package inventory answers "what exists, where, and is it ours?" across
// the dev, test and prod accounts and every region a jurisdiction allows.
//
// A discovery asks each account, in each region and in parallel with a
// bound, the Resource Groups Tagging API plus the describe calls of the
// services it misses or under-reports (S3 buckets placed by their real
// location, CloudTrail trails, launch templates, RDS instances, DynamoDB
// tables) and, once per account, the global services (IAM roles, Route 53
// zones, CloudFront distributions). Each discovery is stored as a snapshot,
// so the changes between two discoveries can be listed.
//
// A resource is managed when it carries the portal:stack ownership tag
// naming a stack of its own account. Its jurisdiction is that stack's, and
// its region is judged by the guardrails' own residency rule
// (guardrails.ResidencyViolation, the rule blueprints are checked with): a
// resource that may hold patient data outside its jurisdiction's allowed
// regions is a violation, one that cannot (an EU stack's CloudFront
// certificate, which AWS keeps in us-east-1) is not. An unmanaged resource
// has no stack, so it is judged against every jurisdiction of its account
// (each account holds one stack per jurisdiction): it is a residency
// violation when the rule refuses its region for every jurisdiction, and
// otherwise takes the one jurisdiction whose regions include its region.
package inventory

import (
	"fmt"
	"sort"
	"strings"

	"portal/internal/engine"
	"portal/internal/guardrails"
	"portal/internal/regions"
)

// Global is the region recorded for resources of global services (IAM,
// Route 53, CloudFront), which live once per account.
const Global = "global"

// Resource is one AWS resource as a discovery found it.
type Resource struct {
	// ID is the row of the snapshot that holds the resource (0 before it
	// is stored); pages continue after it.
	ID          int64             `json:"-"`
	ARN         string            `json:"arn"`
	Environment string            `json:"environment"`
	AccountID   string            `json:"account_id"`
	Region      string            `json:"region"`
	Service     string            `json:"service"` // "s3", "ec2", "rds", …
	Type        string            `json:"type"`    // "s3:bucket", "ec2:vpc", …
	Name        string            `json:"name"`
	Tags        map[string]string `json:"tags"`
	Settings    Settings          `json:"settings"`

	// Classification, from the tags and the catalogue (see Classify).
	Managed      bool   `json:"managed"`
	Stack        string `json:"stack,omitempty"`           // portal:stack, when managed
	PortalID     string `json:"portal_resource,omitempty"` // portal:resource, when managed
	Version      string `json:"version,omitempty"`         // portal:version, when managed
	Jurisdiction string `json:"jurisdiction,omitempty"`
	// JurisdictionByRegion is set when the jurisdiction was inferred from
	// the region (unmanaged resources), not from a stack.
	JurisdictionByRegion bool `json:"jurisdiction_by_region,omitempty"`
	// Violation explains a residency violation; empty when there is none.
	Violation string `json:"violation,omitempty"`
	// Note explains anything else odd: a portal:stack tag naming a stack
	// of another account or an unknown stack.
	Note string `json:"note,omitempty"`
	// Managing links a managed resource to its stack's state, the run
	// that last changed it and the blueprint version; set by queries.
	Managing *Managing `json:"managing,omitempty"`

	// described is set when a describe call (not only the tagging API)
	// reported the resource: its region and settings win a merge.
	described bool
}

// Settings are the settings that matter for compliance. Empty means "does
// not apply to this type" (or could not be read).
type Settings struct {
	Encryption   string `json:"encryption,omitempty"`    // "aws:kms", "AES256", "none"
	KMSKey       string `json:"kms_key,omitempty"`       // key ARN or id
	PublicAccess string `json:"public_access,omitempty"` // "blocked", "not blocked", "public"
	Versioning   string `json:"versioning,omitempty"`    // "enabled", "suspended", "off"
	Backups      string `json:"backups,omitempty"`       // "point-in-time recovery", "7 days", "off"
	MultiAZ      string `json:"multi_az,omitempty"`      // "yes", "no"
	Deletion     string `json:"deletion_protection,omitempty"`
}

// Empty reports whether no setting is known.
func (s Settings) Empty() bool { return s == Settings{} }

// ParseARN splits an ARN into its service, region, account and resource
// type and name, e.g. arn:aws:ec2:eu-central-1:111111111111:vpc/vpc-1 is
// ec2, eu-central-1, 111111111111, "ec2:vpc", "vpc-1".
func ParseARN(arn string) (service, region, account, typ, name string, ok bool) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" {
		return "", "", "", "", "", false
	}
	service, region, account = parts[2], parts[3], parts[4]
	res := parts[5]
	switch {
	case service == "s3" && !strings.Contains(res, "/"):
		return service, region, account, "s3:bucket", res, true
	case service == "sns" && !strings.Contains(res, ":"):
		return service, region, account, "sns:topic", res, true
	case service == "sqs":
		return service, region, account, "sqs:queue", res, true
	}
	i := strings.IndexAny(res, "/:")
	if i < 0 {
		return service, region, account, service + ":" + res, res, true
	}
	typ = service + ":" + res[:i]
	name = res[i+1:]
	if j := strings.LastIndexAny(name, "/:"); j >= 0 && service != "logs" && service != "elasticloadbalancing" {
		name = name[j+1:]
	}
	return service, region, account, typ, name, true
}

// globalServices are the services whose resources live once per account.
var globalServices = []string{"iam", "route53", "cloudfront"}

// IsGlobal reports whether service is a global service.
func IsGlobal(service string) bool {
	for _, g := range globalServices {
		if g == service {
			return true
		}
	}
	return false
}

// newResource fills a resource from its ARN.
func newResource(arn, env, account, region string) Resource {
	svc, reg, acct, typ, name, ok := ParseARN(arn)
	r := Resource{ARN: arn, Environment: env, AccountID: account, Region: region, Service: svc, Type: typ, Name: name, Tags: map[string]string{}}
	if !ok {
		r.Service, r.Type, r.Name = "unknown", "unknown", arn
	}
	if acct != "" {
		r.AccountID = acct
	}
	if reg != "" {
		r.Region = reg
	}
	if IsGlobal(r.Service) {
		r.Region = Global
	}
	return r
}

// Classify sets r's managed state, stack, jurisdiction and residency
// verdict from its tags and region. env is the environment whose account r
// was found in.
func Classify(r *Resource) {
	r.Managed, r.Stack, r.PortalID, r.Version, r.Jurisdiction, r.JurisdictionByRegion, r.Violation, r.Note = false, "", "", "", "", false, "", ""
	if tag := r.Tags[engine.TagStack]; tag != "" {
		env, jid, _ := strings.Cut(tag, "-")
		j, known := regions.JurisdictionByID(jid)
		switch {
		case !known || !isEnvironment(env):
			r.Note = fmt.Sprintf("tagged %s=%s, which is not a stack", engine.TagStack, tag)
		case env != r.Environment:
			r.Note = fmt.Sprintf("tagged %s=%s, a stack of the %s account, but found in the %s account", engine.TagStack, tag, env, r.Environment)
		default:
			r.Managed, r.Stack, r.Jurisdiction = true, tag, j.ID
			r.PortalID, r.Version = r.Tags[engine.TagResource], r.Tags[engine.TagVersion]
			if r.Region != Global {
				r.Violation = guardrails.ResidencyViolation(j, blueprintType(r.Type), r.Region)
			}
			return
		}
	}
	if r.Region == Global {
		return
	}
	var allowing []regions.Jurisdiction
	refused := 0
	for _, j := range regions.Jurisdictions() {
		if j.Allows(r.Region) {
			allowing = append(allowing, j)
		}
		if guardrails.ResidencyViolation(j, blueprintType(r.Type), r.Region) != "" {
			refused++
		}
	}
	if refused == len(regions.Jurisdictions()) {
		r.Violation = fmt.Sprintf("in %s, which no jurisdiction of this account's stacks allows (%s)", r.Region, strings.Join(AllowedRegions(), ", "))
	}
	if len(allowing) == 1 {
		r.Jurisdiction, r.JurisdictionByRegion = allowing[0].ID, true
	}
}

// blueprintTypes names the discovered types in the blueprints' words, for
// the residency rule (which knows, by blueprint type, what can hold no
// patient data). A type not listed is judged as one that may hold it.
var blueprintTypes = map[string]string{
	"acm:certificate":  "acm_certificate",
	"s3:bucket":        "s3_bucket",
	"dynamodb:table":   "dynamodb_table",
	"rds:db":           "rds_instance",
	"sns:topic":        "sns_topic",
	"logs:log-group":   "log_group",
	"kms:key":          "kms_key",
	"cloudtrail:trail": "cloudtrail",
}

func blueprintType(inventoryType string) string { return blueprintTypes[inventoryType] }

func isEnvironment(name string) bool {
	for _, e := range regions.EnvironmentNames() {
		if e == name {
			return true
		}
	}
	return false
}

// AllowedRegions is the union of every jurisdiction's allowed regions,
// sorted: the regions a discovery scans.
func AllowedRegions() []string {
	seen := map[string]bool{}
	var out []string
	for _, j := range regions.Jurisdictions() {
		for _, r := range j.AllowedRegions {
			if !seen[r] {
				seen[r] = true
				out = append(out, r)
			}
		}
	}
	sort.Strings(out)
	return out
}

// ServiceLabel is how pages name a service.
func ServiceLabel(service string) string {
	switch service {
	case "s3":
		return "S3"
	case "ec2":
		return "EC2"
	case "rds":
		return "RDS"
	case "dynamodb":
		return "DynamoDB"
	case "kms":
		return "KMS"
	case "sns":
		return "SNS"
	case "sqs":
		return "SQS"
	case "iam":
		return "IAM"
	case "route53":
		return "Route 53"
	case "cloudfront":
		return "CloudFront"
	case "cloudtrail":
		return "CloudTrail"
	case "cloudwatch":
		return "CloudWatch"
	case "logs":
		return "CloudWatch Logs"
	case "elasticloadbalancing":
		return "Load balancing"
	case "autoscaling":
		return "Auto Scaling"
	case "textract":
		return "Textract"
	case "lambda":
		return "Lambda"
	}
	return service
}
