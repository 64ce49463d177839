package drivers

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	tagging "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	taggingtypes "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi/types"

	"portal/internal/engine"
)

// findTagged returns the ARNs of resources of resourceType (a tagging API
// filter such as "kms:key") in region that carry the ownership tags of
// resource id in env's stack. Drivers use it when the portal has no record
// of a resource and its name does not find it, so that a Create cut short
// by a crash is found, not repeated.
func findTagged(ctx context.Context, env *engine.Env, region, resourceType, id string) ([]string, error) {
	c := tagging.NewFromConfig(env.Config(region))
	in := &tagging.GetResourcesInput{
		ResourceTypeFilters: []string{resourceType},
		TagFilters: []taggingtypes.TagFilter{
			{Key: aws.String(engine.TagStack), Values: []string{env.Stack.ID}},
			{Key: aws.String(engine.TagResource), Values: []string{id}},
		},
	}
	var out []string
	p := tagging.NewGetResourcesPaginator(c, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("find %s tagged %s=%s: %w", resourceType, engine.TagResource, id, err)
		}
		for _, m := range page.ResourceTagMappingList {
			out = append(out, aws.ToString(m.ResourceARN))
		}
	}
	return out, nil
}
