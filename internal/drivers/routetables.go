package drivers

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"portal/internal/engine"
)

// Route tables of a VPC, as its blueprint lists them (route_tables): each
// table is tagged portal:route-table=<name>, associated with every subnet
// of its tier, and holds exactly the routes the blueprint gives besides the
// ones AWS and the VPC's endpoints own (the local route, and the
// prefix-list routes a gateway endpoint adds to the tables it names).

// rtSpec is one route table of the blueprint.
type rtSpec struct {
	name, tier string
	routes     []rtRoute
	hasRoutes  bool // the blueprint wrote routes (possibly empty)
}

// rtRoute is one route the portal manages.
type rtRoute struct{ destination, target string }

const targetInternetGateway = "internet_gateway"

func desiredRouteTables(d *engine.Desired) []rtSpec {
	var out []rtSpec
	for _, e := range d.List("route_tables") {
		m, _ := e.(map[string]any)
		s := rtSpec{name: toString(m["name"]), tier: toString(m["subnet_tier"])}
		if rs, ok := m["routes"].([]any); ok {
			s.hasRoutes = true
			for _, r := range rs {
				rm, _ := r.(map[string]any)
				s.routes = append(s.routes, rtRoute{destination: toString(rm["destination"]), target: toString(rm["target"])})
			}
		}
		out = append(out, s)
	}
	return out
}

// managedRoutes returns the routes of rt the portal manages: not the local
// route, not an endpoint's prefix-list route.
func managedRoutes(rt types.RouteTable) []rtRoute {
	var out []rtRoute
	for _, r := range rt.Routes {
		gw := aws.ToString(r.GatewayId)
		if gw == "local" || strings.HasPrefix(gw, "vpce-") || r.DestinationPrefixListId != nil {
			continue
		}
		dst := aws.ToString(r.DestinationCidrBlock)
		if dst == "" {
			dst = aws.ToString(r.DestinationIpv6CidrBlock)
		}
		target := gw
		switch {
		case strings.HasPrefix(gw, "igw-"):
			target = targetInternetGateway
		case r.NatGatewayId != nil:
			target = "nat " + aws.ToString(r.NatGatewayId)
		case r.TransitGatewayId != nil:
			target = "transit gateway " + aws.ToString(r.TransitGatewayId)
		case r.VpcPeeringConnectionId != nil:
			target = "peering " + aws.ToString(r.VpcPeeringConnectionId)
		case r.NetworkInterfaceId != nil:
			target = "interface " + aws.ToString(r.NetworkInterfaceId)
		}
		out = append(out, rtRoute{destination: dst, target: target})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].destination < out[j].destination })
	return out
}

// vpcRouteTables lists the route tables of vpcID.
func vpcRouteTables(ctx context.Context, c *ec2.Client, vpcID string) ([]types.RouteTable, error) {
	var out []types.RouteTable
	p := ec2.NewDescribeRouteTablesPaginator(c, &ec2.DescribeRouteTablesInput{Filters: []types.Filter{{Name: aws.String("vpc-id"), Values: []string{vpcID}}}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list route tables of %s: %w", vpcID, err)
		}
		out = append(out, page.RouteTables...)
	}
	return out, nil
}

func rtName(rt types.RouteTable) string { return ec2TagMap(rt.Tags)[tagRouteTable] }

