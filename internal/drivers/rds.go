package drivers

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/rds/types"

	"portal/internal/engine"
)

func rdsClient(env *engine.Env, region string) *rds.Client {
	return rds.NewFromConfig(env.Config(region))
}

func rdsTags(tags map[string]string) []types.Tag {
	out := make([]types.Tag, 0, len(tags))
	for _, k := range sortedKeys(tags) {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

func rdsTagMap(tags []types.Tag) map[string]string {
	out := make(map[string]string, len(tags))
	for _, t := range tags {
		out[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return out
}

// sameKey reports a live KMS key the way the blueprint names it: AWS
// reports key ARNs, a blueprint may name the key by ARN or by id.
func sameKey(live, want string) string {
	if live == want || want == "" || live == "" {
		return live
	}
	if strings.HasPrefix(live, "arn:") && !strings.HasPrefix(want, "arn:") && strings.HasSuffix(live, "/"+want) {
		return want
	}
	return live
}

// sameValue compares blueprint-shaped values the way the engine's diff
// does (numbers by value).
func sameValue(a, b any) bool {
	return len(engine.Diff(&engine.Desired{Fields: map[string]any{"v": a}}, &engine.Live{Fields: map[string]any{"v": b}}, nil)) == 0
}

func vpcSecurityGroups(gs []types.VpcSecurityGroupMembership) []string {
	out := make([]string, 0, len(gs))
	for _, g := range gs {
		out = append(out, aws.ToString(g.VpcSecurityGroupId))
	}
	return out
}

// waitDBAvailable polls until instance id is available with no modification
// pending: after ModifyDBInstance with ApplyImmediately, RDS may still
// report "available" for a moment before it starts "modifying".
func waitDBAvailable(ctx context.Context, c *rds.Client, id string, timeout time.Duration) (*types.DBInstance, error) {
	deadline := time.Now().Add(timeout)
	delay := 5 * time.Second
	for {
		out, err := c.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(id)})
		if err != nil {
			return nil, fmt.Errorf("wait for db instance %s: %w", id, err)
		}
		db := out.DBInstances[0]
		status := aws.ToString(db.DBInstanceStatus)
		pm := db.PendingModifiedValues
		pending := pm != nil && (pm.DBInstanceClass != nil || pm.MultiAZ != nil || pm.AllocatedStorage != nil ||
			pm.BackupRetentionPeriod != nil || pm.EngineVersion != nil)
		switch {
		case status == "available" && !pending:
			return &db, nil
		case status == "failed" || status == "incompatible-parameters" || status == "incompatible-network" || status == "storage-full":
			return nil, fmt.Errorf("db instance %s is %s", id, status)
		case time.Now().After(deadline):
			return nil, fmt.Errorf("db instance %s still %s after %s", id, status, timeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 30*time.Second)
	}
}

func waitDBDeleted(ctx context.Context, c *rds.Client, id string) error {
	err := rds.NewDBInstanceDeletedWaiter(c).Wait(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(id)}, 60*time.Minute)
	if err != nil && !engine.IsCode(err, "DBInstanceNotFound", "DBInstanceNotFoundFault") {
		return fmt.Errorf("wait for db instance %s to be deleted: %w", id, err)
	}
	return nil
}

// ---------------------------------------------------------------- db_subnet_group

// DBSubnetGroup manages an RDS subnet group over a VPC's subnets of one
// tier (found by the tags the vpc driver sets).
//
// Fields: name, vpc, subnet_tier, description. Outputs: name, arn, id.
type DBSubnetGroup struct{}

func (DBSubnetGroup) Type() string       { return "db_subnet_group" }
func (DBSubnetGroup) ForceNew() []string { return []string{"name", "vpc"} }

func (g DBSubnetGroup) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	c := rdsClient(env, d.Region)
	name := d.String("name")
	if prior != nil && prior.PhysicalID != "" {
		name = prior.PhysicalID
	}
	out, err := c.DescribeDBSubnetGroups(ctx, &rds.DescribeDBSubnetGroupsInput{DBSubnetGroupName: aws.String(name)})
	if engine.IsCode(err, "DBSubnetGroupNotFoundFault", "DBSubnetGroupNotFound") {
		return nil, engine.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("describe db subnet group %s: %w", name, err)
	}
	if len(out.DBSubnetGroups) == 0 {
		return nil, engine.ErrNotFound
	}
	sg := out.DBSubnetGroups[0]
	name = aws.ToString(sg.DBSubnetGroupName)
	vpc := aws.ToString(sg.VpcId)
	var ids []string
	for _, s := range sg.Subnets {
		ids = append(ids, aws.ToString(s.SubnetIdentifier))
	}
	tier, err := subnetTier(ctx, env, d.Region, vpc, ids, d.String("subnet_tier"))
	if err != nil {
		return nil, err
	}
	a := aws.ToString(sg.DBSubnetGroupArn)
	live := &engine.Live{
		PhysicalID: name,
		Region:     d.Region,
		Outputs:    map[string]string{"name": name, "id": name, "arn": a},
		Fields:     map[string]any{"name": name, "vpc": vpc, "subnet_tier": tier},
		Tags:       map[string]string{},
	}
	if d.Has("description") {
		live.Fields["description"] = aws.ToString(sg.DBSubnetGroupDescription)
	}
	tags, err := c.ListTagsForResource(ctx, &rds.ListTagsForResourceInput{ResourceName: aws.String(a)})
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", a, err)
	}
	live.Tags = rdsTagMap(tags.TagList)
	return live, nil
}

