package drivers_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"portal/internal/drivers"
	"portal/internal/engine"
)

func iamForTest(env *engine.Env) *iam.Client { return iam.NewFromConfig(env.Config("us-east-1")) }

// testPolicy creates a customer-managed policy with the SDK and returns its ARN.
func testPolicy(t *testing.T, c *iam.Client, name, action, resource string) string {
	t.Helper()
	doc := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":%q,"Resource":%q}]}`, action, resource)
	out, err := c.CreatePolicy(context.Background(), &iam.CreatePolicyInput{PolicyName: aws.String(name), PolicyDocument: aws.String(doc)})
	if err != nil {
		t.Fatalf("create policy %s: %v", name, err)
	}
	return aws.ToString(out.Policy.Arn)
}

func testRole(t *testing.T, c *iam.Client, name string) string {
	t.Helper()
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	out, err := c.CreateRole(context.Background(), &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trust)})
	if err != nil {
		t.Fatalf("create role %s: %v", name, err)
	}
	return aws.ToString(out.Role.Arn)
}

func statement(sid, effect string, actions, resources []any) map[string]any {
	m := map[string]any{"effect": effect, "actions": actions, "resources": resources}
	if sid != "" {
		m["sid"] = sid
	}
	return m
}

func TestIAMPolicy(t *testing.T) {
	t.Parallel()
	env := newEnv(t, "eu-central-1")
	c := iamForTest(env)
	ctx := context.Background()
	drv := drivers.IAMPolicy{}
	if drv.GlobalRegion() != "us-east-1" {
		t.Errorf("GlobalRegion %q, want us-east-1", drv.GlobalRegion())
	}
	d := &engine.Desired{ID: "app_policy", Type: "iam_policy", Region: "eu-central-1", Fields: map[string]any{
		"name": "medportal-dev-eu-app",
		"statements": []any{
			statement("Documents", "Allow", []any{"s3:PutObject", "s3:GetObject"}, []any{"arn:aws:s3:::medportal-dev-eu-documents/*"}),
			statement("", "Allow", []any{"textract:StartDocumentTextDetection"}, []any{"*"}),
		},
	}}
	live := lifecycle(t, env, drv, d, func(d *engine.Desired) []string {
		d.Fields["statements"] = append(d.Fields["statements"].([]any),
			statement("DoctorAlerts", "Allow", []any{"sns:Publish"}, []any{"arn:aws:sns:eu-central-1:111111111111:alerts"}))
		return []string{"statements"}
	})
	if want := fmt.Sprintf("arn:aws:iam::%s:policy/medportal-dev-eu-app", env.Stack.AccountID); live.Outputs["arn"] != want || live.Outputs["name"] != "medportal-dev-eu-app" {
		t.Errorf("outputs %v, want arn %s and the name", live.Outputs, want)
	}

	t.Run("statements compare as a document", func(t *testing.T) {
		d := &engine.Desired{ID: "p", Type: "iam_policy", Region: "eu-central-1", Tags: ownershipTags(env, "p"), Fields: map[string]any{
			"name":       "medportal-dev-eu-order",
			"statements": []any{statement("", "Allow", []any{"s3:GetObject", "s3:PutObject"}, []any{"arn:aws:s3:::b/*", "arn:aws:s3:::a/*"})},
		}}
		created, err := drv.Create(ctx, env, d)
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		d.Fields["statements"] = []any{statement("", "Allow", []any{"s3:PutObject", "s3:GetObject"}, []any{"arn:aws:s3:::a/*", "arn:aws:s3:::b/*"})}
		live, err := drv.Read(ctx, env, d, &engine.Prior{PhysicalID: created.PhysicalID})
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if ch := engine.Diff(d, live, drv.ForceNew()); len(ch) != 0 {
			t.Errorf("reordered actions and resources: diff %+v, want none", ch)
		}
		// IAM keeps five versions: six more changes must still succeed,
		// the oldest non-default version making room each time.
		for i := range 6 {
			d.Fields["statements"] = []any{statement("", "Allow", []any{"s3:GetObject"}, []any{fmt.Sprintf("arn:aws:s3:::v%d/*", i)})}
			live, err := drv.Read(ctx, env, d, &engine.Prior{PhysicalID: created.PhysicalID})
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if _, err := drv.Update(ctx, env, d, live, engine.Diff(d, live, drv.ForceNew())); err != nil {
				t.Fatalf("Update %d: %v", i, err)
			}
		}
		vs, err := c.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: aws.String(created.PhysicalID)})
		if err != nil {
			t.Fatal(err)
		}
		if len(vs.Versions) != 5 {
			t.Errorf("%d policy versions, want 5", len(vs.Versions))
		}
		after, err := drv.Read(ctx, env, d, &engine.Prior{PhysicalID: created.PhysicalID})
		if err != nil {
			t.Fatal(err)
		}
		if ch := engine.Diff(d, after, drv.ForceNew()); len(ch) != 0 {
			t.Errorf("after six updates the diff is %+v, want none", ch)
		}
		// Attached to a role, it is detached on delete.
		testRole(t, c, "holder")
		if _, err := c.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("holder"), PolicyArn: aws.String(created.PhysicalID)}); err != nil {
			t.Fatal(err)
		}
		if err := drv.Delete(ctx, env, after); err != nil {
			t.Fatalf("Delete of an attached policy: %v", err)
		}
		if _, err := drv.Read(ctx, env, d, nil); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("Read after Delete: %v, want ErrNotFound", err)
		}
	})
}

