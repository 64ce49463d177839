package drivers_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"

	"portal/internal/drivers"
	"portal/internal/engine"
)

// dbNetwork is what an RDS instance needs: a VPC, a subnet group over
// its private subnets, a security group and a key.
type dbNetwork struct {
	vpc, subnetGroup, sg, key *engine.Live
}

func makeDBNetwork(t *testing.T, env *engine.Env, region string) dbNetwork {
	t.Helper()
	var n dbNetwork
	n.vpc = makeVPC(t, env, region)
	n.sg = create(t, env, drivers.SecurityGroup{}, &engine.Desired{ID: "db_sg", Type: "security_group", Region: region, Fields: map[string]any{
		"name": "medportal-dev-db", "vpc": n.vpc.PhysicalID,
		"ingress": []any{map[string]any{"protocol": "tcp", "from_port": 5432, "to_port": 5432, "cidrs": []any{"10.20.0.0/16"}}},
	}})
	n.key = create(t, env, drivers.KMSKey{}, &engine.Desired{ID: "database_key", Type: "kms_key", Region: region, Fields: map[string]any{"data_class": "database", "rotation": true}})
	n.subnetGroup = create(t, env, drivers.DBSubnetGroup{}, &engine.Desired{ID: "db_subnets", Type: "db_subnet_group", Region: region, Fields: map[string]any{
		"name": "medportal-dev-db", "vpc": n.vpc.PhysicalID, "subnet_tier": "private",
	}})
	return n
}

func dbDesired(n dbNetwork, region string) *engine.Desired {
	return &engine.Desired{ID: "db", Type: "rds_instance", Region: region, Fields: map[string]any{
		"identifier": "medportal-dev-db", "data_class": "patient", "engine": "postgres", "engine_version": "16.4",
		"instance_class": "db.t4g.medium", "allocated_storage_gb": int64(20), "multi_az": false,
		"kms_key": n.key.Outputs["arn"], "backup_retention_days": int64(7), "deletion_protection": false,
		"subnet_group": n.subnetGroup.Outputs["name"], "security_groups": []any{n.sg.PhysicalID},
		"master_username": "portal", "manage_master_password": true,
	}}
}

func TestDBSubnetGroup(t *testing.T) {
	t.Parallel()
	forEachRegion(t, func(t *testing.T, region string) {
		ctx := context.Background()
		env := newEnv(t, region)
		vpc := makeVPC(t, env, region)
		d := &engine.Desired{ID: "db_subnets", Type: "db_subnet_group", Region: region, Fields: map[string]any{
			"name": "medportal-dev-db", "vpc": vpc.PhysicalID, "subnet_tier": "private",
		}}
		// No in-place update step: see the tier move below.
		live := lifecycle(t, env, drivers.DBSubnetGroup{}, d, nil)
		if live.Outputs["name"] != "medportal-dev-db" || !strings.HasPrefix(live.Outputs["arn"], "arn:aws:rds:"+region+":") {
			t.Errorf("outputs %v", live.Outputs)
		}
		private, err := drivers.SubnetsByTier(ctx, env, region, vpc.PhysicalID, "private")
		if err != nil {
			t.Fatal(err)
		}
		c := rds.NewFromConfig(env.Config(region))
		if out, err := c.DescribeDBSubnetGroups(ctx, &rds.DescribeDBSubnetGroupsInput{DBSubnetGroupName: aws.String("medportal-dev-db")}); err == nil {
			t.Errorf("the group outlived Delete: %+v", out.DBSubnetGroups)
		}

		// Moving to another tier: ModifyDBSubnetGroup. AWS keeps the group;
		// moto drops it, which must read as a plain error naming the call.
		d = &engine.Desired{ID: "db_subnets", Type: "db_subnet_group", Region: region, Tags: ownershipTags(env, "db_subnets"), Fields: map[string]any{
			"name": "medportal-dev-db", "vpc": vpc.PhysicalID, "subnet_tier": "private",
		}}
		created := create(t, env, drivers.DBSubnetGroup{}, d)
		sg, err := c.DescribeDBSubnetGroups(ctx, &rds.DescribeDBSubnetGroupsInput{DBSubnetGroupName: aws.String("medportal-dev-db")})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range sg.DBSubnetGroups[0].Subnets {
			ids = append(ids, aws.ToString(s.SubnetIdentifier))
		}
		if !sameElements(ids, private) {
			t.Errorf("group over %v, want the private subnets %v", ids, private)
		}
		d.Fields["subnet_tier"] = "public"
		changes := engine.Diff(d, created, nil)
		if len(changes) != 1 || changes[0].Path != "subnet_tier" {
			t.Fatalf("diff %+v, want subnet_tier", changes)
		}
		upd, err := drivers.DBSubnetGroup{}.Update(ctx, env, d, created, changes)
		switch {
		case err == nil:
			if ch := engine.Diff(d, upd, nil); len(ch) != 0 {
				t.Errorf("after Update: diff %+v", ch)
			}
		case !strings.Contains(err.Error(), "ModifyDBSubnetGroup succeeded but the group no longer exists"):
			t.Errorf("Update: %v, want success or a plain error", err)
		}
	})
}

