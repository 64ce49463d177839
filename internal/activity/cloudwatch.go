package activity

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"

	"portal/internal/engine"
)

// CloudWatchAPI is the part of the CloudWatch client the alarm and metric
// pages use.
type CloudWatchAPI interface {
	DescribeAlarms(ctx context.Context, in *cloudwatch.DescribeAlarmsInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error)
	DescribeAlarmHistory(ctx context.Context, in *cloudwatch.DescribeAlarmHistoryInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmHistoryOutput, error)
	GetMetricData(ctx context.Context, in *cloudwatch.GetMetricDataInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error)
}

// NewCloudWatchClient returns a CloudWatch client that speaks the awsQuery
// protocol: the SDK's default, Smithy RPCv2-CBOR, is not served by the
// emulator, and real CloudWatch accepts awsQuery too (see DESIGN.md).
func NewCloudWatchClient(cfg aws.Config) *cloudwatch.Client {
	return cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) {
		o.Protocol = awsquery.New(schemas.GraniteServiceVersion20100801)
	})
}

// StackRef is one stack as the activity pages see it: an environment's
// account in a jurisdiction's home region.
type StackRef struct {
	ID, Environment, Jurisdiction, Region string
}

// StateSource lists what the portal manages in a stack (the engine).
type StateSource interface {
	Resources(ctx context.Context, stack string) ([]engine.StateResource, error)
}

// Alarm is one CloudWatch alarm of a stack with its recent history.
type Alarm struct {
	Stack, Region, Name, State, Reason string
	Namespace, Metric, Comparison      string
	Threshold                          float64
	// Unit is the alarm's unit ("Bytes", "Percent"), "" when the alarm
	// names none.
	Unit        string
	Updated     time.Time
	History     []AlarmChange
	HistoryNote string
}

// ThresholdText is the alarm's condition as people read it: the comparison
// as a sign and the threshold in the metric's unit ("< 5 GiB", "> 80%",
// "> 10"), from the unit the alarm declares or else the one CloudWatch
// documents for its metric.
func (a Alarm) ThresholdText() string {
	unit := a.Unit
	if unit == "" || unit == "None" {
		unit = metricUnits[a.Namespace+" "+a.Metric]
	}
	sign, ok := comparisonSigns[a.Comparison]
	if !ok {
		sign = a.Comparison
	}
	return sign + " " + FormatMetric(a.Threshold, unit)
}

var comparisonSigns = map[string]string{
	"GreaterThanThreshold":          ">",
	"GreaterThanOrEqualToThreshold": "≥",
	"LessThanThreshold":             "<",
	"LessThanOrEqualToThreshold":    "≤",
}

// metricUnits are the units CloudWatch documents for the metrics the
// blueprints alarm on and the metrics page draws, for alarms that do not
// name their unit.
var metricUnits = map[string]string{
	"AWS/RDS FreeStorageSpace":                     "Bytes",
	"AWS/RDS FreeableMemory":                       "Bytes",
	"AWS/RDS CPUUtilization":                       "Percent",
	"AWS/RDS ReplicaLag":                           "Seconds",
	"AWS/RDS DatabaseConnections":                  "Count",
	"AWS/EC2 CPUUtilization":                       "Percent",
	"AWS/ApplicationELB TargetResponseTime":        "Seconds",
	"AWS/ApplicationELB RequestCount":              "Count",
	"AWS/ApplicationELB HTTPCode_ELB_5XX_Count":    "Count",
	"AWS/ApplicationELB HTTPCode_Target_5XX_Count": "Count",
	"AWS/DynamoDB ThrottledRequests":               "Count",
	"AWS/AutoScaling GroupInServiceInstances":      "Count",
}

// FormatMetric writes a CloudWatch value in its unit as people read it:
// bytes in binary multiples (5368709120 Bytes is "5 GiB"), percent with a
// sign, seconds and milliseconds with theirs, counts as plain numbers.
func FormatMetric(v float64, unit string) string {
	num := func(x float64) string { return strconv.FormatFloat(math.Round(x*100)/100, 'f', -1, 64) }
	switch unit {
	case "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes":
		scale := map[string]float64{"Bytes": 1, "Kilobytes": 1 << 10, "Megabytes": 1 << 20, "Gigabytes": 1 << 30, "Terabytes": 1 << 40}[unit]
		b := v * scale
		for _, u := range []struct {
			name string
			size float64
		}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
			if math.Abs(b) >= u.size {
				return num(b/u.size) + " " + u.name
			}
		}
		return num(b) + " bytes"
	case "Percent":
		return num(v) + "%"
	case "Seconds":
		return num(v) + " s"
	case "Milliseconds":
		return num(v) + " ms"
	case "Count/Second", "Bytes/Second":
		return num(v) + " " + strings.ToLower(unit)
	}
	return num(v)
}