func TestIAMRole(t *testing.T) {
	t.Parallel()
	env := newEnv(t, "eu-central-1")
	c := iamForTest(env)
	ctx := context.Background()
	first := testPolicy(t, c, "medportal-dev-eu-first", "s3:GetObject", "*")
	second := testPolicy(t, c, "medportal-dev-eu-second", "sns:Publish", "*")
	d := &engine.Desired{ID: "app_role", Type: "iam_role", Region: "eu-central-1", Fields: map[string]any{
		"name": "medportal-dev-eu-app", "assume_role_service": "ec2.amazonaws.com", "policies": []any{first},
	}}
	live := lifecycle(t, env, drivers.IAMRole{}, d, func(d *engine.Desired) []string {
		d.Fields["policies"] = []any{second, first}
		d.Fields["assume_role_service"] = "s3.amazonaws.com"
		// A profile holding the role must not stop its deletion.
		if _, err := c.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String("holder")}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String("holder"), RoleName: aws.String("medportal-dev-eu-app")}); err != nil {
			t.Fatal(err)
		}
		return []string{"assume_role_service", "policies"}
	})
	if !strings.HasSuffix(live.Outputs["arn"], ":role/medportal-dev-eu-app") || live.Outputs["name"] != "medportal-dev-eu-app" || live.Outputs["id"] == "" {
		t.Errorf("outputs %v, want arn, name and id", live.Outputs)
	}
	if got := live.Fields["policies"]; fmt.Sprint(got) != fmt.Sprint([]any{second, first}) {
		t.Errorf("policies read back as %v, want the blueprint's order %v", got, []any{second, first})
	}
	ip, err := c.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String("holder")})
	if err != nil {
		t.Fatal(err)
	}
	if len(ip.InstanceProfile.Roles) != 0 {
		t.Errorf("instance profile still holds %d role(s) after the role was deleted", len(ip.InstanceProfile.Roles))
	}
	for _, arn := range []string{first, second} {
		if _, err := c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(arn)}); err != nil {
			t.Errorf("policy %s is gone with the role: %v", arn, err)
		}
	}
}

func TestInstanceProfile(t *testing.T) {
	t.Parallel()
	env := newEnv(t, "ap-southeast-1")
	c := iamForTest(env)
	testRole(t, c, "medportal-dev-apac-app")
	testRole(t, c, "medportal-dev-apac-app2")
	d := &engine.Desired{ID: "app_profile", Type: "instance_profile", Region: "ap-southeast-1", Fields: map[string]any{
		"name": "medportal-dev-apac-app", "role": "medportal-dev-apac-app",
	}}
	live := lifecycle(t, env, drivers.InstanceProfile{}, d, func(d *engine.Desired) []string {
		d.Fields["role"] = "medportal-dev-apac-app2"
		return []string{"role"}
	})
	if !strings.HasSuffix(live.Outputs["arn"], ":instance-profile/medportal-dev-apac-app") || live.Outputs["name"] != "medportal-dev-apac-app" {
		t.Errorf("outputs %v, want the profile's arn and name", live.Outputs)
	}
	if live.Fields["role"] != "medportal-dev-apac-app2" {
		t.Errorf("role %v, want medportal-dev-apac-app2", live.Fields["role"])
	}
	if _, err := c.GetRole(context.Background(), &iam.GetRoleInput{RoleName: aws.String("medportal-dev-apac-app2")}); err != nil {
		t.Errorf("the role went with its profile: %v", err)
	}
}
