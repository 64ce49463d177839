package drivers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"portal/internal/engine"
)

// Tags the VPC driver puts on each subnet it owns, so that the security
// group, DB subnet group, load balancer and Auto Scaling group drivers can
// find a VPC's subnets of one tier (see subnetsByTier).
const (
	tagTier       = "portal:tier"
	tagSubnet     = "portal:subnet"
	tagRouteTable = "portal:route-table"
)

func ec2Client(env *engine.Env, region string) *ec2.Client {
	return ec2.NewFromConfig(env.Config(region))
}

// clientToken derives an idempotency token from the stack, the resource
// and parts, so a Create retried after a crash sends the same token and AWS
// returns the first result instead of making a second resource.
func clientToken(env *engine.Env, id string, parts ...string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s", env.Stack.ID, id)
	for _, p := range parts {
		fmt.Fprintf(h, "\x00%s", p)
	}
	return "portal-" + hex.EncodeToString(h.Sum(nil))[:40]
}

// partition returns the ARN partition of region.
func partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

// toInt64 reads a blueprint number of any Go type.
func toInt64(v any) int64 {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case int64:
		return x
	case float64:
		return int64(x)
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

func toString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	}
	return fmt.Sprint(v)
}

// deepCopy copies a blueprint value, so a Live never shares maps or lists
// with the Desired it was read for.
func deepCopy(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	}
	return v
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	sort.Strings(x)
	sort.Strings(y)
	return slices.Equal(x, y)
}

// inDesiredOrder reports live list values the way the engine diffs them:
// lists compare in order, but AWS returns sets in its own order, so when
// live holds the same elements as want it is reported in want's order.
func inDesiredOrder(live, want []string) []any {
	l := live
	if sameSet(live, want) {
		l = want
	} else {
		l = slices.Clone(live)
		sort.Strings(l)
	}
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}

func ec2Tags(tags map[string]string, name string) []types.Tag {
	out := make([]types.Tag, 0, len(tags)+1)
	if name != "" {
		out = append(out, types.Tag{Key: aws.String("Name"), Value: aws.String(name)})
	}
	for _, k := range sortedKeys(tags) {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

func ec2TagSpecs(rt types.ResourceType, tags map[string]string, name string) []types.TagSpecification {
	return []types.TagSpecification{{ResourceType: rt, Tags: ec2Tags(tags, name)}}
}

func ec2TagMap(tags []types.Tag) map[string]string {
	out := make(map[string]string, len(tags))
	for _, t := range tags {
		out[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return out
}

// ownerFilters finds EC2 resources by the stack and resource ownership
// tags of d; nil when d carries none.
func ownerFilters(d *engine.Desired) []types.Filter {
	if d.Tags[engine.TagStack] == "" || d.Tags[engine.TagResource] == "" {
		return nil
	}
	return []types.Filter{
		{Name: aws.String("tag:" + engine.TagStack), Values: []string{d.Tags[engine.TagStack]}},
		{Name: aws.String("tag:" + engine.TagResource), Values: []string{d.Tags[engine.TagResource]}},
	}
}

// known reports whether a resolved reference field holds a real value
// (during planning a reference to a resource not created yet is Unknown).
func known(s string) bool { return refResolved(s) }

// subnetsByTier returns the ids of the subnets of vpcID that the VPC driver
// tagged with tier ("public" or "private"), ordered by availability zone.
// The security group, DB subnet group, load balancer and Auto Scaling
// group drivers all place themselves with it.
func subnetsByTier(ctx context.Context, env *engine.Env, region, vpcID, tier string) ([]string, error) {
	ids, err := tierSubnets(ctx, env, region, vpcID, tier)
	if err == nil && len(ids) == 0 {
		err = fmt.Errorf("vpc %s has no %s subnets (subnets carry the %s tag the vpc driver sets)", vpcID, tier, tagTier)
	}
	return ids, err
}

func tierSubnets(ctx context.Context, env *engine.Env, region, vpcID, tier string) ([]string, error) {
	c := ec2Client(env, region)
	var subnets []types.Subnet
	p := ec2.NewDescribeSubnetsPaginator(c, &ec2.DescribeSubnetsInput{Filters: []types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{vpcID}},
		{Name: aws.String("tag:" + tagTier), Values: []string{tier}},
	}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s subnets of %s: %w", tier, vpcID, err)
		}
		subnets = append(subnets, page.Subnets...)
	}
	sort.Slice(subnets, func(i, j int) bool {
		a, b := subnets[i], subnets[j]
		if aws.ToString(a.AvailabilityZone) != aws.ToString(b.AvailabilityZone) {
			return aws.ToString(a.AvailabilityZone) < aws.ToString(b.AvailabilityZone)
		}
		return aws.ToString(a.SubnetId) < aws.ToString(b.SubnetId)
	})
	ids := make([]string, len(subnets))
	for i, s := range subnets {
		ids[i] = aws.ToString(s.SubnetId)
	}
	return ids, nil
}

// subnetTier describes subnet ids in blueprint terms for the diff: want
// when they are exactly vpcID's subnets of tier want, another tier when
// they are exactly that tier's subnets, and otherwise the list of ids
// (which never equals a tier, so the resource is updated onto the tier's
// current subnets).
func subnetTier(ctx context.Context, env *engine.Env, region, vpcID string, ids []string, want string) (string, error) {
	for _, tier := range []string{want, "public", "private"} {
		if tier == "" {
			continue
		}
		cur, err := tierSubnets(ctx, env, region, vpcID, tier)
		if err != nil {
			return "", err
		}
		if len(cur) > 0 && sameSet(cur, ids) {
			return tier, nil
		}
	}
	s := slices.Clone(ids)
	sort.Strings(s)
	return "subnets " + strings.Join(s, ","), nil
}

// retryDependency calls fn until it stops failing with DependencyViolation
// (AWS releases network interfaces of deleted load balancers, databases and
// instances some minutes after they are gone) or timeout passes.
func retryDependency(ctx context.Context, timeout time.Duration, fn func() error) error {
	deadline := time.Now().Add(timeout)
	delay := 2 * time.Second
	for {
		err := fn()
		if err == nil || !engine.IsCode(err, "DependencyViolation", "ResourceInUse") || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, 15*time.Second)
	}
}

// ---------------------------------------------------------------- vpc

// VPC manages a VPC with the subnets the blueprint lists, each tagged with
// its tier, and the route tables it lists (route_tables, see
// routetables.go): each associated with every subnet of one tier, with an
// internet gateway attached while a route targets it. A blueprint without
// route_tables gets the older implicit layout: public subnets on a table
// routing 0.0.0.0/0 to an internet gateway, private ones on the VPC's main
// table.
//
// Fields: name, cidr, subnets [{name, az, cidr, tier}], route_tables
// [{name, subnet_tier, routes [{destination, target}]}].
// Outputs: id, arn, name, public_subnet_ids, private_subnet_ids.
type VPC struct{}

func (VPC) Type() string       { return "vpc" }
func (VPC) ForceNew() []string { return []string{"cidr"} }

type subnetSpec struct{ name, az, cidr, tier string }

func (s subnetSpec) fields() map[string]any {
	return map[string]any{"name": s.name, "az": s.az, "cidr": s.cidr, "tier": s.tier}
}

func desiredSubnets(d *engine.Desired) []subnetSpec {
	var out []subnetSpec
	for _, e := range d.List("subnets") {
		m, _ := e.(map[string]any)
		out = append(out, subnetSpec{name: toString(m["name"]), az: toString(m["az"]), cidr: toString(m["cidr"]), tier: toString(m["tier"])})
	}
	return out
}

func (v VPC) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	c := ec2Client(env, d.Region)
	in := &ec2.DescribeVpcsInput{}
	switch {
	case prior != nil && prior.PhysicalID != "":
		in.VpcIds = []string{prior.PhysicalID}
	case ownerFilters(d) != nil:
		in.Filters = ownerFilters(d)
	default:
		in.Filters = []types.Filter{{Name: aws.String("tag:Name"), Values: []string{d.String("name")}}}
	}
	out, err := c.DescribeVpcs(ctx, in)
	if engine.IsCode(err, "InvalidVpcID.NotFound") {
		return nil, engine.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("describe vpcs: %w", err)
	}
	if len(out.Vpcs) == 0 {
		return nil, engine.ErrNotFound
	}
	if len(out.Vpcs) > 1 {
		return nil, fmt.Errorf("%d vpcs carry the ownership tags of %s, want one", len(out.Vpcs), d.ID)
	}
	vpc := out.Vpcs[0]
	id := aws.ToString(vpc.VpcId)
	tags := ec2TagMap(vpc.Tags)
	live := &engine.Live{
		PhysicalID: id,
		Region:     d.Region,
		Outputs: map[string]string{
			"id":   id,
			"arn":  fmt.Sprintf("arn:%s:ec2:%s:%s:vpc/%s", partition(d.Region), d.Region, aws.ToString(vpc.OwnerId), id),
			"name": tags["Name"],
		},
		Fields: map[string]any{"name": tags["Name"], "cidr": aws.ToString(vpc.CidrBlock)},
		Tags:   tags,
	}
	subnets, err := v.subnets(ctx, c, id)
	if err != nil {
		return nil, err
	}
	order := map[string]int{}
	for i, s := range desiredSubnets(d) {
		order[s.name] = i
	}
	sort.SliceStable(subnets, func(i, j int) bool {
		oi, iok := order[subnets[i].spec.name]
		oj, jok := order[subnets[j].spec.name]
		if iok != jok {
			return iok
		}
		if iok {
			return oi < oj
		}
		return subnets[i].spec.name < subnets[j].spec.name
	})
	list := make([]any, 0, len(subnets))
	byTier := map[string][]string{}
	for _, s := range subnets {
		list = append(list, s.spec.fields())
		byTier[s.spec.tier] = append(byTier[s.spec.tier], s.id)
	}
	live.Fields["subnets"] = list
	live.Outputs["public_subnet_ids"] = strings.Join(byTier["public"], ",")
	live.Outputs["private_subnet_ids"] = strings.Join(byTier["private"], ",")
	if d.Has("route_tables") {
		if live.Fields["route_tables"], err = v.readRouteTables(ctx, c, id, d, subnets); err != nil {
			return nil, err
		}
	}
	if live.Fields["network_acls"], err = v.readNetworkACLs(ctx, c, id, subnets); err != nil {
		return nil, err
	}
	return live, nil
}

