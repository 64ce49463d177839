package drivers

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"portal/internal/engine"
)

// ensureKeyStatement makes the key policy of key hold stmt (matched by
// Sid), leaving every other statement as it is. AWS services that encrypt
// with a customer-managed key on the account's behalf (CloudWatch Logs,
// CloudTrail, CloudWatch alarms publishing to an encrypted topic) need the
// key policy to name them, and the KMS driver cannot know its consumers, so
// the consumer's driver adds its grant. Statements are written so that
// every consumer of one key writes the same one: concurrent writers then
// converge instead of losing each other's statement.
func ensureKeyStatement(ctx context.Context, env *engine.Env, key, fallbackRegion string, stmt map[string]any) error {
	region := fallbackRegion
	if parts := strings.Split(key, ":"); strings.HasPrefix(key, "arn:") && len(parts) > 3 && parts[3] != "" {
		region = parts[3]
	}
	c := kms.NewFromConfig(env.Config(region))
	if strings.HasPrefix(key, "alias/") || strings.Contains(key, ":alias/") {
		// Key policies are read by key, not alias.
		desc, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(key)})
		if err != nil {
			return fmt.Errorf("describe key %s: %w", key, err)
		}
		key = aws.ToString(desc.KeyMetadata.Arn)
	}
	out, err := c.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(key), PolicyName: aws.String("default")})
	if err != nil {
		return fmt.Errorf("get policy of key %s: %w", key, err)
	}
	var p bucketPolicy
	if err := json.Unmarshal([]byte(aws.ToString(out.Policy)), &p); err != nil {
		return fmt.Errorf("policy of key %s is not a JSON policy document: %w", key, err)
	}
	// Compare through JSON, as the stored statement comes back decoded.
	var want map[string]any
	b, _ := json.Marshal(stmt)
	_ = json.Unmarshal(b, &want)
	sid, _ := want["Sid"].(string)
	kept := p.Statement[:0:0]
	for _, s := range p.Statement {
		if s["Sid"] == sid {
			if reflect.DeepEqual(s, want) {
				return nil
			}
			continue
		}
		kept = append(kept, s)
	}
	p.Statement = append(kept, want)
	doc, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode policy of key %s: %w", key, err)
	}
	if _, err := c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(key), PolicyName: aws.String("default"), Policy: aws.String(string(doc))}); err != nil {
		return fmt.Errorf("put policy of key %s: %w", key, err)
	}
	env.Logf("key %s: policy statement %s", key, sid)
	return nil
}

// arnAccount returns the account field of an ARN, or "".
func arnAccount(arn string) string {
	if parts := strings.Split(arn, ":"); len(parts) > 4 {
		return parts[4]
	}
	return ""
}