func sameElements(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestRDSInstance(t *testing.T) {
	t.Parallel()
	forEachRegion(t, func(t *testing.T, region string) {
		env := newEnv(t, region)
		n := makeDBNetwork(t, env, region)
		d := dbDesired(n, region)
		live := lifecycle(t, env, drivers.RDSInstance{}, d, func(d *engine.Desired) []string {
			d.Fields["instance_class"] = "db.r6g.large"
			d.Fields["multi_az"] = true
			d.Fields["backup_retention_days"] = 35
			d.Fields["allocated_storage_gb"] = 50
			return []string{"allocated_storage_gb", "backup_retention_days", "instance_class", "multi_az"}
		})
		if live.Outputs["id"] != "medportal-dev-db" || !strings.Contains(live.Outputs["arn"], ":db:medportal-dev-db") || !strings.Contains(live.Outputs["endpoint"], "medportal-dev-db") {
			t.Errorf("outputs %v, want id, arn and endpoint", live.Outputs)
		}
		if live.Fields["manage_master_password"] != true {
			t.Errorf("master password is not managed by RDS: %v", live.Fields)
		}
		for _, f := range []string{"engine", "kms_key", "identifier", "master_username"} {
			d := &engine.Desired{ID: d.ID, Type: d.Type, Region: region, Tags: d.Tags, Fields: maps.Clone(d.Fields)}
			d.Fields[f] = "other"
			if ch := engine.Diff(d, live, drivers.RDSInstance{}.ForceNew()); len(ch) != 1 || !ch[0].Replace {
				t.Errorf("changing %s: %+v, want a replacement", f, ch)
			}
		}
		if live.Fields["kms_key"] != n.key.Outputs["arn"] {
			t.Errorf("kms_key %v, want %s", live.Fields["kms_key"], n.key.Outputs["arn"])
		}
	})
}

func TestRDSInstanceDeletionProtection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	region := "eu-central-1"
	env := newEnv(t, region)
	env.Stack.Environment = "prod"
	n := makeDBNetwork(t, env, region)
	d := dbDesired(n, region)
	d.Tags = ownershipTags(env, d.ID)
	d.Fields["deletion_protection"] = true
	drv := drivers.RDSInstance{}
	live, err := drv.Create(ctx, env, d)
	if err != nil {
		t.Fatal(err)
	}
	if !live.DeletionProtected {
		t.Fatalf("live %+v: DeletionProtected false, want true", live)
	}
	err = drv.Delete(ctx, env, live)
	if err == nil || !strings.Contains(err.Error(), "deletion protection on") {
		t.Fatalf("Delete of a protected instance: %v, want a refusal", err)
	}
	if _, err := drv.Read(ctx, env, d, nil); err != nil {
		t.Fatalf("after the refused Delete: %v", err)
	}
	// Off, then delete: prod keeps a final snapshot named after it.
	d.Fields["deletion_protection"] = false
	live, err = drv.Update(ctx, env, d, live, engine.Diff(d, live, drv.ForceNew()))
	if err != nil {
		t.Fatal(err)
	}
	if live.DeletionProtected {
		t.Fatal("still protected after the update")
	}
	if err := drv.Delete(ctx, env, live); err != nil {
		t.Fatal(err)
	}
	if _, err := drv.Read(ctx, env, d, nil); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("after Delete: %v", err)
	}
	c := rds.NewFromConfig(env.Config(region))
	snaps, err := c.DescribeDBSnapshots(ctx, &rds.DescribeDBSnapshotsInput{DBInstanceIdentifier: aws.String("medportal-dev-db")})
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps.DBSnapshots) != 1 || !strings.HasPrefix(aws.ToString(snaps.DBSnapshots[0].DBSnapshotIdentifier), "medportal-dev-db-final-") {
		t.Errorf("snapshots %+v, want one final snapshot", snaps.DBSnapshots)
	}
}

