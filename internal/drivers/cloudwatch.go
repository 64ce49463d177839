package drivers

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"

	"portal/internal/engine"
)

// CloudWatchClient returns a CloudWatch client that speaks the awsQuery
// protocol instead of the SDK's default Smithy RPCv2-CBOR. Real CloudWatch
// accepts both; moto answers only awsQuery, so every CloudWatch call in the
// portal (alarms here, metrics on the activity pages) goes through this.
func CloudWatchClient(cfg aws.Config) *cloudwatch.Client {
	return cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) {
		o.Protocol = awsquery.New(schemas.GraniteServiceVersion20100801)
	})
}

// MetricAlarm manages a CloudWatch metric alarm on one metric.
//
// Fields: name, namespace, metric, statistic, period_seconds,
// evaluation_periods, threshold, comparison, dimensions ({name: value}),
// alarm_actions (ARNs), description. Outputs: arn, name, id.
//
// An alarm notifying a KMS-encrypted SNS topic only delivers if the
// topic's key lets cloudwatch.amazonaws.com use it: that is a statement of
// the key's kms_key_policy (the plan's "will it work" checks it is there).
type MetricAlarm struct{}

func (MetricAlarm) Type() string       { return "metric_alarm" }
func (MetricAlarm) ForceNew() []string { return []string{"name"} }

func (a MetricAlarm) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	name := d.String("name")
	if prior != nil {
		name = prior.PhysicalID
	}
	if !refResolved(name) {
		return nil, engine.ErrNotFound
	}
	c := CloudWatchClient(env.Config(d.Region))
	out, err := c.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{name}, AlarmTypes: []types.AlarmType{types.AlarmTypeMetricAlarm}})
	if err != nil {
		return nil, fmt.Errorf("describe alarm %s: %w", name, err)
	}
	if len(out.MetricAlarms) == 0 {
		return nil, engine.ErrNotFound
	}
	m := out.MetricAlarms[0]
	arn := aws.ToString(m.AlarmArn)
	dims := map[string]any{}
	for _, dim := range m.Dimensions {
		dims[aws.ToString(dim.Name)] = aws.ToString(dim.Value)
	}
	live := &engine.Live{
		PhysicalID: name,
		Region:     d.Region,
		Outputs:    map[string]string{"arn": arn, "name": name, "id": name},
		Fields: map[string]any{
			"name":               name,
			"namespace":          aws.ToString(m.Namespace),
			"metric":             aws.ToString(m.MetricName),
			"statistic":          string(m.Statistic),
			"period_seconds":     int64(aws.ToInt32(m.Period)),
			"evaluation_periods": int64(aws.ToInt32(m.EvaluationPeriods)),
			"threshold":          aws.ToFloat64(m.Threshold),
			"comparison":         string(m.ComparisonOperator),
			"dimensions":         dims,
			"alarm_actions":      alarmOrdered(m.AlarmActions, d.Strings("alarm_actions")),
			"description":        aws.ToString(m.AlarmDescription),
		},
		Tags: map[string]string{},
	}
	tags, err := c.ListTagsForResource(ctx, &cloudwatch.ListTagsForResourceInput{ResourceARN: aws.String(arn)})
	if err != nil {
		return nil, fmt.Errorf("list tags of alarm %s: %w", name, err)
	}
	for _, t := range tags.Tags {
		live.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return live, nil
}

func alarmOrdered(have, want []string) []any {
	x, y := slices.Clone(have), slices.Clone(want)
	sort.Strings(x)
	sort.Strings(y)
	l := x
	if slices.Equal(x, y) {
		l = want
	}
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}

func cloudwatchTags(tags map[string]string) []types.Tag {
	out := make([]types.Tag, 0, len(tags))
	for _, k := range sortedKeys(tags) {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

func (a MetricAlarm) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	return a.put(ctx, env, d, true)
}

func (a MetricAlarm) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	onlyTags := len(changes) > 0
	for _, ch := range changes {
		onlyTags = onlyTags && ch.Path == "tags"
	}
	if onlyTags {
		c := CloudWatchClient(env.Config(live.Region))
		if _, err := c.TagResource(ctx, &cloudwatch.TagResourceInput{ResourceARN: aws.String(live.Outputs["arn"]), Tags: cloudwatchTags(d.Tags)}); err != nil {
			return nil, fmt.Errorf("tag alarm %s: %w", live.PhysicalID, err)
		}
		return a.Read(ctx, env, d, &engine.Prior{PhysicalID: live.PhysicalID, Region: live.Region})
	}
	return a.put(ctx, env, d, slices.ContainsFunc(changes, func(c engine.FieldChange) bool { return c.Path == "tags" }))
}

// put writes the whole alarm: PutMetricAlarm creates or replaces it by
// name, so a Create retried after a crash changes nothing. Tags are only
// applied when the alarm is created (AWS ignores them on an update) or
// when they changed.
func (a MetricAlarm) put(ctx context.Context, env *engine.Env, d *engine.Desired, tags bool) (*engine.Live, error) {
	name := d.String("name")
	c := CloudWatchClient(env.Config(d.Region))
	in := &cloudwatch.PutMetricAlarmInput{
		AlarmName:          aws.String(name),
		Namespace:          aws.String(d.String("namespace")),
		MetricName:         aws.String(d.String("metric")),
		Statistic:          types.Statistic(d.String("statistic")),
		Period:             aws.Int32(int32(d.Int("period_seconds"))),
		EvaluationPeriods:  aws.Int32(int32(d.Int("evaluation_periods"))),
		Threshold:          aws.Float64(d.Float("threshold")),
		ComparisonOperator: types.ComparisonOperator(d.String("comparison")),
		AlarmActions:       d.Strings("alarm_actions"),
		ActionsEnabled:     aws.Bool(true),
		Tags:               cloudwatchTags(d.Tags),
	}
	if desc := d.String("description"); desc != "" {
		in.AlarmDescription = aws.String(desc)
	}
	dims := d.Map("dimensions")
	keys := make([]string, 0, len(dims))
	for k := range dims {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		in.Dimensions = append(in.Dimensions, types.Dimension{Name: aws.String(k), Value: aws.String(d.String("dimensions." + k))})
	}
	if _, err := c.PutMetricAlarm(ctx, in); err != nil {
		return nil, fmt.Errorf("put alarm %s: %w", name, err)
	}
	env.Logf("alarm %s on %s/%s %s %s %g", name, d.String("namespace"), d.String("metric"), d.String("statistic"), d.String("comparison"), d.Float("threshold"))
	live, err := a.Read(ctx, env, d, &engine.Prior{PhysicalID: name, Region: d.Region})
	if err != nil {
		return nil, err
	}
	if tags {
		if _, err := c.TagResource(ctx, &cloudwatch.TagResourceInput{ResourceARN: aws.String(live.Outputs["arn"]), Tags: cloudwatchTags(d.Tags)}); err != nil {
			return nil, fmt.Errorf("tag alarm %s: %w", name, err)
		}
		for k, v := range d.Tags {
			live.Tags[k] = v
		}
	}
	return live, nil
}

func (MetricAlarm) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := CloudWatchClient(env.Config(live.Region))
	if _, err := c.DeleteAlarms(ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{live.PhysicalID}}); err != nil && !engine.IsCode(err, "ResourceNotFound") {
		return fmt.Errorf("delete alarm %s: %w", live.PhysicalID, err)
	}
	env.Logf("deleted alarm %s", live.PhysicalID)
	return nil
}