// readRouteTables reports the VPC's named route tables shaped like the
// blueprint: in its order, each with the tier whose subnets (exactly) it
// serves and its managed routes.
func (VPC) readRouteTables(ctx context.Context, c *ec2.Client, vpcID string, d *engine.Desired, subnets []liveSubnet) ([]any, error) {
	tables, err := vpcRouteTables(ctx, c, vpcID)
	if err != nil {
		return nil, err
	}
	tierSubnets := map[string][]string{}
	for _, s := range subnets {
		tierSubnets[s.spec.tier] = append(tierSubnets[s.spec.tier], s.id)
	}
	byName := map[string]types.RouteTable{}
	var names []string
	for _, rt := range tables {
		if n := rtName(rt); n != "" {
			byName[n] = rt
			names = append(names, n)
		}
	}
	want := desiredRouteTables(d)
	order := map[string]int{}
	for i, w := range want {
		order[w.name] = i
	}
	sort.SliceStable(names, func(i, j int) bool {
		oi, iok := order[names[i]]
		oj, jok := order[names[j]]
		if iok != jok {
			return iok
		}
		if iok {
			return oi < oj
		}
		return names[i] < names[j]
	})
	var out []any
	for _, n := range names {
		rt := byName[n]
		var assoc []string
		for _, a := range rt.Associations {
			if a.SubnetId != nil && !aws.ToBool(a.Main) {
				assoc = append(assoc, aws.ToString(a.SubnetId))
			}
		}
		tier := "subnets " + strings.Join(assoc, ",")
		for _, t := range []string{"public", "private"} {
			if len(tierSubnets[t]) > 0 && sameSet(tierSubnets[t], assoc) {
				tier = t
			}
		}
		m := map[string]any{"name": n, "subnet_tier": tier}
		routes := managedRoutes(rt)
		wantRoutes := false
		if i, ok := order[n]; ok {
			wantRoutes = want[i].hasRoutes
		}
		if len(routes) > 0 || wantRoutes {
			list := make([]any, 0, len(routes))
			var wr []rtRoute
			if i, ok := order[n]; ok {
				wr = want[i].routes
			}
			for _, r := range inRouteOrder(routes, wr) {
				list = append(list, map[string]any{"destination": r.destination, "target": r.target})
			}
			m["routes"] = list
		}
		out = append(out, m)
	}
	if out == nil {
		out = []any{}
	}
	return out, nil
}

// inRouteOrder lists live routes in the blueprint's order when they are the
// same set, so order alone is never a difference.
func inRouteOrder(live, want []rtRoute) []rtRoute {
	if len(live) != len(want) {
		return live
	}
	for _, w := range want {
		if !slices.Contains(live, w) {
			return live
		}
	}
	return want
}

