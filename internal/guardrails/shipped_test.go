package guardrails_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"portal/internal/blueprints"
	"portal/internal/guardrails"
)

const shipped = "../../blueprints"

func TestShippedStacksAreGuardrailClean(t *testing.T) {
	set, ds := blueprints.LoadDir(shipped)
	for _, d := range ds {
		t.Errorf("%s", d)
	}
	if len(set.StackIDs()) != 9 {
		t.Fatalf("got %d stacks, want 9", len(set.StackIDs()))
	}
	for _, id := range set.StackIDs() {
		st, ds := set.Resolve(id)
		if st == nil {
			t.Fatalf("Resolve(%s): %v", id, ds)
		}
		rep := guardrails.Evaluate(st, nil, time.Now())
		for _, r := range append(rep.Blocking(), rep.Warnings()...) {
			t.Errorf("%s: %s", id, r)
		}
	}
}

// An EU documents replica moved to us-east-1 is refused citing GDPR Art. 44,
// pointing at the line that moved it and at the replication.
func TestEUReplicationToUSRefused(t *testing.T) {
	arch, err := os.ReadFile(filepath.Join(shipped, "architecture.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	params, err := os.ReadFile(filepath.Join(shipped, "stacks", "prod-eu.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const from = "    region: ${stack.standby_region}\n    name: ${param.name_prefix}-documents-replica"
	i := strings.Index(string(arch), from)
	if i < 0 {
		t.Fatalf("architecture.yaml lacks %q", from)
	}
	moved := strings.Count(string(arch[:i]), "\n") + 1
	arch = []byte(strings.Replace(string(arch), from, "    region: us-east-1\n    name: ${param.name_prefix}-documents-replica", 1))
	replication := strings.Count(string(arch[:strings.Index(string(arch), "destination_bucket: ${ref.documents_replica_bucket.arn}")]), "\n") + 1
	af, ds := blueprints.Parse("blueprints/architecture.yaml", arch)
	pf, ds2 := blueprints.Parse("blueprints/stacks/prod-eu.yaml", params)
	if len(ds)+len(ds2) > 0 {
		t.Fatalf("parse: %v %v", ds, ds2)
	}
	set, _ := blueprints.NewSet([]*blueprints.File{af, pf})
	st, ds := set.Resolve("prod-eu")
	if st == nil {
		t.Fatalf("resolve: %v", ds)
	}
	rep := guardrails.Evaluate(st, nil, time.Now())
	var got []string
	for _, r := range rep.Blocking() {
		if r.RuleID == "data-residency" {
			got = append(got, r.String())
		}
	}
	want := []string{
		fmt.Sprintf("blueprints/architecture.yaml:%d:5: documents_replica_bucket.region: [data-residency, blocking, GDPR Art. 44] documents_replica_bucket is in us-east-1, outside the EU regions (eu-central-1, eu-west-1)", moved),
		fmt.Sprintf("blueprints/architecture.yaml:%d:5: documents_replication.destination_bucket: [data-residency, blocking, GDPR Art. 44] replicates to bucket documents_replica_bucket in us-east-1, outside the EU regions (eu-central-1, eu-west-1)", replication),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
