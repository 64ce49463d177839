package drivers_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"portal/internal/drivers"
	"portal/internal/engine"
)

// asgSetup is what an Auto Scaling group needs: a VPC, target groups and
// a launch template.
type asgSetup struct {
	*lbNetwork
	template *engine.Live
}

func makeASGSetup(t *testing.T, env *engine.Env, region string) asgSetup {
	t.Helper()
	n := makeLBNetwork(t, env, region)
	n.tg = create(t, env, drivers.TargetGroup{}, tgDesired(n, "app_tg", "medportal-dev-app"))
	n.tg2 = create(t, env, drivers.TargetGroup{}, tgDesired(n, "canary_tg", "medportal-dev-canary"))
	key := create(t, env, drivers.KMSKey{}, &engine.Desired{ID: "documents_key", Type: "kms_key", Region: region, Fields: map[string]any{"data_class": "documents", "rotation": true}})
	lt := create(t, env, drivers.LaunchTemplate{}, launchTemplateDesired(env, region, amazonLinux(t, env, region), []any{n.sg2}, key.Outputs["arn"]))
	return asgSetup{lbNetwork: n, template: lt}
}

func asgDesired(s asgSetup) *engine.Desired {
	return &engine.Desired{ID: "app_asg", Type: "autoscaling_group", Region: s.region, Fields: map[string]any{
		"name": "medportal-dev-app", "launch_template": s.template.Outputs["id"], "vpc": s.vpc.PhysicalID, "subnet_tier": "private",
		"target_groups": []any{s.tg.Outputs["arn"]}, "min": int64(1), "desired": int64(2), "max": int64(4), "health_check_type": "ELB",
	}}
}

func TestAutoScalingGroup(t *testing.T) {
	t.Parallel()
	forEachRegion(t, func(t *testing.T, region string) {
		ctx := context.Background()
		env := newEnv(t, region)
		s := makeASGSetup(t, env, region)
		drv := drivers.AutoScalingGroup{}
		lb := elb.NewFromConfig(env.Config(region))
		live := lifecycle(t, env, drv, asgDesired(s), func(d *engine.Desired) []string {
			// The instances are in service and in the target group.
			th, err := lb.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(s.tg.Outputs["arn"])})
			if err != nil {
				t.Fatal(err)
			}
			if len(th.TargetHealthDescriptions) != 2 {
				t.Errorf("target group has %d targets, want the 2 instances", len(th.TargetHealthDescriptions))
			}
			d.Fields["desired"] = 3
			d.Fields["max"] = 6
			d.Fields["target_groups"] = []any{s.tg2.Outputs["arn"], s.tg.Outputs["arn"]}
			return []string{"desired", "max", "target_groups"}
		})
		if live.Outputs["name"] != "medportal-dev-app" || live.Outputs["arn"] == "" {
			t.Errorf("outputs %v", live.Outputs)
		}
		th, err := lb.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(s.tg2.Outputs["arn"])})
		if err != nil {
			t.Fatal(err)
		}
		if len(th.TargetHealthDescriptions) != 3 {
			t.Errorf("the attached target group has %d targets, want 3", len(th.TargetHealthDescriptions))
		}
		// Delete took the instances with the group.
		out, err := autoscaling.NewFromConfig(env.Config(region)).DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.AutoScalingInstances) != 0 {
			t.Errorf("%d instances outlived the group", len(out.AutoScalingInstances))
		}
	})
}

func TestScalingPolicy(t *testing.T) {
	t.Parallel()
	forEachRegion(t, func(t *testing.T, region string) {
		ctx := context.Background()
		env := newEnv(t, region)
		s := makeASGSetup(t, env, region)
		asg := create(t, env, drivers.AutoScalingGroup{}, asgDesired(s))
		d := &engine.Desired{ID: "app_scaling", Type: "scaling_policy", Region: region, Fields: map[string]any{
			"autoscaling_group": asg.Outputs["name"], "metric": "ASGAverageCPUUtilization", "target_value": int64(60),
		}}
		live := lifecycle(t, env, drivers.ScalingPolicy{}, d, func(d *engine.Desired) []string {
			d.Fields["target_value"] = 45.5
			return []string{"target_value"}
		})
		if live.Outputs["name"] != "dev-eu-app_scaling" || live.Outputs["arn"] == "" {
			t.Errorf("outputs %v", live.Outputs)
		}
		out, err := autoscaling.NewFromConfig(env.Config(region)).DescribePolicies(ctx, &autoscaling.DescribePoliciesInput{AutoScalingGroupName: aws.String(asg.Outputs["name"])})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.ScalingPolicies) != 0 {
			t.Errorf("%d policies outlived Delete", len(out.ScalingPolicies))
		}
		d.Fields["metric"] = "ALBRequestCountPerTarget"
		if _, err := (drivers.ScalingPolicy{}).Create(ctx, env, d); err == nil {
			t.Error("ALBRequestCountPerTarget without a resource label: no error")
		}
	})
}
