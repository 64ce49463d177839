package drivers_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"

	"portal/internal/drivers"
	"portal/internal/engine"
)

func r53ForTest(env *engine.Env) *route53.Client {
	return route53.NewFromConfig(env.Config("us-east-1"))
}

// testALB creates an internet-facing load balancer in region with the SDK
// and returns its DNS name and canonical hosted zone.
func testALB(t *testing.T, env *engine.Env, region, name string) (dns, zone string) {
	t.Helper()
	ctx := context.Background()
	ec := ec2.NewFromConfig(env.Config(region))
	vpc, err := ec.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.9.0.0/16")})
	if err != nil {
		t.Fatalf("create vpc: %v", err)
	}
	var subnets []string
	for i, az := range []string{"a", "b"} {
		sn, err := ec.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String(fmt.Sprintf("10.9.%d.0/24", i)), AvailabilityZone: aws.String(region + az)})
		if err != nil {
			t.Fatalf("create subnet: %v", err)
		}
		subnets = append(subnets, aws.ToString(sn.Subnet.SubnetId))
	}
	lb, err := elb.NewFromConfig(env.Config(region)).CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String(name), Subnets: subnets})
	if err != nil {
		t.Fatalf("create load balancer: %v", err)
	}
	return aws.ToString(lb.LoadBalancers[0].DNSName), aws.ToString(lb.LoadBalancers[0].CanonicalHostedZoneId)
}

