package drivers_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"portal/internal/drivers"
	"portal/internal/engine"
)

func TestMetricAlarm(t *testing.T) {
	t.Parallel()
	for _, region := range storeRegions {
		t.Run(region, func(t *testing.T) {
			ctx := context.Background()
			env := newEnv(t, region)
			key := storeKey(t, env, region)
			topic, err := drivers.SNSTopic{}.Create(ctx, env, &engine.Desired{ID: "ops_alerts", Type: "sns_topic", Region: region, Tags: ownershipTags(env, "ops_alerts"), Fields: map[string]any{
				"name": "medportal-dev-eu-ops-alerts", "kms_key": key,
			}})
			if err != nil {
				t.Fatalf("Create topic: %v", err)
			}
			d := &engine.Desired{ID: "db_cpu_alarm", Type: "metric_alarm", Region: region, Fields: map[string]any{
				"name": "medportal-dev-eu-db-cpu", "namespace": "AWS/RDS", "metric": "CPUUtilization", "statistic": "Average",
				"period_seconds": int64(300), "evaluation_periods": int64(3), "threshold": int64(80), "comparison": "GreaterThanThreshold",
				"dimensions":    map[string]any{"DBInstanceIdentifier": "medportal-dev-eu-db"},
				"alarm_actions": []any{topic.Outputs["arn"]},
			}}
			cw := drivers.CloudWatchClient(env.Config(region))
			live := lifecycle(t, env, drivers.MetricAlarm{}, d, func(d *engine.Desired) []string {
				// The alarm works: metric data goes in, its state can be set
				// and is read back.
				if _, err := cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("AWS/RDS"), MetricData: []cwtypes.MetricDatum{{
					MetricName: aws.String("CPUUtilization"), Value: aws.Float64(95),
					Dimensions: []cwtypes.Dimension{{Name: aws.String("DBInstanceIdentifier"), Value: aws.String("medportal-dev-eu-db")}},
				}}}); err != nil {
					t.Fatalf("PutMetricData: %v", err)
				}
				if _, err := cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("medportal-dev-eu-db-cpu"), StateValue: cwtypes.StateValueAlarm, StateReason: aws.String("test")}); err != nil {
					t.Fatalf("SetAlarmState: %v", err)
				}
				out, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{"medportal-dev-eu-db-cpu"}})
				if err != nil || len(out.MetricAlarms) != 1 {
					t.Fatalf("DescribeAlarms: %v, %d alarms", err, len(out.MetricAlarms))
				}
				if m := out.MetricAlarms[0]; m.StateValue != cwtypes.StateValueAlarm || len(m.AlarmActions) != 1 || m.AlarmActions[0] != topic.Outputs["arn"] {
					t.Errorf("alarm state %s actions %v, want ALARM notifying %s", m.StateValue, m.AlarmActions, topic.Outputs["arn"])
				}
				d.Fields["threshold"] = 90.5
				d.Fields["evaluation_periods"] = int64(5)
				d.Fields["dimensions"] = map[string]any{"DBInstanceIdentifier": "medportal-dev-eu-db-2"}
				return []string{"dimensions", "evaluation_periods", "threshold"}
			})
			if !strings.HasPrefix(live.Outputs["arn"], "arn:aws:cloudwatch:"+region+":") || live.Outputs["name"] != "medportal-dev-eu-db-cpu" {
				t.Errorf("outputs %v, want the alarm's arn in %s and its name", live.Outputs, region)
			}
			if live.Fields["threshold"] != 90.5 {
				t.Errorf("threshold %v, want 90.5", live.Fields["threshold"])
			}
		})
	}
}
