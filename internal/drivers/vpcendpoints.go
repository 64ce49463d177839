package drivers

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"portal/internal/engine"
)

// tagService names the service of each endpoint a vpc_endpoints resource
// owns, so one resource's endpoints are told apart.
const tagService = "portal:service"

// VPCEndpoints manages a VPC's endpoints of one type, one per service
// (com.amazonaws.<region>.<service>), so instances without a route to the
// internet reach AWS APIs:
//   - Gateway endpoints (S3, DynamoDB) add a route to the service's prefix
//     list in each route table named in route_tables (tables of the VPC
//     driver, found by their portal:route-table tag);
//   - Interface endpoints put a network interface in one subnet of
//     subnet_tier per availability zone, behind security_groups, with
//     private DNS so the SDK's usual endpoint names resolve to them (the VPC
//     driver turns DNS hostnames on, which private DNS needs).
//
// Fields: vpc, endpoint_type (Gateway | Interface), services, route_tables,
// subnet_tier, security_groups, private_dns. Outputs: ids (comma-joined, in
// service order), and per service <service>_id.
//
// Endpoints are found by the resource's ownership tags and their
// portal:service tag; each is created with a client token derived from the
// stack, resource and service, so a retried Create does not make a second.
type VPCEndpoints struct{}

func (VPCEndpoints) Type() string { return "vpc_endpoints" }

// ForceNew: an endpoint cannot move to another VPC or change type.
func (VPCEndpoints) ForceNew() []string { return []string{"vpc", "endpoint_type"} }

func endpointServiceName(region, service string) string {
	return "com.amazonaws." + region + "." + service
}

// ownEndpoints returns the live endpoints of d by service.
func (VPCEndpoints) ownEndpoints(ctx context.Context, c *ec2.Client, d *engine.Desired) (map[string]types.VpcEndpoint, error) {
	filters := ownerFilters(d)
	if filters == nil {
		return nil, nil
	}
	out := map[string]types.VpcEndpoint{}
	p := ec2.NewDescribeVpcEndpointsPaginator(c, &ec2.DescribeVpcEndpointsInput{Filters: filters})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe vpc endpoints of %s: %w", d.ID, err)
		}
		for _, e := range page.VpcEndpoints {
			switch endpointState(e) {
			case "deleted", "deleting", "failed", "rejected", "expired":
				continue
			}
			svc := ec2TagMap(e.Tags)[tagService]
			if svc == "" {
				svc = strings.TrimPrefix(aws.ToString(e.ServiceName), "com.amazonaws."+d.Region+".")
			}
			out[svc] = e
		}
	}
	return out, nil
}

func (v VPCEndpoints) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	c := ec2Client(env, d.Region)
	eps, err := v.ownEndpoints(ctx, c, d)
	if err != nil {
		return nil, err
	}
	if len(eps) == 0 {
		return nil, engine.ErrNotFound
	}
	services := make([]string, 0, len(eps))
	for s := range eps {
		services = append(services, s)
	}
	sort.Strings(services)
	want := d.Strings("services")
	services = orderLike(services, want)
	first := eps[services[0]]
	vpcID := aws.ToString(first.VpcId)
	live := &engine.Live{
		PhysicalID: vpcID + "/" + d.ID,
		Region:     d.Region,
		Outputs:    map[string]string{},
		Fields: map[string]any{
			"vpc":           vpcID,
			"endpoint_type": string(first.VpcEndpointType),
			"services":      toAnyList(services),
		},
		Tags: ec2TagMap(first.Tags),
	}
	delete(live.Tags, tagService)
	delete(live.Tags, "Name")
	var ids []string
	for _, s := range services {
		e := eps[s]
		ids = append(ids, aws.ToString(e.VpcEndpointId))
		live.Outputs[s+"_id"] = aws.ToString(e.VpcEndpointId)
		if aws.ToString(e.VpcId) != vpcID {
			live.Fields["vpc"] = aws.ToString(e.VpcId)
		}
	}
	live.Outputs["ids"] = strings.Join(ids, ",")
	live.Outputs["id"] = ids[0]
	// Report the first endpoint that differs from the blueprint, so a
	// change to any one shows.
	var tableNames map[string]string
	for _, s := range services {
		e := eps[s]
		fields := map[string]any{}
		if d.Has("route_tables") || len(e.RouteTableIds) > 0 {
			if tableNames == nil {
				if tableNames, err = routeTableNames(ctx, c, vpcID); err != nil {
					return nil, err
				}
			}
			var names []string
			for _, id := range e.RouteTableIds {
				n := tableNames[id]
				if n == "" {
					n = id
				}
				names = append(names, n)
			}
			fields["route_tables"] = inDesiredOrder(names, d.Strings("route_tables"))
		}
		if d.Has("subnet_tier") || len(e.SubnetIds) > 0 {
			tier, err := subnetTier(ctx, env, d.Region, vpcID, e.SubnetIds, d.String("subnet_tier"))
			if err != nil {
				return nil, err
			}
			if want := d.String("subnet_tier"); tier == want {
				// One subnet per zone of the tier is what Create picks.
				fields["subnet_tier"] = tier
			} else if picked, err := v.zoneSubnets(ctx, env, d.Region, vpcID, want); err == nil && sameSet(picked, e.SubnetIds) {
				fields["subnet_tier"] = want
			} else {
				fields["subnet_tier"] = tier
			}
		}
		if d.Has("security_groups") || len(e.Groups) > 0 {
			var gs []string
			for _, g := range e.Groups {
				gs = append(gs, aws.ToString(g.GroupId))
			}
			fields["security_groups"] = inDesiredOrder(gs, d.Strings("security_groups"))
		}
		if d.Has("private_dns") {
			fields["private_dns"] = aws.ToBool(e.PrivateDnsEnabled)
		}
		for k, val := range fields {
			if _, set := live.Fields[k]; !set || (!sameValue(val, d.Fields[k]) && sameValue(live.Fields[k], d.Fields[k])) {
				live.Fields[k] = val
			}
		}
	}
	return live, nil
}

