package drivers_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"portal/internal/drivers"
	"portal/internal/engine"
)

func TestCloudFrontDistribution(t *testing.T) {
	t.Parallel()
	const region = "eu-central-1"
	env := newEnv(t, region)
	ctx := context.Background()
	albDNS, _ := testALB(t, env, region, "medportal-dev-eu")
	sc := s3.NewFromConfig(env.Config(region))
	bucket := "medportal-dev-eu-assets-" + env.Stack.AccountID
	if _, err := sc.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket),
		CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)}}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	cert := "arn:aws:acm:us-east-1:" + env.Stack.AccountID + ":certificate/01000000-0000-4000-8000-000000000002"
	drv := drivers.CloudFrontDistribution{}
	d := &engine.Desired{ID: "cdn", Type: "cloudfront_distribution", Region: region, Fields: map[string]any{
		"aliases":                []any{"www.eu.dev.medportal.example"},
		"certificate":            cert,
		"viewer_protocol_policy": "https-only",
		"minimum_tls":            "TLSv1.2_2021",
		"price_class":            "PriceClass_100",
		"origins": []any{
			map[string]any{"id": "assets", "s3_bucket": "arn:aws:s3:::" + bucket},
			map[string]any{"id": "app", "alb": albDNS, "protocol_policy": "https-only"},
		},
		"default_origin": "app",
		"behaviors":      []any{map[string]any{"path": "/static/*", "origin": "assets"}},
	}}
	cf := cloudfront.NewFromConfig(env.Config("us-east-1"))
	var distARN string
	live := lifecycle(t, env, drv, d, func(d *engine.Desired) []string {
		// While it exists: the bucket lets this distribution read, through
		// an origin access control, and the origin is the bucket's
		// regional name.
		dists, err := cf.ListDistributions(ctx, &cloudfront.ListDistributionsInput{})
		if err != nil || len(dists.DistributionList.Items) != 1 {
			t.Fatalf("list distributions: %v", err)
		}
		distARN = aws.ToString(dists.DistributionList.Items[0].ARN)
		cfg, err := cf.GetDistributionConfig(ctx, &cloudfront.GetDistributionConfigInput{Id: dists.DistributionList.Items[0].Id})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := aws.ToString(cfg.DistributionConfig.Origins.Items[0].DomainName), bucket+".s3."+region+".amazonaws.com"; got != want {
			t.Errorf("S3 origin domain %s, want %s", got, want)
		}
		if got := aws.ToString(cfg.DistributionConfig.CallerReference); !strings.HasPrefix(got, "portal-") {
			t.Errorf("caller reference %q, want the derived one", got)
		}
		pol, err := sc.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: aws.String(bucket)})
		if err != nil || !strings.Contains(aws.ToString(pol.Policy), distARN) || !strings.Contains(aws.ToString(pol.Policy), "cloudfront.amazonaws.com") {
			t.Errorf("bucket policy %s (%v), want a statement for %s", aws.ToString(pol.Policy), err, distARN)
		}
		oacs, err := cf.ListOriginAccessControls(ctx, &cloudfront.ListOriginAccessControlsInput{})
		if err != nil || len(oacs.OriginAccessControlList.Items) != 1 {
			t.Errorf("origin access controls: %+v %v, want one", oacs, err)
		}

		d.Fields["price_class"] = "PriceClass_200"
		d.Fields["aliases"] = []any{"static.eu.dev.medportal.example", "www.eu.dev.medportal.example"}
		d.Fields["behaviors"] = []any{
			map[string]any{"path": "/static/*", "origin": "assets"},
			map[string]any{"path": "/img/*", "origin": "assets"},
		}
		return []string{"aliases", "behaviors", "price_class"}
	})
	for _, k := range []string{"id", "arn", "dns_name"} {
		if live.Outputs[k] == "" {
			t.Errorf("output %s missing: %v", k, live.Outputs)
		}
	}
	if !strings.HasSuffix(live.Outputs["dns_name"], ".cloudfront.net") || live.Outputs["arn"] != distARN {
		t.Errorf("outputs %v, want a cloudfront.net name and arn %s", live.Outputs, distARN)
	}
	if pol, err := sc.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: aws.String(bucket)}); err == nil && strings.Contains(aws.ToString(pol.Policy), distARN) {
		t.Errorf("bucket policy still grants the deleted distribution: %s", aws.ToString(pol.Policy))
	}
	if oacs, err := cf.ListOriginAccessControls(ctx, &cloudfront.ListOriginAccessControlsInput{}); err != nil || oacs.OriginAccessControlList != nil && len(oacs.OriginAccessControlList.Items) != 0 {
		t.Errorf("origin access controls left after delete: %+v %v", oacs, err)
	}

	t.Run("certificate outside us-east-1", func(t *testing.T) {
		d.Fields["certificate"] = "arn:aws:acm:eu-central-1:111111111111:certificate/x"
		d.Tags = ownershipTags(env, "cdn")
		_, err := drv.Create(ctx, env, d)
		if err == nil || !strings.Contains(err.Error(), "us-east-1") {
			t.Errorf("err %v, want a refusal naming us-east-1", err)
		}
		if oacs, err := cf.ListOriginAccessControls(ctx, &cloudfront.ListOriginAccessControlsInput{}); err != nil || oacs.OriginAccessControlList != nil && len(oacs.OriginAccessControlList.Items) != 0 {
			t.Errorf("a refused create left origin access controls: %+v %v", oacs, err)
		}
	})
}
