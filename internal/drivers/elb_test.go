package drivers_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"

	"portal/internal/drivers"
	"portal/internal/engine"
)

// lbNetwork is what a load balancer needs: a VPC and two security groups.
type lbNetwork struct {
	vpc     *engine.Live
	sg, sg2 string
	lb      *engine.Live // made by makeLB
	tg, tg2 *engine.Live // made by makeLB
	certARN string       // made by makeLB
	region  string
}

func makeLBNetwork(t *testing.T, env *engine.Env, region string) *lbNetwork {
	t.Helper()
	n := &lbNetwork{region: region}
	n.vpc = makeVPC(t, env, region)
	n.sg = create(t, env, drivers.SecurityGroup{}, &engine.Desired{ID: "alb_sg", Type: "security_group", Region: region, Fields: map[string]any{
		"name": "medportal-dev-alb", "vpc": n.vpc.PhysicalID,
		"ingress": []any{map[string]any{"protocol": "tcp", "from_port": 443, "to_port": 443, "cidrs": []any{"0.0.0.0/0"}}},
	}}).PhysicalID
	n.sg2 = create(t, env, drivers.SecurityGroup{}, &engine.Desired{ID: "extra_sg", Type: "security_group", Region: region, Fields: map[string]any{
		"name": "medportal-dev-extra", "vpc": n.vpc.PhysicalID,
	}}).PhysicalID
	return n
}

func albDesired(n *lbNetwork) *engine.Desired {
	return &engine.Desired{ID: "alb", Type: "alb", Region: n.region, Fields: map[string]any{
		"name": "medportal-dev", "internal": false, "vpc": n.vpc.PhysicalID, "subnet_tier": "public",
		"security_groups": []any{n.sg},
	}}
}

func tgDesired(n *lbNetwork, id, name string) *engine.Desired {
	return &engine.Desired{ID: id, Type: "target_group", Region: n.region, Fields: map[string]any{
		"name": name, "vpc": n.vpc.PhysicalID, "port": int64(8080), "protocol": "HTTP", "health_check_path": "/healthz",
	}}
}

// makeLB adds a load balancer, two target groups and an ACM certificate
// (pending validation, which a listener accepts) to n.
func makeLB(t *testing.T, env *engine.Env, n *lbNetwork) {
	t.Helper()
	n.lb = create(t, env, drivers.ALB{}, albDesired(n))
	n.tg = create(t, env, drivers.TargetGroup{}, tgDesired(n, "app_tg", "medportal-dev-app"))
	n.tg2 = create(t, env, drivers.TargetGroup{}, tgDesired(n, "canary_tg", "medportal-dev-canary"))
	out, err := acm.NewFromConfig(env.Config(n.region)).RequestCertificate(context.Background(), &acm.RequestCertificateInput{
		DomainName: aws.String("app.eu.medportal.example"), ValidationMethod: acmtypes.ValidationMethodDns,
	})
	if err != nil {
		t.Fatalf("request certificate: %v", err)
	}
	n.certARN = aws.ToString(out.CertificateArn)
}

func TestALB(t *testing.T) {
	t.Parallel()
	forEachRegion(t, func(t *testing.T, region string) {
		env := newEnv(t, region)
		n := makeLBNetwork(t, env, region)
		live := lifecycle(t, env, drivers.ALB{}, albDesired(n), func(d *engine.Desired) []string {
			d.Fields["security_groups"] = []any{n.sg2, n.sg}
			d.Fields["subnet_tier"] = "private"
			return []string{"security_groups", "subnet_tier"}
		})
		o := live.Outputs
		if !regexp.MustCompile(`^app/medportal-dev/[0-9a-z]+$`).MatchString(o["id"]) || o["arn"] != "arn:aws:elasticloadbalancing:"+region+":"+env.Stack.AccountID+":loadbalancer/"+o["id"] {
			t.Errorf("id %q arn %q: want the CloudWatch dimension app/<name>/<id> and the arn ending with it", o["id"], o["arn"])
		}
		if !strings.Contains(o["dns_name"], region) || o["zone_id"] == "" {
			t.Errorf("dns_name %q zone_id %q: want both for Route 53 aliases", o["dns_name"], o["zone_id"])
		}
		if live.Fields["internal"] != false {
			t.Errorf("internal %v, want an internet-facing load balancer", live.Fields["internal"])
		}
	})
}