// readNetworkACLs returns the network ACLs of the VPC's subnets, for the
// live re-check of "will it work" (the blueprint declares none: every
// subnet keeps the VPC's default ACL, which allows everything; an ACL
// added behind the portal's back shows here). Not diffed.
func (VPC) readNetworkACLs(ctx context.Context, c *ec2.Client, vpcID string, subnets []liveSubnet) ([]any, error) {
	tierOf := map[string]string{}
	for _, s := range subnets {
		tierOf[s.id] = s.spec.tier
	}
	var out []any
	p := ec2.NewDescribeNetworkAclsPaginator(c, &ec2.DescribeNetworkAclsInput{Filters: []types.Filter{{Name: aws.String("vpc-id"), Values: []string{vpcID}}}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe network acls of %s: %w", vpcID, err)
		}
		for _, acl := range page.NetworkAcls {
			var tiers []any
			for _, a := range acl.Associations {
				if t := tierOf[aws.ToString(a.SubnetId)]; t != "" && !slices.Contains(tiers, any(t)) {
					tiers = append(tiers, t)
				}
			}
			if len(tiers) == 0 {
				continue
			}
			entry := map[string]any{"id": aws.ToString(acl.NetworkAclId), "subnet_tiers": tiers, "ingress": []any{}, "egress": []any{}}
			for _, e := range acl.Entries {
				if e.CidrBlock == nil {
					continue // IPv6 entries: the VPCs are IPv4 only
				}
				proto := aws.ToString(e.Protocol)
				switch proto {
				case "6":
					proto = "tcp"
				case "17":
					proto = "udp"
				}
				r := map[string]any{"rule_number": int64(aws.ToInt32(e.RuleNumber)), "protocol": proto, "cidr": aws.ToString(e.CidrBlock),
					"action": string(e.RuleAction), "from_port": int64(0), "to_port": int64(65535)}
				if e.PortRange != nil {
					r["from_port"], r["to_port"] = int64(aws.ToInt32(e.PortRange.From)), int64(aws.ToInt32(e.PortRange.To))
				}
				dir := "ingress"
				if aws.ToBool(e.Egress) {
					dir = "egress"
				}
				entry[dir] = append(entry[dir].([]any), r)
			}
			out = append(out, entry)
		}
	}
	return out, nil
}

type liveSubnet struct {
	id   string
	spec subnetSpec
}

func (VPC) subnets(ctx context.Context, c *ec2.Client, vpcID string) ([]liveSubnet, error) {
	var out []liveSubnet
	p := ec2.NewDescribeSubnetsPaginator(c, &ec2.DescribeSubnetsInput{Filters: []types.Filter{{Name: aws.String("vpc-id"), Values: []string{vpcID}}}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list subnets of %s: %w", vpcID, err)
		}
		for _, s := range page.Subnets {
			tags := ec2TagMap(s.Tags)
			name := tags[tagSubnet]
			if name == "" {
				name = aws.ToString(s.SubnetId)
			}
			out = append(out, liveSubnet{id: aws.ToString(s.SubnetId), spec: subnetSpec{
				name: name, az: aws.ToString(s.AvailabilityZone), cidr: aws.ToString(s.CidrBlock), tier: tags[tagTier],
			}})
		}
	}
	return out, nil
}

