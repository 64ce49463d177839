package peers

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// RoleSessionName is the session name AssumeAccount uses.
const RoleSessionName = "portal"

// RoleARN returns the ARN of role in account, e.g.
// "arn:aws:iam::210987654321:role/PortalDeployer".
func RoleARN(account, role string) string {
	return fmt.Sprintf("arn:aws:iam::%s:role/%s", account, role)
}

// AssumeAccount returns a copy of cfg whose credentials come from STS
// AssumeRole into role in account, called through cfg (so against moto when
// cfg comes from Moto.AWSConfig; moto accepts any account id and keeps each
// account's state apart). The credentials are cached and refreshed before
// they expire. AssumeAccount fetches them once with ctx to warm the cache; an
// error there is not returned but surfaces again on the config's first call.
func AssumeAccount(ctx context.Context, cfg aws.Config, account, role string) aws.Config {
	provider := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), RoleARN(account, role), func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = RoleSessionName
	})
	out := cfg.Copy()
	out.Credentials = aws.NewCredentialsCache(provider)
	_, _ = out.Credentials.Retrieve(ctx)
	return out
}