func TestTargetGroup(t *testing.T) {
	t.Parallel()
	forEachRegion(t, func(t *testing.T, region string) {
		env := newEnv(t, region)
		n := makeLBNetwork(t, env, region)
		live := lifecycle(t, env, drivers.TargetGroup{}, tgDesired(n, "app_tg", "medportal-dev-app"), func(d *engine.Desired) []string {
			d.Fields["health_check_path"] = "/health/ready"
			return []string{"health_check_path"}
		})
		o := live.Outputs
		if !regexp.MustCompile(`^targetgroup/medportal-dev-app/[0-9a-z]+$`).MatchString(o["id"]) || !strings.HasSuffix(o["arn"], ":"+o["id"]) || o["name"] != "medportal-dev-app" {
			t.Errorf("outputs %v: want the CloudWatch dimension targetgroup/<name>/<id> as id", o)
		}
		d := tgDesired(n, "app_tg", "x")
		d.Tags = ownershipTags(env, "app_tg")
		d.Fields["port"] = 8443
		d.Fields["health_check_path"] = "/health/ready"
		if ch := engine.Diff(d, live, drivers.TargetGroup{}.ForceNew()); len(ch) != 2 || !ch[0].Replace || !ch[1].Replace {
			t.Errorf("new name and port: %+v, want replacements", ch)
		}
	})
}

func TestListener(t *testing.T) {
	t.Parallel()
	forEachRegion(t, func(t *testing.T, region string) {
		env := newEnv(t, region)
		n := makeLBNetwork(t, env, region)
		makeLB(t, env, n)
		d := &engine.Desired{ID: "https_listener", Type: "listener", Region: region, Fields: map[string]any{
			"load_balancer": n.lb.Outputs["arn"], "port": int64(443), "protocol": "HTTPS",
			"certificate": n.certARN, "ssl_policy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
			"default_target_group": n.tg.Outputs["arn"],
		}}
		live := lifecycle(t, env, drivers.Listener{}, d, func(d *engine.Desired) []string {
			d.Fields["ssl_policy"] = "ELBSecurityPolicy-TLS13-1-2-Res-2021-06"
			d.Fields["default_target_group"] = n.tg2.Outputs["arn"]
			return []string{"default_target_group", "ssl_policy"}
		})
		if !strings.Contains(live.Outputs["arn"], ":listener/app/medportal-dev/") {
			t.Errorf("arn %q", live.Outputs["arn"])
		}
	})
}

// The shipped stacks name ACM certificates that do not exist in a fresh
// account: AWS and moto refuse them, and the error must say so plainly.
func TestListenerUnknownCertificate(t *testing.T) {
	t.Parallel()
	region := "eu-central-1"
	env := newEnv(t, region)
	n := makeLBNetwork(t, env, region)
	makeLB(t, env, n)
	made := "arn:aws:acm:eu-central-1:333333333333:certificate/21000000-0000-4000-8000-000000000001"
	d := &engine.Desired{ID: "https_listener", Type: "listener", Region: region, Tags: ownershipTags(env, "https_listener"), Fields: map[string]any{
		"load_balancer": n.lb.Outputs["arn"], "port": int64(443), "protocol": "HTTPS",
		"certificate": made, "ssl_policy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
		"default_target_group": n.tg.Outputs["arn"],
	}}
	_, err := drivers.Listener{}.Create(context.Background(), env, d)
	want := "certificate " + made + " does not exist in account " + env.Stack.AccountID + ", region eu-central-1"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Create with an unknown certificate: %v, want it to say %q", err, want)
	}
}
