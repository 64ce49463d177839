package evidence_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"portal/internal/engine"
	"portal/internal/evidence"
	"portal/internal/peers/peertest"
)

func TestMain(m *testing.M) { peertest.Main(m) }

// stacksState is what the engine manages, per stack.
type stacksState map[string][]engine.StateResource

func (s stacksState) Resources(_ context.Context, stack string) ([]engine.StateResource, error) {
	return s[stack], nil
}

// TestEncryptionOnEveryStore checks the encryption control against
// moto on every kind of store the shipped blueprints keep data in: dev-eu
// holds an encrypted one of each (its database replica in another
// region), test-eu an unencrypted one of each. Each store is named in the
// evidence, and each unencrypted one fails the control.
func TestEncryptionOnEveryStore(t *testing.T) {
	const home, away = "eu-central-1", "eu-west-1"
	cfg, acct := peertest.AccountConfigForTest(t, peertest.MotoForTest(t), home)
	inRegion := func(region string) aws.Config {
		c := cfg.Copy()
		c.Region = region
		return c
	}
	ctx := context.Background()
	key := func(region string) string {
		t.Helper()
		k, err := kms.NewFromConfig(inRegion(region)).CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("evidence test")})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(k.KeyMetadata.Arn)
	}
	homeKey, awayKey := key(home), key(away)

	s3c := s3.NewFromConfig(inRegion(home), func(o *s3.Options) { o.UsePathStyle = true })
	bucket := func(name, kmsKey string) engine.StateResource {
		t.Helper()
		if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name),
			CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(home)}}); err != nil {
			t.Fatal(err)
		}
		if kmsKey != "" {
			if _, err := s3c.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: aws.String(name),
				ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{Rules: []s3types.ServerSideEncryptionRule{{
					ApplyServerSideEncryptionByDefault: &s3types.ServerSideEncryptionByDefault{SSEAlgorithm: s3types.ServerSideEncryptionAwsKms, KMSMasterKeyID: aws.String(kmsKey)}}}}}); err != nil {
				t.Fatal(err)
			}
		}
		return engine.StateResource{ID: "documents_bucket", Type: "s3_bucket", Region: home, PhysicalID: name}
	}
	table := func(name, kmsKey string) engine.StateResource {
		t.Helper()
		in := &dynamodb.CreateTableInput{TableName: aws.String(name), BillingMode: ddbtypes.BillingModePayPerRequest,
			AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
			KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: ddbtypes.KeyTypeHash}}}
		if kmsKey != "" {
			in.SSESpecification = &ddbtypes.SSESpecification{Enabled: aws.Bool(true), SSEType: ddbtypes.SSETypeKms, KMSMasterKeyId: aws.String(kmsKey)}
		}
		if _, err := dynamodb.NewFromConfig(cfg).CreateTable(ctx, in); err != nil {
			t.Fatal(err)
		}
		return engine.StateResource{ID: "medicines", Type: "dynamodb_table", Region: home, PhysicalID: name}
	}
	database := func(name, kmsKey string) engine.StateResource {
		t.Helper()
		in := &rds.CreateDBInstanceInput{DBInstanceIdentifier: aws.String(name), Engine: aws.String("postgres"), DBInstanceClass: aws.String("db.t3.micro"),
			AllocatedStorage: aws.Int32(20), MasterUsername: aws.String("portal"), MasterUserPassword: aws.String("not-a-secret-1"), BackupRetentionPeriod: aws.Int32(7)}
		if kmsKey != "" {
			in.StorageEncrypted, in.KmsKeyId = aws.Bool(true), aws.String(kmsKey)
		}
		if _, err := rds.NewFromConfig(cfg).CreateDBInstance(ctx, in); err != nil {
			t.Fatal(err)
		}
		return engine.StateResource{ID: "db", Type: "rds_instance", Region: home, PhysicalID: name}
	}
	// replica makes base-1 in region, as the rds_read_replica driver does.
	replica := func(base, source, region, kmsKey string) engine.StateResource {
		t.Helper()
		in := &rds.CreateDBInstanceReadReplicaInput{DBInstanceIdentifier: aws.String(base + "-1"), DBInstanceClass: aws.String("db.t3.micro"),
			SourceDBInstanceIdentifier: aws.String(source)}
		if region != home {
			in.SourceDBInstanceIdentifier = aws.String(fmt.Sprintf("arn:aws:rds:%s:%s:db:%s", home, acct, source))
			in.SourceRegion = aws.String(home)
		}
		if kmsKey != "" {
			in.KmsKeyId = aws.String(kmsKey)
		}
		if _, err := rds.NewFromConfig(inRegion(region)).CreateDBInstanceReadReplica(ctx, in); err != nil {
			t.Fatal(err)
		}
		return engine.StateResource{ID: "db_replicas", Type: "rds_read_replica", Region: region, PhysicalID: base}
	}
	topic := func(name, kmsKey string) engine.StateResource {
		t.Helper()
		in := &sns.CreateTopicInput{Name: aws.String(name)}
		if kmsKey != "" {
			in.Attributes = map[string]string{"KmsMasterKeyId": kmsKey}
		}
		out, err := sns.NewFromConfig(cfg).CreateTopic(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return engine.StateResource{ID: "doctor_alerts", Type: "sns_topic", Region: home, PhysicalID: aws.ToString(out.TopicArn)}
	}
	logGroup := func(name, kmsKey string) engine.StateResource {
		t.Helper()
		in := &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(name)}
		if kmsKey != "" {
			in.KmsKeyId = aws.String(kmsKey)
		}
		if _, err := cloudwatchlogs.NewFromConfig(cfg).CreateLogGroup(ctx, in); err != nil {
			t.Fatal(err)
		}
		return engine.StateResource{ID: "app_logs", Type: "log_group", Region: home, PhysicalID: name}
	}
	template := func(name, kmsKey string) engine.StateResource {
		t.Helper()
		ebs := &ec2types.LaunchTemplateEbsBlockDeviceRequest{Encrypted: aws.Bool(kmsKey != ""), VolumeSize: aws.Int32(8), VolumeType: ec2types.VolumeTypeGp3}
		if kmsKey != "" {
			ebs.KmsKeyId = aws.String(kmsKey)
		}
		out, err := ec2.NewFromConfig(cfg).CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String(name),
			LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String("ami-12c6146b"), InstanceType: ec2types.InstanceTypeT3Micro,
				BlockDeviceMappings: []ec2types.LaunchTemplateBlockDeviceMappingRequest{{DeviceName: aws.String("/dev/xvda"), Ebs: ebs}}}})
		if err != nil {
			t.Fatal(err)
		}
		return engine.StateResource{ID: "app_template", Type: "launch_template", Region: home, PhysicalID: aws.ToString(out.LaunchTemplate.LaunchTemplateId)}
	}
	trail := func(name, kmsKey string) engine.StateResource {
		t.Helper()
		b := name + "-" + acct
		if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b),
			CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(home)}}); err != nil {
			t.Fatal(err)
		}
		in := &cloudtrail.CreateTrailInput{Name: aws.String(name), S3BucketName: aws.String(b), EnableLogFileValidation: aws.Bool(true)}
		if kmsKey != "" {
			in.KmsKeyId = aws.String(kmsKey)
		}
		ct := cloudtrail.NewFromConfig(cfg)
		if _, err := ct.CreateTrail(ctx, in); err != nil {
			t.Fatal(err)
		}
		if _, err := ct.StartLogging(ctx, &cloudtrail.StartLoggingInput{Name: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
		return engine.StateResource{ID: "trail", Type: "cloudtrail", Region: home, PhysicalID: name}
	}

	ok := []engine.StateResource{
		bucket("docs-ok-"+acct, homeKey), table("meds-ok", homeKey), database("db-ok", homeKey), replica("db-ok-replica", "db-ok", away, awayKey),
		topic("alerts-ok", homeKey), logGroup("/portal/dev-eu/app", homeKey), template("app-ok", homeKey), trail("trail-ok", homeKey),
	}
	bad := []engine.StateResource{
		bucket("docs-bad-"+acct, ""), table("meds-bad", ""), database("db-bad", ""), replica("db-bad-replica", "db-bad", home, ""),
		topic("alerts-bad", ""), logGroup("/portal/test-eu/app", ""), template("app-bad", ""), trail("trail-bad", ""),
	}

	src := evidence.Sources{
		Stacks: []evidence.Stack{{ID: "dev-eu", Environment: "dev", Jurisdiction: "eu", Region: home, AccountID: acct},
			{ID: "test-eu", Environment: "test", Jurisdiction: "eu", Region: home, AccountID: acct}},
		AWS:   func(env, region string) (aws.Config, error) { return inRegion(region), nil },
		State: stacksState{"dev-eu": ok, "test-eu": bad},
	}
	p, err := evidence.Build(ctx, src, "eu", evidence.LastMonth(time.Now()), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	enc := map[string]evidence.Control{}
	for _, c := range p.Controls {
		switch c.ID {
		case "encryption-at-rest":
			enc[c.Stack] = c
		case "audit-trail":
			// Two trails in the account: each stack's is read by its name.
			if c.Status != evidence.Pass {
				t.Errorf("%s trail: got %s, want pass (logging, validating)\n%s", c.Stack, c.Status, text(c))
			}
		}
	}
	// What names each store in the evidence: the replica by its own id.
	named := func(res engine.StateResource) string {
		if res.Type == "rds_read_replica" {
			return res.PhysicalID + "-1"
		}
		return res.PhysicalID
	}
	lineOf := func(c evidence.Control, res engine.StateResource) (evidence.Line, bool) {
		for _, l := range c.Lines {
			if strings.Contains(l.Resource+" ", named(res)+" ") {
				return l, true
			}
		}
		return evidence.Line{}, false
	}

	good := enc["dev-eu"]
	if good.Status != evidence.Pass {
		t.Errorf("dev-eu encryption: got %s, want pass\n%s", good.Status, text(good))
	}
	for _, res := range ok {
		l, found := lineOf(good, res)
		if !found || l.Failing || !strings.Contains(l.Finding, "key ") || l.At.IsZero() {
			t.Errorf("dev-eu %s %s: got evidence %+v, want it named as encrypted with its key, at a time", res.Type, named(res), l)
		}
	}
	if l, _ := lineOf(good, ok[3]); !strings.Contains(l.Resource, away) || !strings.Contains(l.Finding, awayKey) {
		t.Errorf("dev-eu replica: got %+v, want it in %s with %s", l, away, awayKey)
	}

	poor := enc["test-eu"]
	if poor.Status != evidence.Fail {
		t.Errorf("test-eu encryption: got %s, want fail\n%s", poor.Status, text(poor))
	}
	for _, res := range bad {
		if l, found := lineOf(poor, res); !found || !l.Failing || !strings.Contains(l.Finding, "NOT") {
			t.Errorf("test-eu %s %s: got evidence %+v, want it to fail", res.Type, named(res), l)
		}
	}
	if t.Failed() {
		t.Logf("dev-eu:\n%s\ntest-eu:\n%s", text(good), text(poor))
	}
}

// text is a control's lines as text, for failure messages.
func text(c evidence.Control) string {
	var b strings.Builder
	for _, l := range c.Lines {
		fmt.Fprintf(&b, "%s: %s (%s) %s\n", l.Resource, l.Finding, l.At.Format(time.RFC3339), l.Link)
	}
	return b.String()
}
