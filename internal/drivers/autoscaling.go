package drivers

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"portal/internal/engine"
)

func asClient(env *engine.Env, region string) *autoscaling.Client {
	return autoscaling.NewFromConfig(env.Config(region))
}

// asgMissing reports the error Auto Scaling gives for a group that does
// not exist (a ValidationError, not a code of its own).
func asgMissing(err error) bool {
	return engine.IsCode(err, "ValidationError") && strings.Contains(strings.ToLower(engine.Explain(err)), "not found")
}

// ---------------------------------------------------------------- autoscaling_group

// AutoScalingGroup manages an Auto Scaling group launching the default
// version of a launch template into a VPC's subnets of one tier, registered
// with target groups. Create and Update return once the desired number of
// instances is InService.
//
// Fields: name, launch_template (id), vpc, subnet_tier, target_groups,
// min, desired, max, health_check_type. Outputs: name, arn.
type AutoScalingGroup struct{}

func (AutoScalingGroup) Type() string       { return "autoscaling_group" }
func (AutoScalingGroup) ForceNew() []string { return []string{"name"} }

func (g AutoScalingGroup) describe(ctx context.Context, c *autoscaling.Client, name string) (*types.AutoScalingGroup, error) {
	out, err := c.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
	if err != nil {
		return nil, fmt.Errorf("describe auto scaling group %s: %w", name, err)
	}
	if len(out.AutoScalingGroups) == 0 {
		return nil, engine.ErrNotFound
	}
	return &out.AutoScalingGroups[0], nil
}

func (g AutoScalingGroup) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	c := asClient(env, d.Region)
	name := d.String("name")
	if prior != nil && prior.PhysicalID != "" {
		name = prior.PhysicalID
	}
	asg, err := g.describe(ctx, c, name)
	if err != nil {
		return nil, err
	}
	var subnets []string
	for _, s := range strings.Split(aws.ToString(asg.VPCZoneIdentifier), ",") {
		if s = strings.TrimSpace(s); s != "" {
			subnets = append(subnets, s)
		}
	}
	vpc, tier := "", ""
	if len(subnets) > 0 {
		out, err := ec2Client(env, d.Region).DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: subnets[:1]})
		if err != nil {
			return nil, fmt.Errorf("describe subnet %s of %s: %w", subnets[0], name, err)
		}
		if len(out.Subnets) > 0 {
			vpc = aws.ToString(out.Subnets[0].VpcId)
		}
		if tier, err = subnetTier(ctx, env, d.Region, vpc, subnets, d.String("subnet_tier")); err != nil {
			return nil, err
		}
	}
	lt := ""
	if asg.LaunchTemplate != nil {
		lt = aws.ToString(asg.LaunchTemplate.LaunchTemplateId)
	}
	tags := map[string]string{}
	for _, t := range asg.Tags {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return &engine.Live{
		PhysicalID: name,
		Region:     d.Region,
		Outputs:    map[string]string{"name": name, "arn": aws.ToString(asg.AutoScalingGroupARN)},
		Fields: map[string]any{
			"name":              name,
			"launch_template":   lt,
			"vpc":               vpc,
			"subnet_tier":       tier,
			"target_groups":     inDesiredOrder(asg.TargetGroupARNs, d.Strings("target_groups")),
			"min":               int64(aws.ToInt32(asg.MinSize)),
			"desired":           int64(aws.ToInt32(asg.DesiredCapacity)),
			"max":               int64(aws.ToInt32(asg.MaxSize)),
			"health_check_type": aws.ToString(asg.HealthCheckType),
		},
		Tags: tags,
	}, nil
}

func asgTags(name string, tags map[string]string) []types.Tag {
	out := make([]types.Tag, 0, len(tags))
	for _, k := range sortedKeys(tags) {
		out = append(out, types.Tag{
			Key: aws.String(k), Value: aws.String(tags[k]), PropagateAtLaunch: aws.Bool(true),
			ResourceId: aws.String(name), ResourceType: aws.String("auto-scaling-group"),
		})
	}
	return out
}

