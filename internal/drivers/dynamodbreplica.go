package drivers

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"portal/internal/engine"
)

// DynamoDBTableReplica manages one replica of a table (global tables
// version 2019.11.21) in the resource's region, encrypted with a
// customer-managed key of that region: without one, DynamoDB would encrypt
// the replica with a key the account does not manage.
//
// Fields: table (the table's ARN, which names its region), kms_key (a key
// ARN in the replica's region). Outputs: arn (the replica table's), name,
// region.
//
// Replicas are fed by the table's stream: the driver turns it on
// (NEW_AND_OLD_IMAGES) first if it is off. A replica has no tags of its own
// in the blueprint's sense: it is the stack's when its table is.
type DynamoDBTableReplica struct{}

func (DynamoDBTableReplica) Type() string       { return "dynamodb_table_replica" }
func (DynamoDBTableReplica) ForceNew() []string { return []string{"table"} }

// replicaTable returns the table's name and home region from its ARN.
func replicaTable(d *engine.Desired) (name, region string, err error) {
	arn := d.String("table")
	parts := strings.Split(arn, ":")
	if len(parts) < 6 || !strings.HasPrefix(parts[5], "table/") {
		return "", "", fmt.Errorf("table %q: want the table's ARN (arn:aws:dynamodb:REGION:ACCOUNT:table/NAME)", arn)
	}
	return strings.TrimPrefix(parts[5], "table/"), parts[3], nil
}

func (r DynamoDBTableReplica) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	if !known(d.String("table")) {
		return nil, engine.ErrNotFound
	}
	name, home, err := replicaTable(d)
	if err != nil {
		return nil, err
	}
	c := ddbClient(env, home)
	out, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if engine.IsCode(err, "ResourceNotFoundException") {
		return nil, engine.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("describe table %s in %s: %w", name, home, err)
	}
	var found *types.ReplicaDescription
	for i, rep := range out.Table.Replicas {
		if aws.ToString(rep.RegionName) == d.Region && rep.ReplicaStatus != types.ReplicaStatusDeleting {
			found = &out.Table.Replicas[i]
		}
	}
	if found == nil {
		return nil, engine.ErrNotFound
	}
	arn := strings.Replace(aws.ToString(out.Table.TableArn), ":"+home+":", ":"+d.Region+":", 1)
	live := &engine.Live{
		PhysicalID: name + "@" + d.Region,
		Region:     d.Region,
		Outputs:    map[string]string{"arn": arn, "name": name, "id": name, "region": d.Region},
		Fields:     map[string]any{"table": aws.ToString(out.Table.TableArn), "kms_key": sameKey(aws.ToString(found.KMSMasterKeyId), d.String("kms_key"))},
		Tags:       map[string]string{},
	}
	tags, err := c.ListTagsOfResource(ctx, &dynamodb.ListTagsOfResourceInput{ResourceArn: out.Table.TableArn})
	if err != nil {
		return nil, fmt.Errorf("list tags of table %s: %w", name, err)
	}
	for _, t := range tags.Tags {
		switch k := aws.ToString(t.Key); k {
		case engine.TagStack, engine.TagManaged, engine.TagVersion:
			live.Tags[k] = aws.ToString(t.Value)
		}
	}
	if live.Tags[engine.TagStack] != "" {
		live.Tags[engine.TagResource] = d.ID
	}
	return live, nil
}

func (r DynamoDBTableReplica) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	name, home, err := replicaTable(d)
	if err != nil {
		return nil, err
	}
	if home == d.Region {
		return nil, fmt.Errorf("replica of table %s in %s: that is the table's own region; a replica goes to another region", name, home)
	}
	if d.String("kms_key") == "" {
		return nil, fmt.Errorf("replica of table %s in %s needs kms_key, a customer-managed key of %s", name, d.Region, d.Region)
	}
	c := ddbClient(env, home)
	t := DynamoDBTable{}
	desc, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		return nil, fmt.Errorf("describe table %s: %w", name, err)
	}
	if s := desc.Table.StreamSpecification; s == nil || !aws.ToBool(s.StreamEnabled) {
		if _, err := c.UpdateTable(ctx, &dynamodb.UpdateTableInput{TableName: aws.String(name), StreamSpecification: &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewAndOldImages}}); err != nil {
			return nil, fmt.Errorf("enable the stream of table %s (replicas are fed by it): %w", name, err)
		}
		if err := t.waitActive(ctx, c, name); err != nil {
			return nil, err
		}
	}
	act := &types.CreateReplicationGroupMemberAction{RegionName: aws.String(d.Region), KMSMasterKeyId: aws.String(d.String("kms_key"))}
	out, err := c.UpdateTable(ctx, &dynamodb.UpdateTableInput{TableName: aws.String(name), ReplicaUpdates: []types.ReplicationGroupUpdate{{Create: act}}})
	if err != nil {
		return nil, fmt.Errorf("add replica %s to table %s: %w", d.Region, name, err)
	}
	if !ddbHasReplica(out.TableDescription, d.Region) {
		return nil, fmt.Errorf("add replica %s to table %s: the endpoint accepted UpdateTable ReplicaUpdates but lists no replica: not supported by this endpoint", d.Region, name)
	}
	if err := t.waitReplica(ctx, c, name, d.Region, true); err != nil {
		return nil, err
	}
	env.Logf("table %s: replica in %s under %s", name, d.Region, d.String("kms_key"))
	return r.Read(ctx, env, d, nil)
}

func (r DynamoDBTableReplica) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	name, home, err := replicaTable(d)
	if err != nil {
		return nil, err
	}
	for _, ch := range changes {
		if ch.Path != "kms_key" {
			continue
		}
		c := ddbClient(env, home)
		act := &types.UpdateReplicationGroupMemberAction{RegionName: aws.String(d.Region), KMSMasterKeyId: aws.String(d.String("kms_key"))}
		if _, err := c.UpdateTable(ctx, &dynamodb.UpdateTableInput{TableName: aws.String(name), ReplicaUpdates: []types.ReplicationGroupUpdate{{Update: act}}}); err != nil {
			return nil, fmt.Errorf("change the key of replica %s of table %s: %w", d.Region, name, err)
		}
		if err := (DynamoDBTable{}).waitReplica(ctx, c, name, d.Region, true); err != nil {
			return nil, err
		}
	}
	return r.Read(ctx, env, d, nil)
}

func (r DynamoDBTableReplica) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	table, _ := live.Fields["table"].(string)
	d := &engine.Desired{Region: live.Region, Fields: map[string]any{"table": table}}
	name, home, err := replicaTable(d)
	if err != nil {
		return err
	}
	c := ddbClient(env, home)
	_, err = c.UpdateTable(ctx, &dynamodb.UpdateTableInput{TableName: aws.String(name), ReplicaUpdates: []types.ReplicationGroupUpdate{{Delete: &types.DeleteReplicationGroupMemberAction{RegionName: aws.String(live.Region)}}}})
	if engine.IsCode(err, "ResourceNotFoundException") {
		return nil
	} else if err != nil {
		return fmt.Errorf("remove replica %s of table %s: %w", live.Region, name, err)
	}
	if err := (DynamoDBTable{}).waitReplica(ctx, c, name, live.Region, false); err != nil {
		return err
	}
	env.Logf("table %s: replica in %s removed", name, live.Region)
	return nil
}