func (g DBSubnetGroup) description(env *engine.Env, d *engine.Desired) string {
	if s := d.String("description"); s != "" {
		return s
	}
	return fmt.Sprintf("%s %s: %s subnets of %s", env.Stack.ID, d.ID, d.String("subnet_tier"), d.String("vpc"))
}

func (g DBSubnetGroup) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	c := rdsClient(env, d.Region)
	subnets, err := subnetsByTier(ctx, env, d.Region, d.String("vpc"), d.String("subnet_tier"))
	if err != nil {
		return nil, err
	}
	name := d.String("name")
	_, err = c.CreateDBSubnetGroup(ctx, &rds.CreateDBSubnetGroupInput{
		DBSubnetGroupName:        aws.String(name),
		DBSubnetGroupDescription: aws.String(g.description(env, d)),
		SubnetIds:                subnets,
		Tags:                     rdsTags(d.Tags),
	})
	// The name is the idempotency key: a retry after a crash finds the
	// group the first attempt made.
	if err != nil && !engine.IsCode(err, "DBSubnetGroupAlreadyExists", "DBSubnetGroupAlreadyExistsFault") {
		return nil, fmt.Errorf("create db subnet group %s: %w", name, err)
	}
	env.Logf("created db subnet group %s over %s", name, strings.Join(subnets, ","))
	return g.Read(ctx, env, d, &engine.Prior{PhysicalID: name, Region: d.Region})
}

func (g DBSubnetGroup) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	c := rdsClient(env, d.Region)
	name := live.PhysicalID
	for _, ch := range changes {
		switch ch.Path {
		case "tags":
			if _, err := c.AddTagsToResource(ctx, &rds.AddTagsToResourceInput{ResourceName: aws.String(live.Outputs["arn"]), Tags: rdsTags(d.Tags)}); err != nil {
				return nil, fmt.Errorf("tag db subnet group %s: %w", name, err)
			}
		case "subnet_tier", "description":
			subnets, err := subnetsByTier(ctx, env, d.Region, d.String("vpc"), d.String("subnet_tier"))
			if err != nil {
				return nil, err
			}
			if _, err := c.ModifyDBSubnetGroup(ctx, &rds.ModifyDBSubnetGroupInput{
				DBSubnetGroupName: aws.String(name), SubnetIds: subnets, DBSubnetGroupDescription: aws.String(g.description(env, d)),
			}); err != nil {
				return nil, fmt.Errorf("modify db subnet group %s: %w", name, err)
			}
			env.Logf("db subnet group %s now over %s", name, strings.Join(subnets, ","))
		}
	}
	after, err := g.Read(ctx, env, d, &engine.Prior{PhysicalID: name, Region: d.Region})
	if errors.Is(err, engine.ErrNotFound) {
		// AWS keeps a modified group; moto answers ModifyDBSubnetGroup with
		// success and drops the group. Say so rather than report it gone.
		return nil, fmt.Errorf("modify db subnet group %s: ModifyDBSubnetGroup succeeded but the group no longer exists (this endpoint loses subnet groups it modifies); apply again to recreate it", name)
	}
	return after, err
}

