package drivers_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"portal/internal/drivers"
	"portal/internal/engine"
)

// stackRegions are the home regions of the three jurisdictions.
var stackRegions = []string{"us-east-1", "eu-central-1", "ap-southeast-1"}

func forEachRegion(t *testing.T, fn func(t *testing.T, region string)) {
	for _, region := range stackRegions {
		t.Run(region, func(t *testing.T) {
			t.Parallel()
			fn(t, region)
		})
	}
}

func vpcDesired(env *engine.Env, region string) *engine.Desired {
	return &engine.Desired{ID: "vpc", Type: "vpc", Region: region, Tags: ownershipTags(env, "vpc"), Fields: map[string]any{
		"name": "medportal-dev", "cidr": "10.20.0.0/16",
		"subnets": []any{
			map[string]any{"name": "public-a", "az": region + "a", "cidr": "10.20.0.0/24", "tier": "public"},
			map[string]any{"name": "public-b", "az": region + "b", "cidr": "10.20.1.0/24", "tier": "public"},
			map[string]any{"name": "private-a", "az": region + "a", "cidr": "10.20.16.0/20", "tier": "private"},
			map[string]any{"name": "private-b", "az": region + "b", "cidr": "10.20.32.0/20", "tier": "private"},
		},
	}}
}

// makeVPC creates a VPC with two public and two private subnets for tests
// of the types placed in it, deleted when the test ends.
func makeVPC(t *testing.T, env *engine.Env, region string) *engine.Live {
	t.Helper()
	return create(t, env, drivers.VPC{}, vpcDesired(env, region))
}

// create makes a dependency of the resource under test with its driver
// and deletes it when the test ends.
func create(t *testing.T, env *engine.Env, drv engine.Driver, d *engine.Desired) *engine.Live {
	t.Helper()
	if d.Tags == nil {
		d.Tags = ownershipTags(env, d.ID)
	}
	live, err := drv.Create(context.Background(), env, d)
	if err != nil {
		t.Fatalf("create %s %s: %v", d.Type, d.ID, err)
	}
	t.Cleanup(func() {
		cur, err := drv.Read(context.Background(), env, d, &engine.Prior{PhysicalID: live.PhysicalID, Region: live.Region})
		if errors.Is(err, engine.ErrNotFound) {
			return
		} else if err != nil {
			t.Errorf("read %s %s for cleanup: %v", d.Type, d.ID, err)
			return
		}
		if err := drv.Delete(context.Background(), env, cur); err != nil {
			t.Errorf("delete %s %s: %v", d.Type, d.ID, err)
		}
	})
	return live
}

