package drivers

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"portal/internal/engine"
)

// DynamoDBTable manages a table encrypted with a customer-managed key,
// with point-in-time recovery, deletion protection and global table
// replicas (version 2019.11.21).
//
// Fields: name, kms_key, billing_mode (PAY_PER_REQUEST when unset;
// PROVISIONED gets 5 read and 5 write units, the blueprint having no
// capacity fields), hash_key and range_key ({name, type}), pitr,
// deletion_protection, replica_regions; data_class and description are
// informational. Outputs: arn, name, id.
//
// A replica of a table under a customer-managed key needs a key in the
// replica's region: a dynamodb_table_replica resource names one (the
// shipped blueprints use it). replica_regions, kept for older blueprints,
// reads it from replica_kms_keys ({region: key ARN}) and otherwise refuses
// rather than let patient data fall back to an AWS-owned key.
//
// moto accepts UpdateTable's SSESpecification and ReplicaUpdates but
// applies neither; the driver checks what DynamoDB reports afterwards and
// says the endpoint does not support the change.
type DynamoDBTable struct{}

func (DynamoDBTable) Type() string { return "dynamodb_table" }
func (DynamoDBTable) ForceNew() []string {
	return []string{"name", "hash_key", "range_key"}
}

// ddbWait bounds how long the driver waits for a table or replica to turn
// ACTIVE; creating a replica of a large table takes a while.
const ddbWait = 30 * time.Minute

func ddbClient(env *engine.Env, region string) *dynamodb.Client {
	return dynamodb.NewFromConfig(env.Config(region))
}

func (t DynamoDBTable) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	name := d.String("name")
	if prior != nil {
		name = prior.PhysicalID
	}
	if !refResolved(name) {
		return nil, engine.ErrNotFound
	}
	c := ddbClient(env, d.Region)
	out, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if engine.IsCode(err, "ResourceNotFoundException") {
		return nil, engine.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("describe table %s: %w", name, err)
	}
	tb := out.Table
	if tb.TableStatus == types.TableStatusDeleting {
		return nil, engine.ErrNotFound
	}
	arn := aws.ToString(tb.TableArn)
	live := &engine.Live{
		PhysicalID: name,
		Region:     d.Region,
		Outputs:    map[string]string{"arn": arn, "name": name, "id": name},
		Fields: map[string]any{
			"name":                name,
			"billing_mode":        string(types.BillingModeProvisioned),
			"deletion_protection": aws.ToBool(tb.DeletionProtectionEnabled),
			"kms_key":             "",
			"range_key":           nil,
		},
		Tags:              map[string]string{},
		DeletionProtected: aws.ToBool(tb.DeletionProtectionEnabled),
	}
	if tb.LatestStreamArn != nil {
		live.Outputs["stream_arn"] = aws.ToString(tb.LatestStreamArn)
	}
	if s := tb.BillingModeSummary; s != nil && s.BillingMode != "" {
		live.Fields["billing_mode"] = string(s.BillingMode)
	}
	if s := tb.SSEDescription; s != nil && s.SSEType == types.SSETypeKms && (s.Status == types.SSEStatusEnabled || s.Status == types.SSEStatusUpdating || s.Status == types.SSEStatusEnabling) {
		live.Fields["kms_key"] = aws.ToString(s.KMSMasterKeyArn)
	}
	attrTypes := map[string]string{}
	for _, a := range tb.AttributeDefinitions {
		attrTypes[aws.ToString(a.AttributeName)] = string(a.AttributeType)
	}
	for _, k := range tb.KeySchema {
		n := aws.ToString(k.AttributeName)
		key := map[string]any{"name": n, "type": attrTypes[n]}
		if k.KeyType == types.KeyTypeHash {
			live.Fields["hash_key"] = key
		} else {
			live.Fields["range_key"] = key
		}
	}
	var replicas []string
	for _, r := range tb.Replicas {
		if r.ReplicaStatus != types.ReplicaStatusDeleting {
			replicas = append(replicas, aws.ToString(r.RegionName))
		}
	}
	if d.Has("replica_regions") {
		// Replicas made by dynamodb_table_replica resources are theirs.
		live.Fields["replica_regions"] = ddbOrdered(replicas, d.Strings("replica_regions"))
	}

	cb, err := c.DescribeContinuousBackups(ctx, &dynamodb.DescribeContinuousBackupsInput{TableName: aws.String(name)})
	if err != nil {
		return nil, fmt.Errorf("describe backups of table %s: %w", name, err)
	}
	pitr := false
	if desc := cb.ContinuousBackupsDescription; desc != nil && desc.PointInTimeRecoveryDescription != nil {
		pitr = desc.PointInTimeRecoveryDescription.PointInTimeRecoveryStatus == types.PointInTimeRecoveryStatusEnabled
	}
	live.Fields["pitr"] = pitr

	in := &dynamodb.ListTagsOfResourceInput{ResourceArn: aws.String(arn)}
	for {
		page, err := c.ListTagsOfResource(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list tags of table %s: %w", name, err)
		}
		for _, tag := range page.Tags {
			live.Tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
		}
		if page.NextToken == nil {
			return live, nil
		}
		in.NextToken = page.NextToken
	}
}