func (v VPC) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	c := ec2Client(env, d.Region)
	// CreateVpc takes no idempotency token: a retry after a crash finds the
	// first VPC by its ownership tags (the engine reads before creating).
	out, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{
		CidrBlock:         aws.String(d.String("cidr")),
		TagSpecifications: ec2TagSpecs(types.ResourceTypeVpc, d.Tags, d.String("name")),
	})
	if err != nil {
		return nil, fmt.Errorf("create vpc: %w", err)
	}
	id := aws.ToString(out.Vpc.VpcId)
	env.Logf("created vpc %s (%s)", id, d.String("cidr"))
	if err := ec2.NewVpcAvailableWaiter(c).Wait(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{id}}, 5*time.Minute); err != nil {
		return nil, fmt.Errorf("wait for vpc %s: %w", id, err)
	}
	// DNS hostnames let RDS endpoints and VPC endpoints resolve inside.
	if _, err := c.ModifyVpcAttribute(ctx, &ec2.ModifyVpcAttributeInput{VpcId: aws.String(id), EnableDnsHostnames: &types.AttributeBooleanValue{Value: aws.Bool(true)}}); err != nil {
		return nil, fmt.Errorf("enable dns hostnames on %s: %w", id, err)
	}
	if err := v.ensureNetwork(ctx, c, env, d, id); err != nil {
		return nil, err
	}
	return v.Read(ctx, env, d, &engine.Prior{PhysicalID: id, Region: d.Region})
}

// ensureNetwork brings the subnets, internet gateway and public route
// table of vpcID to what d asks. It is safe to repeat.
func (v VPC) ensureNetwork(ctx context.Context, c *ec2.Client, env *engine.Env, d *engine.Desired, vpcID string) error {
	have, err := v.subnets(ctx, c, vpcID)
	if err != nil {
		return err
	}
	want := desiredSubnets(d)
	wantByName := map[string]subnetSpec{}
	for _, s := range want {
		wantByName[s.name] = s
	}
	haveByName := map[string]liveSubnet{}
	// Subnets no longer wanted, or moved to another zone or range, go
	// first, so a new subnet may reuse their range.
	for _, s := range have {
		w, ok := wantByName[s.spec.name]
		if ok && w.az == s.spec.az && w.cidr == s.spec.cidr {
			haveByName[s.spec.name] = s
			continue
		}
		err := retryDependency(ctx, 5*time.Minute, func() error {
			_, err := c.DeleteSubnet(ctx, &ec2.DeleteSubnetInput{SubnetId: aws.String(s.id)})
			return err
		})
		if err != nil && !engine.IsCode(err, "InvalidSubnetID.NotFound") {
			return fmt.Errorf("delete subnet %s (%s): %w", s.id, s.spec.name, err)
		}
		env.Logf("deleted subnet %s (%s)", s.id, s.spec.name)
	}
	var public, private []string
	for _, w := range want {
		id := ""
		if s, ok := haveByName[w.name]; ok {
			id = s.id
			if s.spec.tier != w.tier {
				if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: []types.Tag{{Key: aws.String(tagTier), Value: aws.String(w.tier)}}}); err != nil {
					return fmt.Errorf("tag subnet %s as %s: %w", id, w.tier, err)
				}
			}
		} else {
			tags := map[string]string{tagSubnet: w.name, tagTier: w.tier}
			for k, val := range d.Tags {
				tags[k] = val
			}
			out, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{
				VpcId:             aws.String(vpcID),
				CidrBlock:         aws.String(w.cidr),
				AvailabilityZone:  aws.String(w.az),
				TagSpecifications: ec2TagSpecs(types.ResourceTypeSubnet, tags, d.String("name")+"-"+w.name),
			})
			if err != nil {
				return fmt.Errorf("create subnet %s (%s in %s): %w", w.name, w.cidr, w.az, err)
			}
			id = aws.ToString(out.Subnet.SubnetId)
			if err := ec2.NewSubnetAvailableWaiter(c).Wait(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{id}}, 5*time.Minute); err != nil {
				return fmt.Errorf("wait for subnet %s: %w", id, err)
			}
			env.Logf("created %s subnet %s (%s, %s in %s)", w.tier, id, w.name, w.cidr, w.az)
		}
		if w.tier == "public" {
			public = append(public, id)
		} else {
			private = append(private, id)
		}
	}
	if d.Has("route_tables") {
		all, err := v.subnets(ctx, c, vpcID)
		if err != nil {
			return err
		}
		return v.ensureRouteTables(ctx, c, env, d, vpcID, all)
	}
	return v.ensurePublicRouting(ctx, c, env, d, vpcID, public, private)
}

// ensurePublicRouting gives the public subnets a route table with a
// default route to an internet gateway, and removes gateway and table when
// there are no public subnets.
func (v VPC) ensurePublicRouting(ctx context.Context, c *ec2.Client, env *engine.Env, d *engine.Desired, vpcID string, public, private []string) error {
	igws, err := c.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{Filters: []types.Filter{{Name: aws.String("attachment.vpc-id"), Values: []string{vpcID}}}})
	if err != nil {
		return fmt.Errorf("list internet gateways of %s: %w", vpcID, err)
	}
	rts, err := c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: []types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{vpcID}},
		{Name: aws.String("tag:" + tagRouteTable), Values: []string{"public"}},
	}})
	if err != nil {
		return fmt.Errorf("list route tables of %s: %w", vpcID, err)
	}
	if len(public) == 0 {
		for _, rt := range rts.RouteTables {
			if err := v.deleteRouteTable(ctx, c, rt); err != nil {
				return err
			}
		}
		for _, g := range igws.InternetGateways {
			if err := v.deleteGateway(ctx, c, vpcID, aws.ToString(g.InternetGatewayId)); err != nil {
				return err
			}
		}
		return nil
	}
	var igwID string
	if len(igws.InternetGateways) > 0 {
		igwID = aws.ToString(igws.InternetGateways[0].InternetGatewayId)
	} else {
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
	var rt types.RouteTable
	if len(rts.RouteTables) > 0 {
		rt = rts.RouteTables[0]
	} else {
		tags := map[string]string{tagRouteTable: "public"}
		for k, val := range d.Tags {
			tags[k] = val
		}
		out, err := c.CreateRouteTable(ctx, &ec2.CreateRouteTableInput{
			VpcId:             aws.String(vpcID),
			ClientToken:       aws.String(clientToken(env, d.ID, "public-route-table", vpcID)),
			TagSpecifications: ec2TagSpecs(types.ResourceTypeRouteTable, tags, d.String("name")+"-public"),
		})
		if err != nil {
			return fmt.Errorf("create public route table: %w", err)
		}
		rt = *out.RouteTable
		env.Logf("created public route table %s", aws.ToString(rt.RouteTableId))
	}
	rtID := aws.ToString(rt.RouteTableId)
	routed := false
	for _, r := range rt.Routes {
		if aws.ToString(r.DestinationCidrBlock) == "0.0.0.0/0" && aws.ToString(r.GatewayId) == igwID {
			routed = true
		}
	}
	if !routed {
		if _, err := c.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: aws.String(rtID), DestinationCidrBlock: aws.String("0.0.0.0/0"), GatewayId: aws.String(igwID)}); err != nil {
			if !engine.IsCode(err, "RouteAlreadyExists") {
				return fmt.Errorf("route 0.0.0.0/0 to %s: %w", igwID, err)
			}
			if _, err := c.ReplaceRoute(ctx, &ec2.ReplaceRouteInput{RouteTableId: aws.String(rtID), DestinationCidrBlock: aws.String("0.0.0.0/0"), GatewayId: aws.String(igwID)}); err != nil {
				return fmt.Errorf("route 0.0.0.0/0 to %s: %w", igwID, err)
			}
		}
	}
	// Associations of every subnet in the VPC with a non-main table.
	all, err := c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: []types.Filter{{Name: aws.String("vpc-id"), Values: []string{vpcID}}}})
	if err != nil {
		return fmt.Errorf("list route tables of %s: %w", vpcID, err)
	}
	type assoc struct{ id, table string }
	assocs := map[string]assoc{}
	for _, t := range all.RouteTables {
		for _, a := range t.Associations {
			if a.SubnetId != nil && !aws.ToBool(a.Main) {
				assocs[aws.ToString(a.SubnetId)] = assoc{id: aws.ToString(a.RouteTableAssociationId), table: aws.ToString(t.RouteTableId)}
			}
		}
	}
	for _, s := range public {
		a, ok := assocs[s]
		switch {
		case !ok:
			if _, err := c.AssociateRouteTable(ctx, &ec2.AssociateRouteTableInput{RouteTableId: aws.String(rtID), SubnetId: aws.String(s)}); err != nil {
				return fmt.Errorf("associate %s with %s: %w", s, rtID, err)
			}
		case a.table != rtID:
			if _, err := c.ReplaceRouteTableAssociation(ctx, &ec2.ReplaceRouteTableAssociationInput{AssociationId: aws.String(a.id), RouteTableId: aws.String(rtID)}); err != nil {
				return fmt.Errorf("associate %s with %s: %w", s, rtID, err)
			}
		}
	}
	for _, s := range private {
		if a, ok := assocs[s]; ok && a.table == rtID {
			if _, err := c.DisassociateRouteTable(ctx, &ec2.DisassociateRouteTableInput{AssociationId: aws.String(a.id)}); err != nil {
				return fmt.Errorf("take private subnet %s off %s: %w", s, rtID, err)
			}
		}
	}
	return nil
}