// endpointState is an endpoint's state in lower case: the API answers
// "available", "deleted"..., where the SDK's enum constants are
// capitalised.
func endpointState(e types.VpcEndpoint) string { return strings.ToLower(string(e.State)) }

// orderLike lists have in want's order, then what want does not name.
func orderLike(have, want []string) []string {
	out := make([]string, 0, len(have))
	for _, w := range want {
		if slices.Contains(have, w) {
			out = append(out, w)
		}
	}
	for _, h := range have {
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

func toAnyList(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// routeTableNames maps the ids of vpcID's named route tables to their names.
func routeTableNames(ctx context.Context, c *ec2.Client, vpcID string) (map[string]string, error) {
	tables, err := vpcRouteTables(ctx, c, vpcID)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, rt := range tables {
		if n := rtName(rt); n != "" {
			out[aws.ToString(rt.RouteTableId)] = n
		}
	}
	return out, nil
}

// routeTableIDs returns the ids of vpcID's route tables named names.
func routeTableIDs(ctx context.Context, c *ec2.Client, vpcID string, names []string) ([]string, error) {
	byID, err := routeTableNames(ctx, c, vpcID)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		found := ""
		for id, name := range byID {
			if name == n {
				found = id
			}
		}
		if found == "" {
			return nil, fmt.Errorf("vpc %s has no route table named %q (the vpc's route_tables name its tables)", vpcID, n)
		}
		out = append(out, found)
	}
	return out, nil
}

// zoneSubnets returns one subnet of tier per availability zone: an
// interface endpoint takes at most one subnet per zone.
func (VPCEndpoints) zoneSubnets(ctx context.Context, env *engine.Env, region, vpcID, tier string) ([]string, error) {
	c := ec2Client(env, region)
	ids, err := subnetsByTier(ctx, env, region, vpcID, tier)
	if err != nil {
		return nil, err
	}
	out, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: ids})
	if err != nil {
		return nil, fmt.Errorf("describe %s subnets of %s: %w", tier, vpcID, err)
	}
	byZone := map[string]string{}
	for _, s := range out.Subnets {
		az, id := aws.ToString(s.AvailabilityZone), aws.ToString(s.SubnetId)
		if cur, ok := byZone[az]; !ok || id < cur {
			byZone[az] = id
		}
	}
	var picked []string
	for _, id := range byZone {
		picked = append(picked, id)
	}
	sort.Strings(picked)
	return picked, nil
}

// spec returns the settings of one endpoint as d asks.
type endpointSpec struct {
	routeTables, subnets, groups []string
	privateDNS                   bool
}

