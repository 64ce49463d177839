package drivers

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"portal/internal/engine"
)

func elbClient(env *engine.Env, region string) *elb.Client {
	return elb.NewFromConfig(env.Config(region))
}

func elbTags(tags map[string]string) []types.Tag {
	out := make([]types.Tag, 0, len(tags))
	for _, k := range sortedKeys(tags) {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

func elbTagsOf(ctx context.Context, c *elb.Client, arn string) (map[string]string, error) {
	out, err := c.DescribeTags(ctx, &elb.DescribeTagsInput{ResourceArns: []string{arn}})
	if err != nil {
		return nil, fmt.Errorf("describe tags of %s: %w", arn, err)
	}
	tags := map[string]string{}
	for _, d := range out.TagDescriptions {
		for _, t := range d.Tags {
			tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	return tags, nil
}

func elbAddTags(ctx context.Context, c *elb.Client, arn string, tags map[string]string) error {
	if _, err := c.AddTags(ctx, &elb.AddTagsInput{ResourceArns: []string{arn}, Tags: elbTags(tags)}); err != nil {
		return fmt.Errorf("tag %s: %w", arn, err)
	}
	return nil
}

// arnSuffix returns what follows marker in arn: CloudWatch's
// LoadBalancer dimension is the part after "loadbalancer/" ("app/<name>/<id>"),
// its TargetGroup dimension the part after the last ":" ("targetgroup/<name>/<id>").
func arnSuffix(arn, marker string) string {
	if i := strings.LastIndex(arn, marker); i >= 0 {
		return arn[i+len(marker):]
	}
	return arn
}

// ---------------------------------------------------------------- alb

// ALB manages an application load balancer in a VPC's subnets of one tier.
//
// Fields: name, internal, vpc, subnet_tier, security_groups.
// Outputs: arn, id ("app/<name>/<id>", CloudWatch's LoadBalancer
// dimension), name, dns_name, zone_id (canonical hosted zone, for Route 53
// alias records).
type ALB struct{}

func (ALB) Type() string { return "alb" }

// ForceNew: AWS cannot rename a load balancer, change its scheme or move it
// to another VPC.
func (ALB) ForceNew() []string { return []string{"name", "internal", "vpc"} }

func (a ALB) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	c := elbClient(env, d.Region)
	in := &elb.DescribeLoadBalancersInput{}
	if prior != nil && prior.PhysicalID != "" {
		in.LoadBalancerArns = []string{prior.PhysicalID}
	} else {
		in.Names = []string{d.String("name")}
	}
	out, err := c.DescribeLoadBalancers(ctx, in)
	if engine.IsCode(err, "LoadBalancerNotFound") {
		return nil, engine.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("describe load balancers: %w", err)
	}
	if len(out.LoadBalancers) == 0 {
		return nil, engine.ErrNotFound
	}
	lb := out.LoadBalancers[0]
	arn := aws.ToString(lb.LoadBalancerArn)
	var subnets []string
	for _, z := range lb.AvailabilityZones {
		subnets = append(subnets, aws.ToString(z.SubnetId))
	}
	vpc := aws.ToString(lb.VpcId)
	tier, err := subnetTier(ctx, env, d.Region, vpc, subnets, d.String("subnet_tier"))
	if err != nil {
		return nil, err
	}
	tags, err := elbTagsOf(ctx, c, arn)
	if err != nil {
		return nil, err
	}
	return &engine.Live{
		PhysicalID: arn,
		Region:     d.Region,
		Outputs: map[string]string{
			"arn":      arn,
			"id":       arnSuffix(arn, ":loadbalancer/"),
			"name":     aws.ToString(lb.LoadBalancerName),
			"dns_name": aws.ToString(lb.DNSName),
			"zone_id":  aws.ToString(lb.CanonicalHostedZoneId),
		},
		Fields: map[string]any{
			"name":            aws.ToString(lb.LoadBalancerName),
			"internal":        lb.Scheme == types.LoadBalancerSchemeEnumInternal,
			"vpc":             vpc,
			"subnet_tier":     tier,
			"security_groups": inDesiredOrder(lb.SecurityGroups, d.Strings("security_groups")),
		},
		Tags: tags,
	}, nil
}

func (a ALB) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	if d.Has("access_logs_bucket") {
		return nil, fmt.Errorf("alb %s: access_logs_bucket is not supported by this driver yet", d.ID)
	}
	c := elbClient(env, d.Region)
	subnets, err := subnetsByTier(ctx, env, d.Region, d.String("vpc"), d.String("subnet_tier"))
	if err != nil {
		return nil, err
	}
	scheme := types.LoadBalancerSchemeEnumInternetFacing
	if d.Bool("internal") {
		scheme = types.LoadBalancerSchemeEnumInternal
	}
	name := d.String("name")
	// CreateLoadBalancer takes no token but is idempotent by name: a retry
	// with the same settings returns the first load balancer.
	out, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{
		Name:           aws.String(name),
		Type:           types.LoadBalancerTypeEnumApplication,
		Scheme:         scheme,
		IpAddressType:  types.IpAddressTypeIpv4,
		Subnets:        subnets,
		SecurityGroups: d.Strings("security_groups"),
		Tags:           elbTags(d.Tags),
	})
	if err != nil {
		return nil, fmt.Errorf("create load balancer %s: %w", name, err)
	}
	arn := aws.ToString(out.LoadBalancers[0].LoadBalancerArn)
	env.Logf("created load balancer %s (%s)", name, scheme)
	if err := elb.NewLoadBalancerAvailableWaiter(c).Wait(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerArns: []string{arn}}, 15*time.Minute); err != nil {
		return nil, fmt.Errorf("wait for load balancer %s to be active: %w", name, err)
	}
	return a.Read(ctx, env, d, &engine.Prior{PhysicalID: arn, Region: d.Region})
}