func (VPC) deleteRouteTable(ctx context.Context, c *ec2.Client, rt types.RouteTable) error {
	id := aws.ToString(rt.RouteTableId)
	for _, a := range rt.Associations {
		if aws.ToBool(a.Main) {
			return nil // the main table goes with the VPC
		}
		if _, err := c.DisassociateRouteTable(ctx, &ec2.DisassociateRouteTableInput{AssociationId: a.RouteTableAssociationId}); err != nil && !engine.IsCode(err, "InvalidAssociationID.NotFound") {
			return fmt.Errorf("disassociate route table %s: %w", id, err)
		}
	}
	if _, err := c.DeleteRouteTable(ctx, &ec2.DeleteRouteTableInput{RouteTableId: aws.String(id)}); err != nil && !engine.IsCode(err, "InvalidRouteTableID.NotFound") {
		return fmt.Errorf("delete route table %s: %w", id, err)
	}
	return nil
}

func (VPC) deleteGateway(ctx context.Context, c *ec2.Client, vpcID, igwID string) error {
	err := retryDependency(ctx, 5*time.Minute, func() error {
		_, err := c.DetachInternetGateway(ctx, &ec2.DetachInternetGatewayInput{InternetGatewayId: aws.String(igwID), VpcId: aws.String(vpcID)})
		return err
	})
	if err != nil && !engine.IsCode(err, "Gateway.NotAttached", "InvalidInternetGatewayID.NotFound") {
		return fmt.Errorf("detach internet gateway %s: %w", igwID, err)
	}
	if _, err := c.DeleteInternetGateway(ctx, &ec2.DeleteInternetGatewayInput{InternetGatewayId: aws.String(igwID)}); err != nil && !engine.IsCode(err, "InvalidInternetGatewayID.NotFound") {
		return fmt.Errorf("delete internet gateway %s: %w", igwID, err)
	}
	return nil
}

func (v VPC) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	c := ec2Client(env, d.Region)
	id := live.PhysicalID
	for _, ch := range changes {
		switch ch.Path {
		case "name", "tags":
			if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: ec2Tags(d.Tags, d.String("name"))}); err != nil {
				return nil, fmt.Errorf("tag vpc %s: %w", id, err)
			}
		}
	}
	if err := v.ensureNetwork(ctx, c, env, d, id); err != nil {
		return nil, err
	}
	return v.Read(ctx, env, d, &engine.Prior{PhysicalID: id, Region: d.Region})
}

// Delete removes the public route table, internet gateway and subnets,
// then the VPC. Security groups, load balancers, databases and instances
// in it must be gone first (the engine deletes dependants first); AWS
// reports DependencyViolation otherwise, which Delete retries for a few
// minutes, since AWS frees their network interfaces with a delay.
func (v VPC) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := ec2Client(env, live.Region)
	id := live.PhysicalID
	rts, err := c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: []types.Filter{{Name: aws.String("vpc-id"), Values: []string{id}}}})
	if err != nil {
		return fmt.Errorf("list route tables of %s: %w", id, err)
	}
	for _, rt := range rts.RouteTables {
		if err := v.deleteRouteTable(ctx, c, rt); err != nil {
			return err
		}
	}
	igws, err := c.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{Filters: []types.Filter{{Name: aws.String("attachment.vpc-id"), Values: []string{id}}}})
	if err != nil {
		return fmt.Errorf("list internet gateways of %s: %w", id, err)
	}
	for _, g := range igws.InternetGateways {
		if err := v.deleteGateway(ctx, c, id, aws.ToString(g.InternetGatewayId)); err != nil {
			return err
		}
	}
	subnets, err := v.subnets(ctx, c, id)
	if err != nil {
		return err
	}
	for _, s := range subnets {
		err := retryDependency(ctx, 5*time.Minute, func() error {
			_, err := c.DeleteSubnet(ctx, &ec2.DeleteSubnetInput{SubnetId: aws.String(s.id)})
			return err
		})
		if err != nil && !engine.IsCode(err, "InvalidSubnetID.NotFound") {
			return fmt.Errorf("delete subnet %s (%s): %s", s.id, s.spec.name, engine.Explain(err))
		}
	}
	err = retryDependency(ctx, 5*time.Minute, func() error {
		_, err := c.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: aws.String(id)})
		return err
	})
	if err != nil && !engine.IsCode(err, "InvalidVpcID.NotFound") {
		return fmt.Errorf("delete vpc %s (security groups or network interfaces may still be in it): %w", id, err)
	}
	env.Logf("deleted vpc %s", id)
	return nil
}

// ---------------------------------------------------------------- security_group

// SecurityGroup manages a VPC security group and its rules. Rules compare
// as a set of single permissions (one protocol, port range and CIDR or
// source group each), whatever order or grouping the blueprint and AWS
// use; Update authorizes what is missing and revokes what is not wanted.
// A rule list left out of the blueprint means no rules: the allow-all
// egress rule AWS adds to a new group is revoked.
//
// Fields: name, vpc, description, ingress, egress
// ([{protocol, from_port, to_port, cidrs | source | prefix_list,
// description}]); prefix_list names an AWS-managed prefix list of the
// region (com.amazonaws.<region>.s3, com.amazonaws.global.cloudfront.origin-facing),
// which the rule refers to by its id.
// Outputs: id, arn, name.
type SecurityGroup struct{}

func (SecurityGroup) Type() string { return "security_group" }

// ForceNew: AWS cannot rename a group, move it or change its description.
func (SecurityGroup) ForceNew() []string { return []string{"name", "vpc", "description"} }