func TestRDSInstanceNonProdSkipsSnapshot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	region := "ap-southeast-1"
	env := newEnv(t, region)
	n := makeDBNetwork(t, env, region)
	d := dbDesired(n, region)
	lifecycle(t, env, drivers.RDSInstance{}, d, nil)
	c := rds.NewFromConfig(env.Config(region))
	snaps, err := c.DescribeDBSnapshots(ctx, &rds.DescribeDBSnapshotsInput{DBInstanceIdentifier: aws.String("medportal-dev-db"), SnapshotType: aws.String("manual")})
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps.DBSnapshots) != 0 {
		t.Errorf("dev delete left snapshots %+v, want none", snaps.DBSnapshots)
	}
	// The portal never sends a password.
	d.Fields["manage_master_password"] = false
	if _, err := (drivers.RDSInstance{}).Create(ctx, env, d); err == nil || !strings.Contains(err.Error(), "never generates") {
		t.Errorf("Create without a managed password: %v, want a refusal", err)
	}
}

func TestRDSReadReplica(t *testing.T) {
	t.Parallel()
	forEachRegion(t, func(t *testing.T, region string) {
		ctx := context.Background()
		env := newEnv(t, region)
		n := makeDBNetwork(t, env, region)
		primary := create(t, env, drivers.RDSInstance{}, dbDesired(n, region))
		d := &engine.Desired{ID: "db_replicas", Type: "rds_read_replica", Region: region, Fields: map[string]any{
			"identifier": "medportal-dev-db-replica", "data_class": "patient", "source": primary.Outputs["arn"],
			"count": int64(1), "instance_class": "db.t4g.medium", "kms_key": n.key.Outputs["arn"],
			"security_groups": []any{n.sg.PhysicalID},
		}}
		live := lifecycle(t, env, drivers.RDSReadReplica{}, d, func(d *engine.Desired) []string {
			d.Fields["count"] = 2
			d.Fields["instance_class"] = "db.r6g.large"
			return []string{"count", "instance_class"}
		})
		if got, want := live.Outputs["ids"], "medportal-dev-db-replica-1,medportal-dev-db-replica-2"; got != want {
			t.Errorf("ids %q, want %q", got, want)
		}
		if arns := strings.Split(live.Outputs["arns"], ","); len(arns) != 2 || !strings.HasSuffix(arns[1], ":db:medportal-dev-db-replica-2") {
			t.Errorf("arns %q", live.Outputs["arns"])
		}
		// The primary knows its replicas.
		c := rds.NewFromConfig(env.Config(region))
		out, err := c.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String("medportal-dev-db")})
		if err != nil {
			t.Fatal(err)
		}
		if got := out.DBInstances[0].ReadReplicaDBInstanceIdentifiers; len(got) != 0 {
			t.Errorf("after Delete the primary still lists replicas %v", got)
		}

		// Count 0: nothing exists, and that is no difference.
		zero := &engine.Desired{ID: "db_replicas", Type: "rds_read_replica", Region: region, Tags: ownershipTags(env, "db_replicas"), Fields: map[string]any{
			"identifier": "medportal-dev-db-replica", "source": primary.Outputs["arn"], "count": int64(0), "kms_key": n.key.Outputs["arn"],
		}}
		got, err := drivers.RDSReadReplica{}.Create(ctx, env, zero)
		if err != nil {
			t.Fatal(err)
		}
		if got.Outputs["ids"] != "" {
			t.Errorf("count 0 made %s", got.Outputs["ids"])
		}
		again, err := drivers.RDSReadReplica{}.Read(ctx, env, zero, nil)
		if err != nil {
			t.Fatalf("count 0: %v", err)
		}
		if ch := engine.Diff(zero, again, drivers.RDSReadReplica{}.ForceNew()); len(ch) != 0 {
			t.Errorf("count 0: diff %+v, want none", ch)
		}
		// The plan says why there is nothing to do, not that it adopted
		// replicas that do not exist.
		if !strings.Contains(again.Note, "no replica exists") {
			t.Errorf("count 0: note %q, want it to say no replica exists", again.Note)
		}
	})
}