// ensureRouteTables brings the VPC's route tables, their routes and
// associations and its internet gateway to what d lists. It is safe to
// repeat.
func (v VPC) ensureRouteTables(ctx context.Context, c *ec2.Client, env *engine.Env, d *engine.Desired, vpcID string, subnets []liveSubnet) error {
	want := desiredRouteTables(d)
	needIGW := false
	for _, w := range want {
		for _, r := range w.routes {
			if r.target != targetInternetGateway {
				return fmt.Errorf("route table %s: route to %s: target %q is not supported (want %s)", w.name, r.destination, r.target, targetInternetGateway)
			}
			needIGW = true
		}
	}
	igws, err := c.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{Filters: []types.Filter{{Name: aws.String("attachment.vpc-id"), Values: []string{vpcID}}}})
	if err != nil {
		return fmt.Errorf("list internet gateways of %s: %w", vpcID, err)
	}
	igwID := ""
	if len(igws.InternetGateways) > 0 {
		igwID = aws.ToString(igws.InternetGateways[0].InternetGatewayId)
	}
	if needIGW && igwID == "" {
		out, err := c.CreateInternetGateway(ctx, &ec2.CreateInternetGatewayInput{
			TagSpecifications: ec2TagSpecs(types.ResourceTypeInternetGateway, d.Tags, d.String("name")),
		})
		if err != nil {
			return fmt.Errorf("create internet gateway: %w", err)
		}
		igwID = aws.ToString(out.InternetGateway.InternetGatewayId)
		if _, err := c.AttachInternetGateway(ctx, &ec2.AttachInternetGatewayInput{InternetGatewayId: aws.String(igwID), VpcId: aws.String(vpcID)}); err != nil {
			return fmt.Errorf("attach internet gateway %s to %s: %w", igwID, vpcID, err)
		}
		env.Logf("created internet gateway %s", igwID)
	}
	tables, err := vpcRouteTables(ctx, c, vpcID)
	if err != nil {
		return err
	}
	byName := map[string]types.RouteTable{}
	for _, rt := range tables {
		if n := rtName(rt); n != "" {
			byName[n] = rt
		}
	}
	wanted := map[string]bool{}
	tableOfTier := map[string]string{}
	for _, w := range want {
		wanted[w.name] = true
		rt, ok := byName[w.name]
		if !ok {
			tags := map[string]string{tagRouteTable: w.name}
			for k, val := range d.Tags {
				tags[k] = val
			}
			out, err := c.CreateRouteTable(ctx, &ec2.CreateRouteTableInput{
				VpcId:             aws.String(vpcID),
				ClientToken:       aws.String(clientToken(env, d.ID, "route-table", vpcID, w.name)),
				TagSpecifications: ec2TagSpecs(types.ResourceTypeRouteTable, tags, d.String("name")+"-"+w.name),
			})
			if err != nil {
				return fmt.Errorf("create route table %s: %w", w.name, err)
			}
			rt = *out.RouteTable
			byName[w.name] = rt
			env.Logf("created route table %s (%s)", aws.ToString(rt.RouteTableId), w.name)
		}
		rtID := aws.ToString(rt.RouteTableId)
		tableOfTier[w.tier] = rtID
		have := managedRoutes(rt)
		for _, r := range w.routes {
			if slices.Contains(have, r) {
				continue
			}
			in := &ec2.CreateRouteInput{RouteTableId: aws.String(rtID), DestinationCidrBlock: aws.String(r.destination), GatewayId: aws.String(igwID)}
			if _, err := c.CreateRoute(ctx, in); err != nil {
				if !engine.IsCode(err, "RouteAlreadyExists") {
					return fmt.Errorf("route table %s: route %s to %s: %w", w.name, r.destination, igwID, err)
				}
				if _, err := c.ReplaceRoute(ctx, &ec2.ReplaceRouteInput{RouteTableId: aws.String(rtID), DestinationCidrBlock: aws.String(r.destination), GatewayId: aws.String(igwID)}); err != nil {
					return fmt.Errorf("route table %s: route %s to %s: %w", w.name, r.destination, igwID, err)
				}
			}
			env.Logf("route table %s: %s -> %s", w.name, r.destination, igwID)
		}
		for _, r := range have {
			if slices.Contains(w.routes, r) {
				continue
			}
			if _, err := c.DeleteRoute(ctx, &ec2.DeleteRouteInput{RouteTableId: aws.String(rtID), DestinationCidrBlock: aws.String(r.destination)}); err != nil && !engine.IsCode(err, "InvalidRoute.NotFound") {
				return fmt.Errorf("route table %s: remove route %s: %w", w.name, r.destination, err)
			}
			env.Logf("route table %s: removed route %s (%s)", w.name, r.destination, r.target)
		}
	}
	// Associations: every subnet of a tier on its tier's table.
	tables, err = vpcRouteTables(ctx, c, vpcID)
	if err != nil {
		return err
	}
	type assoc struct{ id, table string }
	assocs := map[string]assoc{}
	for _, t := range tables {
		for _, a := range t.Associations {
			if a.SubnetId != nil && !aws.ToBool(a.Main) {
				assocs[aws.ToString(a.SubnetId)] = assoc{id: aws.ToString(a.RouteTableAssociationId), table: aws.ToString(t.RouteTableId)}
			}
		}
	}
	for _, s := range subnets {
		rtID, ok := tableOfTier[s.spec.tier]
		a, has := assocs[s.id]
		switch {
		case !ok && has:
			if _, err := c.DisassociateRouteTable(ctx, &ec2.DisassociateRouteTableInput{AssociationId: aws.String(a.id)}); err != nil {
				return fmt.Errorf("take subnet %s off route table %s: %w", s.id, a.table, err)
			}
		case !ok:
		case !has:
			if _, err := c.AssociateRouteTable(ctx, &ec2.AssociateRouteTableInput{RouteTableId: aws.String(rtID), SubnetId: aws.String(s.id)}); err != nil {
				return fmt.Errorf("associate subnet %s with route table %s: %w", s.id, rtID, err)
			}
		case a.table != rtID:
			if _, err := c.ReplaceRouteTableAssociation(ctx, &ec2.ReplaceRouteTableAssociationInput{AssociationId: aws.String(a.id), RouteTableId: aws.String(rtID)}); err != nil {
				return fmt.Errorf("associate subnet %s with route table %s: %w", s.id, rtID, err)
			}
		}
	}
	// Named tables the blueprint no longer lists go, and so does an
	// internet gateway no route uses.
	for n, rt := range byName {
		if !wanted[n] {
			if err := v.deleteRouteTable(ctx, c, rt); err != nil {
				return err
			}
			env.Logf("deleted route table %s (%s)", aws.ToString(rt.RouteTableId), n)
		}
	}
	if !needIGW && igwID != "" {
		if err := v.deleteGateway(ctx, c, vpcID, igwID); err != nil {
			return err
		}
		env.Logf("deleted internet gateway %s: no route uses it", igwID)
	}
	return nil
}