// sgRule is one permission: a CIDR or a source group.
type sgRule struct {
	protocol     string
	from, to     int32
	cidr, source string
	description  string
}

// key identifies the permission in AWS; the description is an attribute.
func (r sgRule) key() string {
	return fmt.Sprintf("%s|%d|%d|%s|%s", r.protocol, r.from, r.to, r.cidr, r.source)
}

func (r sgRule) fields(pl prefixLists) map[string]any {
	m := map[string]any{"protocol": r.protocol, "from_port": int64(r.from), "to_port": int64(r.to)}
	switch {
	case r.cidr != "":
		m["cidrs"] = []any{r.cidr}
	case strings.HasPrefix(r.source, "pl-") && pl.names[r.source] != "":
		m["prefix_list"] = pl.names[r.source]
	default:
		m["source"] = r.source
	}
	if r.description != "" {
		m["description"] = r.description
	}
	return m
}

// allTraffic normalises ports of protocol -1, which AWS ignores.
func (r sgRule) normal() sgRule {
	if r.protocol == "-1" || r.protocol == "all" {
		r.protocol, r.from, r.to = "-1", 0, 0
	}
	return r
}

// prefixLists maps the managed prefix lists of a region between names and
// ids: blueprints name AWS-managed lists (com.amazonaws.eu-central-1.s3),
// security group rules carry their ids.
type prefixLists struct{ ids, names map[string]string }

func loadPrefixLists(ctx context.Context, c *ec2.Client) (prefixLists, error) {
	pl := prefixLists{ids: map[string]string{}, names: map[string]string{}}
	p := ec2.NewDescribeManagedPrefixListsPaginator(c, &ec2.DescribeManagedPrefixListsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return pl, fmt.Errorf("list managed prefix lists: %w", err)
		}
		for _, l := range page.PrefixLists {
			pl.ids[aws.ToString(l.PrefixListName)] = aws.ToString(l.PrefixListId)
			pl.names[aws.ToString(l.PrefixListId)] = aws.ToString(l.PrefixListName)
		}
	}
	return pl, nil
}

// rulesPrefixLists loads the region's prefix lists when d's rules name one.
func rulesPrefixLists(ctx context.Context, c *ec2.Client, d *engine.Desired) (prefixLists, error) {
	for _, dir := range []string{"ingress", "egress"} {
		for _, e := range d.List(dir) {
			if m, _ := e.(map[string]any); toString(m["prefix_list"]) != "" {
				return loadPrefixLists(ctx, c)
			}
		}
	}
	return prefixLists{}, nil
}

// missingPrefixLists names the prefix lists d's rules use that the region
// does not have.
func missingPrefixLists(d *engine.Desired, pl prefixLists) []string {
	var out []string
	for _, dir := range []string{"ingress", "egress"} {
		for _, e := range d.List(dir) {
			m, _ := e.(map[string]any)
			if n := toString(m["prefix_list"]); n != "" && pl.ids[n] == "" && !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

func desiredRules(list []any, pl prefixLists) []sgRule {
	var out []sgRule
	for _, e := range list {
		m, _ := e.(map[string]any)
		base := sgRule{
			protocol:    toString(m["protocol"]),
			from:        int32(toInt64(m["from_port"])),
			to:          int32(toInt64(m["to_port"])),
			description: toString(m["description"]),
		}
		cidrs, _ := m["cidrs"].([]any)
		for _, c := range cidrs {
			r := base
			r.cidr = toString(c)
			out = append(out, r.normal())
		}
		if src := toString(m["source"]); src != "" {
			r := base
			r.source = src
			out = append(out, r.normal())
		}
		if name := toString(m["prefix_list"]); name != "" {
			r := base
			r.source = pl.ids[name]
			if r.source == "" {
				r.source = "prefix list " + name
			}
			out = append(out, r.normal())
		}
	}
	return out
}

func liveRules(perms []types.IpPermission) []sgRule {
	var out []sgRule
	for _, p := range perms {
		base := sgRule{protocol: aws.ToString(p.IpProtocol), from: aws.ToInt32(p.FromPort), to: aws.ToInt32(p.ToPort)}
		for _, r := range p.IpRanges {
			x := base
			x.cidr, x.description = aws.ToString(r.CidrIp), aws.ToString(r.Description)
			out = append(out, x.normal())
		}
		for _, r := range p.Ipv6Ranges {
			x := base
			x.cidr, x.description = aws.ToString(r.CidrIpv6), aws.ToString(r.Description)
			out = append(out, x.normal())
		}
		for _, g := range p.UserIdGroupPairs {
			x := base
			x.source, x.description = aws.ToString(g.GroupId), aws.ToString(g.Description)
			out = append(out, x.normal())
		}
		for _, pl := range p.PrefixListIds {
			x := base
			x.source, x.description = aws.ToString(pl.PrefixListId), aws.ToString(pl.Description)
			out = append(out, x.normal())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

func sameRules(a, b []sgRule) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]string{}
	for _, r := range a {
		m[r.key()] = r.description
	}
	for _, r := range b {
		if d, ok := m[r.key()]; !ok || d != r.description {
			return false
		}
	}
	return true
}

func (r sgRule) permission(withDescription bool) types.IpPermission {
	p := types.IpPermission{IpProtocol: aws.String(r.protocol)}
	if r.protocol != "-1" {
		p.FromPort, p.ToPort = aws.Int32(r.from), aws.Int32(r.to)
	}
	var desc *string
	if withDescription && r.description != "" {
		desc = aws.String(r.description)
	}
	switch {
	case strings.HasPrefix(r.source, "pl-"):
		p.PrefixListIds = []types.PrefixListId{{PrefixListId: aws.String(r.source), Description: desc}}
	case r.source != "":
		p.UserIdGroupPairs = []types.UserIdGroupPair{{GroupId: aws.String(r.source), Description: desc}}
	case strings.Contains(r.cidr, ":"):
		p.Ipv6Ranges = []types.Ipv6Range{{CidrIpv6: aws.String(r.cidr), Description: desc}}
	default:
		p.IpRanges = []types.IpRange{{CidrIp: aws.String(r.cidr), Description: desc}}
	}
	return p
}

func (g SecurityGroup) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	c := ec2Client(env, d.Region)
	in := &ec2.DescribeSecurityGroupsInput{}
	switch vpc := d.String("vpc"); {
	case prior != nil && prior.PhysicalID != "":
		in.GroupIds = []string{prior.PhysicalID}
	case known(vpc):
		in.Filters = []types.Filter{
			{Name: aws.String("vpc-id"), Values: []string{vpc}},
			{Name: aws.String("group-name"), Values: []string{d.String("name")}},
		}
	case ownerFilters(d) != nil:
		in.Filters = ownerFilters(d)
	default:
		return nil, engine.ErrNotFound
	}
	out, err := c.DescribeSecurityGroups(ctx, in)
	if engine.IsCode(err, "InvalidGroup.NotFound", "InvalidGroupId.NotFound") {
		return nil, engine.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("describe security groups: %w", err)
	}
	if len(out.SecurityGroups) == 0 {
		return nil, engine.ErrNotFound
	}
	if len(out.SecurityGroups) > 1 {
		return nil, fmt.Errorf("%d security groups match %s, want one", len(out.SecurityGroups), d.ID)
	}
	sg := out.SecurityGroups[0]
	id := aws.ToString(sg.GroupId)
	live := &engine.Live{
		PhysicalID: id,
		Region:     d.Region,
		Outputs: map[string]string{
			"id":   id,
			"arn":  fmt.Sprintf("arn:%s:ec2:%s:%s:security-group/%s", partition(d.Region), d.Region, aws.ToString(sg.OwnerId), id),
			"name": aws.ToString(sg.GroupName),
		},
		Fields: map[string]any{"name": aws.ToString(sg.GroupName), "vpc": aws.ToString(sg.VpcId)},
		Tags:   ec2TagMap(sg.Tags),
	}
	if d.Has("description") {
		live.Fields["description"] = aws.ToString(sg.Description)
	}
	pl, err := rulesPrefixLists(ctx, c, d)
	if err != nil {
		return nil, err
	}
	for _, perms := range [][]types.IpPermission{sg.IpPermissions, sg.IpPermissionsEgress} {
		for _, p := range perms {
			if len(p.PrefixListIds) > 0 && pl.names == nil {
				if pl, err = loadPrefixLists(ctx, c); err != nil {
					return nil, err
				}
			}
		}
	}
	for field, perms := range map[string][]types.IpPermission{"ingress": sg.IpPermissions, "egress": sg.IpPermissionsEgress} {
		have := liveRules(perms)
		if sameRules(have, desiredRules(d.List(field), pl)) {
			if v, ok := d.Get(field); ok {
				live.Fields[field] = deepCopy(v)
			} else {
				live.Fields[field] = []any{}
			}
			continue
		}
		list := make([]any, len(have))
		for i, r := range have {
			list[i] = r.fields(pl)
		}
		live.Fields[field] = list
	}
	return live, nil
}

func (g SecurityGroup) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	c := ec2Client(env, d.Region)
	desc := d.String("description")
	if desc == "" {
		desc = fmt.Sprintf("%s %s (managed by the portal)", env.Stack.ID, d.ID)
	}
	// CreateSecurityGroup takes no idempotency token; the name is unique in
	// the VPC, so a retry after a crash finds the first group by name.
	out, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName:         aws.String(d.String("name")),
		Description:       aws.String(desc),
		VpcId:             aws.String(d.String("vpc")),
		TagSpecifications: ec2TagSpecs(types.ResourceTypeSecurityGroup, d.Tags, d.String("name")),
	})
	if err != nil {
		return nil, fmt.Errorf("create security group %s: %w", d.String("name"), err)
	}
	id := aws.ToString(out.GroupId)
	env.Logf("created security group %s (%s)", id, d.String("name"))
	if err := g.reconcile(ctx, c, env, d, id); err != nil {
		return nil, err
	}
	return g.Read(ctx, env, d, &engine.Prior{PhysicalID: id, Region: d.Region})
}

