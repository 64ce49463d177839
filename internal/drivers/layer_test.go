package drivers_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"portal/internal/drivers"
	"portal/internal/engine"
)

// fakeNS answers NS look-ups from a map, as public DNS would; a name it
// does not know does not resolve. (No test may reach the internet's DNS.)
type fakeNS map[string][]string

func (f fakeNS) LookupNS(_ context.Context, name string) ([]*net.NS, error) {
	hosts, ok := f[strings.TrimSuffix(name, ".")]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	var out []*net.NS
	for _, h := range hosts {
		out = append(out, &net.NS{Host: h + "."})
	}
	return out, nil
}

// A zone whose parent is a zone of the same account is delegated by NS
// records the driver writes there; one whose parent is outside gets a plan
// note listing the records to add, and its status follows public DNS.
func TestDNSDelegation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t, "us-east-1")
	parent := testZone(t, env, "medportal.example", true)
	child := testZone(t, env, "test.medportal.example", true)
	drv := drivers.DNSDelegation{Resolver: fakeNS{}}
	d := &engine.Desired{ID: "delegation", Type: "dns_delegation", Region: "us-east-1", Fields: map[string]any{"zone": child, "parent_domain": "medportal.example"}}
	live := lifecycle(t, env, drv, d, nil)
	if live.Outputs["status"] != "in-account" || live.Outputs["parent_zone"] != parent {
		t.Errorf("outputs %v, want status in-account with parent zone %s", live.Outputs, parent)
	}
	// Delete took the NS records back out of the parent.
	rrs, err := r53ForTest(env).ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(parent)})
	if err != nil {
		t.Fatal(err)
	}
	for _, rr := range rrs.ResourceRecordSets {
		if rr.Type == r53types.RRTypeNs && strings.HasPrefix(aws.ToString(rr.Name), "test.") {
			t.Errorf("the parent still delegates %s after Delete", aws.ToString(rr.Name))
		}
	}

	// Outside the account: nothing to write, the plan says what to add.
	outside := &engine.Desired{ID: "delegation", Type: "dns_delegation", Region: "us-east-1", Tags: ownershipTags(env, "delegation"),
		Fields: map[string]any{"zone": parent, "parent_domain": "example"}}
	if note := drv.PlanNote(outside, nil); !strings.Contains(note, "NS records at example") {
		t.Errorf("note before the zone exists: %q", note)
	}
	created, err := drv.Create(ctx, env, outside)
	if err != nil {
		t.Fatal(err)
	}
	ns := strings.Split(created.Outputs["name_servers"], ",")
	if created.Outputs["status"] != "waiting" || len(ns) < 2 {
		t.Errorf("outputs %v, want status waiting and the zone's name servers", created.Outputs)
	}
	if note := drv.PlanNote(outside, created); !strings.Contains(note, "add these NS records for medportal.example there: "+ns[0]) || !strings.Contains(note, "Certificates validated in this zone wait for them") {
		t.Errorf("note: %q, want the NS records to add and that certificates wait", note)
	}
	delegated := drivers.DNSDelegation{Resolver: fakeNS{"medportal.example": ns}}
	again, err := delegated.Read(ctx, env, outside, &engine.Prior{PhysicalID: created.PhysicalID, Region: "us-east-1"})
	if err != nil || again.Outputs["status"] != "delegated" {
		t.Errorf("once public DNS answers: %v %v, want status delegated", again, err)
	}
	offline := drivers.DNSDelegation{Resolver: unreachableDNS{}}
	if got, err := offline.Read(ctx, env, outside, &engine.Prior{PhysicalID: created.PhysicalID, Region: "us-east-1"}); err != nil || got.Fields["status"] != "unverified" {
		t.Errorf("public DNS out of reach: %v %v, want status unverified (not waiting: nothing was asked)", got, err)
	}
	if err := drv.Delete(ctx, env, created); err != nil {
		t.Fatal(err)
	}
}

// unreachableDNS answers like a resolver with no network.
type unreachableDNS struct{}

func (unreachableDNS) LookupNS(_ context.Context, name string) ([]*net.NS, error) {
	return nil, &net.DNSError{Err: "dial udp 127.0.0.53:53: connect: network is unreachable", Name: name, IsTemporary: true}
}

// A small object the blueprint holds (the maintenance page), encrypted by
// its bucket's default key, updated in place, all versions deleted.
func TestS3Object(t *testing.T) {
	t.Parallel()
	const region = "us-east-1"
	ctx := context.Background()
	env := newEnv(t, region)
	bucket := "medportal-dev-assets-" + env.Stack.AccountID
	sc := s3.NewFromConfig(env.Config(region))
	if _, err := sc.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(bucket), VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	d := &engine.Desired{ID: "maintenance_page", Type: "s3_object", Region: region, Fields: map[string]any{
		"bucket": bucket, "key": "maintenance.html", "content": "<h1>Back soon</h1>", "content_type": "text/html; charset=utf-8",
	}}
	live := lifecycle(t, env, drivers.S3Object{}, d, func(d *engine.Desired) []string {
		d.Fields["content"] = "<h1>We will be back soon</h1>"
		return []string{"content"}
	})
	if live.Outputs["url"] != "s3://"+bucket+"/maintenance.html" {
		t.Errorf("outputs %v", live.Outputs)
	}
	vs, err := sc.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
	if err != nil || len(vs.Versions)+len(vs.DeleteMarkers) != 0 {
		t.Errorf("after Delete the bucket holds %d versions, %d markers (%v)", len(vs.Versions), len(vs.DeleteMarkers), err)
	}
	big := &engine.Desired{ID: "big", Type: "s3_object", Region: region, Tags: ownershipTags(env, "big"), Fields: map[string]any{
		"bucket": bucket, "key": "big", "content": strings.Repeat("x", 65<<10),
	}}
	if _, err := (drivers.S3Object{}).Create(ctx, env, big); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("a 65 KiB inline object: %v, want a refusal", err)
	}
}

