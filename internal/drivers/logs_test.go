package drivers_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"portal/internal/drivers"
	"portal/internal/engine"
)

func TestLogGroup(t *testing.T) {
	t.Parallel()
	for _, region := range storeRegions {
		t.Run(region, func(t *testing.T) {
			ctx := context.Background()
			env := newEnv(t, region)
			key1 := storeKey(t, env, region)
			name := "/portal/dev-eu/app"
			d := &engine.Desired{ID: "app_logs", Type: "log_group", Region: region, Fields: map[string]any{
				"name": name, "data_class": "patient", "log_class": "application", "kms_key": key1, "retention_days": int64(365),
			}}
			live := lifecycle(t, env, drivers.LogGroup{}, d, func(d *engine.Desired) []string {
				// The stream ARN the architecture derives works.
				c := cloudwatchlogs.NewFromConfig(env.Config(region))
				if _, err := c.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String(name), LogStreamName: aws.String("i-1")}); err != nil {
					t.Fatalf("CreateLogStream: %v", err)
				}
				d.Fields["retention_days"] = int64(731)
				return []string{"retention_days"}
			})
			want := "arn:aws:logs:" + region + ":" + env.Stack.AccountID + ":log-group:" + name
			if live.Outputs["arn"] != want || live.Outputs["name"] != name {
				t.Errorf("outputs %v, want arn %s (no trailing :*) and the name", live.Outputs, want)
			}
			if live.Fields["kms_key"] != key1 || live.Fields["retention_days"] != int64(731) {
				t.Errorf("fields %v, want key %s and 731 days", live.Fields, key1)
			}
		})
	}
}

// TestLogGroupKeyChange: moto has no AssociateKmsKey; the failure names
// the call and reads "not supported by this endpoint", not a parse error.
func TestLogGroupKeyChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	region := "eu-central-1"
	env := newEnv(t, region)
	drv := drivers.LogGroup{}
	d := &engine.Desired{ID: "audit_logs", Type: "log_group", Region: region, Tags: ownershipTags(env, "audit_logs"), Fields: map[string]any{
		"name": "/portal/dev-eu/audit", "data_class": "audit", "log_class": "audit", "kms_key": storeKey(t, env, region), "retention_days": int64(365),
	}}
	live, err := drv.Create(ctx, env, d)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	d.Fields["kms_key"] = storeKey(t, env, region)
	_, err = drv.Update(ctx, env, d, live, engine.Diff(d, live, drv.ForceNew()))
	if err == nil || !strings.Contains(err.Error(), "AssociateKmsKey") || !strings.Contains(engine.Explain(err), "not supported by this endpoint") {
		t.Errorf("key change against moto: %v (explained %q), want AssociateKmsKey not supported by this endpoint", err, engine.Explain(err))
	}
	if err := drv.Delete(ctx, env, live); err != nil {
		t.Fatalf("Delete: %v", err)
	}
}