func (a ALB) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	c := elbClient(env, d.Region)
	arn := live.PhysicalID
	for _, ch := range changes {
		switch ch.Path {
		case "security_groups":
			if _, err := c.SetSecurityGroups(ctx, &elb.SetSecurityGroupsInput{LoadBalancerArn: aws.String(arn), SecurityGroups: d.Strings("security_groups")}); err != nil {
				return nil, fmt.Errorf("set security groups of %s: %w", arn, err)
			}
		case "subnet_tier":
			subnets, err := subnetsByTier(ctx, env, d.Region, d.String("vpc"), d.String("subnet_tier"))
			if err != nil {
				return nil, err
			}
			if _, err := c.SetSubnets(ctx, &elb.SetSubnetsInput{LoadBalancerArn: aws.String(arn), Subnets: subnets}); err != nil {
				return nil, fmt.Errorf("set subnets of %s: %w", arn, err)
			}
		case "tags":
			if err := elbAddTags(ctx, c, arn, d.Tags); err != nil {
				return nil, err
			}
		}
	}
	env.Logf("updated load balancer %s (%s)", live.Outputs["name"], strings.Join(changePathList(changes), ", "))
	if err := elb.NewLoadBalancerAvailableWaiter(c).Wait(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerArns: []string{arn}}, 15*time.Minute); err != nil {
		return nil, fmt.Errorf("wait for load balancer %s to be active: %w", arn, err)
	}
	return a.Read(ctx, env, d, &engine.Prior{PhysicalID: arn, Region: d.Region})
}

// Delete removes the load balancer (and with it its listeners) and waits
// until it is gone.
func (ALB) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := elbClient(env, live.Region)
	_, err := c.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: aws.String(live.PhysicalID)})
	if engine.IsCode(err, "LoadBalancerNotFound") {
		return nil
	} else if err != nil {
		return fmt.Errorf("delete load balancer %s: %w", live.PhysicalID, err)
	}
	if err := elb.NewLoadBalancersDeletedWaiter(c).Wait(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerArns: []string{live.PhysicalID}}, 15*time.Minute); err != nil && !engine.IsCode(err, "LoadBalancerNotFound") {
		return fmt.Errorf("wait for load balancer %s to be deleted: %w", live.PhysicalID, err)
	}
	env.Logf("deleted load balancer %s", live.PhysicalID)
	return nil
}

