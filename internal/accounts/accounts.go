// Package accounts reaches each environment's AWS account: it assumes the
// environment's deployer role (STS AssumeRole) from the portal's own
// credentials, which come from the SDK's default chain (environment,
// shared config, instance role) and honour AWS_ENDPOINT_URL.
package accounts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"portal/internal/regions"
)

// SessionName is the role session name the portal uses, so CloudTrail
// shows the portal's calls as assumed-role/<role>/<SessionName>.
const SessionName = "portal"

// MaxAttempts is how often the portal tries an AWS call that failed with
// a retryable error (throttling, 5xx, a dropped connection), with jittered
// backoff of at most MaxBackoff: AWS throttles under load, and three tries
// (the SDK's default) lose about one call in a thousand at a 10% error
// rate. The engine's applies use the same figures (engine.New).
const (
	MaxAttempts = 10
	MaxBackoff  = 5 * time.Second
)

// LoadBase loads the portal's own AWS configuration from the SDK's default
// chain, retrying as NewRetryer(MaxAttempts, MaxBackoff) says. Every
// configuration handed out by Accounts derives from it.
func LoadBase(ctx context.Context) (aws.Config, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRetryer(func() aws.Retryer {
		return NewRetryer(MaxAttempts, MaxBackoff)
	}))
	if err != nil {
		return aws.Config{}, fmt.Errorf("AWS configuration: %w", err)
	}
	return cfg, nil
}

// NewRetryer is the retryer of every AWS client the portal builds: the
// SDK's standard retryer (throttling, 5xx and dropped connections are
// retried with jittered backoff of at most maxBackoff, maxAttempts tries in
// all), except that an answer that is not an AWS error fails at once. An
// endpoint that does not serve a call (an emulator's HTML error page for an
// operation it lacks) answers the same way every time, so retrying it only
// makes the person waiting on it wait longer.
func NewRetryer(maxAttempts int, maxBackoff time.Duration) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts, o.MaxBackoff = maxAttempts, maxBackoff
		// Before the status-code check, which would retry an HTML 500, and
		// after the connection checks, which must still retry.
		at := len(o.Retryables)
		for i, r := range o.Retryables {
			if _, ok := r.(retry.RetryableHTTPStatusCode); ok {
				at = i
				break
			}
		}
		o.Retryables = append(o.Retryables[:at:at], append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(notAnAWSAnswer)}, o.Retryables[at:]...)...)
	})
}

// notAnAWSAnswer says "do not retry" for a call the endpoint answered with
// something that is not an AWS error (a body from which no error code can
// be read), and leaves every other error to the standard checks. An empty
// body is not such an answer: a 503 without a body is how an overloaded
// front end says "try again".
func notAnAWSAnswer(err error) aws.Ternary {
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.Response == nil {
		return aws.UnknownTernary
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return aws.UnknownTernary
	}
	var de *smithy.DeserializationError
	if errors.As(err, &de) && len(de.Snapshot) == 0 && errors.Is(de.Err, io.EOF) {
		return aws.UnknownTernary
	}
	return aws.FalseTernary
}

// Accounts hands out per-environment, per-region AWS configurations.
type Accounts struct {
	base aws.Config
	cat  *regions.Catalogue

	mu    sync.Mutex
	creds map[string]aws.CredentialsProvider // by environment
	// stackCreds are the tagged sessions of StackConfig, by stack.
	stackCreds map[string]aws.CredentialsProvider
	mgmt       *ManagementConfig
}

// New returns Accounts that assume roles through base.
func New(base aws.Config, cat *regions.Catalogue) *Accounts {
	return &Accounts{base: base, cat: cat, creds: map[string]aws.CredentialsProvider{}}
}

// Config returns the configuration for env's account in region. The
// assumed-role credentials are cached per environment and refreshed before
// they expire.
func (a *Accounts) Config(env, region string) (aws.Config, error) {
	if env == Management {
		return a.managementConfig(region)
	}
	e, ok := a.cat.Environment(env)
	if !ok {
		return aws.Config{}, fmt.Errorf("accounts: unknown environment %q", env)
	}
	a.mu.Lock()
	p, ok := a.creds[env]
	if !ok {
		p = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(a.base), e.DeployerRoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = SessionName
		}))
		a.creds[env] = p
	}
	a.mu.Unlock()
	cfg := a.base.Copy()
	cfg.Region = region
	cfg.Credentials = p
	return cfg, nil
}

// Identity is who the portal is in one environment's account.
type Identity struct {
	Environment string
	AccountID   string
	ARN         string
	Err         error
}

// Check assumes every environment's role and asks STS who the portal is
// there, so a misconfigured role or account shows up at start.
func (a *Accounts) Check(ctx context.Context, region string) []Identity {
	var out []Identity
	for _, e := range a.cat.Environments() {
		id := Identity{Environment: e.Name}
		cfg, err := a.Config(e.Name, region)
		if err == nil {
			var res *sts.GetCallerIdentityOutput
			res, err = sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			if err == nil {
				id.AccountID, id.ARN = aws.ToString(res.Account), aws.ToString(res.Arn)
				if id.AccountID != e.AccountID {
					err = fmt.Errorf("role %s landed in account %s, want %s", e.DeployerRoleARN, id.AccountID, e.AccountID)
				}
			}
		}
		if err != nil {
			id.Err = fmt.Errorf("accounts: %s: %w", e.Name, err)
		}
		out = append(out, id)
	}
	return out
}
