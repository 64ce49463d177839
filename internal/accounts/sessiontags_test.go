package accounts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"portal/internal/accounts"
	"portal/internal/peers"
	"portal/internal/peers/peertest"
	"portal/internal/regions"
)

// recordingClient passes every request on to moto and keeps the form
// bodies of STS AssumeRole calls: what the portal sends, which moto does
// not report back (AWS shows it only in CloudTrail).
type recordingClient struct {
	next aws.HTTPClient
	mu   sync.Mutex
	sent []url.Values
}

func (r *recordingClient) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
		if form, err := url.ParseQuery(string(b)); err == nil && form.Get("Action") == "AssumeRole" {
			r.mu.Lock()
			r.sent = append(r.sent, form)
			r.mu.Unlock()
		}
	}
	return r.next.Do(req)
}

// deployerRole makes the role PortalDeployer in a fresh moto account with
// a trust policy allowing actions, as an organization's administrator
// would, and returns the account.
func deployerRole(t *testing.T, m *peers.Moto, actions ...string) string {
	t.Helper()
	account := peertest.AccountForTest(t)
	setup := peers.AssumeAccount(context.Background(), m.AWSConfig("us-east-1"), account, "OrganizationAccountAccessRole")
	trust, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
		"Effect": "Allow", "Principal": map[string]any{"AWS": "arn:aws:iam::123456789012:root"}, "Action": actions}}})
	if _, err := iam.NewFromConfig(setup).CreateRole(context.Background(), &iam.CreateRoleInput{
		RoleName: aws.String(peertest.TestRole), AssumeRolePolicyDocument: aws.String(string(trust))}); err != nil {
		t.Fatal(err)
	}
	return account
}

func accountsFor(t *testing.T, base aws.Config, account string) *accounts.Accounts {
	t.Helper()
	envs := []regions.EnvironmentConfig{{Name: "dev", AccountID: account, DeployerRoleARN: peers.RoleARN(account, peertest.TestRole)}}
	for _, env := range []string{"test", "prod"} {
		other := peertest.AccountForTest(t)
		envs = append(envs, regions.EnvironmentConfig{Name: env, AccountID: other, DeployerRoleARN: peers.RoleARN(other, peertest.TestRole)})
	}
	cat, err := regions.New(envs)
	if err != nil {
		t.Fatal(err)
	}
	return accounts.New(base, cat)
}

// A stack's deployer session is assumed with the stack's session tags,
// both transitive, under the usual session name.
func TestStackSessionIsTagged(t *testing.T) {
	m := peertest.MotoForTest(t)
	account := deployerRole(t, m, "sts:AssumeRole", "sts:TagSession")
	base := m.AWSConfig("us-east-1")
	rec := &recordingClient{next: base.HTTPClient}
	base.HTTPClient = rec
	a := accountsFor(t, base, account)
	cfg, err := a.StackConfig("dev", "eu", "eu-central-1")
	if err != nil {
		t.Fatal(err)
	}
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("the tagged deployer session: %v", err)
	}
	if got, want := aws.ToString(id.Arn), "arn:aws:sts::"+account+":assumed-role/PortalDeployer/portal"; got != want {
		t.Errorf("caller %s, want %s", got, want)
	}
	if len(rec.sent) != 1 {
		t.Fatalf("%d AssumeRole calls, want 1", len(rec.sent))
	}
	form := rec.sent[0]
	for k, want := range map[string]string{
		"RoleArn": peers.RoleARN(account, peertest.TestRole), "RoleSessionName": "portal",
		"Tags.member.1.Key": "portal:jurisdiction", "Tags.member.1.Value": "eu",
		"Tags.member.2.Key": "portal:stack", "Tags.member.2.Value": "dev-eu",
		"TransitiveTagKeys.member.1": "portal:jurisdiction", "TransitiveTagKeys.member.2": "portal:stack",
	} {
		if got := form.Get(k); got != want {
			t.Errorf("AssumeRole %s = %q, want %q", k, got, want)
		}
	}
	// Work that spans jurisdictions keeps an untagged session.
	plain, _ := a.Config("dev", "us-east-1")
	if _, err := sts.NewFromConfig(plain).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatal(err)
	}
	if last := rec.sent[len(rec.sent)-1]; last.Get("Tags.member.1.Key") != "" {
		t.Errorf("the environment-wide session was tagged: %v", last)
	}
	if _, err := a.StackConfig("dev", "mars", "eu-central-1"); err == nil {
		t.Error("a session for an unknown jurisdiction was made")
	}
}

// AWS refuses session tags unless the deployer role's trust policy allows
// sts:TagSession (the sandbox's moto judges it through a runtime patch):
// the setup the README asks for is needed.
func TestStackSessionNeedsTagSessionInTrustPolicy(t *testing.T) {
	m := peertest.MotoForTest(t)
	account := deployerRole(t, m, "sts:AssumeRole")
	a := accountsFor(t, m.AWSConfig("us-east-1"), account)
	cfg, _ := a.StackConfig("dev", "eu", "eu-central-1")
	_, err := sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err == nil || !strings.Contains(err.Error(), "AccessDenied") || !strings.Contains(err.Error(), "sts:TagSession") {
		t.Fatalf("tagged session with a trust policy lacking sts:TagSession: %v, want AccessDenied naming sts:TagSession", err)
	}
	plain, _ := a.Config("dev", "eu-central-1")
	if _, err := sts.NewFromConfig(plain).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err != nil {
		t.Errorf("untagged session: %v", err)
	}
}
