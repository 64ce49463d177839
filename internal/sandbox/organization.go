package sandbox

import (
	"context"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"

	"portal/internal/accounts"
	"portal/internal/app"
	"portal/internal/engine"
	"portal/internal/regions"
)

// ensureOrganization makes the sandbox management account the management
// account of an organization in moto, as a real one already is, and says
// where Identity Center and the service control policies live.
func ensureOrganization(ctx context.Context, cfg app.Config, stdout io.Writer) error {
	if cfg.Management == nil {
		return nil
	}
	base, err := accounts.LoadBase(ctx)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	cat, err := regions.New(cfg.Environments)
	if err != nil {
		return err
	}
	a := accounts.New(base, cat)
	a.SetManagement(*cfg.Management)
	c, err := a.Config(accounts.Management, "us-east-1")
	if err != nil {
		return err
	}
	org := organizations.NewFromConfig(c)
	if _, err := org.DescribeOrganization(ctx, &organizations.DescribeOrganizationInput{}); engine.IsCode(err, "AWSOrganizationsNotInUseException") {
		if _, err := org.CreateOrganization(ctx, &organizations.CreateOrganizationInput{FeatureSet: orgtypes.OrganizationFeatureSetAll}); err != nil {
			return fmt.Errorf("sandbox: create the organization: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("sandbox: describe the organization: %s", engine.Explain(err))
	}
	fmt.Fprintf(stdout, "  management account %s: AWS Organizations and IAM Identity Center (%s)\n", cfg.Management.AccountID, cfg.Management.IdentityCenterRegion)
	return nil
}
