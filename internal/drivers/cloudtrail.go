package drivers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"portal/internal/engine"
)

// CloudTrail manages a trail delivering to S3 under a customer-managed
// key, optionally also to a CloudWatch Logs group, and keeps it logging.
//
// Fields: name, bucket (name), kms_key, multi_region, log_file_validation,
// log_group (the group's ARN, without ":*"); description is informational.
// Outputs: arn, name, id, is_logging.
//
// The trail's key must let CloudTrail generate data keys (the key's
// kms_key_policy, on which the trail depends: CreateTrail refuses a key
// CloudTrail cannot use). What else real AWS needs beyond the trail, done
// by this driver because no blueprint resource says it:
//   - the bucket policy lets cloudtrail.amazonaws.com check the bucket ACL
//     and write under AWSLogs/<account>/ for this trail (statements merged
//     by Sid, the bucket's own TLS-only statement kept);
//   - CloudWatch Logs delivery needs a role CloudTrail assumes, which the
//     blueprint does not give: the driver makes "<trail name>-logs-delivery"
//     (trusting cloudtrail.amazonaws.com for this trail only, allowed to
//     create streams and put events in that one group), tags it with the
//     trail's ownership tags and deletes it with the trail.
//
// A trail that stopped logging has no blueprint field to show as a
// difference; Read logs it, and Update starts it again.
type CloudTrail struct{}

func (CloudTrail) Type() string       { return "cloudtrail" }
func (CloudTrail) ForceNew() []string { return []string{"name"} }

func trailClient(env *engine.Env, region string) *cloudtrail.Client {
	return cloudtrail.NewFromConfig(env.Config(region))
}

func (t CloudTrail) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	name := d.String("name")
	if prior != nil {
		name = prior.PhysicalID
	}
	if !refResolved(name) {
		return nil, engine.ErrNotFound
	}
	c := trailClient(env, d.Region)
	out, err := c.GetTrail(ctx, &cloudtrail.GetTrailInput{Name: aws.String(name)})
	if engine.IsCode(err, "TrailNotFoundException") {
		return nil, engine.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("get trail %s: %w", name, err)
	}
	tr := out.Trail
	arn := aws.ToString(tr.TrailARN)
	st, err := c.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: aws.String(arn)})
	if err != nil {
		return nil, fmt.Errorf("get status of trail %s: %w", name, err)
	}
	logging := aws.ToBool(st.IsLogging)
	if !logging {
		env.Logf("trail %s is not logging", arn)
	}
	trailName := aws.ToString(tr.Name)
	live := &engine.Live{
		PhysicalID: arn,
		Region:     d.Region,
		Outputs:    map[string]string{"arn": arn, "name": trailName, "id": trailName, "is_logging": fmt.Sprint(logging)},
		Fields: map[string]any{
			"name":                trailName,
			"bucket":              aws.ToString(tr.S3BucketName),
			"kms_key":             aws.ToString(tr.KmsKeyId),
			"multi_region":        aws.ToBool(tr.IsMultiRegionTrail),
			"log_file_validation": aws.ToBool(tr.LogFileValidationEnabled),
			"log_group":           strings.TrimSuffix(aws.ToString(tr.CloudWatchLogsLogGroupArn), ":*"),
			"logging":             logging,
		},
		Tags: map[string]string{},
	}
	if r := aws.ToString(tr.CloudWatchLogsRoleArn); r != "" {
		live.Outputs["logs_role_arn"] = r
	}
	tags, err := c.ListTags(ctx, &cloudtrail.ListTagsInput{ResourceIdList: []string{arn}})
	if err != nil {
		return nil, fmt.Errorf("list tags of trail %s: %w", name, err)
	}
	for _, rt := range tags.ResourceTagList {
		for _, tag := range rt.TagsList {
			live.Tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
		}
	}
	return live, nil
}