func (v VPCEndpoints) spec(ctx context.Context, env *engine.Env, c *ec2.Client, d *engine.Desired) (endpointSpec, error) {
	var s endpointSpec
	vpcID := d.String("vpc")
	var err error
	switch types.VpcEndpointType(d.String("endpoint_type")) {
	case types.VpcEndpointTypeGateway:
		if d.Has("subnet_tier") || d.Has("security_groups") {
			return s, fmt.Errorf("gateway endpoints take route_tables, not subnet_tier or security_groups")
		}
		if len(d.Strings("route_tables")) == 0 {
			return s, fmt.Errorf("gateway endpoints need route_tables: the tables whose subnets reach the service through them")
		}
		s.routeTables, err = routeTableIDs(ctx, c, vpcID, d.Strings("route_tables"))
	case types.VpcEndpointTypeInterface:
		if d.Has("route_tables") {
			return s, fmt.Errorf("interface endpoints take subnet_tier and security_groups, not route_tables")
		}
		if d.String("subnet_tier") == "" {
			return s, fmt.Errorf("interface endpoints need subnet_tier: the tier whose subnets get their network interfaces")
		}
		s.subnets, err = v.zoneSubnets(ctx, env, d.Region, vpcID, d.String("subnet_tier"))
		s.groups = d.Strings("security_groups")
		s.privateDNS = !d.Has("private_dns") || d.Bool("private_dns")
	default:
		return s, fmt.Errorf("endpoint_type %q: want Gateway or Interface", d.String("endpoint_type"))
	}
	return s, err
}

func (v VPCEndpoints) create(ctx context.Context, env *engine.Env, c *ec2.Client, d *engine.Desired, s endpointSpec, service string) error {
	tags := map[string]string{tagService: service}
	for k, val := range d.Tags {
		tags[k] = val
	}
	in := &ec2.CreateVpcEndpointInput{
		VpcId:             aws.String(d.String("vpc")),
		ServiceName:       aws.String(endpointServiceName(d.Region, service)),
		VpcEndpointType:   types.VpcEndpointType(d.String("endpoint_type")),
		ClientToken:       aws.String(clientToken(env, d.ID, "vpc-endpoint", d.String("vpc"), service)),
		TagSpecifications: ec2TagSpecs(types.ResourceTypeVpcEndpoint, tags, env.Stack.ID+"-"+service),
	}
	if len(s.routeTables) > 0 {
		in.RouteTableIds = s.routeTables
	}
	if len(s.subnets) > 0 {
		in.SubnetIds = s.subnets
		in.SecurityGroupIds = s.groups
		in.PrivateDnsEnabled = aws.Bool(s.privateDNS)
	}
	out, err := c.CreateVpcEndpoint(ctx, in)
	if err != nil {
		return fmt.Errorf("create %s endpoint for %s: %w", d.String("endpoint_type"), endpointServiceName(d.Region, service), err)
	}
	id := aws.ToString(out.VpcEndpoint.VpcEndpointId)
	env.Logf("created %s endpoint %s for %s", strings.ToLower(d.String("endpoint_type")), id, endpointServiceName(d.Region, service))
	return v.waitAvailable(ctx, c, id)
}