// ddbOrdered reports a set of regions in want's order when it holds the
// same regions, sorted otherwise: the engine compares lists in order.
func ddbOrdered(have, want []string) []any {
	x, y := slices.Clone(have), slices.Clone(want)
	sort.Strings(x)
	sort.Strings(y)
	l := x
	if slices.Equal(x, y) {
		l = want
	}
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}

func (t DynamoDBTable) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	name := d.String("name")
	c := ddbClient(env, d.Region)
	if err := t.checkReplicaKeys(d, d.Strings("replica_regions")); err != nil {
		return nil, err
	}
	in := &dynamodb.CreateTableInput{
		TableName:                 aws.String(name),
		DeletionProtectionEnabled: aws.Bool(d.Bool("deletion_protection")),
		Tags:                      ddbTags(d.Tags),
	}
	t.billing(d, &in.BillingMode, &in.ProvisionedThroughput)
	for _, k := range []struct {
		path string
		typ  types.KeyType
	}{{"hash_key", types.KeyTypeHash}, {"range_key", types.KeyTypeRange}} {
		if !d.Has(k.path) {
			continue
		}
		attr := d.String(k.path + ".name")
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{AttributeName: aws.String(attr), AttributeType: types.ScalarAttributeType(d.String(k.path + ".type"))})
		in.KeySchema = append(in.KeySchema, types.KeySchemaElement{AttributeName: aws.String(attr), KeyType: k.typ})
	}
	if key := d.String("kms_key"); key != "" {
		in.SSESpecification = &types.SSESpecification{Enabled: aws.Bool(true), SSEType: types.SSETypeKms, KMSMasterKeyId: aws.String(key)}
	}
	// CreateTable takes no idempotency token; the engine reads by name
	// before any Create, and a table already there is taken over below.
	if _, err := c.CreateTable(ctx, in); err != nil && !engine.IsCode(err, "ResourceInUseException") {
		return nil, fmt.Errorf("create table %s: %w", name, err)
	}
	if err := t.waitActive(ctx, c, name); err != nil {
		return nil, err
	}
	env.Logf("created table %s", name)
	if d.Bool("pitr") {
		if err := t.setPITR(ctx, c, name, true); err != nil {
			return nil, err
		}
		env.Logf("table %s: point-in-time recovery on", name)
	}
	if err := t.reconcileReplicas(ctx, c, env, d, name, nil); err != nil {
		return nil, err
	}
	return t.Read(ctx, env, d, &engine.Prior{PhysicalID: name, Region: d.Region})
}

func (DynamoDBTable) billing(d *engine.Desired, mode *types.BillingMode, tp **types.ProvisionedThroughput) {
	*mode = types.BillingModePayPerRequest
	if d.String("billing_mode") == string(types.BillingModeProvisioned) {
		*mode = types.BillingModeProvisioned
		*tp = &types.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(5), WriteCapacityUnits: aws.Int64(5)}
	}
}

