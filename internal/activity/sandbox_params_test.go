package activity

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/google/go-cmp/cmp"
)

// TestSandboxRequestParameters: the sandbox's records of the portal's own
// calls carry the parameters as CloudTrail does, without the fields the
// request did not send.
func TestSandboxRequestParameters(t *testing.T) {
	got := requestParameters(&s3.CreateBucketInput{Bucket: aws.String("medportal-dev-eu-documents"),
		CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraintEuCentral1}})
	want := map[string]any{"bucketName": "medportal-dev-eu-documents", "createBucketConfiguration": map[string]any{"LocationConstraint": "eu-central-1"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("CreateBucket parameters (-want +got):\n%s", d)
	}
}
