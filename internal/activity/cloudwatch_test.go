package activity_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"portal/internal/accounts"
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
	if _, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String("medportal-dev-eu-db-free-storage"), Namespace: aws.String("AWS/RDS"),
		MetricName: aws.String("FreeStorageSpace"), Statistic: types.StatisticMinimum, Period: aws.Int32(300), EvaluationPeriods: aws.Int32(1),
		Threshold: aws.Float64(5368709120), ComparisonOperator: types.ComparisonOperatorLessThanThreshold,
		Dimensions: []types.Dimension{{Name: aws.String("DBInstanceIdentifier"), Value: aws.String("medportal-dev-eu")}}}); err != nil {
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
	if len(alarms) != 2 || alarms[0].State != "ALARM" || alarms[0].Stack != "dev-eu" || alarms[0].Reason != "12 errors in a minute" {
		t.Fatalf("alarms: got %+v, want medportal-dev-eu-alb-5xx in ALARM first, then the storage alarm", alarms)
	}
	// Thresholds read as people read them, in the metric's unit.
	for i, want := range []string{"> 10", "< 5 GiB"} {
		if got := alarms[i].ThresholdText(); got != want {
			t.Errorf("%s threshold: got %q, want %q", alarms[i].Name, got, want)
		}
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

func TestFormatMetric(t *testing.T) {
	for _, c := range []struct {
		v    float64
		unit string
		want string
	}{
		{5368709120, "Bytes", "5 GiB"},
		{1536, "Bytes", "1.5 KiB"},
		{512, "Bytes", "512 bytes"},
		{2, "Gigabytes", "2 GiB"},
		{80, "Percent", "80%"},
		{0.25, "Seconds", "0.25 s"},
		{1000000, "", "1000000"},
		{10, "Count", "10"},
	} {
		if got := activity.FormatMetric(c.v, c.unit); got != c.want {
			t.Errorf("FormatMetric(%v, %q) = %q, want %q", c.v, c.unit, got, c.want)
		}
	}
}

// BenchmarkAlarms loads the Alarms tab's data for one stack with the four
// alarms every stack has, through the portal's own retrying client, from
// moto (which serves no alarm history: each history call fails at once).
func BenchmarkAlarms(b *testing.B) {
	cfg, _ := peertest.AccountConfigForTest(b, peertest.MotoForTest(b), "eu-central-1")
	cfg.Retryer = func() aws.Retryer { return accounts.NewRetryer(accounts.MaxAttempts, accounts.MaxBackoff) }
	cw := activity.NewCloudWatchClient(cfg)
	ctx := context.Background()
	for _, name := range []string{"alb-5xx", "target-5xx", "db-cpu", "db-free-storage"} {
		if _, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String("medportal-dev-eu-" + name), Namespace: aws.String("AWS/RDS"),
			MetricName: aws.String("CPUUtilization"), Statistic: types.StatisticAverage, Period: aws.Int32(300), EvaluationPeriods: aws.Int32(3),
			Threshold: aws.Float64(80), ComparisonOperator: types.ComparisonOperatorGreaterThanThreshold}); err != nil {
			b.Fatal(err)
		}
	}
	s, _ := newService(b, activity.Config{Stacks: []activity.StackRef{{ID: "dev-eu", Environment: "dev", Jurisdiction: "eu", Region: "eu-central-1"}},
		Clients: activity.Clients{CloudWatch: func(env, region string) (activity.CloudWatchAPI, error) { return cw, nil }}})
	b.ResetTimer()
	for b.Loop() {
		alarms, errs := s.Alarms(ctx, "", 5)
		if len(errs) > 0 || len(alarms) != 4 {
			b.Fatalf("got %d alarms, errors %v; want 4 alarms", len(alarms), errs)
		}
	}
}