func ddbTags(tags map[string]string) []types.Tag {
	out := make([]types.Tag, 0, len(tags))
	for _, k := range sortedKeys(tags) {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

func (DynamoDBTable) waitActive(ctx context.Context, c *dynamodb.Client, name string) error {
	if err := dynamodb.NewTableExistsWaiter(c).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, ddbWait); err != nil {
		return fmt.Errorf("wait for table %s: %w", name, err)
	}
	return nil
}

func (DynamoDBTable) setPITR(ctx context.Context, c *dynamodb.Client, name string, on bool) error {
	_, err := c.UpdateContinuousBackups(ctx, &dynamodb.UpdateContinuousBackupsInput{
		TableName:                        aws.String(name),
		PointInTimeRecoverySpecification: &types.PointInTimeRecoverySpecification{PointInTimeRecoveryEnabled: aws.Bool(on)},
	})
	if err != nil {
		return fmt.Errorf("set point-in-time recovery of table %s: %w", name, err)
	}
	return nil
}

// checkReplicaKeys refuses replicas of a table under a customer-managed
// key when no key is named for the replica's region.
func (DynamoDBTable) checkReplicaKeys(d *engine.Desired, regions []string) error {
	if d.String("kms_key") == "" {
		return nil
	}
	for _, r := range regions {
		if d.String("replica_kms_keys."+r) == "" {
			return fmt.Errorf("table %s: a replica in %s needs a customer-managed key of that region (replica_kms_keys.%s): without one DynamoDB would encrypt the replica with a key the account does not manage", d.String("name"), r, r)
		}
	}
	return nil
}

// reconcileReplicas adds and removes global table replicas one at a time
// (DynamoDB takes one replica change per UpdateTable) and waits for each.
func (t DynamoDBTable) reconcileReplicas(ctx context.Context, c *dynamodb.Client, env *engine.Env, d *engine.Desired, name string, live *engine.Live) error {
	want := d.Strings("replica_regions")
	var have []string
	if live != nil {
		for _, r := range live.Fields["replica_regions"].([]any) {
			have = append(have, r.(string))
		}
	}
	var add, remove []string
	for _, r := range want {
		if !slices.Contains(have, r) {
			add = append(add, r)
		}
	}
	for _, r := range have {
		if !slices.Contains(want, r) {
			remove = append(remove, r)
		}
	}
	if len(add) == 0 && len(remove) == 0 {
		return nil
	}
	if err := t.checkReplicaKeys(d, add); err != nil {
		return err
	}
	if len(add) > 0 {
		// Replicas are fed by the table's stream.
		desc, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			return fmt.Errorf("describe table %s: %w", name, err)
		}
		if s := desc.Table.StreamSpecification; s == nil || !aws.ToBool(s.StreamEnabled) {
			if _, err := c.UpdateTable(ctx, &dynamodb.UpdateTableInput{TableName: aws.String(name), StreamSpecification: &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewAndOldImages}}); err != nil {
				return fmt.Errorf("enable stream of table %s: %w", name, err)
			}
			if err := t.waitActive(ctx, c, name); err != nil {
				return err
			}
		}
	}
	for _, r := range add {
		act := &types.CreateReplicationGroupMemberAction{RegionName: aws.String(r)}
		if k := d.String("replica_kms_keys." + r); k != "" {
			act.KMSMasterKeyId = aws.String(k)
		}
		out, err := c.UpdateTable(ctx, &dynamodb.UpdateTableInput{TableName: aws.String(name), ReplicaUpdates: []types.ReplicationGroupUpdate{{Create: act}}})
		if err != nil {
			return fmt.Errorf("add replica %s to table %s: %w", r, name, err)
		}
		if !ddbHasReplica(out.TableDescription, r) {
			return fmt.Errorf("add replica %s to table %s: the endpoint accepted UpdateTable ReplicaUpdates but lists no replica: not supported by this endpoint", r, name)
		}
		if err := t.waitReplica(ctx, c, name, r, true); err != nil {
			return err
		}
		env.Logf("table %s: replica in %s", name, r)
	}
	for _, r := range remove {
		if _, err := c.UpdateTable(ctx, &dynamodb.UpdateTableInput{TableName: aws.String(name), ReplicaUpdates: []types.ReplicationGroupUpdate{{Delete: &types.DeleteReplicationGroupMemberAction{RegionName: aws.String(r)}}}}); err != nil {
			return fmt.Errorf("remove replica %s of table %s: %w", r, name, err)
		}
		if err := t.waitReplica(ctx, c, name, r, false); err != nil {
			return err
		}
		env.Logf("table %s: replica in %s removed", name, r)
	}
	return nil
}