// AlarmChange is one entry of an alarm's history.
type AlarmChange struct {
	At      time.Time
	Summary string
}

// Alarms returns the alarms of each stack (or only of stack when set): an
// environment's account in a jurisdiction's home region holds that one
// stack's alarms. A stack whose account cannot be read gives an error
// naming it; the others are still returned.
func (s *Service) Alarms(ctx context.Context, stack string, history int) ([]Alarm, []error) {
	var mu sync.Mutex
	var out []Alarm
	var errs []error
	var wg sync.WaitGroup
	for _, st := range s.cfg.Stacks {
		if stack != "" && st.ID != stack {
			continue
		}
		wg.Go(func() {
			alarms, err := s.stackAlarms(ctx, st, history)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", st.ID, err))
				return
			}
			out = append(out, alarms...)
		})
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool {
		if stateRank(out[i].State) != stateRank(out[j].State) {
			return stateRank(out[i].State) < stateRank(out[j].State)
		}
		return out[i].Stack+out[i].Name < out[j].Stack+out[j].Name
	})
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return out, errs
}

func stateRank(s string) int {
	switch s {
	case "ALARM":
		return 0
	case "INSUFFICIENT_DATA":
		return 1
	}
	return 2
}

func (s *Service) stackAlarms(ctx context.Context, st StackRef, history int) ([]Alarm, error) {
	if s.cfg.Clients.CloudWatch == nil {
		return nil, fmt.Errorf("no CloudWatch client configured")
	}
	cw, err := s.cfg.Clients.CloudWatch(st.Environment, st.Region)
	if err != nil {
		return nil, err
	}
	var out []Alarm
	p := cloudwatch.NewDescribeAlarmsPaginator(cw, &cloudwatch.DescribeAlarmsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, explainAWS(err)
		}
		for _, a := range page.MetricAlarms {
			out = append(out, Alarm{Stack: st.ID, Region: st.Region, Name: aws.ToString(a.AlarmName), State: string(a.StateValue), Reason: aws.ToString(a.StateReason),
				Namespace: aws.ToString(a.Namespace), Metric: aws.ToString(a.MetricName), Comparison: string(a.ComparisonOperator),
				Threshold: aws.ToFloat64(a.Threshold), Unit: string(a.Unit), Updated: aws.ToTime(a.StateUpdatedTimestamp)})
		}
	}
	if history <= 0 {
		return out, nil
	}
	// One history call per alarm, at most historyCalls at once: the page
	// waits for the slowest call, not for the sum of them.
	sem := make(chan struct{}, historyCalls)
	var wg sync.WaitGroup
	for i := range out {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			al := &out[i]
			h, err := cw.DescribeAlarmHistory(ctx, &cloudwatch.DescribeAlarmHistoryInput{AlarmName: aws.String(al.Name), MaxRecords: aws.Int32(int32(history)),
				HistoryItemType: types.HistoryItemTypeStateUpdate})
			if err != nil {
				// The state is still worth showing without its history.
				al.HistoryNote = "history unavailable: " + engine.Explain(err)
				return
			}
			for _, it := range h.AlarmHistoryItems {
				al.History = append(al.History, AlarmChange{At: aws.ToTime(it.Timestamp), Summary: aws.ToString(it.HistorySummary)})
			}
		})
	}
	wg.Wait()
	return out, nil
}

// historyCalls bounds the alarm history calls in flight per stack
// (CloudWatch allows DescribeAlarmHistory a few requests a second per
// account; the SDK's retryer absorbs throttling).
const historyCalls = 8

// Series is one metric over time.
type Series struct {
	Title, Unit string
	Stat        string
	Times       []time.Time
	Values      []float64
	Missing     string // why there is no data, when there is none
}

// metricSpec is a chart the metrics page draws for a stack.
type metricSpec struct {
	title, unit, namespace, metric, stat string
	resourceType                         string // stack resource whose physical id is the dimension
	dimension                            string
	dimValue                             func(physical string) string
}

// loadBalancerDim turns an ALB ARN into CloudWatch's LoadBalancer
// dimension, app/NAME/ID.
func loadBalancerDim(arn string) string {
	if i := strings.Index(arn, ":loadbalancer/"); i >= 0 {
		return arn[i+len(":loadbalancer/"):]
	}
	return arn
}

func same(s string) string { return s }

