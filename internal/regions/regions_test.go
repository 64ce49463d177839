package regions

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNew(t *testing.T) {
	good := SandboxEnvironments()
	mod := func(f func([]EnvironmentConfig) []EnvironmentConfig) []EnvironmentConfig {
		c := append([]EnvironmentConfig(nil), good...)
		return f(c)
	}
	tests := []struct {
		name    string
		envs    []EnvironmentConfig
		wantErr string
	}{
		{"sandbox", good, ""},
		{"short account", mod(func(c []EnvironmentConfig) []EnvironmentConfig {
			c[0].AccountID = "1234"
			return c
		}), "dev: account id \"1234\" is not 12 digits"},
		{"unknown name", mod(func(c []EnvironmentConfig) []EnvironmentConfig {
			return append(c, EnvironmentConfig{Name: "staging", AccountID: "444444444444"})
		}), "unknown name \"staging\""},
		{"missing prod", good[:2], "prod: missing"},
		{"duplicate", mod(func(c []EnvironmentConfig) []EnvironmentConfig { return append(c, c[0]) }), "dev: listed twice"},
		{"role in other account", mod(func(c []EnvironmentConfig) []EnvironmentConfig {
			c[2].DeployerRoleARN = "arn:aws:iam::111111111111:role/PortalDeployer"
			return c
		}), "not 333333333333"},
		{"bad role", mod(func(c []EnvironmentConfig) []EnvironmentConfig {
			c[1].DeployerRoleARN = "PortalDeployer"
			return c
		}), "is not an IAM role ARN"},
		{"same account twice", mod(func(c []EnvironmentConfig) []EnvironmentConfig {
			c[1].AccountID, c[1].DeployerRoleARN = c[0].AccountID, c[0].DeployerRoleARN
			return c
		}), "already used by dev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.envs)
			if tt.wantErr == "" {
				if err != nil || c == nil {
					t.Fatalf("New: got %v, want no error", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New: got error %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestSandboxEnvironments(t *testing.T) {
	want := []EnvironmentConfig{
		{"dev", "111111111111", "arn:aws:iam::111111111111:role/PortalDeployer"},
		{"test", "222222222222", "arn:aws:iam::222222222222:role/PortalDeployer"},
		{"prod", "333333333333", "arn:aws:iam::333333333333:role/PortalDeployer"},
	}
	if diff := cmp.Diff(want, SandboxEnvironments()); diff != "" {
		t.Errorf("SandboxEnvironments (-want +got):\n%s", diff)
	}
}

func TestPromotionOrder(t *testing.T) {
	c, err := New(SandboxEnvironments())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		env, next, prev  string
		hasNext, hasPrev bool
	}{
		{"dev", "test", "", true, false},
		{"test", "prod", "dev", true, true},
		{"prod", "", "test", false, true},
		{"nope", "", "", false, false},
	}
	for _, tt := range tests {
		if got, ok := c.Next(tt.env); got != tt.next || ok != tt.hasNext {
			t.Errorf("Next(%q) = %q, %v; want %q, %v", tt.env, got, ok, tt.next, tt.hasNext)
		}
		if got, ok := c.Previous(tt.env); got != tt.prev || ok != tt.hasPrev {
			t.Errorf("Previous(%q) = %q, %v; want %q, %v", tt.env, got, ok, tt.prev, tt.hasPrev)
		}
	}
}

func TestStacks(t *testing.T) {
	c, err := New(SandboxEnvironments())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range c.Stacks() {
		ids = append(ids, s.ID+"@"+s.Region()+"#"+s.Environment.AccountID)
	}
	want := []string{
		"dev-us@us-east-1#111111111111", "dev-eu@eu-central-1#111111111111", "dev-apac@ap-southeast-1#111111111111",
		"test-us@us-east-1#222222222222", "test-eu@eu-central-1#222222222222", "test-apac@ap-southeast-1#222222222222",
		"prod-us@us-east-1#333333333333", "prod-eu@eu-central-1#333333333333", "prod-apac@ap-southeast-1#333333333333",
	}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("Stacks (-want +got):\n%s", diff)
	}
	s, ok := c.Stack("prod-eu")
	if !ok || s.Jurisdiction.Cite("Art. 44") != "GDPR Art. 44" {
		t.Errorf("Stack(prod-eu) = %+v, %v", s, ok)
	}
}

func TestJurisdictions(t *testing.T) {
	for _, tt := range []struct {
		id, region string
		allowed    bool
	}{
		{"eu", "eu-west-1", true}, {"eu", "us-east-1", false},
		{"us", "us-west-2", true}, {"us", "eu-central-1", false},
		{"apac", "ap-southeast-1", true}, {"apac", "ap-southeast-2", false},
	} {
		j, ok := JurisdictionByID(tt.id)
		if !ok {
			t.Fatalf("JurisdictionByID(%q) not found", tt.id)
		}
		if got := j.Allows(tt.region); got != tt.allowed {
			t.Errorf("%s.Allows(%s) = %v, want %v", tt.id, tt.region, got, tt.allowed)
		}
		if !j.Allows(j.HomeRegion) {
			t.Errorf("%s does not allow its home region", tt.id)
		}
	}
}

func TestStandbyRegions(t *testing.T) {
	for _, j := range Jurisdictions() {
		for _, r := range j.AllowedRegions {
			if j.Basis[r] == "" {
				t.Errorf("%s allows %s without a legal basis", j.ID, r)
			}
		}
		if len(j.Basis) != len(j.AllowedRegions) {
			t.Errorf("%s: a basis for %d regions, %d allowed", j.ID, len(j.Basis), len(j.AllowedRegions))
		}
		switch {
		case j.StandbyRegion == "" && len(j.AllowedRegions) > 1:
			t.Errorf("%s allows %v but has no standby region", j.ID, j.AllowedRegions)
		case j.StandbyRegion != "" && (!j.Allows(j.StandbyRegion) || j.StandbyRegion == j.HomeRegion):
			t.Errorf("%s: standby %s must be another allowed region", j.ID, j.StandbyRegion)
		}
	}
	if j, _ := JurisdictionByID("apac"); j.HasStandby() {
		t.Errorf("apac has standby %s; Singapore has one AWS region", j.StandbyRegion)
	}
}

func TestLayers(t *testing.T) {
	c, err := New(SandboxEnvironments())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, l := range c.Layers() {
		ids = append(ids, l.ID+"#"+l.Environment.AccountID)
	}
	if diff := cmp.Diff([]string{"dev-global#111111111111", "test-global#222222222222", "prod-global#333333333333"}, ids); diff != "" {
		t.Errorf("Layers (-want +got):\n%s", diff)
	}
	for id, want := range map[string]bool{"prod-global": true, "prod-eu": false, "qa-global": false, "global": false} {
		if got := IsLayerID(id); got != want {
			t.Errorf("IsLayerID(%q) = %v, want %v", id, got, want)
		}
	}
	if got := len(c.StacksOf("test")); got != 3 {
		t.Errorf("StacksOf(test) has %d stacks, want 3", got)
	}
}
