package inventory_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"portal/internal/engine"
	"portal/internal/inventory"
	"portal/internal/peers"
	"portal/internal/peers/peertest"
	"portal/internal/regions"
)

func TestMain(m *testing.M) { peertest.Main(m) }

// estate is three fresh moto accounts playing dev, test and prod.
type estate struct {
	envs []regions.Environment
	mu   sync.Mutex
	cfgs map[string]aws.Config
	m    *peers.Moto
}

func newEstate(t testing.TB) *estate {
	t.Helper()
	e := &estate{m: peertest.MotoForTest(t), cfgs: map[string]aws.Config{}}
	for _, name := range regions.EnvironmentNames() {
		id := peertest.AccountForTest(t)
		e.envs = append(e.envs, regions.Environment{Name: name, AccountID: id, DeployerRoleARN: peers.RoleARN(id, peertest.TestRole)})
	}
	return e
}

func (e *estate) account(env string) string {
	for _, x := range e.envs {
		if x.Name == env {
			return x.AccountID
		}
	}
	return ""
}

// Config is an inventory.ConfigSource.
func (e *estate) Config(env, region string) (aws.Config, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	key := env + "/" + region
	if c, ok := e.cfgs[key]; ok {
		return c, nil
	}
	acct := e.account(env)
	if acct == "" {
		return aws.Config{}, fmt.Errorf("no environment %s", env)
	}
	c := peers.AssumeAccount(context.Background(), e.m.AWSConfig(region), acct, peertest.TestRole)
	e.cfgs[key] = c
	return c, nil
}

func (e *estate) cfg(t testing.TB, env, region string) aws.Config {
	t.Helper()
	c, err := e.Config(env, region)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *estate) discoverer() *inventory.Discoverer {
	return &inventory.Discoverer{Configs: e.Config, Environments: e.envs}
}

func ownership(stack, id string) map[string]string {
	return map[string]string{engine.TagStack: stack, engine.TagResource: id, engine.TagVersion: "v1", engine.TagManaged: "portal"}
}

// bucket creates a bucket in env's account in region with tags, KMS
// encryption, versioning and public access blocked when hardened.
func (e *estate) bucket(t testing.TB, env, region, name string, tags map[string]string, hardened bool) string {
	t.Helper()
	ctx := context.Background()
	c := s3.NewFromConfig(e.cfg(t, env, region))
	in := &s3.CreateBucketInput{Bucket: aws.String(name)}
	if region != "us-east-1" {
		in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)}
	}
	if _, err := c.CreateBucket(ctx, in); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	if len(tags) > 0 {
		var ts []s3types.Tag
		for k, v := range tags {
			ts = append(ts, s3types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		if _, err := c.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String(name), Tagging: &s3types.Tagging{TagSet: ts}}); err != nil {
			t.Fatalf("tag bucket %s: %v", name, err)
		}
	}
	if hardened {
		if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(name),
			VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: aws.String(name), ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{
			Rules: []s3types.ServerSideEncryptionRule{{ApplyServerSideEncryptionByDefault: &s3types.ServerSideEncryptionByDefault{SSEAlgorithm: s3types.ServerSideEncryptionAwsKms, KMSMasterKeyID: aws.String("alias/docs")}}}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{Bucket: aws.String(name), PublicAccessBlockConfiguration: &s3types.PublicAccessBlockConfiguration{
			BlockPublicAcls: aws.Bool(true), BlockPublicPolicy: aws.Bool(true), IgnorePublicAcls: aws.Bool(true), RestrictPublicBuckets: aws.Bool(true)}}); err != nil {
			t.Fatal(err)
		}
	}
	return "arn:aws:s3:::" + name
}

func byARN(rs []inventory.Resource) map[string][]inventory.Resource {
	out := map[string][]inventory.Resource{}
	for _, r := range rs {
		out[r.ARN] = append(out[r.ARN], r)
	}
	return out
}

