package drivers_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"portal/internal/drivers"
	"portal/internal/engine"
)

// explicitVPC is a VPC whose blueprint lists its route tables, as the
// shipped architecture does.
func explicitVPC(env *engine.Env, region string) *engine.Desired {
	d := vpcDesired(env, region)
	d.Fields["route_tables"] = []any{
		map[string]any{"name": "public", "subnet_tier": "public", "routes": []any{map[string]any{"destination": "0.0.0.0/0", "target": "internet_gateway"}}},
		map[string]any{"name": "private", "subnet_tier": "private", "routes": []any{}},
	}
	return d
}

// routeTablesOf returns the route tables of vpc by their portal:route-table
// name, and which table each subnet is associated with.
func routeTablesOf(t *testing.T, env *engine.Env, region, vpc string) (map[string]types.RouteTable, map[string]string) {
	t.Helper()
	c := ec2.NewFromConfig(env.Config(region))
	out, err := c.DescribeRouteTables(context.Background(), &ec2.DescribeRouteTablesInput{Filters: []types.Filter{{Name: aws.String("vpc-id"), Values: []string{vpc}}}})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]types.RouteTable{}
	assoc := map[string]string{}
	for _, rt := range out.RouteTables {
		name := ""
		for _, tag := range rt.Tags {
			if aws.ToString(tag.Key) == "portal:route-table" {
				name = aws.ToString(tag.Value)
				byName[name] = rt
			}
		}
		for _, a := range rt.Associations {
			if a.SubnetId != nil && !aws.ToBool(a.Main) {
				assoc[aws.ToString(a.SubnetId)] = name
			}
		}
	}
	return byName, assoc
}

func hasRoute(rt types.RouteTable, match func(types.Route) bool) bool {
	return slices.ContainsFunc(rt.Routes, match)
}