// testZone creates a hosted zone with the SDK, tagged as the stack's when
// owned, and returns its bare id.
func testZone(t *testing.T, env *engine.Env, name string, owned bool) string {
	t.Helper()
	ctx := context.Background()
	c := r53ForTest(env)
	out, err := c.CreateHostedZone(ctx, &route53.CreateHostedZoneInput{Name: aws.String(name), CallerReference: aws.String(t.Name() + name)})
	if err != nil {
		t.Fatalf("create zone: %v", err)
	}
	id := strings.TrimPrefix(aws.ToString(out.HostedZone.Id), "/hostedzone/")
	if owned {
		var tags []r53types.Tag
		for k, v := range ownershipTags(env, "zone") {
			tags = append(tags, r53types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		if _, err := c.ChangeTagsForResource(ctx, &route53.ChangeTagsForResourceInput{ResourceType: r53types.TagResourceTypeHostedzone, ResourceId: aws.String(id), AddTags: tags}); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

func TestRoute53Zone(t *testing.T) {
	t.Parallel()
	env := newEnv(t, "eu-central-1")
	ctx := context.Background()
	c := r53ForTest(env)
	drv := drivers.Route53Zone{}
	d := &engine.Desired{ID: "zone", Type: "route53_zone", Region: "eu-central-1", Fields: map[string]any{
		"name": "eu.dev.medportal.example", "description": "dev-eu public zone",
	}}
	live := lifecycle(t, env, drv, d, func(d *engine.Desired) []string {
		d.Fields["description"] = "dev-eu public zone (patients)"
		return []string{"description"}
	})
	if id := live.Outputs["zone_id"]; id == "" || strings.Contains(id, "/") || id != live.PhysicalID {
		t.Errorf("zone_id %q (physical id %s), want the bare zone id", id, live.PhysicalID)
	}
	if live.Outputs["name"] != "eu.dev.medportal.example" || strings.Count(live.Outputs["name_servers"], ",") < 1 {
		t.Errorf("outputs %v, want the name and the joined name servers", live.Outputs)
	}

	t.Run("refuses to delete other people's records", func(t *testing.T) {
		d := &engine.Desired{ID: "zone2", Type: "route53_zone", Region: "eu-central-1", Tags: ownershipTags(env, "zone2"), Fields: map[string]any{"name": "apac.dev.medportal.example"}}
		created, err := drv.Create(ctx, env, d)
		if err != nil {
			t.Fatal(err)
		}
		txt := &r53types.ResourceRecordSet{Name: aws.String("verify.apac.dev.medportal.example"), Type: r53types.RRTypeTxt, TTL: aws.Int64(300),
			ResourceRecords: []r53types.ResourceRecord{{Value: aws.String(`"hello"`)}}}
		change := func(a r53types.ChangeAction) {
			if _, err := c.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(created.PhysicalID),
				ChangeBatch: &r53types.ChangeBatch{Changes: []r53types.Change{{Action: a, ResourceRecordSet: txt}}}}); err != nil {
				t.Fatal(err)
			}
		}
		change(r53types.ChangeActionCreate)
		err = drv.Delete(ctx, env, created)
		if err == nil || !strings.Contains(err.Error(), "verify.apac.dev.medportal.example TXT") {
			t.Fatalf("Delete with a foreign record: err %v, want a refusal naming the record", err)
		}
		if _, err := drv.Read(ctx, env, d, &engine.Prior{PhysicalID: created.PhysicalID}); err != nil {
			t.Fatalf("zone gone after a refused delete: %v", err)
		}
		change(r53types.ChangeActionDelete)
		if err := drv.Delete(ctx, env, created); err != nil {
			t.Fatalf("Delete of an empty zone: %v", err)
		}
	})

	t.Run("adopts its zone after a crash before tagging", func(t *testing.T) {
		d := &engine.Desired{ID: "zone3", Type: "route53_zone", Region: "eu-central-1", Tags: ownershipTags(env, "zone3"), Fields: map[string]any{"name": "us.dev.medportal.example"}}
		created, err := drv.Create(ctx, env, d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.ChangeTagsForResource(ctx, &route53.ChangeTagsForResourceInput{ResourceType: r53types.TagResourceTypeHostedzone, ResourceId: aws.String(created.PhysicalID),
			RemoveTagKeys: []string{engine.TagStack, engine.TagResource, engine.TagManaged, engine.TagVersion}}); err != nil {
			t.Fatal(err)
		}
		// Someone else's zone of the same name is not taken for ours.
		other := testZone(t, env, "us.dev.medportal.example", false)
		found, err := drv.Read(ctx, env, d, nil)
		if err != nil {
			t.Fatal(err)
		}
		if found.PhysicalID != created.PhysicalID || found.PhysicalID == other || !found.OwnedBy(env.Stack.ID) {
			t.Fatalf("found %s owned=%v, want %s owned by the stack", found.PhysicalID, found.OwnedBy(env.Stack.ID), created.PhysicalID)
		}
		ch := engine.Diff(d, found, drv.ForceNew())
		if fmt.Sprint(changePaths(ch)) != "[tags]" {
			t.Fatalf("diff %v, want the tags to be re-applied", changePaths(ch))
		}
		after, err := drv.Update(ctx, env, d, found, ch)
		if err != nil {
			t.Fatal(err)
		}
		if after.Tags[engine.TagResource] != "zone3" {
			t.Errorf("tags after update %v", after.Tags)
		}
		if err := drv.Delete(ctx, env, after); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRoute53HealthCheck(t *testing.T) {
	t.Parallel()
	env := newEnv(t, "ap-southeast-1")
	dns, _ := testALB(t, env, "ap-southeast-1", "medportal-dev-apac")
	drv := drivers.Route53HealthCheck{}
	d := &engine.Desired{ID: "health", Type: "route53_health_check", Region: "ap-southeast-1", Fields: map[string]any{
		"fqdn": dns, "port": 443, "path": "/healthz", "protocol": "HTTPS", "failure_threshold": 3,
	}}
	live := lifecycle(t, env, drv, d, func(d *engine.Desired) []string {
		d.Fields["path"] = "/ready"
		d.Fields["failure_threshold"] = 5
		return []string{"failure_threshold", "path"}
	})
	if live.Outputs["id"] == "" || live.Outputs["id"] != live.PhysicalID {
		t.Errorf("outputs %v, want the check's id", live.Outputs)
	}
	if live.Tags["Name"] != "dev-eu-health" {
		t.Errorf("tags %v, want a Name", live.Tags)
	}

	t.Run("found by tags among others", func(t *testing.T) {
		ctx := context.Background()
		c := r53ForTest(env)
		for i := range 12 { // more than one ListTagsForResources batch
			if _, err := c.CreateHealthCheck(ctx, &route53.CreateHealthCheckInput{CallerReference: aws.String(fmt.Sprint("other", i)),
				HealthCheckConfig: &r53types.HealthCheckConfig{Type: r53types.HealthCheckTypeHttp, FullyQualifiedDomainName: aws.String("example.com"), Port: aws.Int32(80)}}); err != nil {
				t.Fatal(err)
			}
		}
		d := &engine.Desired{ID: "health2", Type: "route53_health_check", Region: "ap-southeast-1", Tags: ownershipTags(env, "health2"), Fields: d.Fields}
		created, err := drv.Create(ctx, env, d)
		if err != nil {
			t.Fatal(err)
		}
		found, err := drv.Read(ctx, env, d, nil)
		if err != nil || found.PhysicalID != created.PhysicalID {
			t.Fatalf("Read without a record: %v, %v; want %s", found, err, created.PhysicalID)
		}
		if err := drv.Delete(ctx, env, found); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRoute53Record(t *testing.T) {
	t.Parallel()
	const region = "eu-central-1"
	env := newEnv(t, region)
	ctx := context.Background()
	c := r53ForTest(env)
	albDNS, albZone := testALB(t, env, region, "medportal-dev-eu")
	zone := testZone(t, env, "eu.dev.medportal.example", true)
	hc, err := c.CreateHealthCheck(ctx, &route53.CreateHealthCheckInput{CallerReference: aws.String("hc"),
		HealthCheckConfig: &r53types.HealthCheckConfig{Type: r53types.HealthCheckTypeHttps, FullyQualifiedDomainName: aws.String(albDNS), Port: aws.Int32(443)}})
	if err != nil {
		t.Fatal(err)
	}
	hcID := aws.ToString(hc.HealthCheck.Id)
	alias := func(target string, eval bool) map[string]any {
		return map[string]any{"target": target, "evaluate_target_health": eval}
	}
	cases := []struct {
		id       string
		fields   map[string]any
		update   func(d *engine.Desired) []string
		wantZone string
	}{
		{"latency_record", map[string]any{"name": "app.eu.dev.medportal.example", "routing": "latency", "set_identifier": "dev-eu-latency",
			"latency_region": region, "health_check": hcID, "alias": alias(albDNS, true)},
			func(d *engine.Desired) []string {
				d.Fields["alias"] = alias(albDNS, false)
				d.Fields["health_check"] = ""
				return []string{"alias", "health_check"}
			}, albZone},
		{"geo_record", map[string]any{"name": "geo.eu.dev.medportal.example", "routing": "geolocation", "set_identifier": "dev-eu-geo",
			"geolocation": map[string]any{"continent": "EU"}, "health_check": hcID, "alias": alias(albDNS, true)},
			func(d *engine.Desired) []string {
				d.Fields["geolocation"] = map[string]any{"country": "DE"}
				return []string{"geolocation"}
			}, albZone},
		{"failover_record", map[string]any{"name": "api.eu.dev.medportal.example", "routing": "failover", "set_identifier": "dev-eu-failover",
			"failover": "PRIMARY", "health_check": hcID, "alias": alias(albDNS, true)},
			func(d *engine.Desired) []string {
				d.Fields["failover"] = "SECONDARY"
				return []string{"failover"}
			}, albZone},
		{"cdn_record", map[string]any{"name": "www.eu.dev.medportal.example", "routing": "simple", "alias": map[string]any{"target": "d111111abcdef8.cloudfront.net"}},
			func(d *engine.Desired) []string {
				d.Fields["alias"] = alias("d222222abcdef8.cloudfront.net", false)
				return []string{"alias"}
			}, "Z2FDTNDATAQYW2"},
	}
	for _, tc := range cases {
		t.Run(tc.id, func(t *testing.T) {
			fields := map[string]any{"zone": zone, "record_type": "A"}
			for k, v := range tc.fields {
				fields[k] = v
			}
			d := &engine.Desired{ID: tc.id, Type: "route53_record", Region: region, Fields: fields}
			var gotZone string
			live := lifecycle(t, env, drivers.Route53Record{}, d, func(d *engine.Desired) []string {
				rr := recordFor(t, c, zone, d.String("name"))
				gotZone = aws.ToString(rr.AliasTarget.HostedZoneId)
				return tc.update(d)
			})
			if gotZone != tc.wantZone {
				t.Errorf("alias hosted zone %s, want %s", gotZone, tc.wantZone)
			}
			if live.Outputs["fqdn"] != d.String("name") {
				t.Errorf("fqdn %q, want %q", live.Outputs["fqdn"], d.String("name"))
			}
		})
	}

	t.Run("a record in someone else's zone is not the portal's", func(t *testing.T) {
		other := testZone(t, env, "other.example", false)
		d := &engine.Desired{ID: "r", Type: "route53_record", Region: region, Tags: ownershipTags(env, "r"), Fields: map[string]any{
			"zone": other, "name": "www.other.example", "record_type": "A", "routing": "simple", "alias": map[string]any{"target": "d3.cloudfront.net"}}}
		live, err := drivers.Route53Record{}.Create(ctx, env, d)
		if err != nil {
			t.Fatal(err)
		}
		if live.OwnedBy(env.Stack.ID) {
			t.Errorf("record in an unowned zone reported as owned: tags %v", live.Tags)
		}
	})

	t.Run("unknown alias target", func(t *testing.T) {
		d := &engine.Desired{ID: "r", Type: "route53_record", Region: region, Tags: ownershipTags(env, "r"), Fields: map[string]any{
			"zone": zone, "name": "x.eu.dev.medportal.example", "record_type": "A", "routing": "simple", "alias": map[string]any{"target": "nope-1.eu-central-1.elb.amazonaws.com"}}}
		_, err := drivers.Route53Record{}.Create(ctx, env, d)
		if err == nil || !strings.Contains(err.Error(), "alias.target nope-1.eu-central-1.elb.amazonaws.com") {
			t.Errorf("err %v, want one naming alias.target", err)
		}
	})

	t.Run("zone known after apply", func(t *testing.T) {
		d := &engine.Desired{ID: "r", Type: "route53_record", Region: region, Fields: map[string]any{
			"zone": engine.Unknown{Ref: "zone.zone_id"}, "name": "x.eu.dev.medportal.example", "record_type": "A", "routing": "simple"}}
		if _, err := (drivers.Route53Record{}).Read(ctx, env, d, nil); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("err %v, want ErrNotFound", err)
		}
	})
}

func recordFor(t *testing.T, c *route53.Client, zone, name string) r53types.ResourceRecordSet {
	t.Helper()
	out, err := c.ListResourceRecordSets(context.Background(), &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(zone)})
	if err != nil {
		t.Fatal(err)
	}
	for _, rr := range out.ResourceRecordSets {
		if strings.TrimSuffix(aws.ToString(rr.Name), ".") == name {
			return rr
		}
	}
	t.Fatalf("no record %s in zone %s", name, zone)
	return r53types.ResourceRecordSet{}
}
