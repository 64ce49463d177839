package inventory_test

import (
	"context"
	"fmt"
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
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"

	"portal/internal/engine"
	"portal/internal/inventory"
	"portal/internal/regions"
)

// sandboxStacks creates, in each of the nine stacks (three accounts, each
// jurisdiction's home region), what the tagging API and the describe calls
// have to find: three buckets, a KMS key, a DynamoDB table, an SNS topic,
// a launch template, a trail and an IAM role, all carrying the stack's
// ownership tags. It returns how many resources it made.
func sandboxStacks(tb testing.TB, e *estate) int {
	tb.Helper()
	ctx := context.Background()
	n := 0
	for _, env := range regions.EnvironmentNames() {
		sfx := e.account(env)[:6]
		for _, j := range regions.Jurisdictions() {
			stack, region := regions.StackID(env, j.ID), j.HomeRegion
			cfg := e.cfg(tb, env, region)
			tags := func(id string) map[string]string { return ownership(stack, id) }
			for _, b := range []string{"documents", "snapshots", "assets"} {
				e.bucket(tb, env, region, fmt.Sprintf("%s-%s-%s", b, stack, sfx), tags(b), true)
				n++
			}
			if _, err := kms.NewFromConfig(cfg).CreateKey(ctx, &kms.CreateKeyInput{Tags: []kmstypes.Tag{{TagKey: aws.String(engine.TagStack), TagValue: aws.String(stack)}}}); err != nil {
				tb.Fatal(err)
			}
			if _, err := dynamodb.NewFromConfig(cfg).CreateTable(ctx, &dynamodb.CreateTableInput{TableName: aws.String("medicines-" + stack), BillingMode: dtypes.BillingModePayPerRequest,
				AttributeDefinitions: []dtypes.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: dtypes.ScalarAttributeTypeS}},
				KeySchema:            []dtypes.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: dtypes.KeyTypeHash}},
				Tags:                 []dtypes.Tag{{Key: aws.String(engine.TagStack), Value: aws.String(stack)}}}); err != nil {
				tb.Fatal(err)
			}
			if _, err := sns.NewFromConfig(cfg).CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("alerts-" + stack), Tags: []snstypes.Tag{{Key: aws.String(engine.TagStack), Value: aws.String(stack)}}}); err != nil {
				tb.Fatal(err)
			}
			if _, err := ec2.NewFromConfig(cfg).CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("web-" + stack),
				LaunchTemplateData: &ec2types.RequestLaunchTemplateData{InstanceType: ec2types.InstanceTypeT3Micro},
				TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeLaunchTemplate,
					Tags: []ec2types.Tag{{Key: aws.String(engine.TagStack), Value: aws.String(stack)}}}}}); err != nil {
				tb.Fatal(err)
			}
			if _, err := cloudtrail.NewFromConfig(cfg).CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("trail-" + stack),
				S3BucketName: aws.String(fmt.Sprintf("snapshots-%s-%s", stack, sfx))}); err != nil {
				tb.Fatal(err)
			}
			if _, err := iam.NewFromConfig(cfg).CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("app-" + stack),
				AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`),
				Tags:                     []iamtypes.Tag{{Key: aws.String(engine.TagStack), Value: aws.String(stack)}}}); err != nil {
				tb.Fatal(err)
			}
			n += 6
		}
	}
	return n
}

// BenchmarkDiscoverSandbox measures a full discovery of nine stacks in
// three accounts (six regions each, global services and S3 once per
// account) against moto, reporting API calls and resources per discovery.
func BenchmarkDiscoverSandbox(b *testing.B) {
	e := newEstate(b)
	made := sandboxStacks(b, e)
	d := e.discoverer()
	ctx := context.Background()
	// The first discovery warms moto's per-account, per-region backends.
	if _, err := d.Discover(ctx, nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var res inventory.Result
	for b.Loop() {
		var err error
		if res, err = d.Discover(ctx, nil); err != nil {
			b.Fatal(err)
		}
	}
	if len(res.Errors) > 0 {
		b.Fatalf("task errors: %+v", res.Errors)
	}
	if len(res.Resources) < made {
		b.Fatalf("found %d resources, made %d", len(res.Resources), made)
	}
	b.ReportMetric(float64(res.Calls), "calls/op")
	b.ReportMetric(float64(len(res.Resources)), "resources/op")
	b.ReportMetric(float64(res.Tasks), "tasks/op")
}

// generated builds n resources spread over the accounts, regions and
// services of the estate, a tenth of them unmanaged and one in a hundred a
// residency violation.
func generated(n int) []inventory.Resource {
	envs := regions.EnvironmentNames()
	js := regions.Jurisdictions()
	types := []struct{ svc, typ string }{{"s3", "s3:bucket"}, {"ec2", "ec2:instance"}, {"ec2", "ec2:security-group"}, {"rds", "rds:db"}, {"dynamodb", "dynamodb:table"},
		{"kms", "kms:key"}, {"logs", "logs:log-group"}, {"sns", "sns:topic"}, {"cloudwatch", "cloudwatch:alarm"}, {"elasticloadbalancing", "elasticloadbalancing:loadbalancer"}}
	out := make([]inventory.Resource, n)
	for i := range out {
		env, j, t := envs[i%3], js[(i/3)%3], types[(i/9)%len(types)]
		region := j.HomeRegion
		stack := regions.StackID(env, j.ID)
		tags := map[string]string{"app": "medportal", "cost-centre": fmt.Sprintf("cc-%d", i%50)}
		if i%10 != 0 {
			tags[engine.TagStack], tags[engine.TagResource], tags[engine.TagVersion] = stack, fmt.Sprintf("r%d", i), "v1"
		}
		if i%100 == 1 {
			region = "sa-east-1"
		}
		r := inventory.Resource{ARN: fmt.Sprintf("arn:aws:%s:%s:111111111111:%s/res-%07d", t.svc, region, t.typ[len(t.svc)+1:], i), Environment: env, AccountID: "111111111111",
			Region: region, Service: t.svc, Type: t.typ, Name: fmt.Sprintf("res-%07d", i), Tags: tags,
			Settings: inventory.Settings{Encryption: "aws:kms", KMSKey: "arn:aws:kms:" + region + ":111111111111:key/k", Versioning: "enabled"}}
		inventory.Classify(&r)
		out[i] = r
	}
	inventory.SortResources(out)
	return out
}

// BenchmarkQuery100k measures the inventory page's queries over a snapshot
// of 100,000 resources: one page of 100 with the total and per-service
// counts, as the page asks for it.
func BenchmarkQuery100k(b *testing.B) {
	db, log := openDB(b)
	svc := inventory.New(db, log, nil, nil, nil)
	ctx := context.Background()
	sn, err := svc.InsertSnapshot(ctx, generated(100_000))
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    inventory.Filter
	}{
		{"all", inventory.Filter{}},
		{"deep-page", inventory.Filter{After: 90_000}},
		{"service", inventory.Filter{Service: "rds"}},
		{"env-jurisdiction-managed", inventory.Filter{Environment: "prod", Jurisdiction: "eu", Managed: "no"}},
		{"violations", inventory.Filter{Violations: true}},
		{"tag", inventory.Filter{Tag: "cost-centre=cc-7"}},
		{"arn-search", inventory.Filter{Query: "res-00421"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tc.f.Snapshot = sn.ID
			for b.Loop() {
				p, err := svc.Query(ctx, tc.f)
				if err != nil {
					b.Fatal(err)
				}
				if p.Total == 0 {
					b.Fatal("no resources")
				}
			}
		})
	}
	b.Run("facets", func(b *testing.B) {
		for b.Loop() {
			if _, err := svc.Facets(ctx, sn.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("overview-summary", func(b *testing.B) {
		for b.Loop() {
			if _, err := svc.Summary(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