// trailARN is the ARN the trail has (or will have) in the stack's account.
func (CloudTrail) trailARN(env *engine.Env, d *engine.Desired) string {
	account := arnAccount(d.String("kms_key"))
	if account == "" {
		account = env.Stack.AccountID
	}
	return fmt.Sprintf("arn:%s:cloudtrail:%s:%s:trail/%s", regionPartition(d.Region), d.Region, account, d.String("name"))
}

// prepare grants CloudTrail what it needs on the bucket, and
// returns the CloudWatch Logs delivery role ("" without a log group).
func (t CloudTrail) prepare(ctx context.Context, env *engine.Env, d *engine.Desired) (string, error) {
	arn := t.trailARN(env, d)
	account := arnAccount(arn)
	bucket := d.String("bucket")
	bucketRegion, err := s3BucketRegion(ctx, env, d.Region, bucket)
	if err != nil {
		return "", fmt.Errorf("trail bucket %s: %w", bucket, err)
	}
	bucketARN := s3BucketARN(bucketRegion, bucket)
	service := map[string]any{"Service": "cloudtrail.amazonaws.com"}
	err = mergeBucketPolicy(ctx, s3Client(env, bucketRegion), bucket, []map[string]any{
		{
			"Sid": "PortalCloudTrailAclCheck", "Effect": "Allow", "Principal": service,
			"Action": "s3:GetBucketAcl", "Resource": bucketARN,
			"Condition": map[string]any{"StringEquals": map[string]any{"aws:SourceArn": arn}},
		},
		{
			"Sid": "PortalCloudTrailWrite", "Effect": "Allow", "Principal": service,
			"Action": "s3:PutObject", "Resource": bucketARN + "/AWSLogs/" + account + "/*",
			"Condition": map[string]any{"StringEquals": map[string]any{"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": arn}},
		},
	}, nil)
	if err != nil {
		return "", err
	}
	if lg := d.String("log_group"); lg != "" {
		return t.ensureLogsRole(ctx, env, d, arn, lg)
	}
	return "", nil
}

func (CloudTrail) logsRoleName(trail string) string { return trail + "-logs-delivery" }

// ensureLogsRole makes (or updates) the role CloudTrail assumes to write
// into log group lg.
func (t CloudTrail) ensureLogsRole(ctx context.Context, env *engine.Env, d *engine.Desired, trailARN, lg string) (string, error) {
	c := iam.NewFromConfig(env.Config("us-east-1"))
	name := t.logsRoleName(d.String("name"))
	trust, _ := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect": "Allow", "Principal": map[string]any{"Service": "cloudtrail.amazonaws.com"}, "Action": "sts:AssumeRole",
			"Condition": map[string]any{"StringEquals": map[string]any{"aws:SourceArn": trailARN}},
		}},
	})
	policy, _ := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect": "Allow", "Action": []any{"logs:CreateLogStream", "logs:PutLogEvents"}, "Resource": lg + ":log-stream:*",
		}},
	})
	tags := make([]iamtypes.Tag, 0, len(d.Tags))
	for _, k := range sortedKeys(d.Tags) {
		tags = append(tags, iamtypes.Tag{Key: aws.String(k), Value: aws.String(d.Tags[k])})
	}
	var arn string
	out, err := c.CreateRole(ctx, &iam.CreateRoleInput{
		RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(string(trust)), Tags: tags,
		Description: aws.String("CloudTrail delivery of trail " + d.String("name") + " to CloudWatch Logs (made by the portal's cloudtrail driver)"),
	})
	switch {
	case engine.IsCode(err, "EntityAlreadyExists"):
		got, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
		if err != nil {
			return "", fmt.Errorf("get role %s: %w", name, err)
		}
		if !roleOwnedBy(got.Role.Tags, env.Stack.ID) {
			return "", fmt.Errorf("role %s exists and is not owned by stack %s: the trail's CloudWatch Logs delivery role needs that name", name, env.Stack.ID)
		}
		arn = aws.ToString(got.Role.Arn)
		if _, err := c.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(name), PolicyDocument: aws.String(string(trust))}); err != nil {
			return "", fmt.Errorf("update trust of role %s: %w", name, err)
		}
	case err != nil:
		return "", fmt.Errorf("create role %s: %w", name, err)
	default:
		arn = aws.ToString(out.Role.Arn)
		env.Logf("created role %s for CloudWatch Logs delivery", arn)
	}
	if _, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String("cloudwatch-logs"), PolicyDocument: aws.String(string(policy))}); err != nil {
		return "", fmt.Errorf("put policy of role %s: %w", name, err)
	}
	return arn, nil
}