// ---------------------------------------------------------------- target_group

// TargetGroup manages an instance target group with an HTTP(S) health
// check.
//
// Fields: name, vpc, port, protocol, health_check_path.
// Outputs: arn, id ("targetgroup/<name>/<id>", CloudWatch's TargetGroup
// dimension), name.
type TargetGroup struct{}

func (TargetGroup) Type() string       { return "target_group" }
func (TargetGroup) ForceNew() []string { return []string{"name", "vpc", "port", "protocol"} }

func (g TargetGroup) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	c := elbClient(env, d.Region)
	in := &elb.DescribeTargetGroupsInput{}
	if prior != nil && prior.PhysicalID != "" {
		in.TargetGroupArns = []string{prior.PhysicalID}
	} else {
		in.Names = []string{d.String("name")}
	}
	out, err := c.DescribeTargetGroups(ctx, in)
	if engine.IsCode(err, "TargetGroupNotFound") {
		return nil, engine.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("describe target groups: %w", err)
	}
	if len(out.TargetGroups) == 0 {
		return nil, engine.ErrNotFound
	}
	tg := out.TargetGroups[0]
	arn := aws.ToString(tg.TargetGroupArn)
	tags, err := elbTagsOf(ctx, c, arn)
	if err != nil {
		return nil, err
	}
	return &engine.Live{
		PhysicalID: arn,
		Region:     d.Region,
		Outputs:    map[string]string{"arn": arn, "id": arnSuffix(arn, ":"), "name": aws.ToString(tg.TargetGroupName)},
		Fields: map[string]any{
			"name":              aws.ToString(tg.TargetGroupName),
			"vpc":               aws.ToString(tg.VpcId),
			"port":              int64(aws.ToInt32(tg.Port)),
			"protocol":          string(tg.Protocol),
			"health_check_path": aws.ToString(tg.HealthCheckPath),
		},
		Tags: tags,
	}, nil
}

func (g TargetGroup) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	c := elbClient(env, d.Region)
	name := d.String("name")
	proto := types.ProtocolEnum(d.String("protocol"))
	in := &elb.CreateTargetGroupInput{
		Name:                aws.String(name),
		Protocol:            proto,
		Port:                aws.Int32(int32(d.Int("port"))),
		VpcId:               aws.String(d.String("vpc")),
		TargetType:          types.TargetTypeEnumInstance,
		HealthCheckEnabled:  aws.Bool(true),
		HealthCheckProtocol: proto,
		Tags:                elbTags(d.Tags),
	}
	if p := d.String("health_check_path"); p != "" {
		in.HealthCheckPath = aws.String(p)
	}
	// Idempotent by name: a retry with the same settings returns the first
	// group.
	out, err := c.CreateTargetGroup(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("create target group %s: %w", name, err)
	}
	arn := aws.ToString(out.TargetGroups[0].TargetGroupArn)
	env.Logf("created target group %s (%s:%d)", name, proto, d.Int("port"))
	return g.Read(ctx, env, d, &engine.Prior{PhysicalID: arn, Region: d.Region})
}

func (g TargetGroup) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	c := elbClient(env, d.Region)
	arn := live.PhysicalID
	for _, ch := range changes {
		switch ch.Path {
		case "health_check_path":
			if _, err := c.ModifyTargetGroup(ctx, &elb.ModifyTargetGroupInput{TargetGroupArn: aws.String(arn), HealthCheckPath: aws.String(d.String("health_check_path"))}); err != nil {
				return nil, fmt.Errorf("modify target group %s: %w", arn, err)
			}
			env.Logf("target group %s health check now %s", live.Outputs["name"], d.String("health_check_path"))
		case "tags":
			if err := elbAddTags(ctx, c, arn, d.Tags); err != nil {
				return nil, err
			}
		}
	}
	return g.Read(ctx, env, d, &engine.Prior{PhysicalID: arn, Region: d.Region})
}