func (g AutoScalingGroup) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	c := asClient(env, d.Region)
	name := d.String("name")
	subnets, err := subnetsByTier(ctx, env, d.Region, d.String("vpc"), d.String("subnet_tier"))
	if err != nil {
		return nil, err
	}
	in := &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(name),
		LaunchTemplate: &types.LaunchTemplateSpecification{
			LaunchTemplateId: aws.String(d.String("launch_template")),
			Version:          aws.String("$Default"),
		},
		VPCZoneIdentifier:      aws.String(strings.Join(subnets, ",")),
		TargetGroupARNs:        d.Strings("target_groups"),
		MinSize:                aws.Int32(int32(d.Int("min"))),
		MaxSize:                aws.Int32(int32(d.Int("max"))),
		DesiredCapacity:        aws.Int32(int32(d.Int("desired"))),
		HealthCheckGracePeriod: aws.Int32(300),
		Tags:                   asgTags(name, d.Tags),
	}
	if h := d.String("health_check_type"); h != "" {
		in.HealthCheckType = aws.String(h)
	}
	// No idempotency token: the name is the key, and a retry after a crash
	// finds the first attempt's group.
	if _, err := c.CreateAutoScalingGroup(ctx, in); err != nil {
		if !engine.IsCode(err, "AlreadyExists") {
			return nil, fmt.Errorf("create auto scaling group %s: %w", name, err)
		}
		if cur, rerr := g.Read(ctx, env, d, nil); rerr != nil || !cur.OwnedBy(env.Stack.ID) {
			return nil, fmt.Errorf("create auto scaling group %s: the name is taken by a group stack %s does not own", name, env.Stack.ID)
		}
	} else {
		env.Logf("created auto scaling group %s (%d..%d, desired %d)", name, d.Int("min"), d.Int("max"), d.Int("desired"))
	}
	if err := g.waitInService(ctx, c, env, name); err != nil {
		return nil, err
	}
	return g.Read(ctx, env, d, &engine.Prior{PhysicalID: name, Region: d.Region})
}

// waitInService polls until as many instances are InService as the group
// desires.
func (g AutoScalingGroup) waitInService(ctx context.Context, c *autoscaling.Client, env *engine.Env, name string) error {
	deadline := time.Now().Add(20 * time.Minute)
	delay := 2 * time.Second
	for {
		asg, err := g.describe(ctx, c, name)
		if err != nil {
			return err
		}
		in := 0
		for _, i := range asg.Instances {
			if i.LifecycleState == types.LifecycleStateInService {
				in++
			}
		}
		want := int(aws.ToInt32(asg.DesiredCapacity))
		if in >= want {
			env.Logf("auto scaling group %s: %d of %d instances in service", name, in, want)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("auto scaling group %s: %d of %d instances in service after 20 minutes (see its scaling activities)", name, in, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 30*time.Second)
	}
}

func (g AutoScalingGroup) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	c := asClient(env, d.Region)
	name := live.PhysicalID
	in := &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String(name)}
	update := false
	for _, ch := range changes {
		switch ch.Path {
		case "min", "max", "desired":
			in.MinSize = aws.Int32(int32(d.Int("min")))
			in.MaxSize = aws.Int32(int32(d.Int("max")))
			in.DesiredCapacity = aws.Int32(int32(d.Int("desired")))
			update = true
		case "health_check_type":
			in.HealthCheckType, update = aws.String(d.String("health_check_type")), true
		case "launch_template":
			in.LaunchTemplate = &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String(d.String("launch_template")), Version: aws.String("$Default")}
			update = true
		case "vpc", "subnet_tier":
			subnets, err := subnetsByTier(ctx, env, d.Region, d.String("vpc"), d.String("subnet_tier"))
			if err != nil {
				return nil, err
			}
			in.VPCZoneIdentifier, update = aws.String(strings.Join(subnets, ",")), true
		case "target_groups":
			if err := g.retarget(ctx, c, name, live, d); err != nil {
				return nil, err
			}
		case "tags":
			if _, err := c.CreateOrUpdateTags(ctx, &autoscaling.CreateOrUpdateTagsInput{Tags: asgTags(name, d.Tags)}); err != nil {
				return nil, fmt.Errorf("tag auto scaling group %s: %w", name, err)
			}
		}
	}
	if update {
		if _, err := c.UpdateAutoScalingGroup(ctx, in); err != nil {
			return nil, fmt.Errorf("update auto scaling group %s: %w", name, err)
		}
		env.Logf("updated auto scaling group %s (%s)", name, strings.Join(changePathList(changes), ", "))
	}
	if err := g.waitInService(ctx, c, env, name); err != nil {
		return nil, err
	}
	return g.Read(ctx, env, d, &engine.Prior{PhysicalID: name, Region: d.Region})
}

