package analysis

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// consumer is an AWS service or role that uses a KMS key, with the request
// AWS makes on its behalf.
type consumer struct {
	who string // for the reader: "CloudTrail (trail)"
	at  res    // the resource that makes it a consumer
	// service is the service principal; roles are the ARNs (canonical
	// references or names) that identify a role principal.
	service string
	roles   []string
	// role is the IAM role of the account, when the consumer is one: a key
	// policy keeping the account's statement lets its IAM policy grant the
	// key.
	role res
	// actions it calls, and the context keys AWS sends with them.
	actions []string
	context map[string]string
	// before is set when AWS refuses to create the consumer until the key
	// policy allows it (a trail, a log group, instances launched with
	// encrypted volumes).
	before bool
	doc    string // the AWS page that asks for the statement
	fix    string // the statement to add, in blueprint form
}

// keys checks each consumer of each key against the key's policy.
func (a *analyzer) keys() {
	for _, s := range a.stacks {
		for _, k := range ofType(s, "kms_key") {
			cs := a.consumers(k)
			if len(cs) == 0 {
				continue
			}
			pol, stmts, root := a.keyPolicy(k)
			c := Check{Rule: RuleKeys, Stack: s.StackID(), Title: fmt.Sprintf("Who uses %s (%s)", k.id, k.region())}
			for _, u := range cs {
				c.Hops = append(c.Hops, a.judge(k, pol, stmts, root, u))
			}
			a.add(c)
		}
	}
}

// keyPolicy returns the kms_key_policy of key k, its statements, and
// whether it keeps the account's statement (which lets IAM policies of the
// account grant the key). Without a kms_key_policy the key has AWS's
// default policy: the account's statement alone.
func (a *analyzer) keyPolicy(k res) (res, []map[string]any, bool) {
	for _, p := range ofType(k.st, "kms_key_policy") {
		if t, ok := a.target(p.st, p.get("key")); ok && t == k {
			var out []map[string]any
			for _, st := range p.list("statements") {
				if m, ok := st.(map[string]any); ok {
					out = append(out, m)
				}
			}
			root := true
			if v, ok := p.get("account_root").(bool); ok {
				root = v // as read from AWS
			}
			return p, out, root
		}
	}
	return res{}, nil, true
}

func (a *analyzer) refersTo(from res, v any, to res) bool {
	t, ok := a.target(from.st, v)
	return ok && t == to
}

func (a *analyzer) token(r res, attr string) string {
	return "${xref." + r.st.StackID() + "." + r.id + "." + attr + "}"
}

