package activity_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"portal/internal/activity"
	"portal/internal/engine"
	"portal/internal/peers/peertest"
)

type fakeState []engine.StateResource

func (f fakeState) Resources(context.Context, string) ([]engine.StateResource, error) { return f, nil }

// TestCloudWatchAlarmsAndMetrics reads a stack's alarms (state and
// history) and its load balancer's request count through the awsQuery
// client, against moto.
func TestCloudWatchAlarmsAndMetrics(t *testing.T) {
	cfg, _ := peertest.AccountConfigForTest(t, peertest.MotoForTest(t), "eu-central-1")
	cw := activity.NewCloudWatchClient(cfg)
	ctx := context.Background()
	lb := "app/medportal-dev-eu/50dc6c495c0c9188"
	if _, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String("medportal-dev-eu-alb-5xx"), Namespace: aws.String("AWS/ApplicationELB"),
		MetricName: aws.String("HTTPCode_ELB_5XX_Count"), Statistic: types.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(5),
		Threshold: aws.Float64(10), ComparisonOperator: types.ComparisonOperatorGreaterThanThreshold,
		Dimensions: []types.Dimension{{Name: aws.String("LoadBalancer"), Value: aws.String(lb)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("medportal-dev-eu-alb-5xx"), StateValue: types.StateValueAlarm,
		StateReason: aws.String("12 errors in a minute")}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Minute)
	var data []types.MetricDatum
	for i := range 5 {
		data = append(data, types.MetricDatum{MetricName: aws.String("RequestCount"), Timestamp: aws.Time(now.Add(-time.Duration(i) * 5 * time.Minute)),
			Value: aws.Float64(float64(100 + i)), Dimensions: []types.Dimension{{Name: aws.String("LoadBalancer"), Value: aws.String(lb)}}})
	}
	if _, err := cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("AWS/ApplicationELB"), MetricData: data}); err != nil {
		t.Fatal(err)
	}
	s, _ := newService(t, activity.Config{Stacks: []activity.StackRef{{ID: "dev-eu", Environment: "dev", Jurisdiction: "eu", Region: "eu-central-1"}},
		Clients: activity.Clients{CloudWatch: func(env, region string) (activity.CloudWatchAPI, error) { return cw, nil }}})
	alarms, errs := s.Alarms(ctx, "", 5)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if len(alarms) != 1 || alarms[0].State != "ALARM" || alarms[0].Stack != "dev-eu" || alarms[0].Reason != "12 errors in a minute" {
		t.Fatalf("alarms: got %+v, want medportal-dev-eu-alb-5xx in ALARM", alarms)
	}
	// moto does not serve DescribeAlarmHistory: the page says so instead.
	if len(alarms[0].History) == 0 && alarms[0].HistoryNote == "" {
		t.Errorf("alarm history: got none and no note, want the state change or why it is missing")
	}
	state := fakeState{{Stack: "dev-eu", ID: "alb", Type: "alb", Region: "eu-central-1",
		PhysicalID: "arn:aws:elasticloadbalancing:eu-central-1:111111111111:loadbalancer/" + lb}}
	series, err := s.Metrics(ctx, "dev-eu", now.Add(-time.Hour), now.Add(time.Minute), state)
	if err != nil {
		t.Fatal(err)
	}
	var req activity.Series
	for _, se := range series {
		if se.Title == "ALB requests" {
			req = se
		}
	}
	var sum float64
	for _, v := range req.Values {
		sum += v
	}
	if sum != 510 {
		t.Errorf("ALB requests over the hour: got %v (%d points, %q), want 510", sum, len(req.Values), req.Missing)
	}
	for _, se := range series {
		if se.Title == "RDS CPU" && se.Missing == "" {
			t.Errorf("RDS CPU: want it to say the stack has no database yet")
		}
	}
}