// retarget attaches the target groups d adds and detaches those it drops.
func (AutoScalingGroup) retarget(ctx context.Context, c *autoscaling.Client, name string, live *engine.Live, d *engine.Desired) error {
	have := map[string]bool{}
	if l, ok := live.Fields["target_groups"].([]any); ok {
		for _, e := range l {
			have[toString(e)] = true
		}
	}
	want := map[string]bool{}
	var attach, detach []string
	for _, tg := range d.Strings("target_groups") {
		want[tg] = true
		if !have[tg] {
			attach = append(attach, tg)
		}
	}
	for tg := range have {
		if !want[tg] {
			detach = append(detach, tg)
		}
	}
	if len(attach) > 0 {
		if _, err := c.AttachLoadBalancerTargetGroups(ctx, &autoscaling.AttachLoadBalancerTargetGroupsInput{AutoScalingGroupName: aws.String(name), TargetGroupARNs: attach}); err != nil {
			return fmt.Errorf("attach target groups to %s: %w", name, err)
		}
	}
	if len(detach) > 0 {
		if _, err := c.DetachLoadBalancerTargetGroups(ctx, &autoscaling.DetachLoadBalancerTargetGroupsInput{AutoScalingGroupName: aws.String(name), TargetGroupARNs: detach}); err != nil {
			return fmt.Errorf("detach target groups from %s: %w", name, err)
		}
	}
	return nil
}

// Delete terminates the group's instances with it and waits until the
// group is gone.
func (AutoScalingGroup) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := asClient(env, live.Region)
	name := live.PhysicalID
	// Scale to zero first and wait, so the instances are terminated before
	// the group goes (ForceDelete alone leaves that to AWS, and moto
	// leaves them running).
	if _, err := c.UpdateAutoScalingGroup(ctx, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String(name),
		MinSize: aws.Int32(0), DesiredCapacity: aws.Int32(0)}); asgMissing(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("scale auto scaling group %s to zero: %w", name, err)
	}
	if err := waitNoInstances(ctx, c, name); err != nil {
		return err
	}
	_, err := c.DeleteAutoScalingGroup(ctx, &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String(name), ForceDelete: aws.Bool(true)})
	if asgMissing(err) {
		return nil
	} else if err != nil && !engine.IsCode(err, "ScalingActivityInProgress") {
		return fmt.Errorf("delete auto scaling group %s: %w", name, err)
	}
	if err := autoscaling.NewGroupNotExistsWaiter(c).Wait(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}}, 20*time.Minute); err != nil {
		return fmt.Errorf("wait for auto scaling group %s to be deleted: %w", name, err)
	}
	env.Logf("deleted auto scaling group %s and its instances", name)
	return nil
}

