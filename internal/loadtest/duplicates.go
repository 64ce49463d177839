package loadtest

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"portal/internal/accounts"
	"portal/internal/inventory"
	"portal/internal/regions"
)

// Duplicates is what a discovery of every sandbox account found about the
// portal's resources: how many it manages and which stack resources exist
// more than once in AWS (a create repeated after a crash or a retry).
type Duplicates struct {
	Managed int
	// Repeated lists "stack resource (type): arn, arn" for each stack
	// resource found more than once.
	Repeated []string
	// Errors are discovery tasks that failed; a check with errors proves
	// nothing about the places it could not read.
	Errors []string
}

// notRepeated are types of which one stack resource legitimately owns
// several: an Auto Scaling group's instances carry the group's tags.
var notRepeated = map[string]bool{"ec2:instance": true}

// partTags name one of several AWS resources that make up one stack
// resource: a VPC resource owns a subnet per tier and zone and the route
// tables its blueprint lists, each tagged with its name (see the ec2
// driver).
var partTags = []string{"portal:subnet", "portal:route-table"}

// groupKey is what a managed resource is counted under: its account,
// stack, portal resource id and type, and its part's name when it is one
// of several parts of the stack resource.
func groupKey(r inventory.Resource) string {
	for _, t := range partTags {
		if part := r.Tags[t]; part != "" {
			return fmt.Sprintf("%s %s %s/%s (%s)", r.AccountID, r.Stack, r.PortalID, part, r.Type)
		}
	}
	return fmt.Sprintf("%s %s %s (%s)", r.AccountID, r.Stack, r.PortalID, r.Type)
}

// FindDuplicates discovers every sandbox environment's account (base
// reaches the emulator; roles are assumed as the portal does) and groups
// the managed resources by account, stack, portal resource id and type.
// KMS keys pending deletion are not counted: a replaced key waits out its
// deletion window beside the new one.
func FindDuplicates(ctx context.Context, base aws.Config) (Duplicates, error) {
	cat, err := regions.New(regions.SandboxEnvironments())
	if err != nil {
		return Duplicates{}, err
	}
	accts := accounts.New(base, cat)
	d := &inventory.Discoverer{Configs: accts.Config, Environments: cat.Environments()}
	res, err := d.Discover(ctx, nil)
	if err != nil {
		return Duplicates{}, err
	}
	var out Duplicates
	for _, e := range res.Errors {
		out.Errors = append(out.Errors, e.Task+": "+e.Error)
	}
	groups := map[string][]inventory.Resource{}
	for _, r := range res.Resources {
		if !r.Managed || notRepeated[r.Type] {
			continue
		}
		out.Managed++
		k := groupKey(r)
		groups[k] = append(groups[k], r)
	}
	for k, rs := range groups {
		if len(rs) < 2 {
			continue
		}
		var arns []string
		for _, r := range rs {
			if r.Type == "kms:key" {
				pending, err := keyPendingDeletion(ctx, accts.Config, r)
				if err != nil {
					return Duplicates{}, err
				}
				if pending {
					continue
				}
			}
			arns = append(arns, r.ARN)
		}
		if len(arns) > 1 {
			sort.Strings(arns)
			out.Repeated = append(out.Repeated, k+": "+strings.Join(arns, ", "))
		}
	}
	sort.Strings(out.Repeated)
	return out, nil
}

func keyPendingDeletion(ctx context.Context, configs inventory.ConfigSource, r inventory.Resource) (bool, error) {
	cfg, err := configs(r.Environment, r.Region)
	if err != nil {
		return false, err
	}
	out, err := kms.NewFromConfig(cfg).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(r.ARN)})
	if err != nil {
		return false, fmt.Errorf("loadtest: describe %s: %w", r.ARN, err)
	}
	return out.KeyMetadata.KeyState == kmstypes.KeyStatePendingDeletion, nil
}