// TestDiscoverEstate builds a small estate across three accounts and
// regions and checks what a discovery reports about each resource.
func TestDiscoverEstate(t *testing.T) {
	e := newEstate(t)
	ctx := context.Background()
	sfx := e.account("dev")[:6]

	docs := e.bucket(t, "dev", "eu-central-1", "docs-"+sfx, ownership("dev-eu", "documents"), true)
	usDocs := e.bucket(t, "dev", "us-east-1", "us-docs-"+sfx, ownership("dev-us", "documents"), true)
	byHand := e.bucket(t, "dev", "us-east-1", "by-hand-"+sfx, nil, false)
	misplaced := e.bucket(t, "dev", "us-east-1", "eu-in-us-"+sfx, ownership("dev-eu", "stray"), false)
	outside := e.bucket(t, "dev", "ap-northeast-1", "tokyo-"+sfx, nil, false)
	foreign := e.bucket(t, "test", "eu-central-1", "foreign-"+sfx, ownership("dev-eu", "documents"), false)

	// KMS key (found by the tagging API only).
	kc := kms.NewFromConfig(e.cfg(t, "dev", "eu-central-1"))
	key, err := kc.CreateKey(ctx, &kms.CreateKeyInput{Tags: []kmstypes.Tag{{TagKey: aws.String(engine.TagStack), TagValue: aws.String("dev-eu")}, {TagKey: aws.String(engine.TagResource), TagValue: aws.String("documents_key")}}})
	if err != nil {
		t.Fatal(err)
	}
	keyARN := aws.ToString(key.KeyMetadata.Arn)

	// Launch template and trail: tagged, but the tagging API misses them.
	ec := ec2.NewFromConfig(e.cfg(t, "dev", "eu-central-1"))
	lt, err := ec.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("web-" + sfx),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{InstanceType: ec2types.InstanceTypeT3Micro},
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeLaunchTemplate,
			Tags: []ec2types.Tag{{Key: aws.String(engine.TagStack), Value: aws.String("dev-eu")}, {Key: aws.String(engine.TagResource), Value: aws.String("web_template")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	ltARN := fmt.Sprintf("arn:aws:ec2:eu-central-1:%s:launch-template/%s", e.account("dev"), aws.ToString(lt.LaunchTemplate.LaunchTemplateId))
	trailBucket := e.bucket(t, "dev", "eu-central-1", "trail-"+sfx, ownership("dev-eu", "trail_bucket"), true)
	tc := cloudtrail.NewFromConfig(e.cfg(t, "dev", "eu-central-1"))
	trail, err := tc.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("trail-" + sfx), S3BucketName: aws.String("trail-" + sfx), IsMultiRegionTrail: aws.Bool(true),
		KmsKeyId: aws.String(keyARN), TagsList: nil})
	if err != nil {
		t.Fatal(err)
	}
	trailARN := aws.ToString(trail.TrailARN)

	// DynamoDB table with point-in-time recovery.
	dc := dynamodb.NewFromConfig(e.cfg(t, "dev", "eu-central-1"))
	tbl, err := dc.CreateTable(ctx, &dynamodb.CreateTableInput{TableName: aws.String("medicines-" + sfx), BillingMode: dtypes.BillingModePayPerRequest,
		AttributeDefinitions: []dtypes.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: dtypes.ScalarAttributeTypeS}},
		KeySchema:            []dtypes.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: dtypes.KeyTypeHash}},
		Tags:                 []dtypes.Tag{{Key: aws.String(engine.TagStack), Value: aws.String("dev-eu")}, {Key: aws.String(engine.TagResource), Value: aws.String("medicines")}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dc.UpdateContinuousBackups(ctx, &dynamodb.UpdateContinuousBackupsInput{TableName: aws.String("medicines-" + sfx),
		PointInTimeRecoverySpecification: &dtypes.PointInTimeRecoverySpecification{PointInTimeRecoveryEnabled: aws.Bool(true)}}); err != nil {
		t.Fatal(err)
	}
	tableARN := aws.ToString(tbl.TableDescription.TableArn)

	// Global: an IAM role in prod, a Route 53 zone in dev.
	ic := iam.NewFromConfig(e.cfg(t, "prod", "us-east-1"))
	role, err := ic.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("app-" + sfx), AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`),
		Tags: []iamtypes.Tag{{Key: aws.String(engine.TagStack), Value: aws.String("prod-apac")}, {Key: aws.String(engine.TagResource), Value: aws.String("app_role")}}})
	if err != nil {
		t.Fatal(err)
	}
	roleARN := aws.ToString(role.Role.Arn)
	rc := route53.NewFromConfig(e.cfg(t, "dev", "us-east-1"))
	zone, err := rc.CreateHostedZone(ctx, &route53.CreateHostedZoneInput{Name: aws.String(sfx + ".example.com"), CallerReference: aws.String(sfx)})
	if err != nil {
		t.Fatal(err)
	}
	zoneARN := "arn:aws:route53:::hostedzone/" + trimZone(aws.ToString(zone.HostedZone.Id))

	res, err := e.discoverer().Discover(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) > 0 {
		t.Errorf("task errors: %+v", res.Errors)
	}
	if res.Calls == 0 {
		t.Error("no API calls counted")
	}
	t.Logf("discovered %d resources with %d calls in %s (%d tasks)", len(res.Resources), res.Calls, res.Took, res.Tasks)
	found := byARN(res.Resources)

	type want struct {
		arn, env, region, service, typ string
		managed                        bool
		stack, jurisdiction            string
		violation                      bool
	}
	for _, w := range []want{
		{docs, "dev", "eu-central-1", "s3", "s3:bucket", true, "dev-eu", "eu", false},
		{usDocs, "dev", "us-east-1", "s3", "s3:bucket", true, "dev-us", "us", false},
		{byHand, "dev", "us-east-1", "s3", "s3:bucket", false, "", "us", false},
		{misplaced, "dev", "us-east-1", "s3", "s3:bucket", true, "dev-eu", "eu", true},
		{outside, "dev", "ap-northeast-1", "s3", "s3:bucket", false, "", "", true},
		{foreign, "test", "eu-central-1", "s3", "s3:bucket", false, "", "eu", false},
		{trailBucket, "dev", "eu-central-1", "s3", "s3:bucket", true, "dev-eu", "eu", false},
		{keyARN, "dev", "eu-central-1", "kms", "kms:key", true, "dev-eu", "eu", false},
		{ltARN, "dev", "eu-central-1", "ec2", "ec2:launch-template", true, "dev-eu", "eu", false},
		{trailARN, "dev", "eu-central-1", "cloudtrail", "cloudtrail:trail", false, "", "eu", false},
		{tableARN, "dev", "eu-central-1", "dynamodb", "dynamodb:table", true, "dev-eu", "eu", false},
		{roleARN, "prod", inventory.Global, "iam", "iam:role", true, "prod-apac", "apac", false},
		{zoneARN, "dev", inventory.Global, "route53", "route53:hostedzone", false, "", "", false},
	} {
		rs := found[w.arn]
		if len(rs) != 1 {
			t.Errorf("%s: found %d times, want once", w.arn, len(rs))
			continue
		}
		r := rs[0]
		got := want{r.ARN, r.Environment, r.Region, r.Service, r.Type, r.Managed, r.Stack, r.Jurisdiction, r.Violation != ""}
		if got != w {
			t.Errorf("%s:\n got %+v\nwant %+v (violation %q, note %q)", w.arn, got, w, r.Violation, r.Note)
		}
	}
	if r := found[foreign]; len(r) == 1 && r[0].Note == "" {
		t.Errorf("bucket tagged for dev-eu in the test account: no note explaining it is not managed")
	}
	// Buckets appear once each, in their own account and real region,
	// although the tagging API answers every region's buckets in each region.
	buckets := 0
	for _, r := range res.Resources {
		if r.Type == "s3:bucket" {
			buckets++
		}
	}
	if buckets != 7 {
		t.Errorf("got %d buckets, want 7", buckets)
	}
	if s := found[docs][0].Settings; s.Encryption != "aws:kms" || s.Versioning != "enabled" || s.PublicAccess != "blocked" {
		t.Errorf("hardened bucket settings: got %+v, want aws:kms, versioning enabled, public access blocked", s)
	}
	if s := found[byHand][0].Settings; s.Encryption == "aws:kms" || s.Versioning != "off" || s.PublicAccess != "not blocked" {
		t.Errorf("bucket made by hand: got %+v, want no KMS, versioning off, public access not blocked", s)
	}
	if s := found[tableARN][0].Settings; s.Backups != "point-in-time recovery" {
		t.Errorf("table settings: got %+v, want point-in-time recovery", s)
	}
	if s := found[trailARN][0].Settings; s.Encryption != "aws:kms" || s.KMSKey == "" {
		t.Errorf("trail settings: got %+v, want KMS", s)
	}
}

func trimZone(id string) string {
	const p = "/hostedzone/"
	if len(id) > len(p) && id[:len(p)] == p {
		return id[len(p):]
	}
	return id
}