func roleOwnedBy(tags []iamtypes.Tag, stack string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == engine.TagStack && aws.ToString(t.Value) == stack {
			return true
		}
	}
	return false
}

// trailRetry retries fn while AWS has not yet seen a fresh role or policy
// (IAM and bucket/key policies are eventually consistent).
func trailRetry(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := fn()
		if err == nil || time.Now().After(deadline) || !engine.IsCode(err,
			"InvalidCloudWatchLogsRoleArnException", "InsufficientS3BucketPolicyException", "InsufficientEncryptionPolicyException") {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
}

func (t CloudTrail) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	name := d.String("name")
	role, err := t.prepare(ctx, env, d)
	if err != nil {
		return nil, err
	}
	c := trailClient(env, d.Region)
	tags := make([]types.Tag, 0, len(d.Tags))
	for _, k := range sortedKeys(d.Tags) {
		tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(d.Tags[k])})
	}
	in := &cloudtrail.CreateTrailInput{
		Name:                       aws.String(name),
		S3BucketName:               aws.String(d.String("bucket")),
		IsMultiRegionTrail:         aws.Bool(d.Bool("multi_region")),
		EnableLogFileValidation:    aws.Bool(d.Bool("log_file_validation")),
		IncludeGlobalServiceEvents: aws.Bool(true),
		TagsList:                   tags,
	}
	if k := d.String("kms_key"); k != "" {
		in.KmsKeyId = aws.String(k)
	}
	if lg := d.String("log_group"); lg != "" {
		in.CloudWatchLogsLogGroupArn = aws.String(lg + ":*")
		in.CloudWatchLogsRoleArn = aws.String(role)
	}
	// CreateTrail takes no idempotency token; the engine reads by name
	// before any Create, and a trail already there is brought in line.
	err = trailRetry(ctx, func() error { _, err := c.CreateTrail(ctx, in); return err })
	if engine.IsCode(err, "TrailAlreadyExistsException") {
		live, err := t.Read(ctx, env, d, nil)
		if err != nil {
			return nil, err
		}
		return t.Update(ctx, env, d, live, engine.Diff(d, live, t.ForceNew()))
	} else if err != nil {
		return nil, fmt.Errorf("create trail %s: %w", name, err)
	}
	env.Logf("created trail %s", name)
	if err := t.startLogging(ctx, c, env, name); err != nil {
		return nil, err
	}
	return t.Read(ctx, env, d, nil)
}

func (CloudTrail) startLogging(ctx context.Context, c *cloudtrail.Client, env *engine.Env, name string) error {
	if _, err := c.StartLogging(ctx, &cloudtrail.StartLoggingInput{Name: aws.String(name)}); err != nil {
		return fmt.Errorf("start logging of trail %s: %w", name, err)
	}
	env.Logf("trail %s logging", name)
	return nil
}