func ddbHasReplica(td *types.TableDescription, region string) bool {
	if td == nil {
		return false
	}
	for _, r := range td.Replicas {
		if aws.ToString(r.RegionName) == region {
			return true
		}
	}
	return false
}

// waitReplica polls until the replica in region is ACTIVE (present) or
// gone (!present) and the table itself is ACTIVE.
func (DynamoDBTable) waitReplica(ctx context.Context, c *dynamodb.Client, name, region string, present bool) error {
	deadline := time.Now().Add(ddbWait)
	for {
		out, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			return fmt.Errorf("describe table %s: %w", name, err)
		}
		done := out.Table.TableStatus == types.TableStatusActive
		found := false
		for _, r := range out.Table.Replicas {
			if aws.ToString(r.RegionName) == region {
				found = true
				done = done && r.ReplicaStatus == types.ReplicaStatusActive
			}
		}
		if done && found == present {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("table %s: replica in %s not settled after %s", name, region, ddbWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Second):
		}
	}
}

func (t DynamoDBTable) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	c := ddbClient(env, live.Region)
	name := live.PhysicalID
	update := func(what string, in *dynamodb.UpdateTableInput) error {
		in.TableName = aws.String(name)
		if _, err := c.UpdateTable(ctx, in); err != nil {
			return fmt.Errorf("update %s of table %s: %w", what, name, err)
		}
		env.Logf("table %s: %s updated", name, what)
		return t.waitActive(ctx, c, name)
	}
	for _, ch := range changes {
		var err error
		switch ch.Path {
		case "billing_mode":
			in := &dynamodb.UpdateTableInput{}
			t.billing(d, &in.BillingMode, &in.ProvisionedThroughput)
			err = update("billing mode", in)
		case "deletion_protection":
			err = update("deletion protection", &dynamodb.UpdateTableInput{DeletionProtectionEnabled: aws.Bool(d.Bool("deletion_protection"))})
		case "kms_key":
			sse := &types.SSESpecification{Enabled: aws.Bool(false)}
			if k := d.String("kms_key"); k != "" {
				sse = &types.SSESpecification{Enabled: aws.Bool(true), SSEType: types.SSETypeKms, KMSMasterKeyId: aws.String(k)}
			}
			err = update("encryption key", &dynamodb.UpdateTableInput{SSESpecification: sse})
		case "pitr":
			err = t.setPITR(ctx, c, name, d.Bool("pitr"))
		case "replica_regions":
			err = t.reconcileReplicas(ctx, c, env, d, name, live)
		case "tags":
			_, err = c.TagResource(ctx, &dynamodb.TagResourceInput{ResourceArn: aws.String(live.Outputs["arn"]), Tags: ddbTags(d.Tags)})
		}
		if err != nil {
			return nil, err
		}
	}
	after, err := t.Read(ctx, env, d, &engine.Prior{PhysicalID: name, Region: live.Region})
	if err != nil {
		return nil, err
	}
	if slices.ContainsFunc(changes, func(c engine.FieldChange) bool { return c.Path == "kms_key" }) && after.Fields["kms_key"] != d.String("kms_key") {
		// moto answers UpdateTable's SSESpecification without applying it.
		return nil, fmt.Errorf("update encryption key of table %s: the endpoint accepted UpdateTable SSESpecification but still reports key %q: not supported by this endpoint", name, after.Fields["kms_key"])
	}
	return after, nil
}

// Delete removes the replicas, then the table. A table with deletion
// protection on is refused by DynamoDB (the engine refuses it first).
func (t DynamoDBTable) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := ddbClient(env, live.Region)
	name := live.PhysicalID
	if rs, _ := live.Fields["replica_regions"].([]any); len(rs) > 0 {
		d := &engine.Desired{Region: live.Region, Fields: map[string]any{"replica_regions": []any{}}}
		if err := t.reconcileReplicas(ctx, c, env, d, name, live); err != nil {
			return err
		}
	}
	_, err := c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	if engine.IsCode(err, "ResourceNotFoundException") {
		return nil
	} else if err != nil {
		return fmt.Errorf("delete table %s: %w", name, err)
	}
	if err := dynamodb.NewTableNotExistsWaiter(c).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, ddbWait); err != nil {
		return fmt.Errorf("wait for deletion of table %s: %w", name, err)
	}
	env.Logf("deleted table %s", name)
	return nil
}