func (DBSubnetGroup) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := rdsClient(env, live.Region)
	_, err := c.DeleteDBSubnetGroup(ctx, &rds.DeleteDBSubnetGroupInput{DBSubnetGroupName: aws.String(live.PhysicalID)})
	if err != nil && !engine.IsCode(err, "DBSubnetGroupNotFoundFault", "DBSubnetGroupNotFound") {
		return fmt.Errorf("delete db subnet group %s (still used by a database?): %w", live.PhysicalID, err)
	}
	env.Logf("deleted db subnet group %s", live.PhysicalID)
	return nil
}

// ---------------------------------------------------------------- rds_instance

// RDSInstance manages an encrypted RDS PostgreSQL instance. The master
// password is never generated, seen or logged by the portal: RDS keeps it
// in Secrets Manager (ManageMasterUserPassword), encrypted with the
// instance's key.
//
// Fields: identifier, engine, engine_version, instance_class,
// allocated_storage_gb, multi_az, kms_key, backup_retention_days,
// deletion_protection, subnet_group, security_groups, master_username,
// manage_master_password. Outputs: id (the identifier, CloudWatch's
// DBInstanceIdentifier), name, arn, endpoint, port.
type RDSInstance struct{}

func (RDSInstance) Type() string { return "rds_instance" }

// ForceNew: RDS cannot change these of an existing instance.
func (RDSInstance) ForceNew() []string {
	return []string{"engine", "kms_key", "identifier", "master_username"}
}

func (r RDSInstance) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	c := rdsClient(env, d.Region)
	id := d.String("identifier")
	if prior != nil && prior.PhysicalID != "" {
		id = prior.PhysicalID
	}
	out, err := c.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(id)})
	if engine.IsCode(err, "DBInstanceNotFound", "DBInstanceNotFoundFault") {
		return nil, engine.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("describe db instance %s: %w", id, err)
	}
	if len(out.DBInstances) == 0 {
		return nil, engine.ErrNotFound
	}
	return r.live(d, &out.DBInstances[0]), nil
}

func (RDSInstance) live(d *engine.Desired, db *types.DBInstance) *engine.Live {
	id := aws.ToString(db.DBInstanceIdentifier)
	version := aws.ToString(db.EngineVersion)
	// A blueprint may pin only the major version ("16"); RDS reports the
	// minor it runs ("16.4").
	if want := d.String("engine_version"); want != "" && strings.HasPrefix(version, want+".") {
		version = want
	}
	subnetGroup := ""
	if db.DBSubnetGroup != nil {
		subnetGroup = aws.ToString(db.DBSubnetGroup.DBSubnetGroupName)
	}
	live := &engine.Live{
		PhysicalID: id,
		Region:     d.Region,
		Outputs:    map[string]string{"id": id, "name": id, "arn": aws.ToString(db.DBInstanceArn)},
		Fields: map[string]any{
			"identifier":             id,
			"engine":                 aws.ToString(db.Engine),
			"engine_version":         version,
			"instance_class":         aws.ToString(db.DBInstanceClass),
			"allocated_storage_gb":   int64(aws.ToInt32(db.AllocatedStorage)),
			"multi_az":               aws.ToBool(db.MultiAZ),
			"kms_key":                sameKey(aws.ToString(db.KmsKeyId), d.String("kms_key")),
			"backup_retention_days":  int64(aws.ToInt32(db.BackupRetentionPeriod)),
			"deletion_protection":    aws.ToBool(db.DeletionProtection),
			"subnet_group":           subnetGroup,
			"security_groups":        inDesiredOrder(vpcSecurityGroups(db.VpcSecurityGroups), d.Strings("security_groups")),
			"master_username":        aws.ToString(db.MasterUsername),
			"manage_master_password": db.MasterUserSecret != nil,
		},
		Tags:              rdsTagMap(db.TagList),
		DeletionProtected: aws.ToBool(db.DeletionProtection),
	}
	if ep := db.Endpoint; ep != nil {
		live.Outputs["endpoint"] = aws.ToString(ep.Address)
		live.Outputs["port"] = strconv.Itoa(int(aws.ToInt32(ep.Port)))
	}
	return live
}