// reconcile brings the rules of group id to what d asks.
func (g SecurityGroup) reconcile(ctx context.Context, c *ec2.Client, env *engine.Env, d *engine.Desired, id string) error {
	out, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{id}})
	if err != nil {
		return fmt.Errorf("describe security group %s: %w", id, err)
	}
	if len(out.SecurityGroups) == 0 {
		return fmt.Errorf("security group %s vanished", id)
	}
	sg := out.SecurityGroups[0]
	pl, err := rulesPrefixLists(ctx, c, d)
	if err != nil {
		return err
	}
	if missing := missingPrefixLists(d, pl); len(missing) > 0 {
		return fmt.Errorf("security group %s: no managed prefix list named %s in %s", id, strings.Join(missing, ", "), d.Region)
	}
	for _, dir := range []string{"ingress", "egress"} {
		perms := sg.IpPermissions
		if dir == "egress" {
			perms = sg.IpPermissionsEgress
		}
		have := map[string]sgRule{}
		for _, r := range liveRules(perms) {
			have[r.key()] = r
		}
		want := map[string]sgRule{}
		for _, r := range desiredRules(d.List(dir), pl) {
			want[r.key()] = r
		}
		var revoke, authorize, redescribe []types.IpPermission
		for k, r := range have {
			if _, ok := want[k]; !ok {
				revoke = append(revoke, r.permission(false))
			}
		}
		for k, r := range want {
			h, ok := have[k]
			switch {
			case !ok:
				authorize = append(authorize, r.permission(true))
			case h.description != r.description:
				redescribe = append(redescribe, r.permission(true))
			}
		}
		if err := g.apply(ctx, c, id, dir, revoke, authorize, redescribe); err != nil {
			return err
		}
		if n := len(revoke) + len(authorize) + len(redescribe); n > 0 {
			env.Logf("%s %s: %d authorized, %d revoked, %d redescribed", id, dir, len(authorize), len(revoke), len(redescribe))
		}
		if len(redescribe) > 0 {
			if err := g.checkDescriptions(ctx, c, id, dir, want); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkDescriptions confirms new rule descriptions took. AWS applies
// UpdateSecurityGroupRuleDescriptions*; moto answers success but ignores
// it for rules whose source is a group, which must not pass for done.
func (SecurityGroup) checkDescriptions(ctx context.Context, c *ec2.Client, id, dir string, want map[string]sgRule) error {
	out, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{id}})
	if err != nil {
		return fmt.Errorf("describe security group %s: %w", id, err)
	}
	perms := out.SecurityGroups[0].IpPermissions
	if dir == "egress" {
		perms = out.SecurityGroups[0].IpPermissionsEgress
	}
	var stale []string
	for _, r := range liveRules(perms) {
		if w, ok := want[r.key()]; ok && w.description != r.description {
			stale = append(stale, fmt.Sprintf("%s %d-%d %s%s", r.protocol, r.from, r.to, r.cidr, r.source))
		}
	}
	if len(stale) > 0 {
		return fmt.Errorf("update %s rule descriptions of %s: UpdateSecurityGroupRuleDescriptions%s succeeded but left the description of %s unchanged (this endpoint does not support changing descriptions of rules whose source is a group); remove the rule and add it back with the new description",
			dir, id, map[string]string{"ingress": "Ingress", "egress": "Egress"}[dir], strings.Join(stale, ", "))
	}
	return nil
}

func (SecurityGroup) apply(ctx context.Context, c *ec2.Client, id, dir string, revoke, authorize, redescribe []types.IpPermission) error {
	gid := aws.String(id)
	if len(revoke) > 0 {
		var err error
		if dir == "ingress" {
			_, err = c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: gid, IpPermissions: revoke})
		} else {
			_, err = c.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: gid, IpPermissions: revoke})
		}
		if err != nil && !engine.IsCode(err, "InvalidPermission.NotFound") {
			return fmt.Errorf("revoke %s rules of %s: %w", dir, id, err)
		}
	}
	if len(authorize) > 0 {
		var err error
		if dir == "ingress" {
			_, err = c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: gid, IpPermissions: authorize})
		} else {
			_, err = c.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: gid, IpPermissions: authorize})
		}
		if err != nil && !engine.IsCode(err, "InvalidPermission.Duplicate") {
			return fmt.Errorf("authorize %s rules of %s: %w", dir, id, err)
		}
	}
	if len(redescribe) > 0 {
		var err error
		if dir == "ingress" {
			_, err = c.UpdateSecurityGroupRuleDescriptionsIngress(ctx, &ec2.UpdateSecurityGroupRuleDescriptionsIngressInput{GroupId: gid, IpPermissions: redescribe})
		} else {
			_, err = c.UpdateSecurityGroupRuleDescriptionsEgress(ctx, &ec2.UpdateSecurityGroupRuleDescriptionsEgressInput{GroupId: gid, IpPermissions: redescribe})
		}
		if err != nil {
			return fmt.Errorf("update %s rule descriptions of %s: %s", dir, id, engine.Explain(err))
		}
	}
	return nil
}