func (TargetGroup) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := elbClient(env, live.Region)
	err := retryDependency(ctx, 5*time.Minute, func() error {
		_, err := c.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: aws.String(live.PhysicalID)})
		return err
	})
	if err != nil && !engine.IsCode(err, "TargetGroupNotFound") {
		return fmt.Errorf("delete target group %s (still used by a listener?): %w", live.PhysicalID, err)
	}
	env.Logf("deleted target group %s", live.PhysicalID)
	return nil
}

// ---------------------------------------------------------------- listener

// Listener manages a load balancer listener forwarding to a target group
// (or, with redirect_to_https, redirecting to HTTPS). An HTTPS listener's
// certificate must exist in ACM (or IAM) in the load balancer's account and
// region; AWS, and moto like it, refuse an unknown one.
//
// Fields: load_balancer, port, protocol, certificate, ssl_policy,
// default_target_group, redirect_to_https. Outputs: arn, id.
type Listener struct{}

func (Listener) Type() string       { return "listener" }
func (Listener) ForceNew() []string { return []string{"load_balancer"} }

func (l Listener) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	c := elbClient(env, d.Region)
	var ls []types.Listener
	if prior != nil && prior.PhysicalID != "" {
		out, err := c.DescribeListeners(ctx, &elb.DescribeListenersInput{ListenerArns: []string{prior.PhysicalID}})
		if engine.IsCode(err, "ListenerNotFound", "LoadBalancerNotFound") {
			return nil, engine.ErrNotFound
		} else if err != nil {
			return nil, fmt.Errorf("describe listener %s: %w", prior.PhysicalID, err)
		}
		ls = out.Listeners
	} else {
		lb := d.String("load_balancer")
		if !known(lb) {
			return nil, engine.ErrNotFound
		}
		out, err := c.DescribeListeners(ctx, &elb.DescribeListenersInput{LoadBalancerArn: aws.String(lb)})
		if engine.IsCode(err, "LoadBalancerNotFound", "ListenerNotFound") {
			return nil, engine.ErrNotFound
		} else if err != nil {
			return nil, fmt.Errorf("describe listeners of %s: %w", lb, err)
		}
		// A load balancer has one listener per port.
		for _, x := range out.Listeners {
			if int64(aws.ToInt32(x.Port)) == d.Int("port") {
				ls = append(ls, x)
			}
		}
	}
	if len(ls) == 0 {
		return nil, engine.ErrNotFound
	}
	x := ls[0]
	arn := aws.ToString(x.ListenerArn)
	cert := ""
	if len(x.Certificates) > 0 {
		cert = aws.ToString(x.Certificates[0].CertificateArn)
	}
	tg, redirect := "", false
	for _, a := range x.DefaultActions {
		switch a.Type {
		case types.ActionTypeEnumForward:
			tg = aws.ToString(a.TargetGroupArn)
			if tg == "" && a.ForwardConfig != nil && len(a.ForwardConfig.TargetGroups) > 0 {
				tg = aws.ToString(a.ForwardConfig.TargetGroups[0].TargetGroupArn)
			}
		case types.ActionTypeEnumRedirect:
			redirect = a.RedirectConfig != nil && aws.ToString(a.RedirectConfig.Protocol) == "HTTPS"
		}
	}
	tags, err := elbTagsOf(ctx, c, arn)
	if err != nil {
		return nil, err
	}
	return &engine.Live{
		PhysicalID: arn,
		Region:     d.Region,
		Outputs:    map[string]string{"arn": arn, "id": arn},
		Fields: map[string]any{
			"load_balancer":        aws.ToString(x.LoadBalancerArn),
			"port":                 int64(aws.ToInt32(x.Port)),
			"protocol":             string(x.Protocol),
			"certificate":          cert,
			"ssl_policy":           aws.ToString(x.SslPolicy),
			"default_target_group": tg,
			"redirect_to_https":    redirect,
		},
		Tags: tags,
	}, nil
}

func (Listener) actions(d *engine.Desired) ([]types.Action, error) {
	if d.Bool("redirect_to_https") {
		return []types.Action{{Type: types.ActionTypeEnumRedirect, RedirectConfig: &types.RedirectActionConfig{
			Protocol: aws.String("HTTPS"), Port: aws.String("443"), StatusCode: types.RedirectActionStatusCodeEnumHttp301,
		}}}, nil
	}
	tg := d.String("default_target_group")
	if tg == "" {
		return nil, fmt.Errorf("listener %s: needs default_target_group or redirect_to_https", d.ID)
	}
	return []types.Action{{Type: types.ActionTypeEnumForward, TargetGroupArn: aws.String(tg)}}, nil
}

