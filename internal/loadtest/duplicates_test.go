package loadtest

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"portal/internal/engine"
	"portal/internal/inventory"
	"portal/internal/peers"
	"portal/internal/peers/peertest"
)

func TestMain(m *testing.M) { peertest.Main(m) }

// TestFindDuplicates makes, in the dev sandbox account in moto, a stack
// resource that exists twice, one that exists once, a replaced KMS key
// waiting out its deletion beside its successor and an unmanaged bucket,
// and checks that only the first is reported.
func TestFindDuplicates(t *testing.T) {
	ctx := context.Background()
	moto := peertest.IsolatedMotoForTest(t)
	base := moto.AWSConfig("us-east-1")
	dev := peers.AssumeAccount(ctx, moto.AWSConfig("eu-central-1"), "111111111111", "PortalDeployer")
	s3c := s3.NewFromConfig(dev, func(o *s3.Options) { o.UsePathStyle = true })
	tags := func(id string) []s3types.Tag {
		return []s3types.Tag{{Key: aws.String(engine.TagStack), Value: aws.String("dev-eu")}, {Key: aws.String(engine.TagResource), Value: aws.String(id)}}
	}
	for bucket, id := range map[string]string{"dev-eu-documents-a": "documents", "dev-eu-documents-b": "documents", "dev-eu-exports": "exports", "someone-elses": ""} {
		if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket),
			CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraintEuCentral1}}); err != nil {
			t.Fatal(err)
		}
		if id == "" {
			continue
		}
		if _, err := s3c.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String(bucket), Tagging: &s3types.Tagging{TagSet: tags(id)}}); err != nil {
			t.Fatal(err)
		}
	}
	kc := kms.NewFromConfig(dev)
	var keys []string
	for range 2 {
		out, err := kc.CreateKey(ctx, &kms.CreateKeyInput{Tags: []kmstypes.Tag{
			{TagKey: aws.String(engine.TagStack), TagValue: aws.String("dev-eu")}, {TagKey: aws.String(engine.TagResource), TagValue: aws.String("data-key")}}})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, aws.ToString(out.KeyMetadata.KeyId))
	}
	if _, err := kc.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(keys[0]), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}

	got, err := FindDuplicates(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Errors) > 0 {
		t.Fatalf("discovery errors: %v", got.Errors)
	}
	if got.Managed != 5 {
		t.Errorf("managed resources = %d, want 5 (three buckets, two keys)", got.Managed)
	}
	if len(got.Repeated) != 1 || !strings.HasPrefix(got.Repeated[0], "111111111111 dev-eu documents (s3:bucket): ") ||
		!strings.Contains(got.Repeated[0], "dev-eu-documents-a") || !strings.Contains(got.Repeated[0], "dev-eu-documents-b") {
		t.Errorf("repeated = %q, want only the two documents buckets", got.Repeated)
	}
}

// TestGroupKeyParts: a VPC's subnets and named route tables are parts of
// one stack resource, counted apart; two route tables of one name are a
// duplicate.
func TestGroupKeyParts(t *testing.T) {
	rt := func(name string) inventory.Resource {
		return inventory.Resource{AccountID: "111111111111", Stack: "dev-eu", PortalID: "vpc", Type: "ec2:route-table",
			Tags: map[string]string{"portal:route-table": name}}
	}
	if groupKey(rt("public")) == groupKey(rt("private")) {
		t.Error("the public and private route tables of one VPC counted as one resource")
	}
	if groupKey(rt("public")) != groupKey(rt("public")) {
		t.Error("two public route tables of one VPC not counted as one resource")
	}
	sub := inventory.Resource{AccountID: "111111111111", Stack: "dev-eu", PortalID: "vpc", Type: "ec2:subnet", Tags: map[string]string{"portal:subnet": "private-a"}}
	if !strings.Contains(groupKey(sub), "vpc/private-a") {
		t.Errorf("subnet key %q does not name its part", groupKey(sub))
	}
}
