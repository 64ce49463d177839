package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"portal/internal/accounts"
	"portal/internal/app"
	"portal/internal/engine"
)

// setupRole is the role the sandbox uses to set up each account, as an
// organization's administrator would use OrganizationAccountAccessRole,
// which AWS Organizations makes in every member account.
const setupRole = "OrganizationAccountAccessRole"

// ensureDeployerRoles makes, in each environment's account, the deployer
// role the portal assumes there, with the trust policy the README asks for:
// the portal's principal may assume it (sts:AssumeRole) and tag its
// sessions (sts:TagSession), which a jurisdiction's stacks need. moto runs
// with a patch that refuses session tags unless the trust policy allows
// them, as AWS does.
func ensureDeployerRoles(ctx context.Context, cfg app.Config) error {
	base, err := accounts.LoadBase(ctx)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	me, err := sts.NewFromConfig(base).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return fmt.Errorf("sandbox: who is the portal: %s", engine.Explain(err))
	}
	trust, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
		"Sid":       "PortalAssumesAndTagsSessions",
		"Effect":    "Allow",
		"Principal": map[string]any{"AWS": "arn:aws:iam::" + aws.ToString(me.Account) + ":root"},
		"Action":    []string{"sts:AssumeRole", "sts:TagSession"},
	}}})
	for _, env := range cfg.Environments {
		name := env.DeployerRoleARN[strings.LastIndex(env.DeployerRoleARN, "/")+1:]
		setup := base.Copy()
		setup.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(base), "arn:aws:iam::"+env.AccountID+":role/"+setupRole))
		client := iam.NewFromConfig(setup)
		_, err := client.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
		switch {
		case engine.IsCode(err, "NoSuchEntity"):
			_, err = client.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(string(trust)),
				Description: aws.String("The portal's deployer: assumed by the portal, with session tags naming the stack it works on")})
		case err == nil:
			_, err = client.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(name), PolicyDocument: aws.String(string(trust))})
		}
		if err != nil {
			return fmt.Errorf("sandbox: the deployer role in %s (%s): %s", env.Name, env.AccountID, engine.Explain(err))
		}
	}
	return nil
}
