package drivers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"portal/internal/drivers"
	"portal/internal/engine"
)

func medicinesTable(region, key string) *engine.Desired {
	return &engine.Desired{ID: "medicines_table", Type: "dynamodb_table", Region: region, Fields: map[string]any{
		"name": "medportal-dev-eu-medicines", "description": "Medicines.", "data_class": "patient", "kms_key": key,
		"billing_mode": "PAY_PER_REQUEST",
		"hash_key":     map[string]any{"name": "document_id", "type": "S"},
		"range_key":    map[string]any{"name": "medicine", "type": "S"},
		"pitr":         true, "deletion_protection": false, "replica_regions": []any{},
	}}
}

func TestDynamoDBTable(t *testing.T) {
	t.Parallel()
	for _, region := range storeRegions {
		t.Run(region, func(t *testing.T) {
			ctx := context.Background()
			env := newEnv(t, region)
			c := dynamodb.NewFromConfig(env.Config(region))
			key := storeKey(t, env, region)
			d := medicinesTable(region, key)
			var checked bool
			live := lifecycle(t, env, drivers.DynamoDBTable{}, d, func(d *engine.Desired) []string {
				out, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("medportal-dev-eu-medicines")})
				if err != nil {
					t.Fatalf("DescribeTable: %v", err)
				}
				sse := out.Table.SSEDescription
				if sse == nil || sse.Status != ddbtypes.SSEStatusEnabled || sse.SSEType != ddbtypes.SSETypeKms || aws.ToString(sse.KMSMasterKeyArn) != key {
					t.Errorf("SSE %+v, want ENABLED KMS with %s", sse, key)
				}
				cb, err := c.DescribeContinuousBackups(ctx, &dynamodb.DescribeContinuousBackupsInput{TableName: aws.String("medportal-dev-eu-medicines")})
				if err != nil {
					t.Fatalf("DescribeContinuousBackups: %v", err)
				}
				if s := cb.ContinuousBackupsDescription.PointInTimeRecoveryDescription.PointInTimeRecoveryStatus; s != ddbtypes.PointInTimeRecoveryStatusEnabled {
					t.Errorf("PITR %s, want ENABLED", s)
				}
				// Items go in and come back: the table is usable.
				if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("medportal-dev-eu-medicines"), Item: map[string]ddbtypes.AttributeValue{
					"document_id": &ddbtypes.AttributeValueMemberS{Value: "doc-1"}, "medicine": &ddbtypes.AttributeValueMemberS{Value: "amoxicillin"},
				}}); err != nil {
					t.Fatalf("PutItem: %v", err)
				}
				checked = true
				d.Fields["pitr"] = false
				d.Fields["billing_mode"] = "PROVISIONED"
				return []string{"billing_mode", "pitr"}
			})
			if !checked {
				t.Fatal("update never ran")
			}
			if live.Outputs["arn"] == "" || live.Outputs["name"] != "medportal-dev-eu-medicines" || live.Outputs["id"] != "medportal-dev-eu-medicines" {
				t.Errorf("outputs %v, want arn, name and id", live.Outputs)
			}
			if live.Fields["pitr"] != false || live.Fields["billing_mode"] != "PROVISIONED" {
				t.Errorf("fields after update %v, want pitr off and PROVISIONED", live.Fields)
			}
		})
	}
}

func TestDynamoDBTableDeletionProtection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	region := "eu-central-1"
	env := newEnv(t, region)
	drv := drivers.DynamoDBTable{}
	d := medicinesTable(region, storeKey(t, env, region))
	d.Tags = ownershipTags(env, d.ID)
	d.Fields["deletion_protection"] = true
	live, err := drv.Create(ctx, env, d)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if !live.DeletionProtected || live.Fields["deletion_protection"] != true {
		t.Errorf("live %+v, want deletion protected", live)
	}
	if err := drv.Delete(ctx, env, live); err == nil {
		t.Fatal("Delete of a protected table succeeded")
	}
	d.Fields["deletion_protection"] = false
	live, err = drv.Update(ctx, env, d, live, engine.Diff(d, live, drv.ForceNew()))
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if live.DeletionProtected {
		t.Errorf("still protected after Update")
	}
	if err := drv.Delete(ctx, env, live); err != nil {
		t.Fatalf("Delete: %v", err)
	}
}