func TestVPC(t *testing.T) {
	t.Parallel()
	forEachRegion(t, func(t *testing.T, region string) {
		env := newEnv(t, region)
		d := vpcDesired(env, region)
		var subnetIDs []string
		live := lifecycle(t, env, drivers.VPC{}, d, func(d *engine.Desired) []string {
			// Rename, drop a public subnet, add a private one, and retier one.
			d.Fields["name"] = "medportal-dev-2"
			subnets := d.List("subnets")
			subnets = slices.Delete(subnets, 1, 2)
			subnets[1].(map[string]any)["tier"] = "public"
			subnets = append(subnets, map[string]any{"name": "private-c", "az": region + "c", "cidr": "10.20.48.0/20", "tier": "private"})
			d.Fields["subnets"] = subnets
			return []string{"name", "subnets"}
		})
		if live.Outputs["id"] == "" || !strings.HasPrefix(live.Outputs["arn"], "arn:aws:ec2:"+region+":") {
			t.Errorf("outputs %v, want id and a %s arn", live.Outputs, region)
		}
		subnetIDs = append(strings.Split(live.Outputs["public_subnet_ids"], ","), strings.Split(live.Outputs["private_subnet_ids"], ",")...)
		if len(subnetIDs) != 4 {
			t.Errorf("outputs list subnets %v, want 4", subnetIDs)
		}
		// Delete took the subnets with it.
		c := ec2.NewFromConfig(env.Config(region))
		out, err := c.DescribeSubnets(context.Background(), &ec2.DescribeSubnetsInput{Filters: []types.Filter{{Name: aws.String("vpc-id"), Values: []string{live.PhysicalID}}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Subnets) != 0 {
			t.Errorf("after Delete %d subnets remain", len(out.Subnets))
		}
	})
}

func TestVPCRouting(t *testing.T) {
	t.Parallel()
	forEachRegion(t, func(t *testing.T, region string) {
		ctx := context.Background()
		env := newEnv(t, region)
		vpc := makeVPC(t, env, region)
		public, err := drivers.SubnetsByTier(ctx, env, region, vpc.PhysicalID, "public")
		if err != nil {
			t.Fatal(err)
		}
		private, err := drivers.SubnetsByTier(ctx, env, region, vpc.PhysicalID, "private")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := strings.Join(public, ","), vpc.Outputs["public_subnet_ids"]; got != want || len(public) != 2 {
			t.Errorf("public subnets %s, want the 2 of the outputs %s", got, want)
		}
		if len(private) != 2 || slices.ContainsFunc(private, func(s string) bool { return slices.Contains(public, s) }) {
			t.Errorf("private subnets %v, want 2 others than %v", private, public)
		}
		// Public subnets route to an internet gateway, private ones do not.
		c := ec2.NewFromConfig(env.Config(region))
		rts, err := c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: []types.Filter{{Name: aws.String("vpc-id"), Values: []string{vpc.PhysicalID}}}})
		if err != nil {
			t.Fatal(err)
		}
		toIGW := map[string]bool{}
		for _, rt := range rts.RouteTables {
			igw := false
			for _, r := range rt.Routes {
				igw = igw || (aws.ToString(r.DestinationCidrBlock) == "0.0.0.0/0" && strings.HasPrefix(aws.ToString(r.GatewayId), "igw-"))
			}
			for _, a := range rt.Associations {
				if a.SubnetId != nil {
					toIGW[aws.ToString(a.SubnetId)] = igw
				}
			}
		}
		for _, s := range public {
			if !toIGW[s] {
				t.Errorf("public subnet %s has no route to an internet gateway", s)
			}
		}
		for _, s := range private {
			if toIGW[s] {
				t.Errorf("private subnet %s routes to an internet gateway", s)
			}
		}
		if _, err := drivers.SubnetsByTier(ctx, env, region, "vpc-0123456789abcdef0", "public"); err == nil || !strings.Contains(err.Error(), "no public subnets") {
			t.Errorf("subnets of a missing vpc: err %v, want no public subnets", err)
		}
	})
}

