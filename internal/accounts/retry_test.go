package accounts_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"

	"portal/internal/accounts"
	"portal/internal/engine"
	"portal/internal/peers/peertest"
)

func TestMain(m *testing.M) { peertest.Main(m) }

// countingClient counts the HTTP requests the SDK sends: one per attempt.
type countingClient struct {
	inner aws.HTTPClient
	n     atomic.Int64
}

func (c *countingClient) Do(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.inner.Do(r)
}

func retryingConfig(cfg aws.Config, attempts int) (aws.Config, *countingClient) {
	inner := cfg.HTTPClient
	if inner == nil {
		inner = awshttp.NewBuildableClient()
	}
	hc := &countingClient{inner: inner}
	cfg.HTTPClient = hc
	cfg.Retryer = func() aws.Retryer { return accounts.NewRetryer(attempts, 10*time.Millisecond) }
	return cfg, hc
}

// A call the endpoint does not serve (moto answers DescribeAlarmHistory
// with an HTML 500) fails after one attempt, and says so in words.
func TestCallTheEndpointDoesNotServeIsNotRetried(t *testing.T) {
	m := peertest.MotoForTest(t)
	base, _ := peertest.AccountConfigForTest(t, m, "eu-central-1")
	cfg, hc := retryingConfig(base, 10)
	cw := cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) { o.Protocol = awsquery.New(schemas.GraniteServiceVersion20100801) })
	_, err := cw.DescribeAlarmHistory(context.Background(), &cloudwatch.DescribeAlarmHistoryInput{AlarmName: aws.String("medportal-dev-eu-db-cpu")})
	if err == nil {
		t.Fatal("DescribeAlarmHistory on moto succeeded; this test needs a call moto does not serve")
	}
	if got := hc.n.Load(); got != 1 {
		t.Errorf("an answer that is not an AWS error was sent %d times, want 1", got)
	}
	if got, want := engine.Explain(err), "not supported by this endpoint"; len(got) < len(want) || got[:len(want)] != want {
		t.Errorf("Explain(err) = %q, want it to start with %q", got, want)
	}
}

// Throttling and 5xx answers in each protocol's own error shape (and an
// empty 503) are still retried up to the limit.
func TestAWSErrorsAreStillRetried(t *testing.T) {
	m := peertest.MotoForTest(t)
	proxy := peertest.StartFaultProxy(t, m, 1, 1)
	ctx := context.Background()
	calls := map[string]func(cfg aws.Config) error{
		"S3 (REST-XML)": func(cfg aws.Config) error {
			_, err := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }).ListBuckets(ctx, &s3.ListBucketsInput{})
			return err
		},
		"DynamoDB (JSON 1.0)": func(cfg aws.Config) error {
			_, err := dynamodb.NewFromConfig(cfg).ListTables(ctx, &dynamodb.ListTablesInput{})
			return err
		},
		"KMS (JSON 1.1)": func(cfg aws.Config) error {
			_, err := kms.NewFromConfig(cfg).ListKeys(ctx, &kms.ListKeysInput{})
			return err
		},
		"CloudWatch (awsQuery)": func(cfg aws.Config) error {
			_, err := cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) { o.Protocol = awsquery.New(schemas.GraniteServiceVersion20100801) }).
				DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{})
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			base := m.AWSConfig("eu-central-1")
			base.BaseEndpoint = aws.String(proxy.URL())
			cfg, hc := retryingConfig(base, 4)
			if err := call(cfg); err == nil {
				t.Fatal("the call succeeded through a proxy that fails every call")
			}
			if got := hc.n.Load(); got != 4 {
				t.Errorf("a failing AWS answer was tried %d times, want 4 (the limit)", got)
			}
		})
	}
}