var stackMetrics = []metricSpec{
	{"ALB requests", "requests", "AWS/ApplicationELB", "RequestCount", "Sum", "alb", "LoadBalancer", loadBalancerDim},
	{"ALB 5xx (load balancer)", "responses", "AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "Sum", "alb", "LoadBalancer", loadBalancerDim},
	{"ALB 5xx (targets)", "responses", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "Sum", "alb", "LoadBalancer", loadBalancerDim},
	{"ALB latency", "seconds", "AWS/ApplicationELB", "TargetResponseTime", "Average", "alb", "LoadBalancer", loadBalancerDim},
	{"Auto Scaling CPU", "percent", "AWS/EC2", "CPUUtilization", "Average", "autoscaling_group", "AutoScalingGroupName", same},
	{"Auto Scaling in-service instances", "instances", "AWS/AutoScaling", "GroupInServiceInstances", "Average", "autoscaling_group", "AutoScalingGroupName", same},
	{"RDS CPU", "percent", "AWS/RDS", "CPUUtilization", "Average", "rds_instance", "DBInstanceIdentifier", same},
	{"RDS connections", "connections", "AWS/RDS", "DatabaseConnections", "Average", "rds_instance", "DBInstanceIdentifier", same},
	{"RDS replica lag", "seconds", "AWS/RDS", "ReplicaLag", "Maximum", "rds_read_replica", "DBInstanceIdentifier", same},
	{"DynamoDB throttled requests", "requests", "AWS/DynamoDB", "ThrottledRequests", "Sum", "dynamodb_table", "TableName", same},
}

// periodFor picks a period giving about 120 points over d (at least a minute).
func periodFor(d time.Duration) int32 {
	p := int32(d.Seconds() / 120)
	for _, step := range []int32{60, 300, 900, 3600, 21600, 86400} {
		if p <= step {
			return step
		}
	}
	return 86400
}

// Metrics returns the charts that matter for stack between from and to:
// ALB requests, 5xx and latency; Auto Scaling CPU and capacity; RDS CPU,
// connections and replica lag; DynamoDB throttles. The dimensions come
// from what the portal manages in the stack (state).
func (s *Service) Metrics(ctx context.Context, stack string, from, to time.Time, state StateSource) ([]Series, error) {
	var st StackRef
	for _, x := range s.cfg.Stacks {
		if x.ID == stack {
			st = x
		}
	}
	if st.ID == "" {
		return nil, fmt.Errorf("activity: unknown stack %q", stack)
	}
	if state == nil || s.cfg.Clients.CloudWatch == nil {
		return nil, fmt.Errorf("activity: AWS is not configured")
	}
	res, err := state.Resources(ctx, stack)
	if err != nil {
		return nil, err
	}
	byType := map[string][]engine.StateResource{}
	for _, r := range res {
		byType[r.Type] = append(byType[r.Type], r)
	}
	period := periodFor(to.Sub(from))
	var queries []types.MetricDataQuery
	out := make([]Series, len(stackMetrics))
	for i, m := range stackMetrics {
		out[i] = Series{Title: m.title, Unit: m.unit, Stat: m.stat}
		rs := byType[m.resourceType]
		if len(rs) == 0 || rs[0].PhysicalID == "" {
			out[i].Missing = "the stack has no " + m.resourceType + " yet: apply it first"
			continue
		}
		region := rs[0].Region
		if region == "" {
			region = st.Region
		}
		if region != st.Region {
			// Replicas may live in another region of the jurisdiction.
			out[i].Missing = "in " + region + ": see that region's console"
			continue
		}
		queries = append(queries, types.MetricDataQuery{Id: aws.String(fmt.Sprintf("m%d", i)), ReturnData: aws.Bool(true),
			MetricStat: &types.MetricStat{Period: aws.Int32(period), Stat: aws.String(m.stat), Metric: &types.Metric{Namespace: aws.String(m.namespace),
				MetricName: aws.String(m.metric), Dimensions: []types.Dimension{{Name: aws.String(m.dimension), Value: aws.String(m.dimValue(rs[0].PhysicalID))}}}}})
	}
	if len(queries) == 0 {
		return out, nil
	}
	cw, err := s.cfg.Clients.CloudWatch(st.Environment, st.Region)
	if err != nil {
		return nil, err
	}
	p := cloudwatch.NewGetMetricDataPaginator(cw, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(from), EndTime: aws.Time(to), MetricDataQueries: queries,
		ScanBy: types.ScanByTimestampAscending})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("activity: metrics of %s: %w", stack, explainAWS(err))
		}
		for _, r := range page.MetricDataResults {
			var i int
			fmt.Sscanf(aws.ToString(r.Id), "m%d", &i)
			out[i].Times = append(out[i].Times, r.Timestamps...)
			out[i].Values = append(out[i].Values, r.Values...)
		}
	}
	for i := range out {
		sortSeries(&out[i])
		if out[i].Missing == "" && len(out[i].Values) == 0 {
			out[i].Missing = "no datapoints in this time range"
		}
	}
	return out, nil
}

func sortSeries(s *Series) {
	idx := make([]int, len(s.Times))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return s.Times[idx[a]].Before(s.Times[idx[b]]) })
	ts, vs := make([]time.Time, len(idx)), make([]float64, len(idx))
	for i, j := range idx {
		ts[i], vs[i] = s.Times[j], s.Values[j]
	}
	s.Times, s.Values = ts, vs
}