// certError says plainly that a listener's certificate does not exist
// where the load balancer is, instead of AWS's bare CertificateNotFound.
func (Listener) certError(env *engine.Env, d *engine.Desired, op string, err error) error {
	if engine.IsCode(err, "CertificateNotFound") {
		return fmt.Errorf("%s listener on port %d: certificate %s does not exist in account %s, region %s: request or import it in ACM there first (%s)",
			op, d.Int("port"), d.String("certificate"), env.Stack.AccountID, d.Region, engine.Explain(err))
	}
	return fmt.Errorf("%s listener on port %d: %w", op, d.Int("port"), err)
}

func (l Listener) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	c := elbClient(env, d.Region)
	actions, err := l.actions(d)
	if err != nil {
		return nil, err
	}
	proto := types.ProtocolEnum(d.String("protocol"))
	in := &elb.CreateListenerInput{
		LoadBalancerArn: aws.String(d.String("load_balancer")),
		Port:            aws.Int32(int32(d.Int("port"))),
		Protocol:        proto,
		DefaultActions:  actions,
		Tags:            elbTags(d.Tags),
	}
	if proto == types.ProtocolEnumHttps {
		if d.String("certificate") == "" {
			return nil, fmt.Errorf("listener %s: an HTTPS listener needs a certificate", d.ID)
		}
		in.Certificates = []types.Certificate{{CertificateArn: aws.String(d.String("certificate"))}}
		if p := d.String("ssl_policy"); p != "" {
			in.SslPolicy = aws.String(p)
		}
	}
	// Idempotent: a retry with the same settings returns the first listener.
	out, err := c.CreateListener(ctx, in)
	if err != nil {
		return nil, l.certError(env, d, "create", err)
	}
	arn := aws.ToString(out.Listeners[0].ListenerArn)
	env.Logf("created %s listener on port %d", proto, d.Int("port"))
	return l.Read(ctx, env, d, &engine.Prior{PhysicalID: arn, Region: d.Region})
}

func (l Listener) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	c := elbClient(env, d.Region)
	arn := live.PhysicalID
	settings := false
	for _, ch := range changes {
		if ch.Path == "tags" {
			if err := elbAddTags(ctx, c, arn, d.Tags); err != nil {
				return nil, err
			}
		} else {
			settings = true
		}
	}
	if settings {
		actions, err := l.actions(d)
		if err != nil {
			return nil, err
		}
		proto := types.ProtocolEnum(d.String("protocol"))
		in := &elb.ModifyListenerInput{
			ListenerArn:    aws.String(arn),
			Port:           aws.Int32(int32(d.Int("port"))),
			Protocol:       proto,
			DefaultActions: actions,
		}
		if proto == types.ProtocolEnumHttps {
			in.Certificates = []types.Certificate{{CertificateArn: aws.String(d.String("certificate"))}}
			if p := d.String("ssl_policy"); p != "" {
				in.SslPolicy = aws.String(p)
			}
		}
		if _, err := c.ModifyListener(ctx, in); err != nil {
			return nil, l.certError(env, d, "modify", err)
		}
		env.Logf("updated listener on port %d (%s)", d.Int("port"), strings.Join(changePathList(changes), ", "))
	}
	return l.Read(ctx, env, d, &engine.Prior{PhysicalID: arn, Region: d.Region})
}

func (Listener) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := elbClient(env, live.Region)
	_, err := c.DeleteListener(ctx, &elb.DeleteListenerInput{ListenerArn: aws.String(live.PhysicalID)})
	if err != nil && !engine.IsCode(err, "ListenerNotFound") {
		return fmt.Errorf("delete listener %s: %w", live.PhysicalID, err)
	}
	env.Logf("deleted listener %s", live.PhysicalID)
	return nil
}
