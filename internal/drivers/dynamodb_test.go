package drivers_test

import (
	"context"
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
// SSESpecification and ReplicaUpdates; the driver says so instead of
// reporting success. A replica without a key of its region is refused
// before anything is created.
func TestDynamoDBTableMotoGaps(t *testing.T) {
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
	_, err = drv.Update(ctx, env, d, live, engine.Diff(d, live, drv.ForceNew()))
	if err == nil || !strings.Contains(err.Error(), "ReplicaUpdates") || !strings.Contains(err.Error(), "not supported by this endpoint") {
		t.Errorf("adding a replica against moto: %v, want ReplicaUpdates not supported by this endpoint", err)
	}

	d.Fields["replica_regions"] = []any{}
	d.Fields["kms_key"] = storeKey(t, env, region)
	_, err = drv.Update(ctx, env, d, live, engine.Diff(d, live, drv.ForceNew()))
	if err == nil || !strings.Contains(err.Error(), "SSESpecification") || !strings.Contains(err.Error(), "not supported by this endpoint") {
		t.Errorf("changing the key against moto: %v, want SSESpecification not supported by this endpoint", err)
	}
	if err := drv.Delete(ctx, env, live); err != nil {
		t.Fatalf("Delete: %v", err)
	}
}
