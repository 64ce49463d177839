package drivers_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"portal/internal/drivers"
	"portal/internal/engine"
)

func TestTextractCapability(t *testing.T) {
	t.Parallel()
	env := newEnv(t, "eu-central-1")
	c := iamForTest(env)
	ctx := context.Background()
	var drv engine.Driver = drivers.TextractCapability{}
	if _, ok := drv.(engine.DataSource); !ok {
		t.Fatal("textract_capability is not a data source")
	}
	bucket := "arn:aws:s3:::medportal-dev-eu-documents"
	roleARN := testRole(t, c, "medportal-dev-eu-app")
	d := &engine.Desired{ID: "textract", Type: "textract_capability", Region: "eu-central-1", Fields: map[string]any{
		"role": roleARN, "input_bucket": bucket, "operations": []any{"StartDocumentTextDetection", "GetDocumentTextDetection"},
	}}

	_, err := drv.Read(ctx, env, d, nil)
	if err == nil || !strings.Contains(err.Error(), "textract:StartDocumentTextDetection") || !strings.Contains(err.Error(), "s3:GetObject") {
		t.Errorf("role without grants: err %v, want one naming the missing permissions", err)
	}

	pol := `{"Version":"2012-10-17","Statement":[
	  {"Effect":"Allow","Action":["textract:StartDocumentTextDetection","textract:GetDocumentTextDetection"],"Resource":"*"},
	  {"Effect":"Allow","Action":"s3:GetObject","Resource":"` + bucket + `/*"}]}`
	out, err := c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("medportal-dev-eu-app"), PolicyDocument: aws.String(pol)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("medportal-dev-eu-app"), PolicyArn: out.Policy.Arn}); err != nil {
		t.Fatal(err)
	}
	live, err := drv.Read(ctx, env, d, nil)
	if err != nil {
		t.Fatalf("Read with grants: %v", err)
	}
	if live.Outputs["role_arn"] != roleARN || live.PhysicalID != roleARN {
		t.Errorf("outputs %v (id %s), want role_arn %s", live.Outputs, live.PhysicalID, roleARN)
	}

	d.Fields["operations"] = []any{"AnalyzeDocument"}
	if _, err := drv.Read(ctx, env, d, nil); err == nil || !strings.Contains(err.Error(), "textract:AnalyzeDocument") {
		t.Errorf("operation not granted: err %v, want one naming textract:AnalyzeDocument", err)
	}

	// An explicit Deny wins over the Allow.
	if _, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("medportal-dev-eu-app"), PolicyName: aws.String("deny"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"textract:Get*","Resource":"*"}}`)}); err != nil {
		t.Fatal(err)
	}
	d.Fields["operations"] = []any{"GetDocumentTextDetection"}
	if _, err := drv.Read(ctx, env, d, nil); err == nil || !strings.Contains(err.Error(), "textract:GetDocumentTextDetection") {
		t.Errorf("denied operation: err %v, want one naming textract:GetDocumentTextDetection", err)
	}

	d.Fields["role"] = strings.Replace(roleARN, "medportal-dev-eu-app", "missing", 1)
	if _, err := drv.Read(ctx, env, d, nil); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("missing role: err %v, want ErrNotFound", err)
	}

	// Planning a stack whose role does not exist yet: pending, not missing.
	d.Fields["role"] = engine.Unknown{Ref: "app_role.arn"}
	if live, err := drv.Read(ctx, env, d, nil); err != nil || live.PhysicalID != "" {
		t.Errorf("role known after apply: live %+v err %v, want a pending result", live, err)
	}
}