func TestSecurityGroup(t *testing.T) {
	t.Parallel()
	forEachRegion(t, func(t *testing.T, region string) {
		ctx := context.Background()
		env := newEnv(t, region)
		vpc := makeVPC(t, env, region)
		app := create(t, env, drivers.SecurityGroup{}, &engine.Desired{ID: "app_sg", Type: "security_group", Region: region, Fields: map[string]any{
			"name": "medportal-dev-app", "vpc": vpc.PhysicalID,
			"egress": []any{map[string]any{"protocol": "tcp", "from_port": 443, "to_port": 443, "cidrs": []any{"0.0.0.0/0"}, "description": "AWS APIs"}},
		}})
		d := &engine.Desired{ID: "db_sg", Type: "security_group", Region: region, Fields: map[string]any{
			"name": "medportal-dev-db", "vpc": vpc.PhysicalID,
			"ingress": []any{
				map[string]any{"protocol": "tcp", "from_port": 5432, "to_port": 5432, "source": app.PhysicalID, "description": "app"},
				map[string]any{"protocol": "tcp", "from_port": 5432, "to_port": 5432, "cidrs": []any{"10.20.0.0/16"}},
			},
		}}
		live := lifecycle(t, env, drivers.SecurityGroup{}, d, func(d *engine.Desired) []string {
			// A description on an existing CIDR rule, a new CIDR, and egress
			// down to the VPC.
			d.Fields["ingress"] = []any{
				map[string]any{"protocol": "tcp", "from_port": 5432, "to_port": 5432, "cidrs": []any{"10.30.0.0/16", "10.20.0.0/16"}, "description": "vpc"},
				map[string]any{"protocol": "tcp", "from_port": 5432, "to_port": 5432, "source": app.PhysicalID, "description": "app"},
			}
			d.Fields["egress"] = []any{map[string]any{"protocol": "-1", "from_port": 0, "to_port": 0, "cidrs": []any{"10.20.0.0/16"}}}
			return []string{"egress", "ingress"}
		})
		if live.Outputs["name"] != "medportal-dev-db" || !strings.Contains(live.Outputs["arn"], ":security-group/"+live.PhysicalID) {
			t.Errorf("outputs %v, want name and arn", live.Outputs)
		}
		// The app group: the allow-all egress AWS adds was replaced by the
		// one rule asked for.
		c := ec2.NewFromConfig(env.Config(region))
		out, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{app.PhysicalID}})
		if err != nil {
			t.Fatal(err)
		}
		eg := out.SecurityGroups[0].IpPermissionsEgress
		if len(eg) != 1 || aws.ToString(eg[0].IpProtocol) != "tcp" || aws.ToInt32(eg[0].FromPort) != 443 || len(eg[0].IpRanges) != 1 {
			t.Errorf("app egress %+v, want only tcp 443 to 0.0.0.0/0", eg)
		}
		// Rules compare as a set: AWS's order and grouping are no change.
		reordered := &engine.Desired{ID: "app_sg", Type: "security_group", Region: region, Tags: ownershipTags(env, "app_sg"), Fields: map[string]any{
			"name": "medportal-dev-app", "vpc": vpc.PhysicalID,
			"egress": []any{map[string]any{"protocol": "tcp", "from_port": 443, "to_port": 443, "cidrs": []any{"0.0.0.0/0"}, "description": "AWS APIs"}},
		}}
		got, err := drivers.SecurityGroup{}.Read(ctx, env, reordered, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ch := engine.Diff(reordered, got, drivers.SecurityGroup{}.ForceNew()); len(ch) != 0 {
			t.Errorf("found by name: diff %+v, want none", ch)
		}
		// A new description on a rule whose source is a group: AWS applies
		// it; moto ignores it, which must surface as a clear error, never as
		// success with the change left undone.
		ingress := &engine.Desired{ID: "app_ingress_sg", Type: "security_group", Region: region, Tags: ownershipTags(env, "app_ingress_sg"), Fields: map[string]any{
			"name": "medportal-dev-app-ingress", "vpc": vpc.PhysicalID,
			"ingress": []any{map[string]any{"protocol": "tcp", "from_port": 8080, "to_port": 8080, "source": app.PhysicalID, "description": "from the ALB"}},
		}}
		ing := create(t, env, drivers.SecurityGroup{}, ingress)
		ingress.Fields["ingress"].([]any)[0].(map[string]any)["description"] = "from the load balancer"
		changes := engine.Diff(ingress, ing, drivers.SecurityGroup{}.ForceNew())
		if got := changePaths(changes); !slices.Equal(got, []string{"ingress"}) {
			t.Fatalf("changing a description: diff %v, want ingress", got)
		}
		if upd, err := (drivers.SecurityGroup{}).Update(ctx, env, ingress, ing, changes); err == nil {
			if ch := engine.Diff(ingress, upd, nil); len(ch) != 0 {
				t.Errorf("Update succeeded but the diff is still %+v", ch)
			}
		} else if !strings.Contains(err.Error(), "left the description of tcp 8080-8080 "+app.PhysicalID+" unchanged") {
			t.Errorf("Update of a group rule's description: %v, want success or a plain error", err)
		}
	})
}

func TestAMI(t *testing.T) {
	t.Parallel()
	forEachRegion(t, func(t *testing.T, region string) {
		ctx := context.Background()
		env := newEnv(t, region)
		var drv engine.Driver = drivers.AMI{}
		if ds, ok := drv.(engine.DataSource); !ok || !ds.IsDataSource() {
			t.Fatal("ami is not a data source")
		}
		byName := &engine.Desired{ID: "app_image", Type: "ami", Region: region, Fields: map[string]any{
			"image": map[string]any{"name_filter": "al2023-ami-2023*-x86_64", "owners": []any{"amazon"}},
		}}
		newest, err := drv.Create(ctx, env, byName)
		if err != nil {
			t.Fatalf("by name: %v", err)
		}
		if !strings.HasPrefix(newest.Outputs["id"], "ami-") || !strings.HasPrefix(newest.Outputs["name"], "al2023-ami-2023") {
			t.Fatalf("by name: outputs %v", newest.Outputs)
		}
		// It is the newest of all that match.
		c := ec2.NewFromConfig(env.Config(region))
		all, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"}, Filters: []types.Filter{{Name: aws.String("name"), Values: []string{"al2023-ami-2023*-x86_64"}}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, img := range all.Images {
			if aws.ToString(img.CreationDate) > aws.ToString(all.Images[0].CreationDate) {
				all.Images[0] = img
			}
		}
		if len(all.Images) < 2 {
			t.Fatalf("only %d images match, want several to choose from", len(all.Images))
		}
		newestDate := aws.ToString(all.Images[0].CreationDate)
		byID := &engine.Desired{ID: "app_image", Type: "ami", Region: region, Fields: map[string]any{"image": map[string]any{"id": newest.Outputs["id"]}}}
		again, err := drv.Read(ctx, env, byID, nil)
		if err != nil {
			t.Fatalf("by id: %v", err)
		}
		if again.Outputs["name"] != newest.Outputs["name"] {
			t.Errorf("by id: name %q, want %q", again.Outputs["name"], newest.Outputs["name"])
		}
		img, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{newest.Outputs["id"]}})
		if err != nil {
			t.Fatal(err)
		}
		if got := aws.ToString(img.Images[0].CreationDate); got != newestDate {
			t.Errorf("picked an image of %s, want the newest (%s)", got, newestDate)
		}
		missing := &engine.Desired{ID: "app_image", Type: "ami", Region: region, Fields: map[string]any{"image": map[string]any{"id": "ami-0123456789abcdef0"}}}
		if _, err := drv.Read(ctx, env, missing, nil); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("missing id: err %v, want ErrNotFound", err)
		}
		none := &engine.Desired{ID: "app_image", Type: "ami", Region: region, Fields: map[string]any{"image": map[string]any{"name_filter": "no-such-image-*"}}}
		if _, err := drv.Read(ctx, env, none, nil); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("no match: err %v, want ErrNotFound", err)
		}
		if err := drv.Delete(ctx, env, newest); err != nil {
			t.Errorf("Delete: %v", err)
		}
		if _, err := drv.Read(ctx, env, byName, nil); err != nil {
			t.Errorf("after Delete the image is gone: %v", err)
		}
	})
}

