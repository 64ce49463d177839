package peers_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"portal/internal/peers"
	"portal/internal/peers/peertest"
)

// TestFaultProxyErrorsAreRetryable checks that every fault the proxy
// answers is one the SDK recognises and retries, in each protocol the
// portal speaks: an error it could not parse would fail a call at once
// instead of testing retries.
func TestFaultProxyErrorsAreRetryable(t *testing.T) {
	m := peertest.MotoForTest(t)
	p := peertest.StartFaultProxy(t, m, 1, 7)
	cfg := m.AWSConfig("eu-central-1")
	cfg.BaseEndpoint = aws.String(p.URL())
	cfg.RetryMaxAttempts = 1
	ctx := context.Background()
	calls := map[string]func() error{
		"S3 (REST-XML, <Error>)": func() error {
			_, err := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }).ListBuckets(ctx, &s3.ListBucketsInput{})
			return err
		},
		"EC2 (ec2 query)": func() error { _, err := ec2.NewFromConfig(cfg).DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}); return err },
		"IAM (awsQuery)":  func() error { _, err := iam.NewFromConfig(cfg).ListRoles(ctx, &iam.ListRolesInput{}); return err },
		"DynamoDB (awsJson)": func() error {
			_, err := dynamodb.NewFromConfig(cfg).ListTables(ctx, &dynamodb.ListTablesInput{})
			return err
		},
		"Route 53 (REST-XML)": func() error {
			_, err := route53.NewFromConfig(cfg).ListHostedZones(ctx, &route53.ListHostedZonesInput{})
			return err
		},
	}
	retryable := retry.IsErrorRetryables(retry.DefaultRetryables)
	for name, call := range calls {
		for i := range 6 { // both kinds of fault, chosen at random
			err := call()
			if err == nil {
				t.Fatalf("%s call %d: no error through a proxy failing every call", name, i)
			}
			if retryable.IsErrorRetryable(err) != aws.TrueTernary {
				t.Errorf("%s call %d: the SDK would not retry %v", name, i, err)
			}
		}
	}
}

// TestFaultProxyKeepsSessionsAcrossRestart points the proxy at a second,
// fresh moto and checks that a role session from the first still acts in
// its account, as a session does in AWS (moto alone would forget it and
// answer for its default account).
func TestFaultProxyKeepsSessionsAcrossRestart(t *testing.T) {
	ctx := context.Background()
	first := peertest.IsolatedMotoForTest(t)
	p := peertest.StartFaultProxy(t, first, 0, 1)
	cfg := first.AWSConfig("us-east-1")
	cfg.BaseEndpoint = aws.String(p.URL())
	dev := peers.AssumeAccount(ctx, cfg, "111111111111", "PortalDeployer")
	who := func() string {
		out, err := sts.NewFromConfig(dev).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.Account)
	}
	if got := who(); got != "111111111111" {
		t.Fatalf("before the restart the session acts in %s, want 111111111111", got)
	}
	second := peertest.IsolatedMotoForTest(t)
	if err := p.SetTarget(second.URL()); err != nil {
		t.Fatal(err)
	}
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := who(); got != "111111111111" {
		t.Errorf("after the restart the session acts in %s, want 111111111111", got)
	}
}