// A replica in another region of the jurisdiction (Frankfurt -> Ireland),
// in a network of its own region (VPC, subnet group, security group) and
// encrypted with a key of that region.
func TestRDSReadReplicaCrossRegion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t, "eu-central-1")
	n := makeDBNetwork(t, env, "eu-central-1")
	standby := makeDBNetwork(t, env, "eu-west-1")
	primary := create(t, env, drivers.RDSInstance{}, dbDesired(n, "eu-central-1"))
	d := &engine.Desired{ID: "standby_db", Type: "rds_read_replica", Region: "eu-west-1", Fields: map[string]any{
		"identifier": "medportal-dev-db-standby", "source": primary.Outputs["arn"], "count": int64(1),
		"instance_class": "db.t4g.medium", "kms_key": standby.key.Outputs["arn"],
		"subnet_group": standby.subnetGroup.Outputs["name"], "security_groups": []any{standby.sg.PhysicalID},
	}}
	live := lifecycle(t, env, drivers.RDSReadReplica{}, d, func(d *engine.Desired) []string {
		d.Fields["instance_class"] = "db.r6g.large"
		return []string{"instance_class"}
	})
	if !strings.HasPrefix(live.Outputs["arns"], "arn:aws:rds:eu-west-1:") {
		t.Errorf("replica arn %q, want one in eu-west-1", live.Outputs["arns"])
	}
	if live.Fields["source"] != primary.Outputs["arn"] {
		t.Errorf("source %v, want %s", live.Fields["source"], primary.Outputs["arn"])
	}
	if live.Fields["subnet_group"] != standby.subnetGroup.Outputs["name"] {
		t.Errorf("subnet group %v, want the standby region's %s", live.Fields["subnet_group"], standby.subnetGroup.Outputs["name"])
	}

	// Placed in the standby region's VPC, not the source's.
	c := rds.NewFromConfig(env.Config("eu-west-1"))
	replica := create(t, env, drivers.RDSReadReplica{}, d)
	out, err := c.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(strings.Split(replica.Outputs["ids"], ",")[0])})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(out.DBInstances[0].DBSubnetGroup.VpcId); got != standby.vpc.PhysicalID {
		t.Errorf("replica in vpc %s, want the standby vpc %s", got, standby.vpc.PhysicalID)
	}

	// A replica in its source's region inherits its subnet group; AWS
	// refuses one given, and so does the driver, before calling AWS.
	same := &engine.Desired{ID: "db_replicas", Type: "rds_read_replica", Region: "eu-central-1", Tags: ownershipTags(env, "db_replicas"), Fields: map[string]any{
		"identifier": "medportal-dev-db-replica", "source": primary.Outputs["arn"], "count": int64(1),
		"kms_key": n.key.Outputs["arn"], "subnet_group": n.subnetGroup.Outputs["name"],
	}}
	if _, err := (drivers.RDSReadReplica{}).Create(ctx, env, same); err == nil || !strings.Contains(err.Error(), "AWS refuses it") {
		t.Errorf("same-region replica with a subnet group: err %v, want a refusal", err)
	}
}
