package engine_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	tagging "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	taggingtypes "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi/types"

	"portal/internal/blueprints"
	"portal/internal/engine"
)

// shippedStack resolves stack id from a copy of the shipped blueprints,
// with edits applied to its parameter file (old -> new).
func shippedStack(t testing.TB, id string, edits ...[2]string) *blueprints.Stack {
	t.Helper()
	dir := t.TempDir()
	err := filepath.WalkDir("../../blueprints", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		rel, _ := filepath.Rel("../../blueprints", path)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		s := string(data)
		if rel == filepath.Join("stacks", id+".yaml") {
			for _, e := range edits {
				if !strings.Contains(s, e[0]) {
					t.Fatalf("%s lacks %q", rel, e[0])
				}
				s = strings.Replace(s, e[0], e[1], 1)
			}
		}
		out := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(out, []byte(s), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	set, diags := blueprints.LoadDir(dir)
	if blueprints.HasErrors(diags) {
		t.Fatal(diags)
	}
	st, diags := set.Resolve(id)
	if st == nil {
		t.Fatal(diags)
	}
	return st
}

func (h *harness) info(s *blueprints.Stack) engine.StackInfo {
	return engine.StackInfo{ID: s.ID, Environment: s.Environment, Jurisdiction: s.Jurisdiction, Region: s.Region, Version: s.Version, AccountID: h.account}
}

// owned lists the resources AWS still holds tagged as stack's, in regions,
// leaving out KMS keys pending deletion (AWS keeps them for 7 days) and
// terminated instances (listed for a while after).
func (h *harness) owned(t *testing.T, stack string, regions ...string) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	for _, region := range regions {
		c := tagging.NewFromConfig(h.cfg(region))
		res, err := c.GetResources(ctx, &tagging.GetResourcesInput{TagFilters: []taggingtypes.TagFilter{{Key: aws.String(engine.TagStack), Values: []string{stack}}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range res.ResourceTagMappingList {
			arn := aws.ToString(m.ResourceARN)
			if strings.Contains(arn, ":kms:") {
				k, err := kms.NewFromConfig(h.cfg(region)).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(arn)})
				if err == nil && k.KeyMetadata.KeyState == "PendingDeletion" {
					continue
				}
			}
			if i := strings.Index(arn, ":instance/"); i > 0 {
				in, err := ec2.NewFromConfig(h.cfg(region)).DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{arn[i+len(":instance/"):]}})
				if err == nil && len(in.Reservations) > 0 && len(in.Reservations[0].Instances) > 0 {
					if st := in.Reservations[0].Instances[0].State.Name; st == "terminated" || st == "shutting-down" {
						continue // AWS lists terminated instances for a while
					}
					arn += " (" + string(in.Reservations[0].Instances[0].State.Name) + ")"
				}
			}
			out = append(out, arn)
		}
	}
	return out
}

// TestWholeStack takes the EU dev stack of the shipped blueprints through
// its life against moto: plan from empty, apply, plan again (no changes),
// change one parameter (the plan shows exactly that update), apply it,
// destroy (nothing owned is left).
func TestWholeStack(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	st := shippedStack(t, "dev-eu")

	p, run := h.planApply(t, st, "apply")
	c := p.Counts()
	t.Logf("plan from empty: %v in %s with %d AWS calls; apply made %d calls", c, p.Took, p.Calls, run.Calls)
	if c[engine.Create] < 50 || c[engine.Update]+c[engine.Replace]+c[engine.Delete] != 0 {
		t.Fatalf("plan from empty: %v, want only creates (and reads)", c)
	}
	types := map[string]bool{}
	for _, ch := range p.Changes {
		types[ch.Type] = true
	}
	for _, want := range []string{"kms_key", "s3_bucket", "dynamodb_table", "rds_instance", "sns_topic", "log_group", "metric_alarm", "cloudtrail",
		"vpc", "security_group", "launch_template", "alb", "listener", "autoscaling_group", "route53_zone", "route53_record", "cloudfront_distribution", "iam_role",
		"vpc_endpoints", "kms_key_policy", "iam_service_linked_role", "rds_read_replica", "db_subnet_group"} {
		if !types[want] {
			t.Errorf("the stack has no %s", want)
		}
	}

	again, err := h.eng.Plan(ctx, engine.Target{Stack: st, Info: h.info(st)}, "apply")
	if err != nil {
		t.Fatal(err)
	}
	if again.HasChanges() {
		for _, ch := range again.Changes {
			if ch.Action != engine.NoOp && ch.Action != engine.Read {
				t.Errorf("after apply: %s %s %+v", ch.Action, ch.ID, ch.Fields)
			}
		}
		t.Fatal("the plan right after apply is not empty")
	}

	changed := shippedStack(t, "dev-eu", [2]string{"log_retention_days: 30", "log_retention_days: 60"})
	upd, err := h.eng.Plan(ctx, engine.Target{Stack: changed, Info: h.info(changed)}, "apply")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ch := range upd.Changes {
		if ch.Action != engine.NoOp && ch.Action != engine.Read {
			got = append(got, fmt.Sprintf("%s %s %v", ch.Action, ch.ID, ch.Fields))
		}
	}
	// The home and the standby region's app logs share the parameter.
	if want := []string{"update app_logs [{retention_days 30 60 false}]", "update standby_app_logs [{retention_days 30 60 false}]"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("plan after changing log_retention_days: %q, want exactly %q", got, want)
	}
	h.planApply(t, changed, "apply")

	d, _ := h.planApply(t, changed, "destroy")
	t.Logf("destroy: %v", d.Counts())
	if left := h.owned(t, "dev-eu", "eu-central-1", "eu-west-1", "us-east-1"); len(left) > 0 {
		t.Errorf("after destroy AWS still holds %d resources tagged dev-eu: %v", len(left), left)
	}
}
