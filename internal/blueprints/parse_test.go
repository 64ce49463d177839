package blueprints

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// typeList is the schema's resource types as the validator lists them.
func typeList(t *testing.T) string {
	t.Helper()
	sch, err := schemas()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range sch.byType {
		names = append(names, "'"+n+"'")
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		file string
		data string
		want []string // diagnostics, in order
	}{
		{"empty", "a.yaml", "", []string{"a.yaml:1:1: empty file"}},
		{"not a mapping", "a.yaml", "- 1\n", []string{"a.yaml:1:1: a blueprint file must be a mapping with a kind field"}},
		{"unknown kind", "a.yaml", "kind: pipeline\n", []string{`a.yaml:1:1: kind: kind must be "architecture", "stack", "layer" or "environment"`}},
		{"bad yaml", "a.yaml", "kind: architecture\nresources: [\n", []string{"a.yaml:2:1: invalid YAML: did not find expected node content"}},
		{"two documents", "a.yaml", "kind: architecture\nversion: 1\nresources: {k: {type: route53_zone, name: x.example}}\n---\nkind: stack\n", []string{"a.yaml:4:1: only one YAML document per file is allowed"}},
		{"alias", "a.yaml", "kind: architecture\nversion: 1\nresources:\n  a: &x {type: route53_zone, name: x.example}\n  b: *x\n", []string{
			"a.yaml:4:3: resources.a: YAML anchors (&x) are not allowed: write values out so reviewers see them",
			"a.yaml:5:3: resources.b: YAML aliases (*x) are not allowed: write values out so reviewers see them",
			"a.yaml:5:3: resources.b: got null, want object",
		}},
		{"duplicate key", "a.yaml", "kind: architecture\nversion: 1\nresources:\n  a: {type: route53_zone, name: x.example}\n  a: {type: route53_zone, name: y.example}\n", []string{
			`a.yaml:5:3: resources.a: duplicate key "a"`,
		}},
		{"unknown type and field", "a.yaml", "kind: architecture\nversion: 1\nresources:\n  z:\n    type: route53_zone\n    name: x.example\n    ttl: 3\n  w:\n    type: wormhole\n", []string{
			`a.yaml:7:5: resources.z.ttl: unknown field "ttl"`,
			`a.yaml:9:5: resources.w.type: value must be one of ` + typeList(t),
		}},
		{"bad expressions", "a.yaml", "kind: architecture\nversion: 1\nresources:\n  z:\n    type: route53_zone\n    name: ${param.domain\n  y:\n    type: route53_zone\n    name: ${stack.colour}.${ref.z.colour}${env.HOME}\n", []string{
			`a.yaml:6:5: resources.z.name: unterminated ${ in "${param.domain"`,
			`a.yaml:9:5: resources.y.name: invalid expression "${env.HOME}": want ${param.path}, ${stack.attr}, ${ref.id.attr}, ${layer.id.attr} or ${jurisdiction.j.id.attr}`,
			`a.yaml:9:5: resources.y.name: unknown ${stack.colour}: want one of id, region, environment, jurisdiction, account, standby_region, has_standby`,
			`a.yaml:9:5: resources.y.name: unknown attribute "colour" in ${ref.z.colour}: want one of arn, id, name, dns_name, zone_id, endpoint, url, region, fqdn, name_servers`,
		}},
		{"stack file misnamed and inconsistent", "stacks/prod-eu.yaml", "kind: stack\nversion: 1\nstack: prod-us\nenvironment: prod\njurisdiction: eu\nregion: us-east-1\nparams: {}\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ds := Parse(tt.file, []byte(tt.data))
			var got []string
			for _, d := range ds {
				got = append(got, d.String())
			}
			if tt.want == nil {
				for _, w := range []string{
					`stacks/prod-eu.yaml:3:1: stack: stack is "prod-us" but environment and jurisdiction make "prod-eu"`,
					`stacks/prod-eu.yaml:3:1: stack: file for stack "prod-us" must be named prod-us.yaml, not prod-eu.yaml`,
					`stacks/prod-eu.yaml:6:1: region: region us-east-1 is not the eu home region eu-central-1`,
				} {
					if !strings.Contains(strings.Join(got, "\n"), w) {
						t.Errorf("missing %q in\n%s", w, strings.Join(got, "\n"))
					}
				}
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResolvedStack(t *testing.T) {
	set := loadShipped(t)
	st, ds := set.Resolve("prod-eu")
	if st == nil {
		t.Fatal(ds)
	}
	db, ok := st.Resource("db")
	if !ok {
		t.Fatal("no db")
	}
	if db.Fields["multi_az"] != true || db.Fields["backup_retention_days"] != int64(35) || db.Fields["identifier"] != "medportal-prod-eu-db" {
		t.Errorf("db fields = %v", db.Fields)
	}
	if got, want := db.DependsOn, []string{"database_key", "db_sg", "db_subnets"}; !cmp.Equal(got, want) {
		t.Errorf("db.DependsOn = %v, want %v", got, want)
	}
	if p, want := db.Position("multi_az"), lineOf(t, "stacks/prod-eu.yaml", "    multi_az: true"); !strings.HasSuffix(p.File, "stacks/prod-eu.yaml") || p.Line != want {
		t.Errorf("multi_az position = %v, want the stack file line %d", p, want)
	}
	if p := db.Position("engine"); !strings.HasSuffix(p.File, "architecture.yaml") {
		t.Errorf("engine position = %v, want the architecture", p)
	}
	rep, _ := st.Resource("documents_replica_bucket")
	if rep.Region != "eu-west-1" {
		t.Errorf("replica region = %s", rep.Region)
	}
	if id, attr, ok := ParseRef(rep.Fields["kms_key"].(string)); !ok || id != "documents_replica_key" || attr != "arn" {
		t.Errorf("ParseRef = %s %s %v", id, attr, ok)
	}
	pol, _ := st.Resource("app_policy")
	if v, ok := pol.Get("statements[0].resources[0]"); !ok || v != "${ref.documents_bucket.arn}/*" {
		t.Errorf("Get = %v %v", v, ok)
	}
	order := st.TopologicalOrder()
	pos := map[string]int{}
	for i, id := range order {
		pos[id] = i
	}
	for _, r := range st.Resources {
		for _, d := range r.DependsOn {
			if pos[d] > pos[r.ID] {
				t.Errorf("%s comes before its dependency %s", r.ID, d)
			}
		}
	}
	vpc, _ := st.Resource("vpc")
	if subnets, _ := vpc.Fields["subnets"].([]any); len(subnets) != 6 {
		t.Errorf("vpc subnets = %v", vpc.Fields["subnets"])
	}
}

func TestDigest(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(shipped, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	arch, params := read("architecture.yaml"), read("stacks/prod-eu.yaml")
	parse := func(name string, b []byte) *File {
		f, ds := Parse(name, b)
		if f == nil {
			t.Fatal(ds)
		}
		return f
	}
	base := Digest([]*File{parse("architecture.yaml", arch), parse("prod-eu.yaml", params)})
	if len(base) != 64 {
		t.Fatalf("digest %q is not hex sha256", base)
	}
	// Order, comments and formatting do not matter.
	same := Digest([]*File{parse("x/prod-eu.yaml", append([]byte("# a comment\n"), params...)), parse("other.yaml", arch)})
	if same != base {
		t.Errorf("digest changed with order/comments: %s != %s", same, base)
	}
	changed := Digest([]*File{parse("architecture.yaml", arch), parse("prod-eu.yaml", []byte(strings.Replace(string(params), "max: 9", "max: 10", 1)))})
	if changed == base {
		t.Error("digest did not change with a value")
	}
	set := loadShipped(t)
	st, _ := set.Resolve("prod-eu")
	if st.Version != base {
		t.Errorf("stack version %s, want %s", st.Version, base)
	}
}