// consumers returns what uses key k, found from the resources that name it.
func (a *analyzer) consumers(k res) []consumer {
	var out []consumer
	s := k.st
	acct := accountTok
	for _, lt := range ofType(s, "launch_template") {
		if !lt.boolean("ebs_encrypted") || !a.refersTo(lt, lt.get("kms_key"), k) {
			continue
		}
		for _, g := range ofType(s, "autoscaling_group") {
			if !a.refersTo(g, g.get("launch_template"), lt) {
				continue
			}
			u := consumer{who: "the Auto Scaling service-linked role (" + g.id + " launches instances with volumes under it)", at: g, before: true,
				roles:   []string{"/AWSServiceRoleForAutoScaling"},
				actions: []string{"kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey", "kms:CreateGrant"},
				context: map[string]string{"kms:GrantIsForAWSResource": "true"},
				doc:     "https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html",
				fix:     `{sid: AutoScalingUsesKeyForVolumes, principal: {aws: ["${ref.<service-linked role>.arn}"]}, actions: [kms:Encrypt, kms:Decrypt, kms:ReEncrypt*, kms:GenerateDataKey*, kms:DescribeKey]} and {sid: AutoScalingAttachesVolumes, principal: {aws: [...]}, actions: [kms:CreateGrant], conditions: {Bool: {kms:GrantIsForAWSResource: "true"}}}`}
			for _, r := range ofType(s, "iam_service_linked_role") {
				if r.str("service") == "autoscaling.amazonaws.com" {
					u.roles = append(u.roles, a.token(r, "arn"))
				}
			}
			out = append(out, u)
		}
	}
	for _, t := range ofType(s, "cloudtrail") {
		if !a.refersTo(t, t.get("kms_key"), k) {
			continue
		}
		arn := fmt.Sprintf("arn:aws:cloudtrail:%s:%s:trail/%s", t.region(), acct, t.str("name"))
		out = append(out, consumer{who: "CloudTrail (" + t.id + ")", at: t, before: true, service: "cloudtrail.amazonaws.com",
			actions: []string{"kms:GenerateDataKey", "kms:DescribeKey"},
			context: map[string]string{"aws:SourceArn": arn, "aws:SourceAccount": acct, "kms:EncryptionContext:aws:cloudtrail:arn": arn},
			doc:     "https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-kms-key-policy-for-cloudtrail.html",
			fix:     `{sid: CloudTrailEncryptsLogs, principal: {service: cloudtrail.amazonaws.com}, actions: ["kms:GenerateDataKey*"], conditions: {StringEquals: {"aws:SourceArn": "<the trail's ARN>"}}} and kms:DescribeKey`})
	}
	for _, l := range ofType(s, "log_group") {
		if !a.refersTo(l, l.get("kms_key"), k) {
			continue
		}
		arn := fmt.Sprintf("arn:aws:logs:%s:%s:log-group:%s", l.region(), acct, l.str("name"))
		out = append(out, consumer{who: "CloudWatch Logs (" + l.id + ")", at: l, before: true, service: "logs." + l.region() + ".amazonaws.com",
			actions: []string{"kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:GenerateDataKey", "kms:DescribeKey"},
			context: map[string]string{"kms:EncryptionContext:aws:logs:arn": arn, "aws:SourceAccount": acct},
			doc:     "https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html",
			fix:     fmt.Sprintf(`{sid: CloudWatchLogsEncrypts, principal: {service: logs.%s.amazonaws.com}, actions: ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"], conditions: {ArnLike: {"kms:EncryptionContext:aws:logs:arn": "%s"}}}`, l.region(), arn)})
	}
	for _, topic := range ofType(s, "sns_topic") {
		if !a.refersTo(topic, topic.get("kms_key"), k) {
			continue
		}
		for _, al := range ofType(s, "metric_alarm") {
			if !slices.ContainsFunc(al.list("alarm_actions"), func(v any) bool { return a.refersTo(al, v, topic) }) {
				continue
			}
			arn := fmt.Sprintf("arn:aws:cloudwatch:%s:%s:alarm:%s", al.region(), acct, al.str("name"))
			out = append(out, consumer{who: "CloudWatch alarm " + al.id + " (publishes to " + topic.id + ")", at: al, service: "cloudwatch.amazonaws.com",
				actions: []string{"kms:Decrypt", "kms:GenerateDataKey"},
				context: map[string]string{"aws:SourceArn": arn, "aws:SourceAccount": acct},
				doc:     "https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services",
				fix:     `{sid: CloudWatchAlarmsPublish, principal: {service: cloudwatch.amazonaws.com}, actions: ["kms:Decrypt", "kms:GenerateDataKey*"], conditions: {StringEquals: {"aws:SourceAccount": "${stack.account}"}}}`})
		}
	}
	for _, b := range ofType(s, "s3_bucket") {
		if !a.refersTo(b, b.get("kms_key"), k) {
			continue
		}
		for _, cdn := range ofType(s, "cloudfront_distribution") {
			for _, o := range cdn.list("origins") {
				m, _ := o.(map[string]any)
				if !a.refersTo(cdn, m["s3_bucket"], b) {
					continue
				}
				out = append(out, consumer{who: "CloudFront (" + cdn.id + " reads " + b.id + ")", at: cdn, service: "cloudfront.amazonaws.com",
					actions: []string{"kms:Decrypt"},
					context: map[string]string{"aws:SourceArn": a.token(cdn, "arn"), "aws:SourceAccount": acct},
					doc:     "https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-restricting-access-to-s3.html#create-oac-overview-s3",
					fix:     fmt.Sprintf(`{sid: CloudFrontReadsAssets, principal: {service: cloudfront.amazonaws.com}, actions: ["kms:Decrypt"], conditions: {StringEquals: {"aws:SourceArn": "${ref.%s.arn}"}}}`, cdn.id)})
			}
		}
		for _, rep := range ofType(s, "s3_replication") {
			if !a.refersTo(rep, rep.get("destination_bucket"), b) {
				continue
			}
			role, _ := a.target(rep.st, rep.get("role"))
			u := consumer{who: "S3 replication (" + rep.id + " writes replicas to " + b.id + ")", at: rep, role: role,
				actions: []string{"kms:Encrypt", "kms:GenerateDataKey"},
				context: map[string]string{"kms:ViaService": "s3." + b.region() + ".amazonaws.com", "kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::" + b.str("name") + "/object"},
				doc:     "https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-config-for-kms-objects.html",
				fix:     fmt.Sprintf(`{sid: ReplicationEncryptsReplicas, principal: {aws: ["${ref.%s.arn}"]}, actions: ["kms:Encrypt", "kms:GenerateDataKey"], conditions: {StringEquals: {"kms:ViaService": "s3.%s.amazonaws.com"}}}`, role.id, b.region())}
			if role.ok() {
				u.roles = []string{a.token(role, "arn")}
			}
			out = append(out, u)
		}
	}
	// Roles of the account whose policies grant the key (the app's
	// instances): the key policy must keep the account's statement.
	for _, role := range ofType(s, "iam_role") {
		acts := a.roleKeyActions(role, k)
		if len(acts) == 0 {
			continue
		}
		out = append(out, consumer{who: "role " + role.id, at: role, role: role, roles: []string{a.token(role, "arn")}, actions: acts,
			context: map[string]string{},
			doc:     "https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html#key-policy-default-allow-root-enable-iam",
			fix:     "keep the account's statement in the key policy (the kms_key_policy driver always writes it)"})
	}
	return out
}