func (r RDSInstance) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	if d.Has("manage_master_password") && !d.Bool("manage_master_password") {
		return nil, fmt.Errorf("rds_instance %s: manage_master_password must be true: the portal never generates, stores or logs database passwords; RDS keeps the master password in Secrets Manager", d.ID)
	}
	if d.Has("backup_copy_region") {
		return nil, fmt.Errorf("rds_instance %s: backup_copy_region is not supported by this driver yet", d.ID)
	}
	c := rdsClient(env, d.Region)
	id := d.String("identifier")
	user := d.String("master_username")
	if user == "" {
		user = "portal"
	}
	in := &rds.CreateDBInstanceInput{
		DBInstanceIdentifier:     aws.String(id),
		Engine:                   aws.String(d.String("engine")),
		DBInstanceClass:          aws.String(d.String("instance_class")),
		AllocatedStorage:         aws.Int32(int32(d.Int("allocated_storage_gb"))),
		StorageType:              aws.String("gp3"),
		MultiAZ:                  aws.Bool(d.Bool("multi_az")),
		StorageEncrypted:         aws.Bool(true),
		KmsKeyId:                 aws.String(d.String("kms_key")),
		BackupRetentionPeriod:    aws.Int32(int32(d.Int("backup_retention_days"))),
		DeletionProtection:       aws.Bool(d.Bool("deletion_protection")),
		DBSubnetGroupName:        aws.String(d.String("subnet_group")),
		VpcSecurityGroupIds:      d.Strings("security_groups"),
		MasterUsername:           aws.String(user),
		ManageMasterUserPassword: aws.Bool(true),
		MasterUserSecretKmsKeyId: aws.String(d.String("kms_key")),
		PubliclyAccessible:       aws.Bool(false),
		CopyTagsToSnapshot:       aws.Bool(true),
		Tags:                     rdsTags(d.Tags),
	}
	if v := d.String("engine_version"); v != "" {
		in.EngineVersion = aws.String(v)
	}
	if in.AllocatedStorage == nil || *in.AllocatedStorage == 0 {
		in.AllocatedStorage = aws.Int32(20)
	}
	// CreateDBInstance takes no idempotency token: the identifier is the
	// key, and a retry after a crash finds the first attempt's instance.
	if _, err := c.CreateDBInstance(ctx, in); err != nil {
		if !engine.IsCode(err, "DBInstanceAlreadyExists", "DBInstanceAlreadyExistsFault") {
			return nil, fmt.Errorf("create db instance %s: %w", id, err)
		}
		if cur, rerr := r.Read(ctx, env, d, nil); rerr != nil || !cur.OwnedBy(env.Stack.ID) {
			return nil, fmt.Errorf("create db instance %s: the identifier is taken by a database stack %s does not own", id, env.Stack.ID)
		}
	} else {
		env.Logf("creating db instance %s (%s %s, %s)", id, d.String("engine"), d.String("engine_version"), d.String("instance_class"))
	}
	db, err := waitDBAvailable(ctx, c, id, 90*time.Minute)
	if err != nil {
		return nil, err
	}
	env.Logf("db instance %s available", id)
	return r.live(d, db), nil
}