func (t CloudTrail) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	c := trailClient(env, live.Region)
	name := live.PhysicalID
	settings := false
	for _, ch := range changes {
		switch ch.Path {
		case "tags":
			tags := make([]types.Tag, 0, len(d.Tags))
			for _, k := range sortedKeys(d.Tags) {
				tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(d.Tags[k])})
			}
			if _, err := c.AddTags(ctx, &cloudtrail.AddTagsInput{ResourceId: aws.String(name), TagsList: tags}); err != nil {
				return nil, fmt.Errorf("tag trail %s: %w", name, err)
			}
		default:
			settings = true
		}
	}
	if settings {
		role, err := t.prepare(ctx, env, d)
		if err != nil {
			return nil, err
		}
		in := &cloudtrail.UpdateTrailInput{
			Name:                    aws.String(name),
			S3BucketName:            aws.String(d.String("bucket")),
			IsMultiRegionTrail:      aws.Bool(d.Bool("multi_region")),
			EnableLogFileValidation: aws.Bool(d.Bool("log_file_validation")),
			KmsKeyId:                aws.String(d.String("kms_key")),
			// Empty strings remove CloudWatch Logs delivery.
			CloudWatchLogsLogGroupArn: aws.String(""),
			CloudWatchLogsRoleArn:     aws.String(""),
		}
		if lg := d.String("log_group"); lg != "" {
			in.CloudWatchLogsLogGroupArn = aws.String(lg + ":*")
			in.CloudWatchLogsRoleArn = aws.String(role)
		}
		if err := trailRetry(ctx, func() error { _, err := c.UpdateTrail(ctx, in); return err }); err != nil {
			return nil, fmt.Errorf("update trail %s: %w", name, err)
		}
		env.Logf("trail %s updated", name)
		if d.String("log_group") == "" {
			if err := t.deleteLogsRole(ctx, env, d.String("name")); err != nil {
				return nil, err
			}
		}
	}
	if live.Fields["logging"] != true {
		if err := t.startLogging(ctx, c, env, name); err != nil {
			return nil, err
		}
	}
	return t.Read(ctx, env, d, &engine.Prior{PhysicalID: name, Region: live.Region})
}

// Delete removes the trail and the delivery role the driver made for it.
// The grants on the bucket and key stay (the bucket keeps the logs the
// trail wrote and may be kept as evidence).
func (t CloudTrail) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := trailClient(env, live.Region)
	// By name: moto ignores DeleteTrail by ARN (real AWS takes either).
	name := live.Outputs["name"]
	if name == "" {
		name = live.PhysicalID[strings.LastIndex(live.PhysicalID, "/")+1:]
	}
	_, err := c.DeleteTrail(ctx, &cloudtrail.DeleteTrailInput{Name: aws.String(name)})
	if err != nil && !engine.IsCode(err, "TrailNotFoundException") {
		return fmt.Errorf("delete trail %s: %w", name, err)
	}
	if _, err := c.GetTrail(ctx, &cloudtrail.GetTrailInput{Name: aws.String(name)}); err == nil {
		return fmt.Errorf("delete trail %s: the endpoint accepted DeleteTrail but still lists the trail", name)
	}
	env.Logf("deleted trail %s", live.PhysicalID)
	return t.deleteLogsRole(ctx, env, name)
}

// deleteLogsRole deletes the CloudWatch Logs delivery role of trail, if
// there is one and the stack owns it.
func (t CloudTrail) deleteLogsRole(ctx context.Context, env *engine.Env, trail string) error {
	name := t.logsRoleName(trail)
	c := iam.NewFromConfig(env.Config("us-east-1"))
	got, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
	if engine.IsCode(err, "NoSuchEntity") {
		return nil
	} else if err != nil {
		return fmt.Errorf("get role %s: %w", name, err)
	}
	if !roleOwnedBy(got.Role.Tags, env.Stack.ID) {
		return nil
	}
	if _, err := c.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String("cloudwatch-logs")}); err != nil && !engine.IsCode(err, "NoSuchEntity") {
		return fmt.Errorf("delete policy of role %s: %w", name, err)
	}
	if _, err := c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String(name)}); err != nil && !engine.IsCode(err, "NoSuchEntity") {
		return fmt.Errorf("delete role %s: %w", name, err)
	}
	env.Logf("deleted role %s", name)
	return nil
}
