package drivers

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"portal/internal/engine"
)

// KMSKeyPolicy manages the whole policy of a KMS key: the account's own
// statement, which lets IAM policies in the account grant the key (the
// statement of AWS's default key policy), followed by the statements the
// blueprint lists for the AWS services and roles that use the key
// (CloudFront reading an SSE-KMS bucket, the Auto Scaling service-linked
// role launching encrypted volumes, CloudTrail, CloudWatch Logs, CloudWatch
// alarms publishing to an encrypted topic, the S3 replication role...).
//
// Fields: key (ARN), statements [{sid, effect, principal {service | aws},
// actions, conditions {operator: {key: value | [values]}}}]. Outputs: arn
// (the key's), policy_id.
//
// The policy carries the Id "portal:<stack>:<resource>": a key whose policy
// has another Id (AWS's default, or one written by hand) has no policy of
// the portal's yet, and the plan shows its creation. Delete puts AWS's
// default policy back. AWS refuses a policy naming a role that does not
// exist (MalformedPolicyDocumentException), so roles are referred to with
// ${ref...} and made first.
type KMSKeyPolicy struct{}

func (KMSKeyPolicy) Type() string       { return "kms_key_policy" }
func (KMSKeyPolicy) ForceNew() []string { return []string{"key"} }

// keyRegion returns the region of a key ARN, else fallback.
func keyRegion(key, fallback string) string {
	if parts := strings.Split(key, ":"); strings.HasPrefix(key, "arn:") && len(parts) > 3 && parts[3] != "" {
		return parts[3]
	}
	return fallback
}

func (KMSKeyPolicy) policyID(env *engine.Env, id string) string {
	return "portal:" + env.Stack.ID + ":" + id
}

// rootStatement is the statement of AWS's default key policy: the account
// (through IAM policies) may use and manage the key.
// https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html#key-policy-default-allow-root-enable-iam
func rootStatement(partition, account string) map[string]any {
	return map[string]any{
		"Sid":       "EnableIAMUserPermissions",
		"Effect":    "Allow",
		"Principal": map[string]any{"AWS": fmt.Sprintf("arn:%s:iam::%s:root", partition, account)},
		"Action":    "kms:*",
		"Resource":  "*",
	}
}

// keyPolicyStatement turns one blueprint statement into a key policy statement.
func keyPolicyStatement(st map[string]any) map[string]any {
	effect := toString(st["effect"])
	if effect == "" {
		effect = "Allow"
	}
	out := map[string]any{"Sid": toString(st["sid"]), "Effect": effect, "Resource": "*"}
	pr, _ := st["principal"].(map[string]any)
	principal := map[string]any{}
	if s := toString(pr["service"]); s != "" {
		principal["Service"] = s
	}
	if a, ok := pr["aws"]; ok {
		principal["AWS"] = stringList(a)
	}
	out["Principal"] = principal
	out["Action"] = stringList(st["actions"])
	if c, ok := st["conditions"].(map[string]any); ok && len(c) > 0 {
		out["Condition"] = c
	}
	return out
}

// stringList reads a string or a list of strings.
func stringList(v any) []any {
	switch x := v.(type) {
	case string:
		return []any{x}
	case []any:
		return x
	case []string:
		return toAnyList(x)
	}
	return nil
}

// canonical makes a decoded policy statement comparable: single values and
// one-element lists alike, lists sorted.
func canonical(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = canonical(e)
		}
		return out
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			out = append(out, fmt.Sprint(canonical(e)))
		}
		sort.Strings(out)
		if len(out) == 1 {
			return out[0]
		}
		return strings.Join(out, "\x00")
	}
	return v
}

