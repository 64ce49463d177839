package drivers_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"portal/internal/drivers"
	"portal/internal/engine"
)

func TestCloudTrail(t *testing.T) {
	t.Parallel()
	for _, region := range storeRegions {
		t.Run(region, func(t *testing.T) {
			ctx := context.Background()
			env := newEnv(t, region)
			key := storeKey(t, env, region)
			bucket := storeBucketName(env, "trail")
			_, err := drivers.S3Bucket{}.Create(ctx, env, &engine.Desired{ID: "trail_bucket", Type: "s3_bucket", Region: region, Tags: ownershipTags(env, "trail_bucket"), Fields: map[string]any{
				"name": bucket, "kms_key": key, "versioning": true, "public_access_block": true, "tls_only": true,
			}})
			if err != nil {
				t.Fatalf("Create bucket: %v", err)
			}
			lg, err := drivers.LogGroup{}.Create(ctx, env, &engine.Desired{ID: "audit_logs", Type: "log_group", Region: region, Tags: ownershipTags(env, "audit_logs"), Fields: map[string]any{
				"name": "/portal/dev-eu/audit", "kms_key": storeKey(t, env, region), "retention_days": int64(365),
			}})
			if err != nil {
				t.Fatalf("Create log group: %v", err)
			}
			d := &engine.Desired{ID: "trail", Type: "cloudtrail", Region: region, Fields: map[string]any{
				"name": "medportal-dev-eu-trail", "bucket": bucket, "kms_key": key, "multi_region": true, "log_file_validation": true,
				"log_group": lg.Outputs["arn"],
			}}
			ct := cloudtrail.NewFromConfig(env.Config(region))
			iamc := iam.NewFromConfig(env.Config("us-east-1"))
			var checked bool
			live := lifecycle(t, env, drivers.CloudTrail{}, d, func(d *engine.Desired) []string {
				out, err := ct.GetTrail(ctx, &cloudtrail.GetTrailInput{Name: aws.String("medportal-dev-eu-trail")})
				if err != nil {
					t.Fatalf("GetTrail: %v", err)
				}
				tr := out.Trail
				if !aws.ToBool(tr.IsMultiRegionTrail) || !aws.ToBool(tr.LogFileValidationEnabled) || aws.ToString(tr.KmsKeyId) != key || aws.ToString(tr.S3BucketName) != bucket {
					t.Errorf("trail %+v, want multi-region, validated, under %s, into %s", tr, key, bucket)
				}
				if aws.ToString(tr.CloudWatchLogsLogGroupArn) != lg.Outputs["arn"]+":*" || !strings.HasSuffix(aws.ToString(tr.CloudWatchLogsRoleArn), ":role/medportal-dev-eu-trail-logs-delivery") {
					t.Errorf("trail delivers to %s as %s, want %s:* as the delivery role", aws.ToString(tr.CloudWatchLogsLogGroupArn), aws.ToString(tr.CloudWatchLogsRoleArn), lg.Outputs["arn"])
				}
				st, err := ct.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: aws.String("medportal-dev-eu-trail")})
				if err != nil || !aws.ToBool(st.IsLogging) {
					t.Errorf("trail status %+v (%v), want logging", st, err)
				}
				// Bucket policy: CloudTrail may write, and TLS-only stayed.
				p := readBucketPolicy(t, s3.NewFromConfig(env.Config(region)), bucket)
				sids := map[string]bool{}
				for _, s := range p.Statement {
					sids[s.Sid] = true
				}
				for _, sid := range []string{"DenyInsecureTransport", "PortalCloudTrailAclCheck", "PortalCloudTrailWrite"} {
					if !sids[sid] {
						t.Errorf("bucket policy lacks %s: %v", sid, sids)
					}
				}
				// Logging stopped is repaired by Update.
				if _, err := ct.StopLogging(ctx, &cloudtrail.StopLoggingInput{Name: aws.String("medportal-dev-eu-trail")}); err != nil {
					t.Fatalf("StopLogging: %v", err)
				}
				checked = true
				d.Fields["log_file_validation"] = false
				d.Fields["log_group"] = ""
				return []string{"log_file_validation", "log_group"}
			})
			if !checked {
				t.Fatal("update never ran")
			}
			if live.Outputs["is_logging"] != "true" || live.Fields["log_group"] != "" {
				t.Errorf("after update outputs %v fields %v, want logging again and no log group", live.Outputs, live.Fields)
			}
			if !strings.HasPrefix(live.Outputs["arn"], "arn:aws:cloudtrail:"+region+":"+env.Stack.AccountID+":trail/medportal-dev-eu-trail") || live.Outputs["name"] != "medportal-dev-eu-trail" {
				t.Errorf("outputs %v, want the trail's arn and name", live.Outputs)
			}
			if _, err := iamc.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("medportal-dev-eu-trail-logs-delivery")}); !engine.IsCode(err, "NoSuchEntity") {
				t.Errorf("delivery role after Delete: %v, want NoSuchEntity", err)
			}
		})
	}
}