func (r RDSInstance) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	c := rdsClient(env, d.Region)
	id := live.PhysicalID
	in := &rds.ModifyDBInstanceInput{DBInstanceIdentifier: aws.String(id), ApplyImmediately: aws.Bool(true)}
	modify := false
	for _, ch := range changes {
		modify = true
		switch ch.Path {
		case "instance_class":
			in.DBInstanceClass = aws.String(d.String("instance_class"))
		case "multi_az":
			in.MultiAZ = aws.Bool(d.Bool("multi_az"))
		case "backup_retention_days":
			in.BackupRetentionPeriod = aws.Int32(int32(d.Int("backup_retention_days")))
		case "deletion_protection":
			in.DeletionProtection = aws.Bool(d.Bool("deletion_protection"))
		case "allocated_storage_gb":
			if have := toInt64(live.Fields["allocated_storage_gb"]); d.Int("allocated_storage_gb") < have {
				return nil, fmt.Errorf("db instance %s: RDS cannot shrink storage (%d GB to %d GB)", id, have, d.Int("allocated_storage_gb"))
			}
			in.AllocatedStorage = aws.Int32(int32(d.Int("allocated_storage_gb")))
		case "engine_version":
			in.EngineVersion = aws.String(d.String("engine_version"))
			have, _ := live.Fields["engine_version"].(string)
			if strings.Split(have, ".")[0] != strings.Split(d.String("engine_version"), ".")[0] {
				in.AllowMajorVersionUpgrade = aws.Bool(true)
			}
		case "security_groups":
			in.VpcSecurityGroupIds = d.Strings("security_groups")
		case "subnet_group":
			in.DBSubnetGroupName = aws.String(d.String("subnet_group"))
		case "manage_master_password":
			if !d.Bool("manage_master_password") {
				return nil, fmt.Errorf("db instance %s: manage_master_password must stay true: the portal never handles database passwords", id)
			}
			in.ManageMasterUserPassword = aws.Bool(true)
			in.MasterUserSecretKmsKeyId = aws.String(d.String("kms_key"))
		case "tags":
			modify = false
			if _, err := c.AddTagsToResource(ctx, &rds.AddTagsToResourceInput{ResourceName: aws.String(live.Outputs["arn"]), Tags: rdsTags(d.Tags)}); err != nil {
				return nil, fmt.Errorf("tag db instance %s: %w", id, err)
			}
		default:
			return nil, fmt.Errorf("db instance %s: %s cannot be changed in place", id, ch.Path)
		}
	}
	if modify {
		if _, err := c.ModifyDBInstance(ctx, in); err != nil {
			return nil, fmt.Errorf("modify db instance %s: %w", id, err)
		}
		env.Logf("modifying db instance %s (%s)", id, strings.Join(changePathList(changes), ", "))
	}
	db, err := waitDBAvailable(ctx, c, id, 90*time.Minute)
	if err != nil {
		return nil, err
	}
	return r.live(d, db), nil
}

func changePathList(cs []engine.FieldChange) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Path
	}
	return out
}

// Delete refuses an instance with deletion protection on. Outside prod it
// skips the final snapshot; in prod it takes one named after the instance
// and the time, kept after the instance is gone.
func (RDSInstance) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	id := live.PhysicalID
	if live.DeletionProtected {
		return fmt.Errorf("db instance %s has deletion protection on: set deletion_protection to false and apply before deleting it", id)
	}
	c := rdsClient(env, live.Region)
	in := &rds.DeleteDBInstanceInput{DBInstanceIdentifier: aws.String(id)}
	snapshot := ""
	if env.Stack.Environment == "prod" {
		snapshot = fmt.Sprintf("%s-final-%s", id, time.Now().UTC().Format("20060102-150405"))
		in.FinalDBSnapshotIdentifier = aws.String(snapshot)
	} else {
		in.SkipFinalSnapshot = aws.Bool(true)
	}
	_, err := c.DeleteDBInstance(ctx, in)
	switch {
	case engine.IsCode(err, "DBInstanceNotFound", "DBInstanceNotFoundFault"):
		return nil
	case engine.IsCode(err, "InvalidDBInstanceState", "InvalidDBInstanceStateFault"):
		// Already being deleted (a retry): wait for it.
	case err != nil:
		return fmt.Errorf("delete db instance %s: %w", id, err)
	case snapshot != "":
		env.Logf("deleting db instance %s, final snapshot %s", id, snapshot)
	default:
		env.Logf("deleting db instance %s without a final snapshot (%s)", id, env.Stack.Environment)
	}
	return waitDBDeleted(ctx, c, id)
}