func jsonRoundTrip(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

// blueprintStatement shapes a live statement like the blueprint.
func blueprintStatement(s map[string]any) map[string]any {
	out := map[string]any{"sid": s["Sid"]}
	if e, _ := s["Effect"].(string); e != "" && e != "Allow" {
		out["effect"] = e
	}
	pr := map[string]any{}
	switch p := s["Principal"].(type) {
	case map[string]any:
		if v, ok := p["Service"]; ok {
			if l := stringList(v); len(l) == 1 {
				pr["service"] = l[0]
			} else {
				pr["service"] = l
			}
		}
		if v, ok := p["AWS"]; ok {
			pr["aws"] = stringList(v)
		}
	case string:
		pr["aws"] = []any{p}
	}
	out["principal"] = pr
	out["actions"] = stringList(s["Action"])
	if c, ok := s["Condition"].(map[string]any); ok {
		out["conditions"] = c
	}
	return out
}

func (p KMSKeyPolicy) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	key := d.String("key")
	if prior != nil && prior.PhysicalID != "" {
		key = prior.PhysicalID
	}
	if !known(key) {
		return nil, engine.ErrNotFound
	}
	region := keyRegion(key, d.Region)
	c := kms.NewFromConfig(env.Config(region))
	desc, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(key)})
	if engine.IsCode(err, "NotFoundException") {
		return nil, engine.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("describe key %s: %w", key, err)
	}
	arn := aws.ToString(desc.KeyMetadata.Arn)
	out, err := c.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(arn), PolicyName: aws.String("default")})
	if err != nil {
		return nil, fmt.Errorf("get policy of key %s: %w", arn, err)
	}
	var doc bucketPolicy
	if err := json.Unmarshal([]byte(aws.ToString(out.Policy)), &doc); err != nil {
		return nil, fmt.Errorf("policy of key %s is not a JSON policy document: %w", arn, err)
	}
	if doc.ID != p.policyID(env, d.ID) {
		return nil, engine.ErrNotFound
	}
	var stmts []map[string]any
	root := false
	for _, s := range doc.Statement {
		if s["Sid"] == "EnableIAMUserPermissions" {
			root = true
			continue
		}
		stmts = append(stmts, s)
	}
	want := p.statements(d)
	live := &engine.Live{
		PhysicalID: arn,
		Region:     d.Region,
		Outputs:    map[string]string{"arn": arn, "id": arn, "policy_id": doc.ID},
		// account_root (not in blueprints, never diffed) tells the live
		// re-check of "will it work" whether IAM policies may still grant
		// the key.
		Fields: map[string]any{"key": arn, "account_root": root},
		Tags:   map[string]string{},
	}
	if want := d.String("key"); want != arn && strings.HasSuffix(arn, "/"+want) {
		live.Fields["key"] = want
	}
	if reflect.DeepEqual(canonical(jsonRoundTrip(stmts)), canonical(jsonRoundTrip(want))) {
		live.Fields["statements"] = deepCopy(d.List("statements"))
	} else {
		list := make([]any, 0, len(stmts))
		for _, s := range stmts {
			list = append(list, blueprintStatement(s))
		}
		live.Fields["statements"] = list
	}
	// A policy has no tags: it is the stack's when its key is.
	tags, err := c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(arn)})
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", arn, err)
	}
	for _, t := range tags.Tags {
		switch k := aws.ToString(t.TagKey); k {
		case engine.TagStack, engine.TagManaged, engine.TagVersion:
			live.Tags[k] = aws.ToString(t.TagValue)
		}
	}
	if live.Tags[engine.TagStack] != "" {
		live.Tags[engine.TagResource] = d.ID
	}
	return live, nil
}

func (KMSKeyPolicy) statements(d *engine.Desired) []map[string]any {
	var out []map[string]any
	for _, e := range d.List("statements") {
		m, _ := e.(map[string]any)
		out = append(out, keyPolicyStatement(m))
	}
	return out
}

// document is the whole policy d asks for.
func (p KMSKeyPolicy) document(env *engine.Env, d *engine.Desired, keyARN string) (string, error) {
	account := arnAccount(keyARN)
	if account == "" {
		account = env.Stack.AccountID
	}
	stmts := []map[string]any{rootStatement(arnPartition(keyRegion(keyARN, d.Region)), account)}
	seen := map[string]bool{"EnableIAMUserPermissions": true}
	for _, s := range p.statements(d) {
		sid, _ := s["Sid"].(string)
		if seen[sid] {
			return "", fmt.Errorf("statement sid %q is used twice (or is the account's own statement's)", sid)
		}
		seen[sid] = true
		stmts = append(stmts, s)
	}
	b, err := json.Marshal(map[string]any{"Version": "2012-10-17", "Id": p.policyID(env, d.ID), "Statement": stmts})
	if err != nil {
		return "", fmt.Errorf("encode key policy: %w", err)
	}
	return string(b), nil
}

func (p KMSKeyPolicy) put(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	key := d.String("key")
	region := keyRegion(key, d.Region)
	c := kms.NewFromConfig(env.Config(region))
	desc, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("describe key %s: %w", key, err)
	}
	arn := aws.ToString(desc.KeyMetadata.Arn)
	doc, err := p.document(env, d, arn)
	if err != nil {
		return nil, err
	}
	if _, err := c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(arn), PolicyName: aws.String("default"), Policy: aws.String(doc)}); err != nil {
		return nil, fmt.Errorf("put policy of key %s: %w", arn, err)
	}
	var sids []string
	for _, s := range p.statements(d) {
		sids = append(sids, fmt.Sprint(s["Sid"]))
	}
	env.Logf("key %s: policy with the account's statement and %s", arn, strings.Join(sids, ", "))
	return p.Read(ctx, env, d, &engine.Prior{PhysicalID: arn, Region: d.Region})
}

func (p KMSKeyPolicy) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	return p.put(ctx, env, d)
}

func (p KMSKeyPolicy) Update(ctx context.Context, env *engine.Env, d *engine.Desired, _ *engine.Live, _ []engine.FieldChange) (*engine.Live, error) {
	return p.put(ctx, env, d)
}

// Delete puts AWS's default key policy back: the account's statement only.
func (p KMSKeyPolicy) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := kms.NewFromConfig(env.Config(keyRegion(live.PhysicalID, live.Region)))
	account := arnAccount(live.PhysicalID)
	b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Id": "key-default-1",
		"Statement": []any{rootStatement(arnPartition(keyRegion(live.PhysicalID, live.Region)), account)}})
	_, err := c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(live.PhysicalID), PolicyName: aws.String("default"), Policy: aws.String(string(b))})
	if engine.IsCode(err, "NotFoundException", "KMSInvalidStateException") {
		return nil // the key is gone or going
	} else if err != nil {
		return fmt.Errorf("put the default policy back on key %s: %w", live.PhysicalID, err)
	}
	env.Logf("key %s: default policy restored", live.PhysicalID)
	return nil
}

// arnAccount returns the account field of an ARN, or "".
func arnAccount(arn string) string {
	if parts := strings.Split(arn, ":"); len(parts) > 4 {
		return parts[4]
	}
	return ""
}