// amazonLinux returns the id of an Amazon Linux 2023 image in region.
func amazonLinux(t *testing.T, env *engine.Env, region string) string {
	t.Helper()
	live, err := drivers.AMI{}.Read(context.Background(), env, &engine.Desired{ID: "app_image", Type: "ami", Region: region, Fields: map[string]any{
		"image": map[string]any{"name_filter": "al2023-ami-2023*-x86_64"},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return live.PhysicalID
}

func launchTemplateDesired(env *engine.Env, region, ami string, sgs []any, kmsKey string) *engine.Desired {
	return &engine.Desired{ID: "app_template", Type: "launch_template", Region: region, Fields: map[string]any{
		"name": "medportal-dev-app", "ami": ami, "instance_type": "t3.micro",
		"instance_profile": "arn:aws:iam::" + env.Stack.AccountID + ":instance-profile/medportal-dev-app",
		"security_groups":  sgs, "imds_v2_required": true, "ebs_encrypted": true, "kms_key": kmsKey,
	}}
}

func TestLaunchTemplate(t *testing.T) {
	t.Parallel()
	forEachRegion(t, func(t *testing.T, region string) {
		env := newEnv(t, region)
		vpc := makeVPC(t, env, region)
		var sgs []any
		for _, n := range []string{"app", "app-ingress"} {
			sg := create(t, env, drivers.SecurityGroup{}, &engine.Desired{ID: n, Type: "security_group", Region: region, Fields: map[string]any{"name": n, "vpc": vpc.PhysicalID}})
			sgs = append(sgs, sg.PhysicalID)
		}
		key := create(t, env, drivers.KMSKey{}, &engine.Desired{ID: "documents_key", Type: "kms_key", Region: region, Fields: map[string]any{"data_class": "documents", "rotation": true}})
		d := launchTemplateDesired(env, region, amazonLinux(t, env, region), sgs, key.Outputs["arn"])
		live := lifecycle(t, env, drivers.LaunchTemplate{}, d, func(d *engine.Desired) []string {
			d.Fields["instance_type"] = "t3.small"
			d.Fields["security_groups"] = []any{sgs[1], sgs[0]} // order alone is no change
			d.Fields["imds_v2_required"] = false
			return []string{"imds_v2_required", "instance_type"}
		})
		if live.Outputs["latest_version"] != "2" || live.Outputs["default_version"] != "2" {
			t.Errorf("after the update versions are latest %s default %s, want 2 and 2", live.Outputs["latest_version"], live.Outputs["default_version"])
		}
		if live.Outputs["name"] != "medportal-dev-app" || !strings.HasPrefix(live.Outputs["id"], "lt-") {
			t.Errorf("outputs %v", live.Outputs)
		}
		// The root volume is encrypted with the key.
		if live.Fields["ebs_encrypted"] != true || live.Fields["kms_key"] != key.Outputs["arn"] {
			t.Errorf("fields %v, want ebs_encrypted with %s", live.Fields, key.Outputs["arn"])
		}
	})
}