// ---------------------------------------------------------------- rds_read_replica

// RDSReadReplica manages count read replicas of an RDS instance, named
// <identifier>-1 .. <identifier>-<count>, in the resource's region, which
// may differ from the source's (the guardrails keep it in the
// jurisdiction). Count 0 means none exist.
//
// Fields: identifier, source (ARN), count, instance_class, kms_key,
// security_groups, subnet_group. Outputs: identifier, ids, arns, endpoints
// (comma-joined, in replica order).
//
// A replica in another region than its source needs its own network
// there: subnet_group (a DB subnet group of that region) and security
// groups of that region's VPC; without them AWS answers InvalidGroup.NotFound
// or places the replica outside the VPC. A replica in its source's region
// inherits the source's subnet group, and AWS refuses one given
// (DBSubnetGroupNotAllowedFault), so the driver refuses it first.
type RDSReadReplica struct{}

func (RDSReadReplica) Type() string { return "rds_read_replica" }
func (RDSReadReplica) ForceNew() []string {
	return []string{"identifier", "source", "kms_key", "subnet_group"}
}

// replicas returns the live replicas named base-<n>, ordered by n.
func (RDSReadReplica) replicas(ctx context.Context, c *rds.Client, base string) ([]types.DBInstance, []int, error) {
	re := regexp.MustCompile("^" + regexp.QuoteMeta(base) + `-([1-9][0-9]*)$`)
	type rep struct {
		n  int
		db types.DBInstance
	}
	var found []rep
	p := rds.NewDescribeDBInstancesPaginator(c, &rds.DescribeDBInstancesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("list db instances: %w", err)
		}
		for _, db := range page.DBInstances {
			m := re.FindStringSubmatch(aws.ToString(db.DBInstanceIdentifier))
			if m == nil || aws.ToString(db.DBInstanceStatus) == "deleting" {
				continue
			}
			n, _ := strconv.Atoi(m[1])
			found = append(found, rep{n, db})
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].n < found[j].n })
	dbs := make([]types.DBInstance, len(found))
	ns := make([]int, len(found))
	for i, f := range found {
		dbs[i], ns[i] = f.db, f.n
	}
	return dbs, ns, nil
}