// The route tables of a VPC are the ones its blueprint lists: each tier's
// subnets on their table (none left on the main table), the public table
// routing to an internet gateway, the private one routing nowhere; an
// internet gateway no route uses is removed.
func TestVPCRouteTables(t *testing.T) {
	t.Parallel()
	forEachRegion(t, func(t *testing.T, region string) {
		env := newEnv(t, region)
		d := explicitVPC(env, region)
		created := create(t, env, drivers.VPC{}, d)
		tables, assoc := routeTablesOf(t, env, region, created.PhysicalID)
		if len(tables) != 2 {
			t.Fatalf("named route tables %v, want public and private", tables)
		}
		public := strings.Split(created.Outputs["public_subnet_ids"], ",")
		private := strings.Split(created.Outputs["private_subnet_ids"], ",")
		for _, s := range public {
			if assoc[s] != "public" {
				t.Errorf("public subnet %s on table %q, want public", s, assoc[s])
			}
		}
		for _, s := range private {
			if assoc[s] != "private" {
				t.Errorf("private subnet %s on table %q, want private (not the main table)", s, assoc[s])
			}
		}
		toIGW := func(r types.Route) bool {
			return aws.ToString(r.DestinationCidrBlock) == "0.0.0.0/0" && strings.HasPrefix(aws.ToString(r.GatewayId), "igw-")
		}
		if !hasRoute(tables["public"], toIGW) {
			t.Errorf("public table routes %+v, want 0.0.0.0/0 to an internet gateway", tables["public"].Routes)
		}
		if hasRoute(tables["private"], func(r types.Route) bool { return aws.ToString(r.GatewayId) != "local" }) {
			t.Errorf("private table routes %+v, want the local route only", tables["private"].Routes)
		}

		// The same blueprint read back is no difference; dropping the
		// public route is, and applying it removes route and gateway.
		live, err := (drivers.VPC{}).Read(context.Background(), env, d, &engine.Prior{PhysicalID: created.PhysicalID, Region: region})
		if err != nil {
			t.Fatal(err)
		}
		if ch := engine.Diff(d, live, drivers.VPC{}.ForceNew()); len(ch) != 0 {
			t.Fatalf("diff right after create: %+v", ch)
		}
		d.Fields["route_tables"].([]any)[0].(map[string]any)["routes"] = []any{}
		ch := engine.Diff(d, live, drivers.VPC{}.ForceNew())
		if len(ch) != 1 || ch[0].Path != "route_tables" {
			t.Fatalf("diff after dropping the public route: %+v, want route_tables", ch)
		}
		if _, err := (drivers.VPC{}).Update(context.Background(), env, d, live, ch); err != nil {
			t.Fatal(err)
		}
		tables, _ = routeTablesOf(t, env, region, created.PhysicalID)
		if hasRoute(tables["public"], toIGW) {
			t.Errorf("public table still routes to an internet gateway: %+v", tables["public"].Routes)
		}
		c := ec2.NewFromConfig(env.Config(region))
		igws, err := c.DescribeInternetGateways(context.Background(), &ec2.DescribeInternetGatewaysInput{Filters: []types.Filter{{Name: aws.String("attachment.vpc-id"), Values: []string{created.PhysicalID}}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(igws.InternetGateways) != 0 {
			t.Errorf("an internet gateway no route uses is still attached: %+v", igws.InternetGateways)
		}
	})
}

// Gateway endpoints route S3 and DynamoDB from the private table; interface
// endpoints sit in one private subnet per zone behind their group. Adding
// and removing a service changes only that endpoint.
func TestVPCEndpoints(t *testing.T) {
	t.Parallel()
	forEachRegion(t, func(t *testing.T, region string) {
		ctx := context.Background()
		env := newEnv(t, region)
		vpc := create(t, env, drivers.VPC{}, explicitVPC(env, region))
		sg := create(t, env, drivers.SecurityGroup{}, &engine.Desired{ID: "endpoints_sg", Type: "security_group", Region: region, Fields: map[string]any{
			"name": "medportal-dev-endpoints", "vpc": vpc.PhysicalID,
			"ingress": []any{map[string]any{"protocol": "tcp", "from_port": 443, "to_port": 443, "cidrs": []any{"10.20.0.0/16"}}},
		}})

		gw := &engine.Desired{ID: "gateway_endpoints", Type: "vpc_endpoints", Region: region, Fields: map[string]any{
			"vpc": vpc.PhysicalID, "endpoint_type": "Gateway", "services": []any{"s3", "dynamodb"}, "route_tables": []any{"private"},
		}}
		gwLive := create(t, env, drivers.VPCEndpoints{}, gw)
		if ids := strings.Split(gwLive.Outputs["ids"], ","); len(ids) != 2 || gwLive.Outputs["s3_id"] == "" {
			t.Errorf("gateway outputs %v, want two endpoints", gwLive.Outputs)
		}
		tables, _ := routeTablesOf(t, env, region, vpc.PhysicalID)
		pls := 0
		for _, r := range tables["private"].Routes {
			if r.DestinationPrefixListId != nil && strings.HasPrefix(aws.ToString(r.GatewayId), "vpce-") {
				pls++
			}
		}
		if pls != 2 {
			t.Errorf("private table routes %+v, want the two services' prefix lists through the endpoints", tables["private"].Routes)
		}
		// The endpoints' routes are theirs, not a difference of the VPC.
		vd := explicitVPC(env, region)
		again, err := (drivers.VPC{}).Read(ctx, env, vd, &engine.Prior{PhysicalID: vpc.PhysicalID, Region: region})
		if err != nil {
			t.Fatal(err)
		}
		if ch := engine.Diff(vd, again, drivers.VPC{}.ForceNew()); len(ch) != 0 {
			t.Errorf("the VPC differs once endpoints route through its table: %+v", ch)
		}

		api := &engine.Desired{ID: "api_endpoints", Type: "vpc_endpoints", Region: region, Fields: map[string]any{
			"vpc": vpc.PhysicalID, "endpoint_type": "Interface", "services": []any{"kms", "logs"},
			"subnet_tier": "private", "security_groups": []any{sg.PhysicalID}, "private_dns": true,
		}}
		live := lifecycle(t, env, drivers.VPCEndpoints{}, api, func(d *engine.Desired) []string {
			d.Fields["services"] = []any{"logs", "sns", "textract"}
			return []string{"services"}
		})
		if live.Outputs["sns_id"] == "" || live.Outputs["kms_id"] != "" {
			t.Errorf("outputs after the update %v, want sns and no kms", live.Outputs)
		}
		c := ec2.NewFromConfig(env.Config(region))
		out, err := c.DescribeVpcEndpoints(ctx, &ec2.DescribeVpcEndpointsInput{VpcEndpointIds: []string{live.Outputs["textract_id"]}})
		if err != nil {
			t.Fatal(err)
		}
		e := out.VpcEndpoints[0]
		private := strings.Split(vpc.Outputs["private_subnet_ids"], ",")
		if !slices.Equal(sorted(e.SubnetIds), sorted(private)) || aws.ToString(e.ServiceName) != "com.amazonaws."+region+".textract" {
			t.Errorf("textract endpoint %s in %v, want com.amazonaws.%s.textract in %v", aws.ToString(e.ServiceName), e.SubnetIds, region, private)
		}
	})
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// Rules may name AWS-managed prefix lists: CloudFront's origin-facing
// addresses, Route 53's health checkers, S3 and DynamoDB. The group refers
// to them by id and reads back as written.
func TestSecurityGroupPrefixLists(t *testing.T) {
	t.Parallel()
	forEachRegion(t, func(t *testing.T, region string) {
		ctx := context.Background()
		env := newEnv(t, region)
		vpc := makeVPC(t, env, region)
		d := &engine.Desired{ID: "alb_sg", Type: "security_group", Region: region, Fields: map[string]any{
			"name": "medportal-dev-alb", "vpc": vpc.PhysicalID,
			"ingress": []any{
				map[string]any{"protocol": "tcp", "from_port": 443, "to_port": 443, "prefix_list": "com.amazonaws.global.cloudfront.origin-facing", "description": "HTTPS from CloudFront"},
				map[string]any{"protocol": "tcp", "from_port": 443, "to_port": 443, "prefix_list": "com.amazonaws." + region + ".route53-healthchecks"},
			},
			"egress": []any{map[string]any{"protocol": "tcp", "from_port": 443, "to_port": 443, "prefix_list": "com.amazonaws." + region + ".s3"}},
		}}
		live := lifecycle(t, env, drivers.SecurityGroup{}, d, func(d *engine.Desired) []string {
			d.Fields["egress"] = []any{map[string]any{"protocol": "tcp", "from_port": 443, "to_port": 443, "prefix_list": "com.amazonaws." + region + ".dynamodb"}}
			return []string{"egress"}
		})
		_ = live
		bad := &engine.Desired{ID: "bad_sg", Type: "security_group", Region: region, Tags: ownershipTags(env, "bad_sg"), Fields: map[string]any{
			"name": "medportal-dev-bad", "vpc": vpc.PhysicalID,
			"egress": []any{map[string]any{"protocol": "tcp", "from_port": 443, "to_port": 443, "prefix_list": "com.amazonaws." + region + ".nothing"}},
		}}
		created, err := (drivers.SecurityGroup{}).Create(ctx, env, bad)
		if err == nil || !strings.Contains(err.Error(), "no managed prefix list named com.amazonaws."+region+".nothing") {
			t.Errorf("unknown prefix list: err %v, want it named", err)
		}
		if created == nil {
			// Create made the group before refusing the rule: clean up.
			if cur, err := (drivers.SecurityGroup{}).Read(ctx, env, bad, nil); err == nil {
				_ = (drivers.SecurityGroup{}).Delete(ctx, env, cur)
			}
		}
	})
}
