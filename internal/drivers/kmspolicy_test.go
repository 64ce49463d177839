package drivers_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"portal/internal/drivers"
	"portal/internal/engine"
)

// keyPolicyDoc reads a key's policy document.
func keyPolicyDoc(t *testing.T, env *engine.Env, region, key string) (id string, sids []string, doc string) {
	t.Helper()
	out, err := kms.NewFromConfig(env.Config(region)).GetKeyPolicy(context.Background(), &kms.GetKeyPolicyInput{KeyId: aws.String(key), PolicyName: aws.String("default")})
	if err != nil {
		t.Fatalf("GetKeyPolicy: %v", err)
	}
	var p struct {
		ID        string           `json:"Id"`
		Statement []map[string]any `json:"Statement"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(out.Policy)), &p); err != nil {
		t.Fatalf("key policy: %v", err)
	}
	for _, s := range p.Statement {
		sid, _ := s["Sid"].(string)
		sids = append(sids, sid)
	}
	return p.ID, sids, aws.ToString(out.Policy)
}

// A key's policy is the account's statement plus the blueprint's; the
// service-linked role it names is made first; removing the policy puts the
// default back.
func TestKMSKeyPolicy(t *testing.T) {
	t.Parallel()
	forEachRegion(t, func(t *testing.T, region string) {
		ctx := context.Background()
		env := newEnv(t, region)
		key := create(t, env, drivers.KMSKey{}, &engine.Desired{ID: "documents_key", Type: "kms_key", Region: region, Fields: map[string]any{"data_class": "documents", "rotation": true}})
		slr := create(t, env, drivers.IAMServiceLinkedRole{}, &engine.Desired{ID: "autoscaling_role", Type: "iam_service_linked_role", Region: "us-east-1", Fields: map[string]any{"service": "autoscaling.amazonaws.com"}})
		if !strings.HasSuffix(slr.Outputs["arn"], ":role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling") {
			t.Errorf("service-linked role %v, want AWSServiceRoleForAutoScaling", slr.Outputs)
		}
		// A second stack finds the account's role and makes no other.
		again, err := (drivers.IAMServiceLinkedRole{}).Create(ctx, env, &engine.Desired{ID: "autoscaling_role", Region: "us-east-1", Tags: ownershipTags(env, "autoscaling_role"), Fields: map[string]any{"service": "autoscaling.amazonaws.com"}})
		if err != nil || again.Outputs["arn"] != slr.Outputs["arn"] {
			t.Errorf("second Create: %v, %v; want the same role", again, err)
		}

		d := &engine.Desired{ID: "documents_key_policy", Type: "kms_key_policy", Region: region, Fields: map[string]any{
			"key": key.Outputs["arn"],
			"statements": []any{
				map[string]any{
					"sid": "AutoScalingUsesKeyForVolumes", "principal": map[string]any{"aws": []any{slr.Outputs["arn"]}},
					"actions": []any{"kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"},
				},
				map[string]any{
					"sid": "AutoScalingAttachesVolumes", "principal": map[string]any{"aws": []any{slr.Outputs["arn"]}},
					"actions": []any{"kms:CreateGrant"}, "conditions": map[string]any{"Bool": map[string]any{"kms:GrantIsForAWSResource": "true"}},
				},
			},
		}}
		live := lifecycle(t, env, drivers.KMSKeyPolicy{}, d, func(d *engine.Desired) []string {
			id, sids, _ := keyPolicyDoc(t, env, region, key.Outputs["arn"])
			if id != "portal:dev-eu:documents_key_policy" || strings.Join(sids, ",") != "EnableIAMUserPermissions,AutoScalingUsesKeyForVolumes,AutoScalingAttachesVolumes" {
				t.Errorf("policy %s with %v, want the portal's id and the account's statement first", id, sids)
			}
			d.Fields["statements"] = append(d.List("statements"), map[string]any{
				"sid": "CloudWatchLogsEncrypts", "principal": map[string]any{"service": "logs." + region + ".amazonaws.com"},
				"actions":    []any{"kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"},
				"conditions": map[string]any{"ArnLike": map[string]any{"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:" + region + ":" + env.Stack.AccountID + ":log-group:*"}},
			})
			return []string{"statements"}
		})
		if live.Outputs["arn"] != key.Outputs["arn"] {
			t.Errorf("outputs %v, want the key's arn", live.Outputs)
		}
		id, sids, doc := keyPolicyDoc(t, env, region, key.Outputs["arn"])
		if id == "portal:dev-eu:documents_key_policy" || len(sids) != 1 || !strings.Contains(doc, ":root") {
			t.Errorf("after Delete: policy %s, want the default (the account's statement only)", doc)
		}

		// A repeated sid is refused before anything is written.
		bad := &engine.Desired{ID: "documents_key_policy", Type: "kms_key_policy", Region: region, Tags: ownershipTags(env, "documents_key_policy"), Fields: map[string]any{
			"key": key.Outputs["arn"],
			"statements": []any{
				map[string]any{"sid": "EnableIAMUserPermissions", "principal": map[string]any{"service": "cloudtrail.amazonaws.com"}, "actions": []any{"kms:DescribeKey"}},
			},
		}}
		if _, err := (drivers.KMSKeyPolicy{}).Create(ctx, env, bad); err == nil || !strings.Contains(err.Error(), "used twice") {
			t.Errorf("a sid of the account's statement: err %v, want a refusal", err)
		}
		if _, err := (drivers.KMSKeyPolicy{}).Read(ctx, env, bad, nil); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("after the refusal Read: %v, want ErrNotFound", err)
		}
	})
}