func (r RDSReadReplica) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	c := rdsClient(env, d.Region)
	base := d.String("identifier")
	if prior != nil && prior.PhysicalID != "" {
		base = prior.PhysicalID
	}
	dbs, _, err := r.replicas(ctx, c, base)
	if err != nil {
		return nil, err
	}
	if len(dbs) == 0 && d.Int("count") > 0 {
		return nil, engine.ErrNotFound
	}
	live := &engine.Live{
		PhysicalID: base,
		Region:     d.Region,
		Outputs:    map[string]string{"identifier": base},
		Fields:     map[string]any{"identifier": base, "count": int64(len(dbs))},
		Tags:       map[string]string{},
	}
	if len(dbs) == 0 {
		// Count 0 and none exist: the empty set is as asked.
		for _, k := range []string{"source", "instance_class", "kms_key", "security_groups", "subnet_group"} {
			if v, ok := d.Get(k); ok {
				live.Fields[k] = deepCopy(v)
			}
		}
		live.Tags = d.Tags
		live.Note = "count is 0 and no replica exists: nothing to create"
		return live, nil
	}
	var ids, arns, endpoints []string
	for i, db := range dbs {
		ids = append(ids, aws.ToString(db.DBInstanceIdentifier))
		arns = append(arns, aws.ToString(db.DBInstanceArn))
		if db.Endpoint != nil {
			endpoints = append(endpoints, aws.ToString(db.Endpoint.Address))
		}
		fields := map[string]any{
			"source":          r.source(aws.ToString(db.ReadReplicaSourceDBInstanceIdentifier), d.String("source"), d.Region),
			"instance_class":  aws.ToString(db.DBInstanceClass),
			"kms_key":         sameKey(aws.ToString(db.KmsKeyId), d.String("kms_key")),
			"security_groups": inDesiredOrder(vpcSecurityGroups(db.VpcSecurityGroups), d.Strings("security_groups")),
		}
		if d.Has("subnet_group") {
			sg := ""
			if db.DBSubnetGroup != nil {
				sg = aws.ToString(db.DBSubnetGroup.DBSubnetGroupName)
			}
			fields["subnet_group"] = sg
		}
		// Report the first replica that differs from the blueprint, so a
		// change on any one of them shows.
		for k, v := range fields {
			if _, set := live.Fields[k]; !set || (!sameValue(v, d.Fields[k]) && sameValue(live.Fields[k], d.Fields[k])) {
				live.Fields[k] = v
			}
		}
		if i == 0 {
			live.Tags = rdsTagMap(db.TagList)
		}
	}
	live.Outputs["ids"] = strings.Join(ids, ",")
	live.Outputs["arns"] = strings.Join(arns, ",")
	live.Outputs["endpoints"] = strings.Join(endpoints, ",")
	return live, nil
}

// source reports the replica's source as the blueprint names it: RDS
// reports a same-region source by identifier and a cross-region one by ARN.
func (RDSReadReplica) source(live, want, region string) string {
	if live == want || !strings.HasPrefix(want, "arn:") {
		return live
	}
	if a, err := arn.Parse(want); err == nil && a.Region == region && strings.TrimPrefix(a.Resource, "db:") == live {
		return want
	}
	return live
}

func (r RDSReadReplica) create(ctx context.Context, c *rds.Client, env *engine.Env, d *engine.Desired, n int) error {
	id := fmt.Sprintf("%s-%d", d.String("identifier"), n)
	src := d.String("source")
	in := &rds.CreateDBInstanceReadReplicaInput{
		DBInstanceIdentifier:       aws.String(id),
		SourceDBInstanceIdentifier: aws.String(src),
		KmsKeyId:                   aws.String(d.String("kms_key")),
		VpcSecurityGroupIds:        d.Strings("security_groups"),
		PubliclyAccessible:         aws.Bool(false),
		CopyTagsToSnapshot:         aws.Bool(true),
		Tags:                       rdsTags(d.Tags),
	}
	if cls := d.String("instance_class"); cls != "" {
		in.DBInstanceClass = aws.String(cls)
	}
	crossRegion := false
	if a, err := arn.Parse(src); err == nil && a.Region != d.Region {
		// Cross-region: the SDK presigns the request in the source region.
		in.SourceRegion = aws.String(a.Region)
		crossRegion = true
	}
	switch sg := d.String("subnet_group"); {
	case sg != "" && !crossRegion:
		return fmt.Errorf("read replica %s: subnet_group %s given for a replica in its source's region %s: AWS refuses it (the replica inherits the source's subnet group); remove subnet_group", id, sg, d.Region)
	case sg != "":
		in.DBSubnetGroupName = aws.String(sg)
	}
	_, err := c.CreateDBInstanceReadReplica(ctx, in)
	if engine.IsCode(err, "DBInstanceAlreadyExists", "DBInstanceAlreadyExistsFault") {
		return nil // made by an attempt cut short
	} else if err != nil {
		return fmt.Errorf("create read replica %s of %s: %w", id, src, err)
	}
	env.Logf("creating read replica %s of %s in %s", id, src, d.Region)
	return nil
}