// waitNoInstances waits until group name has no instances left.
func waitNoInstances(ctx context.Context, c *autoscaling.Client, name string) error {
	deadline := time.Now().Add(20 * time.Minute)
	for {
		out, err := c.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
		if err != nil {
			return fmt.Errorf("describe auto scaling group %s: %w", name, err)
		}
		if len(out.AutoScalingGroups) == 0 || len(out.AutoScalingGroups[0].Instances) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("auto scaling group %s still has %d instances after 20 minutes", name, len(out.AutoScalingGroups[0].Instances))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// ---------------------------------------------------------------- scaling_policy

// ScalingPolicy manages a target-tracking scaling policy of an Auto
// Scaling group, named <stack>-<resource id>. Scaling policies take no
// tags: ownership is that of the group, together with the name.
// (moto stores the policy but creates none of the CloudWatch alarms AWS
// makes for it.)
//
// Fields: autoscaling_group, metric, target_value. Outputs: arn, name,
// autoscaling_group.
type ScalingPolicy struct{}

func (ScalingPolicy) Type() string       { return "scaling_policy" }
func (ScalingPolicy) ForceNew() []string { return []string{"autoscaling_group"} }

func (ScalingPolicy) name(env *engine.Env, d *engine.Desired) string {
	return env.Stack.ID + "-" + d.ID
}

func (p ScalingPolicy) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	c := asClient(env, d.Region)
	group := d.String("autoscaling_group")
	if prior != nil && prior.Outputs["autoscaling_group"] != "" {
		group = prior.Outputs["autoscaling_group"]
	}
	if !known(group) {
		return nil, engine.ErrNotFound
	}
	name := p.name(env, d)
	out, err := c.DescribePolicies(ctx, &autoscaling.DescribePoliciesInput{AutoScalingGroupName: aws.String(group), PolicyNames: []string{name}})
	if asgMissing(err) {
		return nil, engine.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("describe scaling policy %s of %s: %w", name, group, err)
	}
	if len(out.ScalingPolicies) == 0 {
		return nil, engine.ErrNotFound
	}
	sp := out.ScalingPolicies[0]
	metric, target := "", 0.0
	if tt := sp.TargetTrackingConfiguration; tt != nil {
		target = aws.ToFloat64(tt.TargetValue)
		if tt.PredefinedMetricSpecification != nil {
			metric = string(tt.PredefinedMetricSpecification.PredefinedMetricType)
		}
	}
	live := &engine.Live{
		PhysicalID: aws.ToString(sp.PolicyARN),
		Region:     d.Region,
		Outputs:    map[string]string{"arn": aws.ToString(sp.PolicyARN), "name": name, "autoscaling_group": group},
		Fields:     map[string]any{"autoscaling_group": group, "metric": metric, "target_value": target},
		Tags:       map[string]string{},
	}
	// The policy belongs to the stack that owns its group; its name says
	// which resource it is.
	asg, err := c.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{group}})
	if err != nil {
		return nil, fmt.Errorf("describe auto scaling group %s: %w", group, err)
	}
	if len(asg.AutoScalingGroups) == 0 {
		// AWS deletes a group's policies with it: a policy listed for a
		// group that is gone is none (an emulator may keep it).
		return nil, engine.ErrNotFound
	}
	for _, t := range asg.AutoScalingGroups[0].Tags {
		switch k := aws.ToString(t.Key); k {
		case engine.TagStack, engine.TagManaged, engine.TagVersion:
			live.Tags[k] = aws.ToString(t.Value)
		}
	}
	if live.Tags[engine.TagStack] == env.Stack.ID {
		live.Tags[engine.TagResource] = d.ID
	}
	return live, nil
}

func (p ScalingPolicy) put(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	c := asClient(env, d.Region)
	metric := types.MetricType(d.String("metric"))
	if metric == types.MetricTypeALBRequestCountPerTarget {
		return nil, fmt.Errorf("scaling_policy %s: ALBRequestCountPerTarget needs the load balancer and target group as a resource label, which the blueprint schema has no field for yet", d.ID)
	}
	group, name := d.String("autoscaling_group"), p.name(env, d)
	// PutScalingPolicy creates or replaces by name: repeating it is safe.
	out, err := c.PutScalingPolicy(ctx, &autoscaling.PutScalingPolicyInput{
		AutoScalingGroupName: aws.String(group),
		PolicyName:           aws.String(name),
		PolicyType:           aws.String("TargetTrackingScaling"),
		TargetTrackingConfiguration: &types.TargetTrackingConfiguration{
			PredefinedMetricSpecification: &types.PredefinedMetricSpecification{PredefinedMetricType: metric},
			TargetValue:                   aws.Float64(d.Float("target_value")),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("put scaling policy %s on %s: %w", name, group, err)
	}
	env.Logf("scaling policy %s: keep %s at %v (%d alarms)", name, metric, d.Float("target_value"), len(out.Alarms))
	return p.Read(ctx, env, d, &engine.Prior{PhysicalID: aws.ToString(out.PolicyARN), Region: d.Region, Outputs: map[string]string{"autoscaling_group": group}})
}

func (p ScalingPolicy) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	return p.put(ctx, env, d)
}

func (p ScalingPolicy) Update(ctx context.Context, env *engine.Env, d *engine.Desired, _ *engine.Live, _ []engine.FieldChange) (*engine.Live, error) {
	return p.put(ctx, env, d)
}

func (ScalingPolicy) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := asClient(env, live.Region)
	_, err := c.DeletePolicy(ctx, &autoscaling.DeletePolicyInput{
		AutoScalingGroupName: aws.String(live.Outputs["autoscaling_group"]),
		PolicyName:           aws.String(live.Outputs["name"]),
	})
	if err != nil && !asgMissing(err) {
		return fmt.Errorf("delete scaling policy %s: %w", live.Outputs["name"], err)
	}
	env.Logf("deleted scaling policy %s", live.Outputs["name"])
	return nil
}
