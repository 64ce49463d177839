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
	var stacks []*blueprints.Stack
	for _, id := range append(set.StackIDs(), set.LayerIDs()...) {
		st, ds := set.Resolve(id)
		if st == nil {
			t.Fatalf("Resolve(%s): %v", id, ds)
		}
		stacks = append(stacks, st)
	}
	blueprints.Link(stacks)
	for _, st := range stacks {
		id := st.ID
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

// Removing the app's egress to the database is a "will it work" failure
// naming the hop and the fix: blocking in prod, a warning in dev.
func TestDatabaseEgressRemovedIsRefusedInProd(t *testing.T) {
	arch, err := os.ReadFile(filepath.Join(shipped, "architecture.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const rule = "      - {protocol: tcp, from_port: 5432, to_port: 5432, source: \"${ref.db_sg.id}\", description: the database}\n"
	if !strings.Contains(string(arch), rule) {
		t.Fatalf("architecture.yaml lacks %q", rule)
	}
	files := []*blueprints.File{}
	af, ds := blueprints.Parse("blueprints/architecture.yaml", []byte(strings.Replace(string(arch), rule, "", 1)))
	if len(ds) > 0 {
		t.Fatal(ds)
	}
	files = append(files, af)
	for _, name := range []string{"stacks/prod-eu.yaml", "stacks/dev-eu.yaml"} {
		b, err := os.ReadFile(filepath.Join(shipped, name))
		if err != nil {
			t.Fatal(err)
		}
		f, _ := blueprints.Parse("blueprints/"+name, b)
		files = append(files, f)
	}
	set, _ := blueprints.NewSet(files)
	for id, want := range map[string]guardrails.Severity{"prod-eu": guardrails.Blocking, "dev-eu": guardrails.Warning} {
		st, ds := set.Resolve(id)
		if st == nil {
			t.Fatal(ds)
		}
		rep := guardrails.Evaluate(st, nil, time.Now())
		var got []string
		for _, r := range rep.Results {
			if r.RuleID == "works-network" && r.Status == guardrails.Fail {
				got = append(got, r.String())
				if r.Severity != want {
					t.Errorf("%s: severity %s, want %s", id, r.Severity, want)
				}
			}
		}
		wantMsg := "app_egress_sg.egress: [works-network, " + string(want) + ", GDPR Art. 32(1)(b)] Patients -> CloudFront -> alb -> app -> database (eu-central-1): app_asg -> db (" + id + ", eu-central-1) :5432 fails: no security group of the app's instances (app_sg, app_ingress_sg, app_egress_sg) lets them open tcp 5432 to the database's groups (db_sg). Fix: add {protocol: tcp, from_port: 5432, to_port: 5432, source: ${ref.db_sg.id}} to the egress of one of app_sg, app_ingress_sg, app_egress_sg"
		if len(got) != 1 || !strings.Contains(got[0], wantMsg) {
			t.Errorf("%s: works-network failures\n%s\nwant one containing\n%s", id, strings.Join(got, "\n"), wantMsg)
		}
	}
}