// A jurisdiction stack's record in its environment layer's zone is the
// stack's; an alias may point at another record of the same zone (the
// layer's geolocation records point at the stacks' origins).
func TestRoute53RecordInLayerZone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t, "us-east-1")
	layer := *env
	layer.Stack.ID = "dev-global"
	zone := testZone(t, &layer, "dev.medportal.example", true) // tagged as the layer's
	albDNS, _ := testALB(t, env, "eu-central-1", "medportal-dev-eu")
	origin := &engine.Desired{ID: "origin", Type: "route53_record", Region: "us-east-1", Fields: map[string]any{
		"zone": zone, "name": "origin.eu.dev.medportal.example", "record_type": "A", "routing": "simple",
		"alias": map[string]any{"target": albDNS, "evaluate_target_health": true},
	}}
	created := create(t, env, drivers.Route53Record{}, origin)
	if !created.OwnedBy(env.Stack.ID) {
		t.Errorf("a dev-eu record in dev-global's zone reads as owned by %q, want dev-eu", created.Tags[engine.TagStack])
	}
	geo := &engine.Desired{ID: "origin_eu", Type: "route53_record", Region: "us-east-1", Fields: map[string]any{
		"zone": zone, "name": "origin.dev.medportal.example", "record_type": "A", "routing": "geolocation", "set_identifier": "eu",
		"geolocation": map[string]any{"continent": "EU"},
		"alias":       map[string]any{"target": created.Outputs["fqdn"], "evaluate_target_health": false},
	}}
	live := lifecycle(t, &layer, drivers.Route53Record{}, geo, nil)
	if live.Fields["routing"] != "geolocation" {
		t.Errorf("fields %v", live.Fields)
	}
	bad := &engine.Desired{ID: "bad", Type: "route53_record", Region: "us-east-1", Tags: ownershipTags(env, "bad"), Fields: map[string]any{
		"zone": zone, "name": "x.dev.medportal.example", "record_type": "A", "routing": "simple",
		"alias": map[string]any{"target": "origin.eu.medportal.example"},
	}}
	if _, err := (drivers.Route53Record{}).Create(ctx, env, bad); err == nil || !strings.Contains(err.Error(), "a record of the zone dev.medportal.example") {
		t.Errorf("an alias to a name outside the zone: %v, want a refusal", err)
	}
}

// A distribution in front of a custom origin reached by hostname, with the
// maintenance page served for the origin's 5xx answers.
func TestCloudFrontHostnameOriginAndErrorPages(t *testing.T) {
	t.Parallel()
	const region = "us-east-1"
	ctx := context.Background()
	env := newEnv(t, region)
	d := &engine.Desired{ID: "cdn", Type: "cloudfront_distribution", Region: region, Fields: map[string]any{
		"viewer_protocol_policy": "https-only",
		"origins":                []any{map[string]any{"id": "app", "domain": "origin.dev.medportal.example", "protocol_policy": "https-only"}},
		"default_origin":         "app",
		"behaviors":              []any{},
		"error_pages": []any{
			map[string]any{"code": int64(502), "path": "/maintenance.html", "response_code": int64(503), "ttl": int64(10)},
			map[string]any{"code": int64(504), "path": "/maintenance.html", "response_code": int64(503), "ttl": int64(10)},
		},
	}}
	live := lifecycle(t, env, drivers.CloudFrontDistribution{}, d, func(d *engine.Desired) []string {
		cf := cloudfront.NewFromConfig(env.Config("us-east-1"))
		dists, err := cf.ListDistributions(ctx, &cloudfront.ListDistributionsInput{})
		if err != nil || dists.DistributionList == nil || len(dists.DistributionList.Items) != 1 {
			t.Fatalf("list distributions: %v", err)
		}
		cfg, err := cf.GetDistributionConfig(ctx, &cloudfront.GetDistributionConfigInput{Id: dists.DistributionList.Items[0].Id})
		if err != nil {
			t.Fatal(err)
		}
		if got := aws.ToString(cfg.DistributionConfig.Origins.Items[0].DomainName); got != "origin.dev.medportal.example" {
			t.Errorf("origin domain %s", got)
		}
		d.Fields["error_pages"] = []any{map[string]any{"code": int64(503), "path": "/maintenance.html", "response_code": int64(503), "ttl": int64(10)}}
		return []string{"error_pages"}
	})
	if live.Outputs["dns_name"] == "" {
		t.Errorf("outputs %v", live.Outputs)
	}
}