// TestDynamoDBTableMotoGaps: moto accepts but ignores UpdateTable's
// SSESpecification; the driver says so instead of reporting success. A
// replica without a key of its region is refused before anything is
// created; with one it is made (moto serves replicas through the portal's
// runtime patch).
func TestDynamoDBTableMotoGaps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	region := "us-east-1"
	env := newEnv(t, region)
	drv := drivers.DynamoDBTable{}

	d := medicinesTable(region, storeKey(t, env, region))
	d.Tags = ownershipTags(env, d.ID)
	d.Fields["replica_regions"] = []any{"us-west-2"}
	if _, err := drv.Create(ctx, env, d); err == nil || !strings.Contains(err.Error(), "replica_kms_keys.us-west-2") {
		t.Errorf("Create with a replica and no replica key: %v, want a refusal naming replica_kms_keys.us-west-2", err)
	}
	if _, err := drv.Read(ctx, env, d, nil); err != engine.ErrNotFound {
		t.Errorf("Read after refused Create: %v, want ErrNotFound", err)
	}

	d.Fields["replica_regions"] = []any{}
	live, err := drv.Create(ctx, env, d)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	d.Fields["replica_regions"] = []any{"us-west-2"}
	d.Fields["replica_kms_keys"] = map[string]any{"us-west-2": storeKey(t, env, "us-west-2")}
	withReplica, err := drv.Update(ctx, env, d, live, engine.Diff(d, live, drv.ForceNew()))
	if err != nil {
		t.Fatalf("adding a replica: %v", err)
	}
	if got := fmt.Sprint(withReplica.Fields["replica_regions"]); got != "[us-west-2]" {
		t.Errorf("replicas after adding one: %s, want [us-west-2]", got)
	}
	d.Fields["replica_regions"] = []any{}
	if live, err = drv.Update(ctx, env, d, withReplica, engine.Diff(d, withReplica, drv.ForceNew())); err != nil {
		t.Fatalf("removing the replica: %v", err)
	}
	d.Fields["kms_key"] = storeKey(t, env, region)
	_, err = drv.Update(ctx, env, d, live, engine.Diff(d, live, drv.ForceNew()))
	if err == nil || !strings.Contains(err.Error(), "SSESpecification") || !strings.Contains(err.Error(), "not supported by this endpoint") {
		t.Errorf("changing the key against moto: %v, want SSESpecification not supported by this endpoint", err)
	}
	if err := drv.Delete(ctx, env, live); err != nil {
		t.Fatalf("Delete: %v", err)
	}
}

// A replica of a table in another region, under a key of that region, made
// and removed on its own (the blueprint's dynamodb_table_replica).
func TestDynamoDBTableReplica(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t, "eu-central-1")
	td := medicinesTable("eu-central-1", storeKey(t, env, "eu-central-1"))
	delete(td.Fields, "replica_regions") // as the shipped blueprint: its replica is a resource of its own
	table := create(t, env, drivers.DynamoDBTable{}, td)
	key := storeKey(t, env, "eu-west-1")
	d := &engine.Desired{ID: "medicines_replica", Type: "dynamodb_table_replica", Region: "eu-west-1", Fields: map[string]any{
		"table": table.Outputs["arn"], "kms_key": key,
	}}
	live := lifecycle(t, env, drivers.DynamoDBTableReplica{}, d, nil)
	if !strings.HasPrefix(live.Outputs["arn"], "arn:aws:dynamodb:eu-west-1:") {
		t.Errorf("replica arn %s, want one in eu-west-1", live.Outputs["arn"])
	}
	// The table itself shows no difference for a replica it does not list.
	again, err := (drivers.DynamoDBTable{}).Read(ctx, env, td, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := again.Fields["replica_regions"]; ok {
		t.Errorf("the table reports replica_regions %v though its blueprint names none", again.Fields["replica_regions"])
	}
	same := &engine.Desired{ID: "medicines_replica", Type: "dynamodb_table_replica", Region: "eu-central-1", Tags: ownershipTags(env, "medicines_replica"), Fields: map[string]any{
		"table": table.Outputs["arn"], "kms_key": key,
	}}
	if _, err := (drivers.DynamoDBTableReplica{}).Create(ctx, env, same); err == nil || !strings.Contains(err.Error(), "the table's own region") {
		t.Errorf("a replica in the table's region: %v, want a refusal", err)
	}
}