func (g SecurityGroup) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	c := ec2Client(env, d.Region)
	for _, ch := range changes {
		if ch.Path == "tags" {
			if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{live.PhysicalID}, Tags: ec2Tags(d.Tags, d.String("name"))}); err != nil {
				return nil, fmt.Errorf("tag security group %s: %w", live.PhysicalID, err)
			}
		}
	}
	if err := g.reconcile(ctx, c, env, d, live.PhysicalID); err != nil {
		return nil, err
	}
	return g.Read(ctx, env, d, &engine.Prior{PhysicalID: live.PhysicalID, Region: d.Region})
}

// Delete removes the group, retrying for a few minutes while network
// interfaces of deleted load balancers or instances still use it.
func (SecurityGroup) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := ec2Client(env, live.Region)
	err := retryDependency(ctx, 5*time.Minute, func() error {
		_, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(live.PhysicalID)})
		return err
	})
	if err != nil && !engine.IsCode(err, "InvalidGroup.NotFound", "InvalidGroupId.NotFound") {
		return fmt.Errorf("delete security group %s (still used by an instance, load balancer or another group's rule?): %w", live.PhysicalID, err)
	}
	env.Logf("deleted security group %s", live.PhysicalID)
	return nil
}

// ---------------------------------------------------------------- ami

// AMI looks up a machine image: by id, or the newest available image
// whose name matches name_filter among owners (default: the account itself
// and Amazon, so an image published by a stranger under a look-alike name
// is never picked).
//
// Fields: image {id} or {name_filter, owners}. Outputs: id, name.
type AMI struct{}

func (AMI) Type() string       { return "ami" }
func (AMI) ForceNew() []string { return nil }
func (AMI) IsDataSource() bool { return true }

func (AMI) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	c := ec2Client(env, d.Region)
	in := &ec2.DescribeImagesInput{}
	what := ""
	if id := d.String("image.id"); id != "" {
		in.ImageIds = []string{id}
		what = id
	} else if f := d.String("image.name_filter"); f != "" {
		in.Filters = []types.Filter{
			{Name: aws.String("name"), Values: []string{f}},
			{Name: aws.String("state"), Values: []string{"available"}},
		}
		in.Owners = d.Strings("image.owners")
		if len(in.Owners) == 0 {
			in.Owners = []string{"self", "amazon"}
		}
		what = fmt.Sprintf("name %q owned by %s", f, strings.Join(in.Owners, ", "))
	} else {
		return nil, fmt.Errorf("ami %s: image needs an id or a name_filter", d.ID)
	}
	out, err := c.DescribeImages(ctx, in)
	if engine.IsCode(err, "InvalidAMIID.NotFound", "InvalidAMIID.Unavailable") {
		return nil, fmt.Errorf("image %s in %s: %w", what, d.Region, engine.ErrNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("describe images (%s): %w", what, err)
	}
	if len(out.Images) == 0 {
		return nil, fmt.Errorf("no image %s in %s: %w", what, d.Region, engine.ErrNotFound)
	}
	imgs := out.Images
	sort.Slice(imgs, func(i, j int) bool {
		a, b := aws.ToString(imgs[i].CreationDate), aws.ToString(imgs[j].CreationDate)
		if a != b {
			return a > b
		}
		return aws.ToString(imgs[i].ImageId) > aws.ToString(imgs[j].ImageId)
	})
	img := imgs[0]
	id := aws.ToString(img.ImageId)
	return &engine.Live{
		PhysicalID: id,
		Region:     d.Region,
		Outputs:    map[string]string{"id": id, "name": aws.ToString(img.Name)},
		Fields:     map[string]any{},
		Tags:       ec2TagMap(img.Tags),
	}, nil
}

// Create only looks the image up: a data source makes nothing.
func (a AMI) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	return a.Read(ctx, env, d, nil)
}

func (a AMI) Update(ctx context.Context, env *engine.Env, d *engine.Desired, _ *engine.Live, _ []engine.FieldChange) (*engine.Live, error) {
	return a.Read(ctx, env, d, nil)
}

// Delete does nothing: the image is not the portal's.
func (AMI) Delete(context.Context, *engine.Env, *engine.Live) error { return nil }

// ---------------------------------------------------------------- launch_template

// LaunchTemplate manages an EC2 launch template. An update creates a new
// version and makes it the default, which the Auto Scaling group launches
// from ($Default).
//
// Fields: name, ami, instance_type, instance_profile (ARN or name),
// security_groups, imds_v2_required, ebs_encrypted, kms_key.
// Outputs: id, name, latest_version, default_version.
type LaunchTemplate struct{}

func (LaunchTemplate) Type() string       { return "launch_template" }
func (LaunchTemplate) ForceNew() []string { return []string{"name"} }

func (LaunchTemplate) data(ctx context.Context, c *ec2.Client, d *engine.Desired) (*types.RequestLaunchTemplateData, error) {
	ami := d.String("ami")
	data := &types.RequestLaunchTemplateData{
		ImageId:          aws.String(ami),
		InstanceType:     types.InstanceType(d.String("instance_type")),
		SecurityGroupIds: d.Strings("security_groups"),
		MetadataOptions: &types.LaunchTemplateInstanceMetadataOptionsRequest{
			HttpEndpoint: types.LaunchTemplateInstanceMetadataEndpointStateEnabled,
			HttpTokens:   types.LaunchTemplateHttpTokensStateOptional,
		},
	}
	if d.Bool("imds_v2_required") {
		data.MetadataOptions.HttpTokens = types.LaunchTemplateHttpTokensStateRequired
	}
	if p := d.String("instance_profile"); strings.HasPrefix(p, "arn:") {
		data.IamInstanceProfile = &types.LaunchTemplateIamInstanceProfileSpecificationRequest{Arn: aws.String(p)}
	} else if p != "" {
		data.IamInstanceProfile = &types.LaunchTemplateIamInstanceProfileSpecificationRequest{Name: aws.String(p)}
	}
	if d.Bool("ebs_encrypted") || d.String("kms_key") != "" {
		// Encryption is set on the image's root device, whose name the
		// image decides (/dev/xvda, /dev/sda1).
		img, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ami}})
		if err != nil {
			return nil, fmt.Errorf("describe image %s for its root device: %w", ami, err)
		}
		if len(img.Images) == 0 {
			return nil, fmt.Errorf("image %s does not exist in this region", ami)
		}
		root := aws.ToString(img.Images[0].RootDeviceName)
		if root == "" {
			root = "/dev/xvda"
		}
		ebs := &types.LaunchTemplateEbsBlockDeviceRequest{
			Encrypted:           aws.Bool(d.Bool("ebs_encrypted")),
			VolumeType:          types.VolumeTypeGp3,
			DeleteOnTermination: aws.Bool(true),
		}
		if k := d.String("kms_key"); k != "" {
			ebs.KmsKeyId = aws.String(k)
		}
		// Keep the image's root volume size. AWS would take it from the
		// image's snapshot when left out; moto's RunInstances insists on a
		// size or snapshot in the mapping.
		for _, m := range img.Images[0].BlockDeviceMappings {
			if aws.ToString(m.DeviceName) == root && m.Ebs != nil && m.Ebs.VolumeSize != nil {
				ebs.VolumeSize = m.Ebs.VolumeSize
			}
		}
		data.BlockDeviceMappings = []types.LaunchTemplateBlockDeviceMappingRequest{{DeviceName: aws.String(root), Ebs: ebs}}
	}
	return data, nil
}

