package peers_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"portal/internal/peers"
	"portal/internal/peers/peertest"
)

// TestMotoPatchesHaveTests runs every runtime patch's own Python test with
// the python of moto's virtual environment, and checks that each patch has
// one: patch_NAME.py is tested by test_patch_NAME.py.
func TestMotoPatchesHaveTests(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := peers.WriteMotoPatches(dir); err != nil {
		t.Fatal(err)
	}
	patches := peers.MotoPatches()
	if !slices.Contains(patches, "patch_policy_conditions") {
		t.Errorf("patches: got %v, want patch_policy_conditions among them", patches)
	}
	for _, p := range patches {
		if _, err := os.Stat(filepath.Join(dir, "test_"+p+".py")); err != nil {
			t.Errorf("patch %s.py has no test: want test_%s.py beside it", p, p)
		}
	}
	root, err := peers.ProjectRoot()
	if err != nil {
		t.Fatal(err)
	}
	python := filepath.Join(root, ".tools/venv/bin/python")
	if p := os.Getenv("PORTAL_MOTO_SERVER"); p != "" {
		python = filepath.Join(filepath.Dir(p), "python")
	}
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("moto's python is required: %v (run `make tools`)", err)
	}
	cmd := exec.Command(python, "-m", "unittest", "discover", "-s", dir, "-p", "test_*.py", "-v")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the patches' tests failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "test_plain_http_is_refused") {
		t.Errorf("unittest output does not list the policy conditions tests:\n%s", out)
	}
}

// tlsOnlyPolicy is the bucket policy the s3_bucket driver writes for
// tls_only: deny every S3 action on the bucket made without TLS.
func tlsOnlyPolicy(bucket string) string {
	arn := "arn:aws:s3:::" + bucket
	return `{"Version":"2012-10-17","Statement":[{"Sid":"DenyInsecureTransport","Effect":"Deny","Principal":"*","Action":"s3:*",` +
		`"Resource":["` + arn + `","` + arn + `/*"],"Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`
}

// TestTLSOnlyBucketPolicy shows the patched moto judging a TLS-only bucket
// policy as AWS does: object calls over HTTPS are allowed, the same calls
// over plain HTTP are refused with AccessDenied.
func TestTLSOnlyBucketPolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	secure := peertest.MotoForTest(t)
	plain, err := peers.StartMoto(ctx, peers.MotoOptions{PlainHTTP: true})
	if err != nil {
		t.Fatalf("moto is required: %v", err)
	}
	defer plain.Stop()
	if !strings.HasPrefix(plain.URL(), "http://") || !strings.HasPrefix(secure.URL(), "https://") {
		t.Fatalf("URLs: got %s and %s, want one http:// and one https://", plain.URL(), secure.URL())
	}
	for _, tc := range []struct {
		name    string
		moto    *peers.Moto
		refused bool
	}{
		{"https", secure, false},
		{"plain http", plain, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.moto.AWSConfig("eu-central-1")
			if tc.moto == plain {
				cfg.HTTPClient = http.DefaultClient
			}
			account := peertest.AccountForTest(t)
			c := s3.NewFromConfig(peers.AssumeAccount(ctx, cfg, account, peertest.TestRole), func(o *s3.Options) { o.UsePathStyle = true })
			bucket := "medportal-tls-" + account
			if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket),
				CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraintEuCentral1}}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(bucket), Policy: aws.String(tlsOnlyPolicy(bucket))}); err != nil {
				t.Fatal(err)
			}
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("prescription.pdf"), Body: strings.NewReader("%PDF-1.4")})
			// AWS answers AccessDenied; moto answers 403 with an empty body,
			// which the SDK reports as Forbidden.
			var status *awshttp.ResponseError
			switch {
			case tc.refused && (!errors.As(err, &status) || status.HTTPStatusCode() != http.StatusForbidden):
				t.Fatalf("PutObject over %s: got %v, want 403 refused", tc.name, err)
			case !tc.refused && err != nil:
				t.Fatalf("PutObject over %s: %v, want it allowed", tc.name, err)
			case !tc.refused:
				got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("prescription.pdf")})
				if err != nil {
					t.Fatalf("GetObject over %s: %v, want it allowed", tc.name, err)
				}
				got.Body.Close()
			}
		})
	}
}