// waitAvailable polls until endpoint id is available (interface endpoints
// take a minute or two while their network interfaces come up).
func (VPCEndpoints) waitAvailable(ctx context.Context, c *ec2.Client, id string) error {
	deadline := time.Now().Add(10 * time.Minute)
	for {
		out, err := c.DescribeVpcEndpoints(ctx, &ec2.DescribeVpcEndpointsInput{VpcEndpointIds: []string{id}})
		if err != nil {
			return fmt.Errorf("wait for endpoint %s: %w", id, err)
		}
		if len(out.VpcEndpoints) == 1 {
			switch st := endpointState(out.VpcEndpoints[0]); st {
			case "available":
				return nil
			case "failed", "rejected", "deleted", "expired":
				return fmt.Errorf("endpoint %s is %s", id, st)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("endpoint %s not available after 10 minutes", id)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
}

func (v VPCEndpoints) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	c := ec2Client(env, d.Region)
	s, err := v.spec(ctx, env, c, d)
	if err != nil {
		return nil, err
	}
	have, err := v.ownEndpoints(ctx, c, d)
	if err != nil {
		return nil, err
	}
	for _, svc := range d.Strings("services") {
		if _, ok := have[svc]; ok {
			continue
		}
		if err := v.create(ctx, env, c, d, s, svc); err != nil {
			return nil, err
		}
	}
	return v.Read(ctx, env, d, nil)
}

func (v VPCEndpoints) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	c := ec2Client(env, d.Region)
	s, err := v.spec(ctx, env, c, d)
	if err != nil {
		return nil, err
	}
	have, err := v.ownEndpoints(ctx, c, d)
	if err != nil {
		return nil, err
	}
	want := d.Strings("services")
	var gone []string
	for svc, e := range have {
		if !slices.Contains(want, svc) {
			gone = append(gone, aws.ToString(e.VpcEndpointId))
		}
	}
	if len(gone) > 0 {
		if _, err := c.DeleteVpcEndpoints(ctx, &ec2.DeleteVpcEndpointsInput{VpcEndpointIds: gone}); err != nil {
			return nil, fmt.Errorf("delete endpoints %s: %w", strings.Join(gone, ", "), err)
		}
		env.Logf("deleted endpoints %s", strings.Join(gone, ", "))
	}
	for _, svc := range want {
		e, ok := have[svc]
		if !ok {
			if err := v.create(ctx, env, c, d, s, svc); err != nil {
				return nil, err
			}
			continue
		}
		id := aws.ToString(e.VpcEndpointId)
		in := &ec2.ModifyVpcEndpointInput{VpcEndpointId: aws.String(id)}
		modify := false
		add, remove := setDelta(e.RouteTableIds, s.routeTables)
		if len(add)+len(remove) > 0 {
			in.AddRouteTableIds, in.RemoveRouteTableIds, modify = add, remove, true
		}
		add, remove = setDelta(e.SubnetIds, s.subnets)
		if len(add)+len(remove) > 0 {
			in.AddSubnetIds, in.RemoveSubnetIds, modify = add, remove, true
		}
		var groups []string
		for _, g := range e.Groups {
			groups = append(groups, aws.ToString(g.GroupId))
		}
		add, remove = setDelta(groups, s.groups)
		if len(add)+len(remove) > 0 {
			in.AddSecurityGroupIds, in.RemoveSecurityGroupIds, modify = add, remove, true
		}
		if e.VpcEndpointType == types.VpcEndpointTypeInterface && aws.ToBool(e.PrivateDnsEnabled) != s.privateDNS {
			in.PrivateDnsEnabled, modify = aws.Bool(s.privateDNS), true
		}
		if modify {
			if _, err := c.ModifyVpcEndpoint(ctx, in); err != nil {
				return nil, fmt.Errorf("modify endpoint %s (%s): %w", id, svc, err)
			}
			env.Logf("modified endpoint %s (%s)", id, svc)
		}
		for _, ch := range changes {
			if ch.Path == "tags" {
				tags := map[string]string{tagService: svc}
				for k, val := range d.Tags {
					tags[k] = val
				}
				if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: ec2Tags(tags, env.Stack.ID+"-"+svc)}); err != nil {
					return nil, fmt.Errorf("tag endpoint %s: %w", id, err)
				}
			}
		}
	}
	return v.Read(ctx, env, d, nil)
}

// setDelta returns what to add to have and remove from it to make want.
func setDelta(have, want []string) (add, remove []string) {
	for _, w := range want {
		if !slices.Contains(have, w) {
			add = append(add, w)
		}
	}
	for _, h := range have {
		if !slices.Contains(want, h) {
			remove = append(remove, h)
		}
	}
	return add, remove
}

// Delete removes every endpoint of the resource and waits until AWS has
// released their network interfaces (the subnets and security groups they
// used can only go after).
func (v VPCEndpoints) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := ec2Client(env, live.Region)
	ids := strings.Split(live.Outputs["ids"], ",")
	ids = slices.DeleteFunc(ids, func(s string) bool { return s == "" })
	if len(ids) == 0 {
		return nil
	}
	if _, err := c.DeleteVpcEndpoints(ctx, &ec2.DeleteVpcEndpointsInput{VpcEndpointIds: ids}); err != nil && !engine.IsCode(err, "InvalidVpcEndpointId.NotFound") {
		return fmt.Errorf("delete endpoints %s: %w", strings.Join(ids, ", "), err)
	}
	deadline := time.Now().Add(10 * time.Minute)
	for {
		out, err := c.DescribeVpcEndpoints(ctx, &ec2.DescribeVpcEndpointsInput{VpcEndpointIds: ids})
		if engine.IsCode(err, "InvalidVpcEndpointId.NotFound") {
			break
		} else if err != nil {
			return fmt.Errorf("wait for endpoints %s to go: %w", strings.Join(ids, ", "), err)
		}
		left := 0
		for _, e := range out.VpcEndpoints {
			if endpointState(e) != "deleted" {
				left++
			}
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d endpoint(s) of %s still deleting after 10 minutes", left, live.PhysicalID)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
	env.Logf("deleted endpoints %s", strings.Join(ids, ", "))
	return nil
}
