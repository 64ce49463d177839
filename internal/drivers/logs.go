package drivers

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"portal/internal/engine"
)

// LogGroup manages a CloudWatch Logs group encrypted with a
// customer-managed key, with a retention period.
//
// Fields: name, kms_key, retention_days; data_class and log_class are
// informational (log_class is the portal's own classification, not the
// CloudWatch Logs class, which stays STANDARD). Outputs: arn (without the
// trailing ":*" DescribeLogGroups adds, so a blueprint writes
// "${ref.app_logs.arn}:*" for the streams), name, id.
//
// CloudWatch Logs refuses a key whose policy does not let
// logs.<region>.amazonaws.com use it: the key's kms_key_policy grants that,
// and the group depends on it.
type LogGroup struct{}

func (LogGroup) Type() string       { return "log_group" }
func (LogGroup) ForceNew() []string { return []string{"name"} }

func logsClient(env *engine.Env, region string) *cloudwatchlogs.Client {
	return cloudwatchlogs.NewFromConfig(env.Config(region))
}

func (g LogGroup) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	name := d.String("name")
	if prior != nil {
		name = prior.PhysicalID
	}
	if !refResolved(name) {
		return nil, engine.ErrNotFound
	}
	c := logsClient(env, d.Region)
	var found *types.LogGroup
	p := cloudwatchlogs.NewDescribeLogGroupsPaginator(c, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(name)})
	for p.HasMorePages() && found == nil {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe log group %s: %w", name, err)
		}
		for i := range page.LogGroups {
			if aws.ToString(page.LogGroups[i].LogGroupName) == name {
				found = &page.LogGroups[i]
				break
			}
		}
	}
	if found == nil {
		return nil, engine.ErrNotFound
	}
	arn := aws.ToString(found.LogGroupArn)
	if arn == "" {
		arn = strings.TrimSuffix(aws.ToString(found.Arn), ":*")
	}
	live := &engine.Live{
		PhysicalID: name,
		Region:     d.Region,
		Outputs:    map[string]string{"arn": arn, "name": name, "id": name},
		Fields: map[string]any{
			"name":           name,
			"kms_key":        aws.ToString(found.KmsKeyId),
			"retention_days": int64(aws.ToInt32(found.RetentionInDays)),
		},
		Tags: map[string]string{},
	}
	tags, err := c.ListTagsForResource(ctx, &cloudwatchlogs.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
	if err != nil {
		return nil, fmt.Errorf("list tags of log group %s: %w", name, err)
	}
	for k, v := range tags.Tags {
		live.Tags[k] = v
	}
	return live, nil
}

func (g LogGroup) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	name := d.String("name")
	c := logsClient(env, d.Region)
	in := &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(name), Tags: d.Tags}
	if k := d.String("kms_key"); k != "" {
		in.KmsKeyId = aws.String(k)
	}
	// CreateLogGroup takes no idempotency token: a Create retried after a
	// crash finds the group and brings its settings in line below.
	exists := false
	if _, err := c.CreateLogGroup(ctx, in); engine.IsCode(err, "ResourceAlreadyExistsException") {
		exists = true
	} else if err != nil {
		return nil, fmt.Errorf("create log group %s: %w", name, err)
	}
	env.Logf("created log group %s", name)
	if err := g.setRetention(ctx, c, env, d); err != nil {
		return nil, err
	}
	live, err := g.Read(ctx, env, d, &engine.Prior{PhysicalID: name, Region: d.Region})
	if err != nil || !exists {
		return live, err
	}
	return g.Update(ctx, env, d, live, engine.Diff(d, live, g.ForceNew()))
}

func (LogGroup) setRetention(ctx context.Context, c *cloudwatchlogs.Client, env *engine.Env, d *engine.Desired) error {
	name, days := d.String("name"), d.Int("retention_days")
	var err error
	if days > 0 {
		_, err = c.PutRetentionPolicy(ctx, &cloudwatchlogs.PutRetentionPolicyInput{LogGroupName: aws.String(name), RetentionInDays: aws.Int32(int32(days))})
	} else {
		_, err = c.DeleteRetentionPolicy(ctx, &cloudwatchlogs.DeleteRetentionPolicyInput{LogGroupName: aws.String(name)})
	}
	if err != nil {
		return fmt.Errorf("set retention of log group %s: %w", name, err)
	}
	env.Logf("log group %s: retention %d days", name, days)
	return nil
}

func (g LogGroup) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	c := logsClient(env, live.Region)
	name := live.PhysicalID
	for _, ch := range changes {
		var err error
		switch ch.Path {
		case "kms_key":
			if k := d.String("kms_key"); k != "" {
				_, err = c.AssociateKmsKey(ctx, &cloudwatchlogs.AssociateKmsKeyInput{LogGroupName: aws.String(name), KmsKeyId: aws.String(k)})
			} else {
				_, err = c.DisassociateKmsKey(ctx, &cloudwatchlogs.DisassociateKmsKeyInput{LogGroupName: aws.String(name)})
			}
			if err != nil {
				return nil, fmt.Errorf("set key of log group %s: %w", name, err)
			}
			env.Logf("log group %s: key %q", name, d.String("kms_key"))
		case "retention_days":
			err = g.setRetention(ctx, c, env, d)
		case "tags":
			_, err = c.TagResource(ctx, &cloudwatchlogs.TagResourceInput{ResourceArn: aws.String(live.Outputs["arn"]), Tags: d.Tags})
		}
		if err != nil {
			return nil, err
		}
	}
	return g.Read(ctx, env, d, &engine.Prior{PhysicalID: name, Region: live.Region})
}

func (LogGroup) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	_, err := logsClient(env, live.Region).DeleteLogGroup(ctx, &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: aws.String(live.PhysicalID)})
	if err != nil && !engine.IsCode(err, "ResourceNotFoundException") {
		return fmt.Errorf("delete log group %s: %w", live.PhysicalID, err)
	}
	env.Logf("deleted log group %s", live.PhysicalID)
	return nil
}