func (t LaunchTemplate) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	c := ec2Client(env, d.Region)
	in := &ec2.DescribeLaunchTemplatesInput{}
	if prior != nil && prior.PhysicalID != "" {
		in.LaunchTemplateIds = []string{prior.PhysicalID}
	} else {
		in.LaunchTemplateNames = []string{d.String("name")}
	}
	out, err := c.DescribeLaunchTemplates(ctx, in)
	if engine.IsCode(err, "InvalidLaunchTemplateName.NotFoundException", "InvalidLaunchTemplateId.NotFound", "InvalidLaunchTemplateId.Malformed", "InvalidLaunchTemplateName.NotFound") {
		return nil, engine.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("describe launch templates: %w", err)
	}
	if len(out.LaunchTemplates) == 0 {
		return nil, engine.ErrNotFound
	}
	lt := out.LaunchTemplates[0]
	id := aws.ToString(lt.LaunchTemplateId)
	vers, err := c.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(id), Versions: []string{"$Default"}})
	if err != nil {
		return nil, fmt.Errorf("describe default version of %s: %w", id, err)
	}
	if len(vers.LaunchTemplateVersions) == 0 {
		return nil, fmt.Errorf("launch template %s has no default version", id)
	}
	data := vers.LaunchTemplateVersions[0].LaunchTemplateData
	live := &engine.Live{
		PhysicalID: id,
		Region:     d.Region,
		Outputs: map[string]string{
			"id":              id,
			"name":            aws.ToString(lt.LaunchTemplateName),
			"latest_version":  strconv.FormatInt(aws.ToInt64(lt.LatestVersionNumber), 10),
			"default_version": strconv.FormatInt(aws.ToInt64(lt.DefaultVersionNumber), 10),
		},
		Fields: map[string]any{
			"name":             aws.ToString(lt.LaunchTemplateName),
			"ami":              aws.ToString(data.ImageId),
			"instance_type":    string(data.InstanceType),
			"security_groups":  inDesiredOrder(data.SecurityGroupIds, d.Strings("security_groups")),
			"imds_v2_required": data.MetadataOptions != nil && data.MetadataOptions.HttpTokens == types.LaunchTemplateHttpTokensStateRequired,
			"ebs_encrypted":    false,
		},
		Tags: ec2TagMap(lt.Tags),
	}
	if p := data.IamInstanceProfile; p != nil {
		if strings.HasPrefix(d.String("instance_profile"), "arn:") || p.Name == nil {
			live.Fields["instance_profile"] = aws.ToString(p.Arn)
		} else {
			live.Fields["instance_profile"] = aws.ToString(p.Name)
		}
	} else {
		live.Fields["instance_profile"] = ""
	}
	if d.Has("kms_key") {
		live.Fields["kms_key"] = ""
	}
	for _, m := range data.BlockDeviceMappings {
		if m.Ebs == nil {
			continue
		}
		live.Fields["ebs_encrypted"] = aws.ToBool(m.Ebs.Encrypted)
		if d.Has("kms_key") {
			live.Fields["kms_key"] = aws.ToString(m.Ebs.KmsKeyId)
		}
	}
	return live, nil
}

func (t LaunchTemplate) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	c := ec2Client(env, d.Region)
	data, err := t.data(ctx, c, d)
	if err != nil {
		return nil, err
	}
	name := d.String("name")
	out, err := c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String(name),
		LaunchTemplateData: data,
		ClientToken:        aws.String(clientToken(env, d.ID, "launch-template", name)),
		VersionDescription: aws.String(env.Stack.Version),
		TagSpecifications:  ec2TagSpecs(types.ResourceTypeLaunchTemplate, d.Tags, ""),
	})
	if err != nil {
		return nil, fmt.Errorf("create launch template %s: %w", name, err)
	}
	id := aws.ToString(out.LaunchTemplate.LaunchTemplateId)
	env.Logf("created launch template %s (%s)", id, name)
	return t.Read(ctx, env, d, &engine.Prior{PhysicalID: id, Region: d.Region})
}

func (t LaunchTemplate) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	c := ec2Client(env, d.Region)
	id := live.PhysicalID
	settings := false
	for _, ch := range changes {
		if ch.Path == "tags" {
			if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: ec2Tags(d.Tags, "")}); err != nil {
				return nil, fmt.Errorf("tag launch template %s: %w", id, err)
			}
		} else {
			settings = true
		}
	}
	if settings {
		data, err := t.data(ctx, c, d)
		if err != nil {
			return nil, err
		}
		// The token covers the settings: a retry sends the same one, and
		// AWS answers with the version the first attempt made.
		spec, err := json.Marshal(data)
		if err != nil {
			return nil, fmt.Errorf("launch template %s: %w", id, err)
		}
		out, err := c.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{
			LaunchTemplateId:   aws.String(id),
			LaunchTemplateData: data,
			ClientToken:        aws.String(clientToken(env, d.ID, "version", id, string(spec))),
			VersionDescription: aws.String(env.Stack.Version),
		})
		if err != nil {
			return nil, fmt.Errorf("create version of launch template %s: %w", id, err)
		}
		v := strconv.FormatInt(aws.ToInt64(out.LaunchTemplateVersion.VersionNumber), 10)
		if _, err := c.ModifyLaunchTemplate(ctx, &ec2.ModifyLaunchTemplateInput{LaunchTemplateId: aws.String(id), DefaultVersion: aws.String(v)}); err != nil {
			return nil, fmt.Errorf("make version %s the default of %s: %w", v, id, err)
		}
		env.Logf("launch template %s: version %s is the default", id, v)
	}
	return t.Read(ctx, env, d, &engine.Prior{PhysicalID: id, Region: d.Region})
}

func (LaunchTemplate) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := ec2Client(env, live.Region)
	_, err := c.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateId: aws.String(live.PhysicalID)})
	if err != nil && !engine.IsCode(err, "InvalidLaunchTemplateId.NotFound", "InvalidLaunchTemplateName.NotFoundException") {
		return fmt.Errorf("delete launch template %s: %w", live.PhysicalID, err)
	}
	env.Logf("deleted launch template %s", live.PhysicalID)
	return nil
}
