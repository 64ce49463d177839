package accounts

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"

	"portal/internal/regions"
)

// Session tags of a deployer session that acts for one stack. The
// organization's residency policies (package orgguard, the keys
// orgguard.TagJurisdiction and orgguard.TagStack) bind a principal tagged
// this way to its jurisdiction's allowed regions: AWS itself refuses the
// deployer a regional call anywhere else, even if the portal asked for it.
// Both are transitive, so a session that assumes another role keeps them.
//
// AWS lets a session carry tags only when the role's trust policy allows
// sts:TagSession for the portal's principal, besides sts:AssumeRole.
const (
	TagJurisdiction = "portal:jurisdiction"
	TagStack        = "portal:stack"
)

// StackSessionTags are the session tags of a deployer session acting for
// the stack of env in jurisdiction.
func StackSessionTags(env, jurisdiction string) []ststypes.Tag {
	return []ststypes.Tag{
		{Key: aws.String(TagJurisdiction), Value: aws.String(jurisdiction)},
		{Key: aws.String(TagStack), Value: aws.String(regions.StackID(env, jurisdiction))},
	}
}

// StackConfig is Config for work on one stack of a jurisdiction: env's
// deployer role assumed with StackSessionTags (transitive), session name
// SessionName as always. The credentials are cached per stack and
// refreshed before they expire. Work that spans jurisdictions (discovery,
// the environment's global layer) uses Config, whose sessions carry no
// jurisdiction.
func (a *Accounts) StackConfig(env, jurisdiction, region string) (aws.Config, error) {
	if _, ok := regions.JurisdictionByID(jurisdiction); !ok {
		return aws.Config{}, fmt.Errorf("accounts: unknown jurisdiction %q", jurisdiction)
	}
	e, ok := a.cat.Environment(env)
	if !ok {
		return aws.Config{}, fmt.Errorf("accounts: unknown environment %q", env)
	}
	key := regions.StackID(env, jurisdiction)
	a.mu.Lock()
	p, ok := a.stackCreds[key]
	if !ok {
		tags := StackSessionTags(env, jurisdiction)
		p = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(a.base), e.DeployerRoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = SessionName
			o.Tags = tags
			o.TransitiveTagKeys = []string{TagJurisdiction, TagStack}
		}))
		if a.stackCreds == nil {
			a.stackCreds = map[string]aws.CredentialsProvider{}
		}
		a.stackCreds[key] = p
	}
	a.mu.Unlock()
	cfg := a.base.Copy()
	cfg.Region = region
	cfg.Credentials = p
	return cfg, nil
}