// roleKeyActions returns the kms actions role's policies allow on key k.
func (a *analyzer) roleKeyActions(role res, k res) []string {
	var out []string
	for _, pv := range role.list("policies") {
		pol, ok := a.target(role.st, pv)
		if !ok {
			continue
		}
		for _, st := range pol.list("statements") {
			m, _ := st.(map[string]any)
			if e, _ := m["effect"].(string); e != "Allow" {
				continue
			}
			resources, _ := m["resources"].([]any)
			if !slices.ContainsFunc(resources, func(v any) bool { return a.refersTo(pol, v, k) }) {
				continue
			}
			acts, _ := m["actions"].([]any)
			for _, act := range acts {
				if s, _ := act.(string); strings.HasPrefix(s, "kms:") && !slices.Contains(out, s) {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

// judge says whether consumer u may use key k.
func (a *analyzer) judge(k res, pol res, stmts []map[string]any, root bool, u consumer) Hop {
	to := k.id
	at, path := pol, "statements"
	if !pol.ok() {
		at, path = k, ""
	}
	var missing []string
	var vias []string
	for _, act := range u.actions {
		sid, ok := a.allowed(k.st, stmts, u, act)
		switch {
		case ok:
			if !slices.Contains(vias, sid) {
				vias = append(vias, sid)
			}
		case u.role.ok() && root && slices.Contains(a.roleKeyActionsCovering(u.role, k), act):
			if !slices.Contains(vias, "the account's statement and "+u.role.id+"'s IAM policy") {
				vias = append(vias, "the account's statement and "+u.role.id+"'s IAM policy")
			}
		default:
			missing = append(missing, act)
		}
	}
	if len(missing) > 0 {
		problem := fmt.Sprintf("the policy of %s does not allow %s to call %s", k.id, u.who, strings.Join(missing, ", "))
		if !pol.ok() {
			problem = fmt.Sprintf("%s has AWS's default policy (the account's statement only), which no AWS service may use: %s cannot call %s", k.id, u.who, strings.Join(missing, ", "))
		}
		if u.role.ok() && !root {
			problem += " (the policy has lost the account's statement, so IAM policies no longer grant the key)"
		}
		return Hop{From: u.who, To: to, Problem: problem + " (" + u.doc + ")", Fix: "add to the key policy " + u.fix, Stack: at.st.StackID(), Resource: at.id, Path: path}
	}
	if u.before && pol.ok() && !a.dependsOn(u.at, pol) {
		return Hop{From: u.who, To: to, Problem: fmt.Sprintf("AWS checks the key policy when %s is created, but nothing orders it after %s: on a first apply it can be created before the policy allows it", u.at.id, pol.id),
			Fix: fmt.Sprintf("add %s to depends_on of %s", pol.id, u.at.id), Stack: u.at.st.StackID(), Resource: u.at.id, Path: "depends_on"}
	}
	return pass(u.who, to, strings.Join(vias, "; ")+" ("+u.doc+")")
}

func (a *analyzer) roleKeyActionsCovering(role, k res) []string {
	var out []string
	for _, act := range []string{"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:DescribeKey", "kms:CreateGrant", "kms:GenerateDataKeyWithoutPlaintext"} {
		for _, g := range a.roleKeyActions(role, k) {
			if actionMatches(g, act) {
				out = append(out, act)
				break
			}
		}
	}
	return out
}

// allowed returns the statement that lets u call action on the key, if no
// statement denies it.
func (a *analyzer) allowed(from Stack, stmts []map[string]any, u consumer, action string) (string, bool) {
	var sid string
	for _, st := range stmts {
		if !a.principalMatches(from, st["principal"], u) || !actionListMatches(st["actions"], action) || !conditionsMatch(from, st["conditions"], u.context) {
			continue
		}
		s, _ := st["sid"].(string)
		if e, _ := st["effect"].(string); e == "Deny" {
			return "", false
		}
		if sid == "" {
			sid = "statement " + s
		}
	}
	return sid, sid != ""
}

func (a *analyzer) principalMatches(from Stack, p any, u consumer) bool {
	m, _ := p.(map[string]any)
	if svc, _ := m["service"].(string); svc != "" && u.service != "" && svc == u.service {
		return true
	}
	if svcs, ok := m["service"].([]any); ok && u.service != "" {
		for _, s := range svcs {
			if s == u.service {
				return true
			}
		}
	}
	awsList, _ := m["aws"].([]any)
	for _, v := range awsList {
		s, _ := v.(string)
		c := canon(from, s)
		for _, r := range u.roles {
			if c == r || strings.HasPrefix(r, "/") && strings.HasSuffix(c, r) {
				return true
			}
		}
	}
	return false
}

func actionListMatches(v any, action string) bool {
	acts, _ := v.([]any)
	for _, x := range acts {
		if s, _ := x.(string); actionMatches(s, action) {
			return true
		}
	}
	return false
}

func actionMatches(pattern, action string) bool {
	ok, _ := path.Match(strings.ToLower(pattern), strings.ToLower(action))
	return ok || pattern == "*" || strings.EqualFold(pattern, "kms:*")
}

// conditionsMatch evaluates a statement's conditions against the request
// context (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html):
// every operator and key must match; a key the request lacks fails unless
// the operator ends in IfExists.
func conditionsMatch(from Stack, v any, ctx map[string]string) bool {
	conds, _ := v.(map[string]any)
	for op, kv := range conds {
		keys, _ := kv.(map[string]any)
		base, ifExists := strings.CutSuffix(op, "IfExists")
		for key, want := range keys {
			got, ok := ctx[key]
			if !ok {
				if ifExists {
					continue
				}
				return false
			}
			var wants []string
			switch w := want.(type) {
			case string:
				wants = []string{w}
			case []any:
				for _, x := range w {
					if s, ok := x.(string); ok {
						wants = append(wants, s)
					}
				}
			case bool:
				wants = []string{fmt.Sprint(w)}
			}
			matched := false
			for _, w := range wants {
				w = canon(from, w)
				switch base {
				case "StringEquals", "ArnEquals":
					matched = w == got
				case "StringEqualsIgnoreCase":
					matched = strings.EqualFold(w, got)
				case "StringLike", "ArnLike":
					matched, _ = path.Match(strings.ReplaceAll(w, "/", "\x00"), strings.ReplaceAll(got, "/", "\x00"))
				case "Bool":
					matched = strings.EqualFold(w, got)
				case "StringNotEquals", "ArnNotEquals":
					matched = w != got
				default:
					matched = false
				}
				if matched {
					break
				}
			}
			if !matched {
				return false
			}
		}
	}
	return true
}