func (r RDSReadReplica) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	c := rdsClient(env, d.Region)
	for n := 1; n <= int(d.Int("count")); n++ {
		if err := r.create(ctx, c, env, d, n); err != nil {
			return nil, err
		}
	}
	if err := r.waitAll(ctx, c, d); err != nil {
		return nil, err
	}
	return r.Read(ctx, env, d, &engine.Prior{PhysicalID: d.String("identifier"), Region: d.Region})
}

func (r RDSReadReplica) waitAll(ctx context.Context, c *rds.Client, d *engine.Desired) error {
	for n := 1; n <= int(d.Int("count")); n++ {
		if _, err := waitDBAvailable(ctx, c, fmt.Sprintf("%s-%d", d.String("identifier"), n), 90*time.Minute); err != nil {
			return err
		}
	}
	return nil
}

func (r RDSReadReplica) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	c := rdsClient(env, d.Region)
	base := live.PhysicalID
	dbs, ns, err := r.replicas(ctx, c, base)
	if err != nil {
		return nil, err
	}
	want := int(d.Int("count"))
	have := map[int]bool{}
	for i, db := range dbs {
		n := ns[i]
		have[n] = true
		id := aws.ToString(db.DBInstanceIdentifier)
		if n > want {
			if err := r.deleteOne(ctx, c, env, id); err != nil {
				return nil, err
			}
			continue
		}
		in := &rds.ModifyDBInstanceInput{DBInstanceIdentifier: aws.String(id), ApplyImmediately: aws.Bool(true)}
		modify := false
		if cls := d.String("instance_class"); cls != "" && cls != aws.ToString(db.DBInstanceClass) {
			in.DBInstanceClass, modify = aws.String(cls), true
		}
		if sgs := d.Strings("security_groups"); d.Has("security_groups") && !sameSet(sgs, vpcSecurityGroups(db.VpcSecurityGroups)) {
			in.VpcSecurityGroupIds, modify = sgs, true
		}
		if modify {
			if _, err := c.ModifyDBInstance(ctx, in); err != nil {
				return nil, fmt.Errorf("modify read replica %s: %w", id, err)
			}
			env.Logf("modifying read replica %s", id)
		}
		for _, ch := range changes {
			if ch.Path == "tags" {
				if _, err := c.AddTagsToResource(ctx, &rds.AddTagsToResourceInput{ResourceName: db.DBInstanceArn, Tags: rdsTags(d.Tags)}); err != nil {
					return nil, fmt.Errorf("tag read replica %s: %w", id, err)
				}
			}
		}
	}
	for n := 1; n <= want; n++ {
		if !have[n] {
			if err := r.create(ctx, c, env, d, n); err != nil {
				return nil, err
			}
		}
	}
	if err := r.waitAll(ctx, c, d); err != nil {
		return nil, err
	}
	return r.Read(ctx, env, d, &engine.Prior{PhysicalID: base, Region: d.Region})
}

// deleteOne deletes a replica; RDS takes no final snapshot of a replica.
func (RDSReadReplica) deleteOne(ctx context.Context, c *rds.Client, env *engine.Env, id string) error {
	_, err := c.DeleteDBInstance(ctx, &rds.DeleteDBInstanceInput{DBInstanceIdentifier: aws.String(id), SkipFinalSnapshot: aws.Bool(true)})
	if engine.IsCode(err, "DBInstanceNotFound", "DBInstanceNotFoundFault") {
		return nil
	} else if err != nil && !engine.IsCode(err, "InvalidDBInstanceState", "InvalidDBInstanceStateFault") {
		return fmt.Errorf("delete read replica %s: %w", id, err)
	}
	env.Logf("deleting read replica %s", id)
	return waitDBDeleted(ctx, c, id)
}

func (r RDSReadReplica) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := rdsClient(env, live.Region)
	dbs, _, err := r.replicas(ctx, c, live.PhysicalID)
	if err != nil {
		return err
	}
	var errs []error
	for _, db := range dbs {
		errs = append(errs, r.deleteOne(ctx, c, env, aws.ToString(db.DBInstanceIdentifier)))
	}
	return errors.Join(errs...)
}
