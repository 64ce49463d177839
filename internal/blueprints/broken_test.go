package blueprints

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyShipped copies the shipped blueprints into a temp dir, applying edits
// (file -> old -> new), and returns the dir.
func copyShipped(t *testing.T, edits map[string][][2]string) string {
	t.Helper()
	dir := t.TempDir()
	err := filepath.WalkDir(shipped, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(shipped, path)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		s := string(data)
		for _, e := range edits[filepath.ToSlash(rel)] {
			if !strings.Contains(s, e[0]) {
				t.Fatalf("%s does not contain %q", rel, e[0])
			}
			s = strings.Replace(s, e[0], e[1], 1)
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
	return dir
}

// lineOf returns the line of the shipped file rel (1-based) on which needle
// first appears, so expected diagnostics follow edits of the blueprints.
func lineOf(t testing.TB, rel, needle string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(shipped, rel))
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(data), needle)
	if i < 0 {
		t.Fatalf("%s does not contain %q", rel, needle)
	}
	return strings.Count(string(data[:i]), "\n") + 1
}

func TestBrokenCopies(t *testing.T) {
	arch := func(needle string) int { return lineOf(t, "architecture.yaml", needle) }
	tests := []struct {
		name  string
		edits map[string][][2]string
		want  []string // each must be exactly one of the diagnostics, path relative to the copy
	}{
		{
			name:  "asg min above desired",
			edits: map[string][][2]string{"stacks/prod-eu.yaml": {{"    min: 3", "    min: 4"}}},
			want:  []string{fmt.Sprintf("stacks/prod-eu.yaml:%d:5: params.asg.min: must be <= desired (4 > 3)", lineOf(t, "stacks/prod-eu.yaml", "    min: 3"))},
		},
		{
			name: "two mistakes at once",
			edits: map[string][][2]string{"stacks/prod-eu.yaml": {
				{"    desired: 3", "    desired: 10"},
				{"cidr: 10.31.48.0/20", "cidr: 10.99.48.0/20"},
			}},
			want: []string{
				fmt.Sprintf("stacks/prod-eu.yaml:%d:5: params.asg.desired: must be <= max (10 > 9)", lineOf(t, "stacks/prod-eu.yaml", "    desired: 3")),
				fmt.Sprintf("stacks/prod-eu.yaml:%d:44: params.subnets[5].cidr: subnet 10.99.48.0/20 is outside the VPC 10.31.0.0/16", lineOf(t, "stacks/prod-eu.yaml", "cidr: 10.31.48.0/20")),
			},
		},
		{
			name:  "overlapping subnets",
			edits: map[string][][2]string{"stacks/dev-us.yaml": {{"cidr: 10.10.1.0/24", "cidr: 10.10.0.128/25"}}},
			want:  []string{`stacks/dev-us.yaml:14:40: params.subnets[1].cidr: subnet 10.10.0.128/25 overlaps subnet "public-a" (10.10.0.0/24)`},
		},
		{
			name:  "schema type error",
			edits: map[string][][2]string{"stacks/prod-eu.yaml": {{"    multi_az: true", "    multi_az: maybe"}}},
			want:  []string{fmt.Sprintf("stacks/prod-eu.yaml:%d:5: params.db.multi_az: got string, want boolean", lineOf(t, "stacks/prod-eu.yaml", "    multi_az: true"))},
		},
		{
			name:  "unknown field",
			edits: map[string][][2]string{"stacks/test-apac.yaml": {{"  alb_5xx_threshold:", "  colour: blue\n  alb_5xx_threshold:"}}},
			want:  []string{fmt.Sprintf(`stacks/test-apac.yaml:%d:3: params.colour: unknown field "colour"`, lineOf(t, "stacks/test-apac.yaml", "  alb_5xx_threshold:"))},
		},
		{
			name:  "missing parameter",
			edits: map[string][][2]string{"stacks/prod-us.yaml": {{"  db_cpu_threshold: 80\n", ""}}},
			want:  []string{`stacks/prod-us.yaml:8:1: params: missing required field "db_cpu_threshold"`},
		},
		{
			name:  "unknown reference",
			edits: map[string][][2]string{"architecture.yaml": {{"kms_key: ${ref.documents_key.arn}\n    versioning", "kms_key: ${ref.documents_kee.arn}\n    versioning"}}},
			want:  []string{fmt.Sprintf(`architecture.yaml:%d:5: resources.documents_bucket.kms_key: reference to unknown resource "documents_kee"`, arch("kms_key: ${ref.documents_key.arn}\n    versioning"))},
		},
		{
			name:  "reference of wrong type",
			edits: map[string][][2]string{"architecture.yaml": {{"kms_key: ${ref.documents_key.arn}\n    versioning", "kms_key: ${ref.snapshots_bucket.arn}\n    versioning"}}},
			want:  []string{fmt.Sprintf(`architecture.yaml:%d:5: resources.documents_bucket.kms_key: kms_key must refer to a kms_key, but "snapshots_bucket" is a s3_bucket`, arch("kms_key: ${ref.documents_key.arn}\n    versioning"))},
		},
		{
			name:  "unknown parameter",
			edits: map[string][][2]string{"architecture.yaml": {{"${param.db.instance_class}\n    allocated", "${param.db.instance_klass}\n    allocated"}}},
			want:  []string{fmt.Sprintf(`architecture.yaml:%d:5: resources.db.instance_class: parameter "db.instance_klass" is not set for stack prod-eu (prod-eu.yaml)`, arch("${param.db.instance_class}\n    allocated"))},
		},
		{
			name:  "substituted value of wrong type",
			edits: map[string][][2]string{"architecture.yaml": {{"multi_az: ${param.db.multi_az}", "multi_az: ${param.db.engine_version}"}}},
			want:  []string{fmt.Sprintf(`stacks/prod-eu.yaml:%d:5: params.db.engine_version: got string, want boolean (or a ${param.x} expression)`, lineOf(t, "stacks/prod-eu.yaml", "    engine_version:"))},
		},
		{
			name:  "ami by id and filter",
			edits: map[string][][2]string{"stacks/test-eu.yaml": {{"    name_filter:", "    id: ami-0a1ee2fb28fe05df3\n    name_filter:"}}},
			want:  []string{fmt.Sprintf(`stacks/test-eu.yaml:%d:3: params.ami: give the AMI by id or by name_filter, not both`, lineOf(t, "stacks/test-eu.yaml", "  ami:"))},
		},
		{
			name:  "ami promoted from its own environment",
			edits: map[string][][2]string{"stacks/test-eu.yaml": {{"  ami:\n    name_filter: al2023-ami-2023.*-x86_64\n    owners: [amazon]", "  ami: {promoted_from: test}"}}},
			want:  []string{fmt.Sprintf(`stacks/test-eu.yaml:%d:9: params.ami.promoted_from: promoted_from "test": want an environment before test (dev)`, lineOf(t, "stacks/test-eu.yaml", "  ami:"))},
		},
		{
			name:  "bucket name uppercase and too long",
			edits: map[string][][2]string{"architecture.yaml": {{"name: ${param.name_prefix}-snapshots", "name: ${param.name_prefix}-Snapshots-of-every-instance-we-ever-ran-in-prod"}}},
			want: []string{
				fmt.Sprintf(`architecture.yaml:%d:5: resources.snapshots_bucket.name: name "medportal-prod-apac-Snapshots-of-every-instance-we-ever-ran-in-prod" is 67 characters, must be 3-63`, arch("name: ${param.name_prefix}-snapshots")),
				fmt.Sprintf(`architecture.yaml:%d:5: resources.snapshots_bucket.name: name "medportal-dev-us-Snapshots-of-every-instance-we-ever-ran-in-prod": allowed are lowercase`, arch("name: ${param.name_prefix}-snapshots")),
			},
		},
		{
			name:  "yaml syntax",
			edits: map[string][][2]string{"stacks/dev-eu.yaml": {{"  instance_type: t3.small", "  instance_type: [t3.small"}}},
			want:  []string{"stacks/dev-eu.yaml:"},
		},
		{
			name:  "cycle",
			edits: map[string][][2]string{"architecture.yaml": {{"    type: route53_health_check\n    description: Is the home", "    type: route53_health_check\n    depends_on: [origin]\n    description: Is the home"}}},
			want:  []string{fmt.Sprintf("architecture.yaml:%d:3: resources.health: dependency cycle: health -> origin -> health", arch("  health:\n"))},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyShipped(t, tt.edits)
			_, ds := LoadDir(dir)
			if !HasErrors(ds) {
				t.Fatalf("LoadDir: no errors, want %q", tt.want)
			}
			var got []string
			for _, d := range ds {
				got = append(got, strings.TrimPrefix(d.String(), dir+string(filepath.Separator)))
			}
			for _, w := range tt.want {
				found := false
				for _, g := range got {
					if g == w || strings.HasPrefix(g, w) {
						found = true
					}
				}
				if !found {
					t.Errorf("missing diagnostic %q; got:\n%s", w, strings.Join(got, "\n"))
				}
			}
		})
	}
}
